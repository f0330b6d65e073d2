package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// buildBinary compiles wh into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wh")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the real executable: a text exchange with the Python CLI,
// and SIGINT while waiting for a sender (exit 130, "Interrupted.").
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	wormholePy := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)

	r := runCmd(ctx, "", bin, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wh ") {
		t.Fatalf("--version: %v", r)
	}

	// The relay URL comes from the environment here (WORMHOLE_RELAY_URL).
	cmd := exec.CommandContext(ctx, bin, "tx", "--code", "82-foo-bar", "--text", "via the binary")
	cmd.Env = append(safeEnviron(), "WORMHOLE_RELAY_URL="+mb.URL())
	var serr bytes.Buffer
	cmd.Stderr = &serr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr := runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "receive", "82-foo-bar")
	if err := cmd.Wait(); err != nil || pr.code != 0 || pr.stdout != "via the binary\n" {
		t.Fatalf("binary send (env relay URL): %v\n%s\npython: %v", err, serr.String(), pr)
	}

	// SIGINT while waiting for a sender that never comes
	cmd = exec.CommandContext(ctx, bin, "receive", "--relay-url", mb.URL(), "83-nobody-home")
	cmd.Env = safeEnviron()
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300 && !strings.Contains(errb.String(), "Waiting for sender..."); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted || !strings.Contains(errb.String(), "Interrupted.") {
		t.Fatalf("SIGINT: %v\n%s", err, errb.String())
	}
}

// TestInterruptInProcess: cancelling the context while waiting ends the
// command with exit 130, and no goroutine outlives it.
func TestInterruptInProcess(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(testCtx(t))
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: safeGetenv, stdinFd: -1, slowNotice: 10 * time.Millisecond}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"receive", "--relay-url", mb.URL(), "84-nobody-home"}) }()
	for i := 0; i < 300 && !strings.Contains(errb.String(), "Waiting for sender..."); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitInterrupted || !strings.Contains(errb.String(), "Interrupted.") {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
}

// TestNoLeaks: a complete text exchange in-process leaves no goroutines.
func TestNoLeaks(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := testCtx(t)
	ws, wr := both(
		func() result {
			return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "85-foo-bar", "--text", "x")
		},
		func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "85-foo-bar") },
	)
	if ws.code != 0 || wr.code != 0 || wr.stdout != "x\n" {
		t.Fatalf("send %v\nreceive %v", ws, wr)
	}
}
