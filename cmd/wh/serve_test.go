package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wormhole-go/wormhole/internal/interop"
)

type serveBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *serveBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *serveBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type serveRun struct {
	cancel  context.CancelFunc
	done    chan int
	out     *serveBuf
	errb    *serveBuf
	mailbox string
	relay   string
}

var (
	mailboxLine = regexp.MustCompile(`Mailbox server: (ws://\S+)`)
	relayLine   = regexp.MustCompile(`Transit relay:  (tcp:\S+)`)
)

// startServe runs runServe in the background and waits for its URLs.
func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{cancel: cancel, done: make(chan int, 1), out: &serveBuf{}, errb: &serveBuf{}}
	go func() { r.done <- runServe(ctx, args, r.out, r.errb) }()
	t.Cleanup(func() { r.stop(t) })
	for i := 0; i < 500; i++ {
		if strings.Contains(r.out.String(), "Clients use:") {
			break
		}
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("wh serve exited %d: %s%s", code, r.out, r.errb)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if m := mailboxLine.FindStringSubmatch(r.out.String()); m != nil {
		r.mailbox = m[1]
	}
	if m := relayLine.FindStringSubmatch(r.out.String()); m != nil {
		r.relay = m[1]
	}
	return r
}

func (r *serveRun) stop(t *testing.T) int {
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("wh serve did not stop after cancel")
		return -1
	}
}

func TestServeUsage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--help"}, exitOK, "Usage: wh serve"},
		{[]string{"--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"extra"}, exitUsage, "unexpected argument"},
		{[]string{"--mailbox", "", "--relay", ""}, exitUsage, "nothing to serve"},
		{[]string{"--hashcash-bits", "99"}, exitUsage, "out of range"},
		{[]string{"--mailbox", "256.0.0.1:1", "--relay", ""}, exitFailed, "mailbox"},
	} {
		var out, errb serveBuf
		if code := runServe(ctx, tc.args, &out, &errb); code != tc.code || !strings.Contains(out.String()+errb.String(), tc.out) {
			t.Errorf("wh serve %q = %d, %q %q; want %d and %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out)
		}
	}
}

// TestServePythonText: Python wormhole 0.12 clients exchange text through
// `wh serve`, see its MOTD, and serve stops cleanly on cancel.
func TestServePythonText(t *testing.T) {
	interop.NeedPython(t)
	py := interop.NeedCommand(t, "wormhole")
	r := startServe(t, "--mailbox", "127.0.0.1:0", "--relay", "127.0.0.1:0", "--motd", "serve-test-motd")
	if !strings.HasPrefix(r.mailbox, "ws://127.0.0.1:") || !strings.HasSuffix(r.mailbox, "/v1") || !strings.HasPrefix(r.relay, "tcp:127.0.0.1:") {
		t.Fatalf("printed URLs %q %q:\n%s", r.mailbox, r.relay, r.out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pyCmd := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, py, append([]string{"--relay-url", r.mailbox, "--transit-helper", r.relay}, args...)...)
		c.Dir = t.TempDir()
		c.Env = append(os.Environ(), "HOME="+c.Dir)
		return c
	}
	send := pyCmd("send", "--text", "through wh serve", "--code", "8-crossbow-puppy")
	var sendOut serveBuf
	send.Stdout, send.Stderr = &sendOut, &sendOut
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	recvOut, err := pyCmd("receive", "8-crossbow-puppy").CombinedOutput()
	if err != nil {
		t.Fatalf("receive: %v\n%s", err, recvOut)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, sendOut.String())
	}
	if !strings.Contains(string(recvOut), "through wh serve") || !strings.Contains(string(recvOut), "serve-test-motd") {
		t.Fatalf("receiver output lacks text or MOTD:\n%s", recvOut)
	}
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exit %d: %s", code, r.errb)
	}
}

// TestServeDBSurvivesRestart: with --db, a queued message survives a
// restart of `wh serve` on the same port.
func TestServeDBSurvivesRestart(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", interop.FreePort(t))
	db := filepath.Join(t.TempDir(), "mbx.sqlite")
	r := startServe(t, "--mailbox", addr, "--relay", "", "--db", db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	talk := func(url string, msgs ...string) []string {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for _, m := range msgs {
			if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			got = append(got, string(b))
			if strings.Contains(string(b), `"pong"`) {
				return got
			}
		}
	}
	talk(r.mailbox, `{"type":"bind","appid":"a","side":"s1"}`, `{"type":"claim","nameplate":"4"}`,
		`{"type":"open","mailbox":"mbx1"}`, `{"type":"add","phase":"pake","body":"abcd"}`, `{"type":"ping","ping":1}`)
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exit %d: %s", code, r.errb)
	}
	r2 := startServe(t, "--mailbox", addr, "--relay", "", "--db", db)
	got := talk(r2.mailbox, `{"type":"bind","appid":"a","side":"s2"}`, `{"type":"open","mailbox":"mbx1"}`, `{"type":"ping","ping":1}`)
	if !strings.Contains(strings.Join(got, "\n"), `"body":"abcd"`) {
		t.Fatalf("message lost across restart: %q", got)
	}
}
