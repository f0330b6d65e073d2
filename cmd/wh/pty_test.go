//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

// openPTY opens a pseudo-terminal pair (master, slave).
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open slave: %v", err)
	}
	return m, s
}

// TestInteractiveCompletion drives `wh receive` (no code) on a
// pseudo-terminal against a live Python mailbox server: "7<Tab>" completes
// the nameplate a waiting sender holds, "opu<Tab>" and "prec<Tab>" complete
// the words, Enter submits, and the text arrives.
func TestInteractiveCompletion(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	master, slave := openPTY(t)
	defer master.Close()

	// The sender claims nameplate 73, so the server lists it.
	sendDone := make(chan result, 1)
	go func() {
		sendDone <- runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "73-opulent-preclude", "--text", "completed!")
	}()

	var screen syncBuffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(&screen, master) // ends when the slave side is closed
	}()
	var errb syncBuffer
	e := &env{stdin: slave, stdout: slave, stderr: &errb, getenv: safeGetenv,
		stdinFd: int(slave.Fd()), slowNotice: time.Second}
	recvDone := make(chan int, 1)
	go func() { recvDone <- run(ctx, e, []string{"receive", "--relay-url", mb.URL()}) }()

	waitScreen := func(want string) {
		t.Helper()
		for i := 0; i < 300; i++ { // bounded, ~30 s
			if strings.Contains(screen.String(), want) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("screen never showed %q:\n%q\nstderr: %s", want, screen.String(), errb.String())
	}
	typeKeys := func(k string) {
		t.Helper()
		if _, err := master.Write([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	waitScreen("Enter receive wormhole code: ")
	// The server may not list nameplate 73 until the sender's claim lands:
	// press Tab again (bounded) until the nameplate completes.
	typeKeys("7")
	for i := 0; i < 50 && !strings.Contains(screen.String(), "73-"); i++ {
		typeKeys("\t")
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("nameplate completed after %v", time.Since(start))
	waitScreen("code: 73-")
	typeKeys("opu\t")
	waitScreen("73-opulent-")
	typeKeys("prec\t")
	waitScreen("73-opulent-preclude")
	t.Logf("words completed after %v", time.Since(start))
	typeKeys("\r")

	var code int
	select {
	case code = <-recvDone:
	case <-ctx.Done():
		t.Fatalf("receive did not finish:\n%q\n%s", screen.String(), errb.String())
	}
	slave.Close()
	<-readDone
	s := <-sendDone
	if code != 0 || s.code != 0 {
		t.Fatalf("receive exit %d, screen %q, stderr %s\nsend: %v", code, screen.String(), errb.String(), s)
	}
	if !strings.Contains(screen.String(), "completed!") {
		t.Fatalf("text not shown: %q", screen.String())
	}
	if strings.Contains(errb.String(), "you can use <Tab>") {
		t.Errorf("Tab was used, but the note was printed: %s", errb.String())
	}
}

// TestInteractiveCtrlC: Ctrl-C at the code prompt aborts with exit 130 and
// leaves the terminal in its original (cooked, echoing) mode.
func TestInteractiveCtrlC(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	master, slave := openPTY(t)
	defer master.Close()
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(&screen, master)
	}()
	var errb syncBuffer
	e := &env{stdin: slave, stdout: slave, stderr: &errb, getenv: safeGetenv,
		stdinFd: int(slave.Fd()), slowNotice: time.Second}
	recvDone := make(chan int, 1)
	go func() { recvDone <- run(ctx, e, []string{"receive", "--relay-url", mb.URL()}) }()
	for i := 0; i < 300 && !strings.Contains(screen.String(), "code: "); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := master.Write([]byte("12\x03")); err != nil {
		t.Fatal(err)
	}
	code := <-recvDone
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	slave.Close()
	<-readDone
	if code != exitInterrupted || !strings.Contains(errb.String(), "Interrupted.") || !strings.Contains(screen.String(), "12^C") {
		t.Fatalf("exit %d, screen %q, stderr %q", code, screen.String(), errb.String())
	}
	if after.Lflag != before.Lflag || after.Lflag&unix.ECHO == 0 {
		t.Fatalf("terminal mode not restored: lflag %#x, was %#x", after.Lflag, before.Lflag)
	}
}

// TestProgressOnTerminal: the real binary, with stderr on a terminal,
// redraws its progress line in place (carriage return, clear to end of
// line) and ends it with the 100% summary; the receiver, with stderr not a
// terminal, prints only the summary line.
func TestProgressOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	mb := interop.StartPythonMailbox(t)
	relay := relaytest.Start(t)
	ctx := testCtx(t)
	src := t.TempDir()
	dst := chdirTemp(t)
	p := makePayload(t, src, "p.bin", 8<<20, 6)
	master, slave := openPTY(t)
	defer master.Close()
	var screen syncBuffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(&screen, master) // ends when the slave side is closed
	}()
	cmd := exec.CommandContext(ctx, bin, "send", "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "--no-listen", "--code", "88-foo-bar", p.path)
	cmd.Env = safeEnviron()
	cmd.Stderr = slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr := runWH(ctx, "", "receive", "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "--no-listen", "--accept-file", "88-foo-bar")
	err := cmd.Wait()
	slave.Close()
	<-readDone
	if err != nil || wr.code != 0 {
		t.Fatalf("send: %v\n%s\nreceive: %v", err, screen.String(), wr)
	}
	checkFile(t, filepath.Join(dst, "p.bin"), p)
	out := screen.String()
	if !strings.Contains(out, "\r  0% ") && !strings.Contains(out, "\r100% ") {
		t.Fatalf("no progress line on the terminal:\n%q", out)
	}
	if !strings.Contains(out, "\x1b[K") || !strings.Contains(out, "\r100% 8.4 MB/8.4 MB ") || !strings.Contains(out, "/s in ") {
		t.Fatalf("progress not redrawn in place or no final line:\n%q", out)
	}
	if strings.Contains(wr.stderr, "\r") || !strings.Contains(wr.stderr, "100% 8.4 MB/8.4 MB ") {
		t.Fatalf("receiver (not a terminal) stderr:\n%q", wr.stderr)
	}
}
