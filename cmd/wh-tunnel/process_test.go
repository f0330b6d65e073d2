package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// buildBinary builds wh-tunnel once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wh-tunnel")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd    *exec.Cmd
	events chan map[string]any
	done   chan error
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, events: make(chan map[string]any, 1000), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.events <- m
			}
		}
		close(p.events)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *proc) wait(t *testing.T, kind string) map[string]any {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("process ended before a %q event", kind)
			}
			if e["kind"] == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %q event", kind)
		}
	}
}

func (p *proc) exitCode(t *testing.T) int {
	t.Helper()
	for range p.events {
	}
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatal("process did not exit")
	}
	return -1
}

// Real processes and real signals: SIGINT while waiting for the peer is
// exit 130; SIGINT during a session tells the peer and both exit 0.
func TestProcessSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	mb := mailboxtest.Start(t)
	common := []string{"--json", "--relay-url", mb.URL(), "--transit-helper", "", "--listen-addr", "127.0.0.1:0"}

	lonely := start(t, bin, append(common, "-L", "x=0:127.0.0.1:9")...)
	lonely.wait(t, "code-allocated")
	lonely.cmd.Process.Signal(os.Interrupt)
	if c := lonely.exitCode(t); c != exitInterrupted {
		t.Fatalf("interrupted while waiting: exit %d, want %d", c, exitInterrupted)
	}

	echo, stop := echoServer(t)
	defer stop()
	spec := fmt.Sprintf("sig=0:127.0.0.1:%d", echo)
	a := start(t, bin, append(common, "-L", spec)...)
	code := a.wait(t, "code-allocated")["code"].(string)
	b := start(t, bin, append(common, "-R", spec, code)...)
	port := int(a.wait(t, "listening")["listening_port"].(float64))
	b.wait(t, "awaiting-connect")
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	c.Close()
	b.cmd.Process.Signal(syscall.SIGTERM)
	if x := b.exitCode(t); x != exitOK {
		t.Fatalf("B exit %d", x)
	}
	if x := a.exitCode(t); x != exitOK {
		t.Fatalf("A (told by B) exit %d", x)
	}
}
