//go:build linux

package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads `wh serve --db`'s database

	"github.com/wormhole-go/wormhole/internal/interop"
)

// whServeProc is a real `wh serve` process (the built binary).
type whServeProc struct {
	cmd     *exec.Cmd
	out     *syncBuffer // stdout and stderr (-v logs)
	done    chan struct{}
	code    int
	mailbox string // ws://127.0.0.1:PORT/v1
	relay   string // tcp:127.0.0.1:PORT
}

// startWhServe runs `bin serve -v args...` and waits for its URLs. It is
// stopped (SIGKILL) at the end of the test if still running.
func startWhServe(t *testing.T, bin string, args ...string) *whServeProc {
	t.Helper()
	p := &whServeProc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "-v"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if err != nil {
			p.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				p.code = ee.ExitCode()
			}
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	for i := 0; i < 600 && !strings.Contains(p.out.String(), "Clients use:"); i++ {
		select {
		case <-p.done:
			t.Fatalf("wh serve exited %d:\n%s", p.code, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	m := mailboxLine.FindStringSubmatch(p.out.String())
	r := relayLine.FindStringSubmatch(p.out.String())
	if m == nil || r == nil {
		t.Fatalf("wh serve printed no URLs:\n%s", p.out)
	}
	p.mailbox, p.relay = m[1], r[1]
	return p
}

// terminate sends SIGTERM and waits (bounded) for a clean exit.
func (p *whServeProc) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("wh serve did not exit after SIGTERM:\n%s", p.out)
	}
	if p.code != exitOK {
		t.Fatalf("wh serve exit %d after SIGTERM:\n%s", p.code, p.out)
	}
}

// pyCLI runs Debian's `wormhole` 0.12 against a server, in a HOME of its
// own.
func pyCLI(ctx context.Context, py, dir, mailbox, relayHint string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, py, append([]string{"--relay-url", mailbox, "--transit-helper", relayHint}, args...)...)
	c.Dir = dir
	c.Env = append(safeEnviron(), "HOME="+dir)
	return c
}

// asyncCmd starts c and returns a function that waits for its result.
func asyncCmd(t *testing.T, c *exec.Cmd) func() result {
	t.Helper()
	var out, errb syncBuffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		err := c.Wait()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		done <- result{out.String(), errb.String(), code}
	}()
	return func() result { return <-done }
}

// countingProxy forwards every connection it accepts to target and counts
// the bytes each way; locals are the local addresses of its connections to
// target (what target logs as the remote side).
type countingProxy struct {
	l      net.Listener
	target string
	n      atomic.Uint64
	mu     sync.Mutex
	locals []string
	wg     sync.WaitGroup
}

func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{l: l, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.forward(c) }()
		}
	}()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *countingProxy) forward(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer u.Close()
	p.mu.Lock()
	p.locals = append(p.locals, u.LocalAddr().String())
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		n, _ := io.Copy(dst, src)
		p.n.Add(uint64(n))
		// the other direction may still be sending: half-close only
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(u, c)
	go cp(c, u)
	<-done
	<-done
}

func (p *countingProxy) hint() string { return "tcp:" + p.l.Addr().String() }

// TestServePythonFileThroughOurRelay (issue 3): Python 0.12 sends a file
// to Python 0.12, both with --no-listen (no direct hints at all), through
// the real `wh serve` binary: our mailbox server AND our transit relay.
// The sha256 is equal and both sides report the relay path. `wh serve`
// has no usage log, so the bytes are shown two ways: its relay's -v log
// pairs exactly the two connections a counting loopback forwarder in
// front of it opened and records both halves finishing happy, and the
// forwarder carried the file into the relay and out of it again.
func TestServePythonFileThroughOurRelay(t *testing.T) {
	interop.NeedPython(t)
	py := interop.NeedCommand(t, "wormhole")
	bin := buildBinary(t)
	s := startWhServe(t, bin, "--mailbox", "127.0.0.1:0", "--relay", "127.0.0.1:0")
	proxy := startCountingProxy(t, strings.TrimPrefix(s.relay, "tcp:"))
	src, dst := t.TempDir(), t.TempDir()
	file := makePayload(t, src, "payload.bin", 24<<20+11, 11)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // safety net
	defer cancel()

	send := asyncCmd(t, pyCLI(ctx, py, src, s.mailbox, proxy.hint(), "send", "--no-listen", "--hide-progress", "--code", "4-purple-sausages", file.path))
	recv := asyncCmd(t, pyCLI(ctx, py, dst, s.mailbox, proxy.hint(), "receive", "--no-listen", "--hide-progress", "--accept-file", "-o", "got.bin", "4-purple-sausages"))
	rr, sr := recv(), send()
	if sr.code != 0 || rr.code != 0 {
		t.Fatalf("python send: %v\npython receive: %v\nwh serve:\n%s", sr, rr, s.out)
	}
	checkFile(t, filepath.Join(dst, "got.bin"), file)
	for side, out := range map[string]string{"sender": sr.stderr + sr.stdout, "receiver": rr.stderr + rr.stdout} {
		if !strings.Contains(out, "->relay:"+proxy.hint()) {
			t.Errorf("python %s did not go through the relay %s:\n%s", side, proxy.hint(), out)
		}
	}
	// bounded wait: the relay logs when the sockets close
	for i := 0; i < 200 && strings.Count(s.out.String(), "relay: connection finished") < 2; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	log := s.out.String()
	paired := regexp.MustCompile(`relay: paired" service=relay token=\S+ a=(\S+) b=(\S+)`).FindStringSubmatch(log)
	proxy.mu.Lock()
	locals := strings.Join(proxy.locals, " ")
	proxy.mu.Unlock()
	if paired == nil || !strings.Contains(locals, paired[1]) || !strings.Contains(locals, paired[2]) {
		t.Fatalf("wh serve's relay did not pair the forwarded connections %s:\n%s", locals, log)
	}
	for _, a := range paired[1:] {
		if !strings.Contains(log, "relay: connection finished\" service=relay remote="+a+" mood=happy") {
			t.Errorf("relay connection %s did not finish happy:\n%s", a, log)
		}
	}
	// the forwarder counts the file into the relay (sender's connection)
	// and out of it (receiver's): twice the file, plus handshakes and
	// record framing
	if n := proxy.n.Load(); n < 2*uint64(file.size) {
		t.Errorf("%d bytes went into and out of the relay, want at least twice the file's %d", n, file.size)
	} else {
		t.Logf("%d bytes into and out of our relay for a %d-byte file", n, file.size)
	}
	s.terminate(t)
}

