package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"go.uber.org/goleak"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/tunnel"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseArgs(t *testing.T) {
	c, err := parseArgs([]string{"-L", "8080:localhost:80", "--R", "web=0:[::1]:3000", "--no-listen", "--code-length", "3", "7-a-b"}, env())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.forwards) != 2 || c.forwards[0].Dir != tunnel.Local || c.forwards[1].Name != "web" || c.forwards[1].Host != "::1" {
		t.Fatalf("forwards %+v", c.forwards)
	}
	if c.code != "7-a-b" || !c.noListen || c.codeLength != 3 || c.relayURL != defaultRelayURL || c.transit != defaultTransitHelper || c.appID != defaultAppID {
		t.Fatalf("config %+v", c)
	}
	c, err = parseArgs([]string{"-R", "1:h:2", "-"}, env("WORMHOLE_RELAY_URL", "ws://x/v1", "WORMHOLE_TRANSIT_HELPER", "tcp:t:1"))
	if err != nil || !c.readCode || c.relayURL != "ws://x/v1" || c.transit != "tcp:t:1" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = parseArgs([]string{"--relay-url", "ws://y/v1", "--transit-helper", "", "-R", "1:h:2"}, env("WORMHOLE_RELAY_URL", "ws://x/v1"))
	if err != nil || c.relayURL != "ws://y/v1" || c.transit != "" {
		t.Fatalf("flags must beat env: %+v %v", c, err)
	}
	for _, bad := range [][]string{
		{},                                       // no forwards
		{"-L", "8080"},                           // bad spec
		{"-L", "1:h:2", "a", "b"},                // two codes
		{"-L", "1:h:2", "-L", "1:h:2"},           // duplicate name
		{"-R", "127.0.0.1:1:h:2"},                // -R with bind
		{"-L", "1:h:2", "--code-length", "0"},    // bad length
		{"-L", "1:h:2", "--transit-helper", "x"}, // bad hint
		{"-L", "1:h:2", "--code", "1-a", "2-b"},  // two codes
		{"--bogus"},
	} {
		if _, err := parseArgs(bad, env()); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(), nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "Exit codes") || !strings.Contains(out.String(), "-L [NAME=][BIND:]PORT") {
		t.Fatalf("help: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"-L", "nope"}, env(), nil, &out, &errb); code != exitUsage {
		t.Fatalf("bad spec: exit %d", code)
	}
	// Unreachable mailbox.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	errb.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"--relay-url", "ws://" + addr + "/v1", "-L", "1:h:2"}, env(), strings.NewReader(""), &out, &errb)
	if code != exitNetwork {
		t.Fatalf("unreachable mailbox: exit %d, stderr %q", code, errb.String())
	}
}

func TestMirrorFlags(t *testing.T) {
	l, _ := tunnel.ParseForward(tunnel.Local, "[::1]:8080:localhost:80")
	r, _ := tunnel.ParseForward(tunnel.Remote, "web=0:[::1]:3000")
	got := mirrorFlags([]tunnel.Forward{l, r})
	if got != "-R 8080:localhost:80 -L web=0:[::1]:3000" {
		t.Fatalf("got %q", got)
	}
}

func TestRenderQR(t *testing.T) {
	s := renderQR("7-guitarist-revenge")
	q, _ := qrcode.New("7-guitarist-revenge", qrcode.Medium)
	n := len(q.Bitmap())
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != (n+1)/2 {
		t.Fatalf("%d lines for %d modules", len(lines), n)
	}
	for _, l := range lines {
		if len([]rune(l)) != n {
			t.Fatalf("line width %d, want %d", len([]rune(l)), n)
		}
	}
	// The quiet zone is light: the first line is all full blocks.
	if strings.Trim(lines[0], "█") != "" {
		t.Fatalf("first line %q", lines[0])
	}
}

func TestDemo(t *testing.T) {
	for _, c := range []struct {
		mode int
		want string // in both sides' path
	}{{pathAny, ""}, {pathRelay, "relay tcp:"}, {pathDirect, "127.0.0.1:"}} {
		t.Run(fmt.Sprintf("mode=%d", c.mode), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := demo(ctx, 8<<20, c.mode, func(string, ...any) {})
			if err != nil {
				t.Fatal(err)
			}
			if res.code == "" || !strings.HasPrefix(res.mailbox, "ws://127.0.0.1:") || res.down <= 0 || res.up <= 0 || res.path == "" {
				t.Fatalf("%+v", res)
			}
			// Without a restriction either path may win the race (each
			// side dials its own relay at once, as Python does).
			if strings.Count(res.path, c.want) < 2 || (c.mode == pathDirect && strings.Contains(res.path, "relay")) {
				t.Fatalf("mode %d: path %q", c.mode, res.path)
			}
		})
	}
	var out bytes.Buffer
	if code := runDemo(context.Background(), []string{"--size", "1"}, env(), &out, io.Discard); code != exitOK || !strings.Contains(out.String(), "sha256 ok") {
		t.Fatalf("runDemo: %d\n%s", code, out.String())
	}
}

// jsonLines collects the --json output of one CLI run.
type jsonLines struct {
	mu   sync.Mutex
	ev   []map[string]any
	cond chan struct{}
}

