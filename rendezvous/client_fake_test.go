package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const testSide = "0123456789"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// statusLog records OnStatus calls.
type statusLog struct {
	mu sync.Mutex
	s  []Status
}

func (l *statusLog) add(s Status) { l.mu.Lock(); l.s = append(l.s, s); l.mu.Unlock() }
func (l *statusLog) states() []ConnState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ConnState
	for _, s := range l.s {
		out = append(out, s.State)
	}
	return out
}

// async runs f in a goroutine and returns a channel with its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("call did not return")
		return nil
	}
}

func nextMsg(t *testing.T, c *Client) Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("Messages closed (err %v)", c.Err())
		}
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
		return Message{}
	}
}

func newFakeClient(t *testing.T, f *fakeServer, log *statusLog) *Client {
	opts := Options{URL: f.URL(), AppID: "app", Side: testSide,
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond}
	if log != nil {
		opts.OnStatus = log.add
	}
	c := New(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func expectBind(fc *fakeConn) {
	fc.t.Helper()
	fc.Expect(&BindMsg{AppID: "app", Side: testSide, ClientVersion: []string{"wormhole-go", "0.1.0"}})
}

// connect runs Connect against the fake server and handles the welcome+bind.
func connect(t *testing.T, f *fakeServer, c *Client) *fakeConn {
	t.Helper()
	errc := async(func() error { return c.Connect(testCtx(t)) })
	fc := f.Next()
	fc.Welcome()
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	expectBind(fc)
	return fc
}

// TestReconnectReplay scripts six connections and checks that after each
// reconnect the client re-sends exactly what Python's state machines would
// (spec 7): re-allocate only if unanswered, re-claim only before "claimed",
// always re-open, re-add only unechoed messages, re-send pending
// release/list/close, no open once closing; and that replayed peer messages
// are delivered once.
func TestReconnectReplay(t *testing.T) {
	f := newFakeServer(t)
	log := &statusLog{}
	c := newFakeClient(t, f, log)
	ctx := testCtx(t)

	// conn 1: allocate is lost.
	fc := connect(t, f, c)
	if w, err := c.Welcome(ctx); err != nil || w.MOTD != "" || len(w.Raw) != 0 {
		t.Fatalf("welcome %+v %v", w, err)
	}
	var nameplate string
	allocErr := async(func() (err error) { nameplate, err = c.Allocate(ctx); return })
	fc.Expect(&AllocateMsg{})
	fc.Close()

	// conn 2: allocate re-sent and answered; claim is lost.
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	fc.Expect(&AllocateMsg{})
	fc.Send(AllocatedMsg{Nameplate: "7"})
	if err := waitErr(t, allocErr); err != nil || nameplate != "7" {
		t.Fatalf("Allocate = %q, %v", nameplate, err)
	}
	var mailbox string
	claimErr := async(func() (err error) { mailbox, err = c.Claim(ctx, "7"); return })
	fc.Expect(&ClaimMsg{Nameplate: "7"})
	fc.Close()

	// conn 3: claim re-sent and answered; open, two adds; only pake echoed.
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	fc.Expect(&ClaimMsg{Nameplate: "7"})
	fc.Send(ClaimedMsg{Mailbox: "mb1"})
	if err := waitErr(t, claimErr); err != nil || mailbox != "mb1" {
		t.Fatalf("Claim = %q, %v", mailbox, err)
	}
	if err := c.Add(ctx, "pake", []byte("P")); err != nil { // queued before open
		t.Fatal(err)
	}
	if err := c.Open(ctx, "mb1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(ctx, "version", []byte("V")); err != nil {
		t.Fatal(err)
	}
	fc.Expect(&OpenMsg{Mailbox: "mb1"})
	fc.Expect(&AddMsg{Phase: "pake", Body: []byte("P")})
	fc.Expect(&AddMsg{Phase: "version", Body: []byte("V")})
	fc.Send(MessageMsg{Side: testSide, Phase: "pake", Body: []byte("P")})
	fc.Send(MessageMsg{Side: "peerpeer00", Phase: "pake", Body: []byte("peer P"), ID: "beef", ServerRX: 5})
	if m := nextMsg(t, c); !reflect.DeepEqual(m, Message{Side: "peerpeer00", Phase: "pake", Body: []byte("peer P"), ID: "beef", ServerRX: 5}) {
		t.Fatalf("got %+v", m)
	}
	fc.Close()

	// conn 4: no claim; open; only the unechoed add; replay is deduplicated.
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	fc.Expect(&OpenMsg{Mailbox: "mb1"})
	fc.Expect(&AddMsg{Phase: "version", Body: []byte("V")})
	fc.Send(MessageMsg{Side: "peerpeer00", Phase: "pake", Body: []byte("peer P")})
	fc.Send(MessageMsg{Side: testSide, Phase: "pake", Body: []byte("P")})
	fc.Send(MessageMsg{Side: "peerpeer00", Phase: "version", Body: []byte("peer V")})
	if m := nextMsg(t, c); m.Phase != "version" || string(m.Body) != "peer V" {
		t.Fatalf("got %+v", m)
	}
	relErr := async(func() error { return c.Release(ctx, "7") })
	fc.Expect(&ReleaseMsg{Nameplate: "7"})
	var list []string
	listErr := async(func() (err error) { list, err = c.List(ctx); return })
	fc.Expect(&ListMsg{})
	fc.Close()

	// conn 5: release, open, unechoed add, list re-sent; answers arrive.
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	fc.Expect(&ReleaseMsg{Nameplate: "7"})
	fc.Expect(&OpenMsg{Mailbox: "mb1"})
	fc.Expect(&AddMsg{Phase: "version", Body: []byte("V")})
	fc.Expect(&ListMsg{})
	fc.Send(ReleasedMsg{})
	fc.Send(NameplatesMsg{Nameplates: []NameplateInfo{{"7"}}})
	fc.Send(MessageMsg{Side: testSide, Phase: "version", Body: []byte("V")})
	if err := waitErr(t, relErr); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, listErr); err != nil || !reflect.DeepEqual(list, []string{"7"}) {
		t.Fatalf("List = %v, %v", list, err)
	}
	closeErr := async(func() error { return c.CloseMailbox(ctx, "mb1", "happy") })
	fc.Expect(&CloseMsg{Mailbox: "mb1", Mood: "happy"})
	fc.Close()

	// conn 6: only the close is re-sent (no open, no adds, no release).
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	fc.Expect(&CloseMsg{Mailbox: "mb1", Mood: "happy"})
	fc.Send(ClosedMsg{})
	if err := waitErr(t, closeErr); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(ctx, "late", nil); !errors.Is(err, ErrMailboxClosed) {
		t.Errorf("Add after close: %v", err)
	}
	// A ping round-trip proves nothing else was queued before it.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fc.Close()
	if _, ok := <-c.Messages(); ok {
		t.Error("extra message delivered")
	}
	if c.Err() != nil {
		t.Errorf("Err after clean close: %v", c.Err())
	}
	states := log.states()
	if states[0] != Connecting || states[1] != Connected || states[len(states)-1] != Closed {
		t.Errorf("status sequence %v", states)
	}
	n := 0
	for _, s := range states {
		if s == Connected {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d Connected states, want 6: %v", n, states)
	}
	if _, err := c.Allocate(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Allocate after Close: %v", err)
	}
}

// The client waits for the welcome and answers a hashcash requirement
// before bind.
func TestPermissionHashcash(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	errc := async(func() error { return c.Connect(testCtx(t)) })
	fc := f.Next()
	fc.SendRaw(`{"type":"welcome","welcome":{"permission-required":{"hashcash":{"bits":8,"resource":"wormhole-test"},"future":{}}}}`)
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	m, ok := fc.Recv().(*SubmitPermissionsMsg)
	if !ok || m.Method != "hashcash" {
		t.Fatalf("first message %#v", m)
	}
	if err := VerifyHashcash(m.Stamp, 8, "wormhole-test", time.Now()); err != nil {
		t.Fatalf("stamp %q: %v", m.Stamp, err)
	}
	expectBind(fc)
	w, err := c.Welcome(testCtx(t))
	if err != nil || w.PermissionRequired["hashcash"] == nil {
		t.Fatalf("%+v %v", w, err)
	}
}

func TestPermissionNoneAndUnsupported(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	errc := async(func() error { return c.Connect(testCtx(t)) })
	fc := f.Next()
	fc.SendRaw(`{"type":"welcome","welcome":{"permission-required":{"none":{},"hashcash":{"bits":8,"resource":"x"}}}}`)
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	expectBind(fc) // "none" offered: no stamp

	c2 := newFakeClient(t, f, nil)
	errc = async(func() error { return c2.Connect(testCtx(t)) })
	fc = f.Next()
	fc.SendRaw(`{"type":"welcome","welcome":{"permission-required":{"captcha":{}}}}`)
	err := waitErr(t, errc)
	if !errors.Is(err, ErrPermission) || !errors.Is(err, ErrServerConnection) {
		t.Fatalf("got %v", err)
	}
}

// hostile runs one client against a fake server that misbehaves after the
// welcome and bind, and returns the client's fatal error.
func hostile(t *testing.T, misbehave func(fc *fakeConn)) error {
	t.Helper()
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	fc := connect(t, f, c)
	misbehave(fc)
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("client did not stop")
	}
	// Messages is closed and waiting calls fail with the same error.
	for range c.Messages() {
	}
	if _, err := c.Allocate(testCtx(t)); !errors.Is(err, c.Err()) {
		t.Errorf("Allocate after failure: %v, want %v", err, c.Err())
	}
	return c.Err()
}

func TestHostileServer(t *testing.T) {
	cases := []struct {
		name  string
		do    func(fc *fakeConn)
		check func(error) bool
	}{
		{"garbage", func(fc *fakeConn) { fc.SendRaw("{{{ not json") },
			func(err error) bool { return errors.Is(err, ErrMalformedMessage) }},
		{"array", func(fc *fakeConn) { fc.SendRaw("[]") },
			func(err error) bool { return errors.Is(err, ErrMalformedMessage) }},
		{"no type", func(fc *fakeConn) { fc.SendRaw(`{"id":"x"}`) },
			func(err error) bool { return errors.Is(err, ErrMissingType) }},
		{"bad hex", func(fc *fakeConn) { fc.SendRaw(`{"type":"message","side":"a","phase":"p","body":"xyz"}`) },
			func(err error) bool { return errors.Is(err, ErrBadField) }},
		{"bad field type", func(fc *fakeConn) { fc.SendRaw(`{"type":"claimed","mailbox":7}`) },
			func(err error) bool { return errors.Is(err, ErrBadField) }},
		{"binary frame", func(fc *fakeConn) {
			ctx, cancel := fc.ctx()
			defer cancel()
			_ = fc.ws.Write(ctx, websocket.MessageBinary, []byte(`{"type":"ack"}`))
		}, func(err error) bool { return errors.Is(err, ErrBinaryFrame) }},
		{"oversized", func(fc *fakeConn) {
			ctx, cancel := fc.ctx()
			defer cancel()
			_ = fc.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","x":"`+strings.Repeat("a", 2<<20)+`"}`))
		}, func(err error) bool { return errors.Is(err, websocket.ErrMessageTooBig) }},
		{"phase flood", func(fc *fakeConn) {
			for i := 0; i < 4; i++ {
				fc.SendRaw(fmt.Sprintf(`{"type":"message","side":"peer","phase":"%d%s","body":""}`, i, strings.Repeat("p", 300<<10)))
			}
		}, func(err error) bool { return strings.Contains(err.Error(), "too many distinct phases") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := hostile(t, tc.do)
			if !tc.check(err) {
				t.Fatalf("unexpected error %v", err)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
				t.Errorf("%v is not a *ProtocolError", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestServerErrorNotFatal: a server "error" message fails the calls waiting
// for an answer but does not stop the client (Python's RendezvousConnector
// hands it to the Boss, which then releases and closes with mood "errory"
// over the same connection). Peer messages from before the error are
// delivered, later ones are not; after a reconnect a pending claim is not
// re-sent once the release was asked for.
func TestServerErrorNotFatal(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	fc := connect(t, f, c)
	ctx := testCtx(t)
	if err := c.Open(ctx, "mb"); err != nil {
		t.Fatal(err)
	}
	fc.Expect(&OpenMsg{Mailbox: "mb"})
	claim := async(func() error { _, err := c.Claim(ctx, "5"); return err })
	fc.Expect(&ClaimMsg{Nameplate: "5"})
	select {
	case <-c.Errored():
		t.Fatal("Errored closed before any error")
	default:
	}
	fc.SendRaw(`{"type":"message","side":"peer","phase":"pake","body":"6869"}`)
	fc.SendRaw(`{"type":"error","error":"crowded","orig":{"type":"claim","nameplate":"5"}}`)
	fc.SendRaw(`{"type":"message","side":"peer","phase":"version","body":"6869"}`)
	err := waitErr(t, claim)
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != "crowded" || string(se.Orig) != `{"type":"claim","nameplate":"5"}` {
		t.Fatalf("Claim: %v", err)
	}
	select {
	case <-c.Errored():
	default:
		t.Fatal("Errored not closed after a server error")
	}
	if got := c.ServerErr(); got != error(se) {
		t.Fatalf("ServerErr() = %v, want %v", got, se)
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v after a non-fatal server error", c.Err())
	}
	select {
	case <-c.Done():
		t.Fatal("client stopped on a server error")
	default:
	}

	// A call made after the error waits for its own answer, and fails
	// only on an error that arrives while it waits.
	list := async(func() error { _, err := c.List(ctx); return err })
	fc.Expect(&ListMsg{})
	fc.SendRaw(`{"type":"error","error":"second","orig":{"type":"list"}}`)
	if err := waitErr(t, list); !errors.As(err, &se) || se.Msg != "second" {
		t.Fatalf("List: %v", err)
	}
	if first := c.ServerErr(); !errors.As(first, &se) || se.Msg != "crowded" {
		t.Fatalf("ServerErr() = %v, want the first error", first)
	}

	// Release goes out over the same connection; after a reconnect it is
	// re-sent but the failed claim is not.
	rel := async(func() error { return c.Release(ctx, "5") })
	fc.Expect(&ReleaseMsg{Nameplate: "5"})
	fc.Close()
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	fc.Expect(&ReleaseMsg{Nameplate: "5"})
	fc.Expect(&OpenMsg{Mailbox: "mb"})
	fc.SendRaw(`{"type":"released"}`)
	if err := waitErr(t, rel); err != nil {
		t.Fatalf("Release after a server error: %v", err)
	}
	cl := async(func() error { return c.CloseMailbox(ctx, "mb", "errory") })
	fc.Expect(&CloseMsg{Mailbox: "mb", Mood: "errory"})
	fc.SendRaw(`{"type":"message","side":"peer","phase":"0","body":"6869"}`)
	fc.SendRaw(`{"type":"closed"}`)
	if err := waitErr(t, cl); err != nil {
		t.Fatalf("CloseMailbox after a server error: %v", err)
	}
	// Everything the server sent has been processed by now: only the
	// message from before the first error was delivered.
	if m := nextMsg(t, c); m.Phase != "pake" {
		t.Fatalf("got %+v, want the pake from before the error", m)
	}
	select {
	case m := <-c.Messages():
		t.Fatalf("delivered %+v after the server error", m)
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Err() != nil {
		t.Fatalf("Err() after Close = %v", c.Err())
	}
}

// Unknown message types (and unknown keys) are ignored, like Python.
func TestUnknownTypesIgnored(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	fc := connect(t, f, c)
	if err := c.Open(testCtx(t), "mb"); err != nil {
		t.Fatal(err)
	}
	fc.Expect(&OpenMsg{Mailbox: "mb"})
	fc.SendRaw(`{"type":"frobnicate","x":[1,2,3]}`)
	fc.SendRaw(`{"type":"pong","pong":3}`)
	fc.SendRaw(`{"type":"welcome","welcome":{}}`)
	fc.SendRaw(`{"type":"message","side":"other","phase":"pake","body":"6869","future_key":{"a":1}}`)
	if m := nextMsg(t, c); m.Phase != "pake" || string(m.Body) != "hi" {
		t.Fatalf("%+v", m)
	}
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}

// A server that streams a huge frame cannot make the client allocate much
// more than the read limit.
func TestOversizedFrameBoundedMemory(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	fc := connect(t, f, c)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		ctx, cancel := fc.ctx()
		defer cancel()
		w, err := fc.ws.Writer(ctx, websocket.MessageText)
		if err != nil {
			return
		}
		chunk := []byte(strings.Repeat("a", 64<<10))
		_, _ = w.Write([]byte(`{"type":"ack","x":"`))
		for i := 0; i < 1024; i++ { // 64 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.Close()
	}()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("client did not stop")
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if !errors.Is(c.Err(), websocket.ErrMessageTooBig) {
		t.Fatalf("err %v", c.Err())
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("allocated %d MiB for a 64 MiB frame with a 1 MiB limit", grew>>20)
	}
}

func TestWelcomeErrorFake(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	errc := async(func() error { return c.Connect(testCtx(t)) })
	fc := f.Next()
	fc.SendRaw(`{"type":"welcome","welcome":{"error":"server disabled","motd":"bye"}}`)
	err := waitErr(t, errc)
	var we *WelcomeError
	if !errors.As(err, &we) || we.Msg != "server disabled" {
		t.Fatalf("got %v", err)
	}
	if !errors.As(c.Err(), &we) {
		t.Fatalf("Err() = %v", c.Err())
	}
	if _, err := c.Welcome(testCtx(t)); !errors.As(err, &we) {
		t.Fatalf("Welcome() = %v", err)
	}
}

func TestNoWelcome(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	errc := async(func() error { return c.Connect(testCtx(t)) })
	fc := f.Next()
	fc.SendRaw(`{"type":"ack","id":null}`)
	err := waitErr(t, errc)
	if !errors.Is(err, ErrServerConnection) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v", err)
	}
}

func TestConnectClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	log := &statusLog{}
	c := New(Options{URL: fmt.Sprintf("ws://%s/v1", addr), AppID: "app", OnStatus: log.add})
	defer c.Close()
	err = c.Connect(testCtx(t))
	if !errors.Is(err, ErrServerConnection) {
		t.Fatalf("got %v", err)
	}
	if !errors.Is(c.Err(), ErrServerConnection) {
		t.Fatalf("Err() = %v", c.Err())
	}
	if _, ok := <-c.Messages(); ok {
		t.Fatal("Messages not closed")
	}
	if got := log.states(); !reflect.DeepEqual(got, []ConnState{Connecting, Closed}) {
		t.Errorf("states %v", got)
	}
	if err := c.Connect(testCtx(t)); err == nil {
		t.Error("second Connect succeeded")
	}
}

// A non-WebSocket HTTP server is a connection failure too.
func TestConnectNotWebSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nWormhole Relay\n"))
		conn.Close()
	}()
	c2 := New(Options{URL: "ws://" + l.Addr().String() + "/v1", AppID: "app"})
	defer c2.Close()
	if err := c2.Connect(testCtx(t)); !errors.Is(err, ErrServerConnection) {
		t.Fatalf("got %v", err)
	}
}

func TestCloseBeforeConnect(t *testing.T) {
	c := New(Options{URL: "ws://127.0.0.1:1/v1", AppID: "app"})
	if len(c.Side()) != 10 {
		t.Errorf("side %q", c.Side())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-c.Messages(); ok {
		t.Fatal("Messages open")
	}
	if err := c.Connect(testCtx(t)); !errors.Is(err, ErrUsage) && !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// Calls made while disconnected wait and complete after reconnection, and
// context cancellation unblocks them.
func TestCallsWhileDisconnected(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	fc := connect(t, f, c)
	fc.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	listErr := async(func() error { _, err := c.List(ctx); return err })
	cancel()
	if err := waitErr(t, listErr); !errors.Is(err, context.Canceled) {
		t.Fatalf("List: %v", err)
	}
	fc = f.Next()
	fc.Welcome()
	expectBind(fc)
	var mb string
	claimErr := async(func() (err error) { mb, err = c.Claim(testCtx(t), "3"); return })
	fc.Expect(&ClaimMsg{Nameplate: "3"})
	fc.Send(ClaimedMsg{Mailbox: "m"})
	if err := waitErr(t, claimErr); err != nil || mb != "m" {
		t.Fatalf("%q %v", mb, err)
	}
	if _, err := c.Claim(testCtx(t), "4"); !errors.Is(err, ErrUsage) {
		t.Fatalf("second claim: %v", err)
	}
	if mb2, err := c.Claim(testCtx(t), "3"); err != nil || mb2 != "m" {
		t.Fatalf("same claim again: %q %v", mb2, err)
	}
}

// Close while a reconnect is backing off, and while calls are waiting.
func TestCloseUnblocksEverything(t *testing.T) {
	f := newFakeServer(t)
	c := New(Options{URL: f.URL(), AppID: "app", ReconnectMin: time.Hour, ReconnectMax: time.Hour})
	errc := async(func() error { return c.Connect(testCtx(t)) })
	fc := f.Next()
	fc.Welcome()
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	fc.Recv()
	allocErr := async(func() error { _, err := c.Allocate(context.Background()); return err })
	fc.Recv()
	fc.Close() // client now waits an hour to reconnect
	closeErr := async(c.Close)
	if err := waitErr(t, closeErr); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, allocErr); !errors.Is(err, ErrClosed) {
		t.Fatalf("Allocate: %v", err)
	}
}

// The client answers the server's WebSocket pings (autobahn keepalive).
func TestAnswersPings(t *testing.T) {
	f := newFakeServer(t)
	c := newFakeClient(t, f, nil)
	fc := connect(t, f, c)
	ctx, cancel := fc.ctx()
	defer cancel()
	// A reader on the server side processes the pong; it returns once the
	// client sends a data message.
	readDone := async(func() error { _, _, err := fc.ws.Read(ctx); return err })
	for i := 0; i < 3; i++ {
		if err := fc.ws.Ping(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	listErr := async(func() error { _, err := c.List(ctx); return err })
	if err := waitErr(t, readDone); err != nil {
		t.Fatal(err)
	}
	fc.Send(NameplatesMsg{})
	if err := waitErr(t, listErr); err != nil {
		t.Fatal(err)
	}
}

// A connection whose server stops answering pings is dropped and
// replaced.
func TestDeadConnectionDetected(t *testing.T) {
	f := newFakeServer(t)
	log := &statusLog{}
	c := New(Options{URL: f.URL(), AppID: "app", Side: testSide, OnStatus: log.add,
		PingInterval: 20 * time.Millisecond, ReconnectMin: time.Millisecond, ReconnectMax: time.Millisecond})
	defer c.Close()
	connect(t, f, c) // and then never read again: pongs are never processed
	fc := f.Next()
	fc.Welcome()
	expectBind(fc)
	states := log.states()
	if !slices.Contains(states, Disconnected) {
		t.Fatalf("states %v", states)
	}
	log.mu.Lock()
	all := slices.Clone(log.s)
	log.mu.Unlock()
	for _, s := range all {
		if s.State == Disconnected && s.Err == nil {
			t.Errorf("Disconnected without a reason")
		}
	}
}
