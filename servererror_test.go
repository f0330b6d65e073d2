package wormhole

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// What a client does after the mailbox server sends it an "error" message,
// checked on the wire. Python (0.12 and upstream master alike):
// RendezvousConnector._response_handle_error -> Boss.rx_error ->
// close_error: result = ServerError, Terminator.close("errory") ->
// Nameplate.close (sends "release" if a claim was sent and no release yet)
// and Mailbox.close (sends "close" with mood "errory" if a mailbox was
// opened), waits for "released"/"closed", then drops the connection. The
// connection is not dropped on the error itself.

// errProxy is a WebSocket proxy in front of a real mailbox server that
// records every frame per client connection and can answer a client
// message with an "error" itself (ack first, like the Python server)
// instead of forwarding it.
type errProxy struct {
	upstream string
	// inject reports whether to answer this client message with an error
	// (and which); nil: forward everything.
	inject func(m map[string]any) (string, bool)
	srv    *httptest.Server

	mu    sync.Mutex
	conns []*proxConn
	wg    sync.WaitGroup
}

type proxConn struct {
	mu         sync.Mutex
	fromClient []string // summarized client messages, in order
	fromServer []string // server message types, in order
	done       chan struct{}
}

func startErrProxy(t *testing.T, upstream string, inject func(map[string]any) (string, bool)) *errProxy {
	t.Helper()
	p := &errProxy{upstream: upstream, inject: inject}
	p.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.wg.Wait()
	})
	return p
}

func (p *errProxy) URL() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/v1" }

// summary is the part of a client message the assertions look at.
func summary(m map[string]any) string {
	s, _ := m["type"].(string)
	for _, k := range []string{"nameplate", "mailbox", "phase", "mood"} {
		if v, ok := m[k].(string); ok {
			s += " " + k + "=" + v
		}
	}
	return s
}

func (p *errProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.wg.Add(1)
	defer p.wg.Done()
	pc := &proxConn{done: make(chan struct{})}
	defer close(pc.done)
	down, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer down.CloseNow()
	p.mu.Lock()
	p.conns = append(p.conns, pc)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // safety net
	defer cancel()
	up, _, err := websocket.Dial(ctx, p.upstream, nil)
	if err != nil {
		return
	}
	defer up.CloseNow()
	var wmu sync.Mutex // serializes writes to down
	writeDown := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return down.Write(ctx, websocket.MessageText, b)
	}
	go func() { // upstream -> client
		defer cancel()
		for {
			_, b, err := up.Read(ctx)
			if err != nil {
				return
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			typ, _ := m["type"].(string)
			pc.mu.Lock()
			pc.fromServer = append(pc.fromServer, typ)
			pc.mu.Unlock()
			if writeDown(b) != nil {
				return
			}
		}
	}()
	for { // client -> upstream
		_, b, err := down.Read(ctx)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			return
		}
		pc.mu.Lock()
		pc.fromClient = append(pc.fromClient, summary(m))
		pc.mu.Unlock()
		if p.inject != nil {
			if msg, ok := p.inject(m); ok {
				ack, _ := json.Marshal(map[string]any{"type": "ack", "id": m["id"], "server_tx": 1.0})
				e, _ := json.Marshal(map[string]any{"type": "error", "error": msg, "orig": m, "server_tx": 1.0})
				pc.mu.Lock()
				pc.fromServer = append(pc.fromServer, "ack", "error")
				pc.mu.Unlock()
				if writeDown(ack) != nil || writeDown(e) != nil {
					return
				}
				continue
			}
		}
		if up.Write(ctx, websocket.MessageText, b) != nil {
			return
		}
	}
}

// only waits for the single client connection to end and returns what
// went over it.
func (p *errProxy) only(t *testing.T) (client, server []string) {
	t.Helper()
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("%d client connections, want 1", len(conns))
	}
	pc := conns[0]
	select {
	case <-pc.done:
	case <-time.After(30 * time.Second): // safety net
		t.Fatal("client did not drop its connection")
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return slices.Clone(pc.fromClient), slices.Clone(pc.fromServer)
}

// errCase is one way to provoke a server error.
type errCase struct {
	name   string
	inject func(map[string]any) (string, bool)
	// setup prepares the server (e.g. two sides already on the
	// nameplate) and returns the code for the client under test; ""
	// means allocate.
	setup func(t *testing.T, ctx context.Context, url string) string
	msg   string   // the server's error text
	want  []string // every message the client sends, in order
	// wantServer lists answers the client must have waited for before it
	// disconnected.
	wantServer []string
}

func injectOn(typ, phase, msg string) func(map[string]any) (string, bool) {
	return func(m map[string]any) (string, bool) {
		if m["type"] != typ || (phase != "" && m["phase"] != phase) {
			return "", false
		}
		return msg, true
	}
}

// crowd puts two other sides on nameplate 5 (claimed, never released), so
// that the real server answers a third claim with "crowded".
func crowd(t *testing.T, ctx context.Context, url string) string {
	for _, side := range []string{"aaaaaaaaaa", "bbbbbbbbbb"} {
		c := rendezvous.New(rendezvous.Options{URL: url, AppID: pyAppID, Side: side})
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Claim(ctx, "5"); err != nil {
			t.Fatal(err)
		}
	}
	return "5-crowded-room"
}

