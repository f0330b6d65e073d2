package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// target is a mailbox server the protocol suite runs against.
type target struct {
	name    string
	python  bool
	url     string
	restart func() // nil if state does not survive a restart
}

// targets starts one server of each kind. The Python reference server is
// included so the suite proves our server behaves like it.
func targets(t *testing.T) []func(t *testing.T) *target {
	return []func(t *testing.T) *target{
		func(t *testing.T) *target {
			mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
			return &target{name: "memory", url: mb.URL()}
		},
		func(t *testing.T) *target {
			mb := mailboxtest.Start(t)
			return &target{name: "sqlite", url: mb.URL(), restart: mb.Restart}
		},
		func(t *testing.T) *target {
			mb := interop.StartPythonMailbox(t)
			return &target{name: "python", python: true, url: mb.URL(), restart: mb.Restart}
		},
	}
}

var targetNames = []string{"memory", "sqlite", "python"}

// forEachTarget starts each target once and runs fn against it as a subtest.
func forEachTarget(t *testing.T, fn func(t *testing.T, tg *target)) {
	for i, start := range targets(t) {
		t.Run(targetNames[i], func(t *testing.T) {
			tg := start(t)
			tg.name = targetNames[i]
			fn(t, tg)
		})
	}
}

type client struct {
	t    testing.TB
	c    *websocket.Conn
	url  string
	n    int
	seen []map[string]any
}

func dial(t testing.TB, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(-1)
	cl := &client{t: t, c: c, url: url}
	t.Cleanup(func() { c.CloseNow() })
	w := cl.recv()
	if w["type"] != "welcome" {
		t.Fatalf("first message %v is not a welcome", w)
	}
	return cl
}

func (c *client) close() { c.c.Close(websocket.StatusNormalClosure, "") }

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends msg with a fresh id and returns the id.
func (c *client) send(typ string, kv ...any) string {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("%04x", c.n)
	m := map[string]any{"type": typ, "id": id}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	c.sendRaw(string(b))
	return id
}

func (c *client) recvErr(timeout time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := c.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, fmt.Errorf("server sent a binary frame")
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("bad JSON from server %q: %v", b, err)
	}
	if _, ok := m["server_tx"].(float64); !ok {
		return nil, fmt.Errorf("message without float server_tx: %s", b)
	}
	c.seen = append(c.seen, m)
	return m, nil
}

func (c *client) recv() map[string]any {
	c.t.Helper()
	m, err := c.recvErr(20 * time.Second)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return m
}

// expect receives one message of type typ with exactly the given keys.
func (c *client) expect(typ string, keys ...string) map[string]any {
	c.t.Helper()
	m := c.recv()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want type %q", m, typ)
	}
	want := append([]string{"type", "server_tx"}, keys...)
	sort.Strings(want)
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		c.t.Fatalf("%s message keys %v, want %v (%v)", typ, got, want, m)
	}
	return m
}

// ack expects the ack for id.
func (c *client) ack(id string) {
	c.t.Helper()
	m := c.expect("ack", "id")
	if m["id"] != id {
		c.t.Fatalf("ack id %v, want %v", m["id"], id)
	}
}

// cmd sends a command and checks that its ack comes first.
func (c *client) cmd(typ string, kv ...any) {
	c.t.Helper()
	c.ack(c.send(typ, kv...))
}

// expectError expects an error message with the given text.
func (c *client) expectError(text string) map[string]any {
	c.t.Helper()
	m := c.expect("error", "error", "orig")
	if m["error"] != text {
		c.t.Fatalf("error %q, want %q", m["error"], text)
	}
	return m
}

// cmdError sends a command and expects ack then the error.
func (c *client) cmdError(text, typ string, kv ...any) {
	c.t.Helper()
	id := c.send(typ, kv...)
	c.ack(id)
	m := c.expectError(text)
	orig, _ := m["orig"].(map[string]any)
	if orig["type"] != typ || orig["id"] != id {
		c.t.Fatalf("error orig %v does not echo the %s command", m["orig"], typ)
	}
}

// sync sends a ping and expects ack+pong with nothing before them.
func (c *client) sync() {
	c.t.Helper()
	c.cmd("ping", "ping", 7)
	m := c.expect("pong", "pong")
	if m["pong"] != float64(7) {
		c.t.Fatalf("pong %v", m)
	}
}

func (c *client) bind(app, side string) {
	c.t.Helper()
	c.cmd("bind", "appid", app, "side", side, "client_version", []string{"go-test", "0"})
}

func (c *client) claim(name string) string {
	c.t.Helper()
	c.cmd("claim", "nameplate", name)
	return c.expect("claimed", "mailbox")["mailbox"].(string)
}

// message expects a mailbox message.
func (c *client) message() map[string]any {
	c.t.Helper()
	return c.expect("message", "side", "phase", "body", "server_rx", "id")
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var _ = server.ErrServerClosed