func (j *jsonLines) Write(p []byte) (int, error) { return len(p), nil }

func watchJSON(r io.Reader) *jsonLines {
	j := &jsonLines{cond: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			j.mu.Lock()
			j.ev = append(j.ev, m)
			close(j.cond)
			j.cond = make(chan struct{})
			j.mu.Unlock()
		}
	}()
	return j
}

func (j *jsonLines) wait(t *testing.T, kind string) map[string]any {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		j.mu.Lock()
		for _, e := range j.ev {
			if e["kind"] == kind {
				j.mu.Unlock()
				return e
			}
		}
		ch := j.cond
		j.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q event", kind)
		}
	}
}

// Two CLI runs through our Go mailbox server: -L on one, -R on the other,
// an echo through the forward, Ctrl-C on one side, both exit 0.
func TestCLIEndToEnd(t *testing.T) {
	mb := mailboxtest.Start(t)
	echo, stopEcho := echoServer(t)
	defer stopEcho()
	spec := fmt.Sprintf("e2e=0:127.0.0.1:%d", echo)
	common := []string{"--json", "--relay-url", mb.URL(), "--transit-helper", "", "--listen-addr", "127.0.0.1:0"}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	ctxB, cancelB := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelB()
	pa, wa := io.Pipe()
	pb, wb := io.Pipe()
	evA, evB := watchJSON(pa), watchJSON(pb)
	doneA, doneB := make(chan int, 1), make(chan int, 1)
	go func() {
		doneA <- run(ctxA, append(common, "-L", spec), env(), strings.NewReader(""), wa, io.Discard)
		wa.Close()
	}()
	code := evA.wait(t, "code-allocated")["code"].(string)
	// B types the code ("-") and confirms the verifier (--verify).
	var errB syncBuffer
	go func() {
		doneB <- run(ctxB, append(common, "--verify", "-R", spec, "-"), env(), strings.NewReader(code+"\nyes\n"), wb, &errB)
		wb.Close()
	}()
	port := int(evA.wait(t, "listening")["listening_port"].(float64))
	evB.wait(t, "awaiting-connect")
	evA.wait(t, "peer-connected")
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	msg := strings.Repeat("through the wormhole ", 5000)
	go func() {
		io.WriteString(c, msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != msg {
		t.Fatalf("echo: %d of %d bytes, %v", len(got), len(msg), err)
	}
	evB.wait(t, "bytes-out")
	cancelA() // Ctrl-C on A: A tells B, both end.
	if a := <-doneA; a != exitOK {
		t.Fatalf("A exit %d", a)
	}
	if b := <-doneB; b != exitOK {
		t.Fatalf("B exit %d", b)
	}
	evA.wait(t, "closed")
	evB.wait(t, "closed")
	for _, want := range []string{"Enter the wormhole code: ", "Verifier ", "Does the peer show the same?"} {
		if !strings.Contains(errB.String(), want) {
			t.Errorf("B did not print %q: %q", want, errB.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func echoServer(t *testing.T) (int, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port, netx.Serve(ln, func(c net.Conn) { io.Copy(c, c) })
}

// Answering "no" to --verify ends with exit code 3 before any forwarding.
func TestVerifyRejected(t *testing.T) {
	mb := mailboxtest.Start(t)
	ctxA, cancelA := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelA()
	pr, pw := io.Pipe()
	evs := watchJSON(pr)
	done := make(chan int, 1)
	go func() {
		done <- run(ctxA, []string{"--json", "--relay-url", mb.URL(), "--transit-helper", "", "--listen-addr", "127.0.0.1:0", "-L", "x=0:127.0.0.1:9"}, env(), strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	code := evs.wait(t, "code-allocated")["code"].(string)
	ctxB, cancelB := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelB()
	var errb bytes.Buffer
	got := run(ctxB, []string{"--verify", "--relay-url", mb.URL(), "--transit-helper", "", "-R", "x=0:127.0.0.1:9", code}, env(), strings.NewReader("no\n"), io.Discard, &errb)
	if got != exitWrongCode || !strings.Contains(errb.String(), "verifier rejected") {
		t.Fatalf("exit %d, %q", got, errb.String())
	}
	cancelA()
	<-done
}

// A peer whose version message has no can-dilate: exit 5.
func TestPeerCannotDilate(t *testing.T) {
	mb := mailboxtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	evs := watchJSON(pr)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--json", "--relay-url", mb.URL(), "--transit-helper", "", "--listen-addr", "127.0.0.1:0", "-L", "x=0:127.0.0.1:9"}, env(), strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	code := evs.wait(t, "code-allocated")["code"].(string)
	w, err := wormhole.New(ctx, wormhole.Options{AppID: defaultAppID, RendezvousURL: mb.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.SetCode(code); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Verifier(ctx); err != nil {
		t.Fatal(err)
	}
	if c := <-done; c != exitPeer {
		t.Fatalf("exit %d, want %d", c, exitPeer)
	}
	if e := evs.wait(t, "error"); !strings.Contains(e["message"].(string), "dilat") {
		t.Fatalf("error event %v", e)
	}
}