func errCases() []errCase {
	bind := "bind"
	return []errCase{
		{
			name:  "crowded claim",
			setup: crowd,
			msg:   "crowded",
			// Nameplate.close in S2B (claim sent, no answer): release.
			// No mailbox known: no close.
			want:       []string{bind, "claim nameplate=5", "release nameplate=5"},
			wantServer: []string{"error", "released"},
		},
		{
			name:   "error on add",
			inject: injectOn("add", "pake", "no adds today"),
			setup:  func(*testing.T, context.Context, string) string { return "6-add-fails" },
			msg:    "no adds today",
			// Nameplate claimed (no peer yet): release; mailbox open:
			// close with mood errory.
			want: []string{bind, "claim nameplate=6", "open mailbox=*", "add phase=pake",
				"release nameplate=6", "close mailbox=* mood=errory"},
			wantServer: []string{"error", "released", "closed"},
		},
		{
			name:   "error on allocate",
			inject: injectOn("allocate", "", "no nameplates for you"),
			msg:    "no nameplates for you",
			// Nothing claimed, nothing opened: nothing to release or close.
			want:       []string{bind, "allocate"},
			wantServer: []string{"error"},
		},
	}
}

// normalize replaces mailbox ids (random) by "*".
func normalize(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		f := strings.Fields(m)
		for j, kv := range f {
			if strings.HasPrefix(kv, "mailbox=") {
				f[j] = "mailbox=*"
			}
		}
		out[i] = strings.Join(f, " ")
	}
	return out
}

// checkWire asserts the client's messages and that it waited for the
// answers it needed before disconnecting.
func checkWire(t *testing.T, who string, tc errCase, client, server []string) {
	t.Helper()
	got := normalize(client)
	if !slices.Equal(got, tc.want) {
		t.Errorf("%s sent\n  %q\nwant\n  %q", who, got, tc.want)
	}
	for _, typ := range tc.wantServer {
		if !slices.Contains(server, typ) {
			t.Errorf("%s disconnected before the server's %q (server sent %q)", who, typ, server)
		}
	}
	t.Logf("%s: client %q, server %q", who, got, server)
}

// runGoErrCase runs our client through the proxy and checks its wire
// behaviour and the error the application sees.
func runGoErrCase(t *testing.T, tc errCase, upstream string) []string {
	ctx := testCtx(t)
	p := startErrProxy(t, upstream, tc.inject)
	code := ""
	if tc.setup != nil {
		code = tc.setup(t, ctx, upstream)
	}
	w := mustNew(t, ctx, liveOpts(p.URL()))
	var err error
	if code == "" {
		_, err = w.AllocateCode(ctx, 2)
	} else {
		if err := w.SetCode(code); err != nil {
			t.Fatal(err)
		}
		_, err = w.UnverifiedKey(ctx)
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Message != tc.msg {
		t.Fatalf("waiting call: %v, want *ServerError %q", err, tc.msg)
	}
	err = w.Close(ctx)
	if !errors.As(err, &se) || se.Message != tc.msg {
		t.Fatalf("Close: %v, want *ServerError %q", err, tc.msg)
	}
	var rse *rendezvous.ServerError
	if !errors.As(err, &rse) || rse.Msg != tc.msg || len(rse.Orig) == 0 {
		t.Errorf("Close: %v does not wrap the client's *rendezvous.ServerError with orig", err)
	}
	if w.State() != StateClosed {
		t.Errorf("state %v after Close", w.State())
	}
	client, server := p.only(t)
	checkWire(t, "Go", tc, client, server)
	return normalize(client)
}

// TestServerErrorClose: after a server error our client releases the
// nameplate and closes the mailbox with mood "errory" as far as Python's
// Terminator would, waits for the answers, then disconnects; the
// application gets *ServerError. Against our server (mailboxtest).
func TestServerErrorClose(t *testing.T) {
	for _, tc := range errCases() {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailboxtest.Start(t)
			runGoErrCase(t, tc, srv.URL())
		})
	}
}

// TestServerErrorClosePython: the same cases against Debian's Python
// mailbox server, with Python's client (0.12, via testdata/pypeer.py) run
// through the same proxy: both must send exactly the same messages.
func TestServerErrorClosePython(t *testing.T) {
	for _, tc := range errCases() {
		t.Run(tc.name, func(t *testing.T) {
			mb := interop.StartPythonMailbox(t)
			goWire := runGoErrCase(t, tc, mb.URL())

			mb2 := interop.StartPythonMailbox(t) // fresh nameplates
			ctx := testCtx(t)
			p := startErrProxy(t, mb2.URL(), tc.inject)
			code := ""
			if tc.setup != nil {
				code = tc.setup(t, ctx, mb2.URL())
			}
			py := startPyPeer(t, p.URL(), pyAppID)
			py.must(ctx, map[string]any{"cmd": "create", "w": "x"})
			var err error
			if code == "" {
				_, err = py.call(ctx, map[string]any{"cmd": "allocate", "w": "x", "length": 2})
			} else {
				py.must(ctx, map[string]any{"cmd": "set_code", "w": "x", "code": code})
				_, err = py.call(ctx, map[string]any{"cmd": "get_unverified_key", "w": "x"})
			}
			if err == nil || !strings.Contains(err.Error(), "ServerError") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("python waiting call: %v, want ServerError %q", err, tc.msg)
			}
			_, err = py.call(ctx, map[string]any{"cmd": "close", "w": "x"})
			if err == nil || !strings.Contains(err.Error(), "ServerError") {
				t.Fatalf("python close: %v, want ServerError", err)
			}
			client, server := p.only(t)
			checkWire(t, "Python", tc, client, server)
			if pyWire := normalize(client); !slices.Equal(goWire, pyWire) {
				t.Errorf("Go sent %q, Python sent %q", goWire, pyWire)
			}
		})
	}
}