// queuedPake reports whether the mailbox behind nameplate holds a pake
// message, read from `wh serve --db`'s SQLite file (WAL: readable while
// the server runs).
func queuedPake(db, nameplate string) (bool, error) {
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return false, err
	}
	defer d.Close()
	var n int
	err = d.QueryRow(`SELECT COUNT(*) FROM messages m JOIN nameplates n ON n.mailbox_id = m.mailbox_id
		WHERE n.name = ? AND m.phase = 'pake'`, nameplate).Scan(&n)
	return n > 0, err
}

// TestServeRestartBetweenSteps (issue 3): real clients, and the real
// `wh serve --db F` process restarted between the two sides' steps. The
// sender starts and queues its first (pake) message, seen in the
// database; serve gets SIGTERM, exits 0 and starts again on the same
// ports with the same database; only then does the receiver start. The
// sender reconnects by itself and the exchange completes. One case sends
// a file relay-only (--no-listen both sides) through the restarted relay.
func TestServeRestartBetweenSteps(t *testing.T) {
	interop.NeedPython(t)
	py := interop.NeedCommand(t, "wormhole")
	bin := buildBinary(t)
	for _, tc := range []struct {
		name, sender, receiver string
		file                   bool
	}{
		{"python-to-python/text", "python", "python", false},
		{"wh-to-python/text", "wh", "python", false},
		{"python-to-wh/text", "python", "wh", false},
		{"python-to-wh/file-relay", "python", "wh", true},
		{"wh-to-python/file-relay", "wh", "python", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sdir, rdir := filepath.Join(dir, "s"), filepath.Join(dir, "r")
			os.Mkdir(sdir, 0o755)
			os.Mkdir(rdir, 0o755)
			db := filepath.Join(dir, "mbx.sqlite")
			args := []string{"--mailbox", fmt.Sprintf("127.0.0.1:%d", interop.FreePort(t)),
				"--relay", fmt.Sprintf("127.0.0.1:%d", interop.FreePort(t)), "--db", db}
			s := startWhServe(t, bin, args...)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // safety net
			defer cancel()
			const code, nameplate = "7-crossover-clockwork", "7"
			text := "across a restart: " + tc.name
			var file payload
			what := []string{"--text", text}
			var transit []string
			if tc.file {
				file = makePayload(t, sdir, "payload.bin", 5<<20+3, 5)
				what = []string{file.path}
				transit = []string{"--no-listen"}
			}
			cli := func(who, wdir, cmd string, args ...string) *exec.Cmd {
				a := append(append([]string{cmd}, transit...), "--hide-progress")
				a = append(a, args...)
				if who == "python" {
					return pyCLI(ctx, py, wdir, s.mailbox, s.relay, a...)
				}
				c := exec.CommandContext(ctx, bin, append([]string{"--relay-url", s.mailbox, "--transit-helper", s.relay}, a...)...)
				c.Dir = wdir
				c.Env = safeEnviron()
				return c
			}
			send := asyncCmd(t, cli(tc.sender, sdir, "send", append([]string{"--code", code}, what...)...))
			queued := false
			for i := 0; i < 600 && !queued; i++ {
				var err error
				if queued, err = queuedPake(db, nameplate); err != nil {
					t.Logf("reading %s: %v", db, err)
				}
				if !queued {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if !queued {
				cancel()
				t.Fatalf("the sender never queued its pake message:\n%v\nwh serve:\n%s", send(), s.out)
			}
			s.terminate(t)
			s2 := startWhServe(t, bin, args...)
			if s2.mailbox != s.mailbox || s2.relay != s.relay {
				t.Fatalf("restarted on %s %s, was %s %s", s2.mailbox, s2.relay, s.mailbox, s.relay)
			}
			recvArgs := []string{code}
			if tc.file {
				recvArgs = []string{"--accept-file", "-o", "got.bin", code}
			}
			rr := asyncCmd(t, cli(tc.receiver, rdir, "receive", recvArgs...))()
			sr := send()
			if sr.code != 0 || rr.code != 0 {
				t.Fatalf("%s send: %v\n%s receive: %v\nwh serve before the restart:\n%s\nafter:\n%s", tc.sender, sr, tc.receiver, rr, s.out, s2.out)
			}
			if tc.file {
				checkFile(t, filepath.Join(rdir, "got.bin"), file)
				for side, out := range map[string]string{"sender": sr.stderr + sr.stdout, "receiver": rr.stderr + rr.stdout} {
					if !strings.Contains(out, "->relay:"+s.relay) {
						t.Errorf("%s did not go through the relay %s:\n%s", side, s.relay, out)
					}
				}
			} else if !strings.Contains(rr.stdout, text) {
				t.Fatalf("%s receiver printed %q, want %q", tc.receiver, rr.stdout, text)
			}
			t.Logf("wh serve after the restart:\n%s", s2.out)
			s2.terminate(t)
		})
	}
}
