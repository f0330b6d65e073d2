package rendezvous

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer is a scriptable WebSocket server: each accepted connection is
// handed to the test through Conns, and stays open until the test closes it.
type fakeServer struct {
	t     *testing.T
	srv   *httptest.Server
	Conns chan *fakeConn

	mu     sync.Mutex
	all    []*fakeConn
	closed bool
}

type fakeConn struct {
	t    *testing.T
	ws   *websocket.Conn
	done chan struct{}
	once sync.Once
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, Conns: make(chan *fakeConn, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ws.SetReadLimit(4 << 20)
		fc := &fakeConn{t: t, ws: ws, done: make(chan struct{})}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			ws.CloseNow()
			return
		}
		f.all = append(f.all, fc)
		f.mu.Unlock()
		select {
		case f.Conns <- fc:
		default:
			ws.CloseNow()
			return
		}
		<-fc.done
	}))
	t.Cleanup(func() {
		f.mu.Lock()
		all := f.all
		f.closed = true
		f.mu.Unlock()
		for _, fc := range all {
			fc.Close()
		}
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeServer) URL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/v1" }

// Next waits for the next connection.
func (f *fakeServer) Next() *fakeConn {
	f.t.Helper()
	select {
	case c := <-f.Conns:
		return c
	case <-time.After(20 * time.Second):
		f.t.Fatal("no connection to the fake server")
		return nil
	}
}

func (c *fakeConn) Close() {
	c.ws.CloseNow()
	c.once.Do(func() { close(c.done) })
}

func (c *fakeConn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

// SendRaw writes one text frame.
func (c *fakeConn) SendRaw(s string) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("fake server write: %v", err)
	}
}

// Send writes a server message.
func (c *fakeConn) Send(m any) {
	c.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.SendRaw(string(b))
}

// Welcome sends an empty welcome.
func (c *fakeConn) Welcome() {
	c.t.Helper()
	c.SendRaw(`{"type":"welcome","welcome":{},"server_tx":1.0}`)
}

var idRe = regexp.MustCompile(`^[0-9a-f]{4}$`)

// Recv reads and decodes one client message, checking it has a 4-hex id.
func (c *fakeConn) Recv() any {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("fake server read: %v", err)
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("client sent a binary frame")
	}
	m, err := DecodeClientMessage(b)
	if err != nil {
		c.t.Fatalf("client sent %s: %v", b, err)
	}
	var id struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &id)
	if !idRe.MatchString(id.ID) {
		c.t.Errorf("client message %s lacks a 4-hex id", b)
	}
	return m
}

// Expect reads one client message and checks it equals want (ids ignored).
func (c *fakeConn) Expect(want any) any {
	c.t.Helper()
	got := c.Recv()
	if !sameIgnoringID(got, want) {
		c.t.Fatalf("client sent %#v, want %#v", got, want)
	}
	return got
}

func sameIgnoringID(got, want any) bool {
	clear := func(m any) any {
		switch m := m.(type) {
		case *BindMsg:
			c := *m
			c.ID = ""
			return c
		case *ListMsg:
			c := *m
			c.ID = ""
			return c
		case *AllocateMsg:
			c := *m
			c.ID = ""
			return c
		case *ClaimMsg:
			c := *m
			c.ID = ""
			return c
		case *ReleaseMsg:
			c := *m
			c.ID = ""
			return c
		case *OpenMsg:
			c := *m
			c.ID = ""
			return c
		case *AddMsg:
			c := *m
			c.ID = ""
			return c
		case *CloseMsg:
			c := *m
			c.ID = ""
			return c
		case *SubmitPermissionsMsg:
			c := *m
			c.ID = ""
			return c
		}
		return m
	}
	return reflect.DeepEqual(clear(got), clear(want))
}
