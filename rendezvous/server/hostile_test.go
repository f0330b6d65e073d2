package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

func startGo(t *testing.T, o server.Options) *mailboxtest.Server {
	t.Helper()
	if o.PruneInterval == 0 {
		o.PruneInterval = -1
	}
	return mailboxtest.Start(t, mailboxtest.WithMemoryStore(), mailboxtest.WithOptions(o))
}

// waitConns waits (bounded) until the server has n connections.
func waitConns(t *testing.T, mb *mailboxtest.Server, n int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if mb.Server().Connections() == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("server has %d connections, want %d", mb.Server().Connections(), n)
}

func TestOversizedFrameClosed(t *testing.T) {
	mb := startGo(t, server.Options{MaxMessageSize: 1024})
	c := dial(t, mb.URL())
	c.sync()
	c.sendRaw(`{"type":"ping","ping":"` + strings.Repeat("x", 2000) + `"}`)
	_, err := c.recvErr(10 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("after oversized frame: %v, want close 1009", err)
	}
	waitConns(t, mb, 0)
}

func TestBinaryFrameAccepted(t *testing.T) {
	mb := startGo(t, server.Options{})
	c := dial(t, mb.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageBinary, []byte(`{"type":"ping","ping":3,"id":"0009"}`)); err != nil {
		t.Fatal(err)
	}
	c.ack("0009")
	c.expect("pong", "pong")
}

func TestMalformedClosesWithError(t *testing.T) {
	mb := startGo(t, server.Options{})
	for _, bad := range []string{`{"type":`, `[]`, `null`, "\xff"} {
		c := dial(t, mb.URL())
		c.sendRaw(bad)
		m := c.expect("error", "error", "orig")
		if !strings.HasPrefix(m["error"].(string), "malformed client message") {
			t.Fatalf("%q: error %v", bad, m)
		}
		_, err := c.recvErr(10 * time.Second)
		if websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
			t.Fatalf("%q: %v, want close 1007", bad, err)
		}
	}
	// wrong JSON types in known keys get a plain error and the connection lives
	c := dial(t, mb.URL())
	c.cmdError("'appid' must be a string", "bind", "appid", 5, "side", "x")
	c.bind("app", "s")
	c.cmdError("'nameplate' must be a string", "claim", "nameplate", []int{1})
	c.cmdError("'mailbox' must be a string", "open", "mailbox", nil)
	c.sync()
}

func TestAllocateFlood(t *testing.T) {
	mb := startGo(t, server.Options{})
	c := dial(t, mb.URL())
	c.bind("app", "s")
	c.cmd("allocate")
	c.expect("allocated", "nameplate")
	for range 500 {
		c.cmdError("you already allocated one, don't be greedy", "allocate")
	}
	c.cmd("list")
	if nps := c.expect("nameplates", "nameplates")["nameplates"].([]any); len(nps) != 1 {
		t.Fatalf("flood created nameplates: %v", nps)
	}
}

func TestMailboxFull(t *testing.T) {
	mb := startGo(t, server.Options{MaxMailboxMessages: 3})
	c := dial(t, mb.URL())
	c.bind("app", "s")
	c.cmd("open", "mailbox", "m")
	for range 3 {
		c.cmd("add", "phase", "p", "body", "00")
		c.message()
	}
	c.cmdError("mailbox full", "add", "phase", "p", "body", "00")
}

// TestNonReaderDropped: a client that floods requests and never reads is
// disconnected once its queue passes MaxQueueBytes, instead of growing
// server memory.
func TestNonReaderDropped(t *testing.T) {
	var logs syncBuffer
	mb := startGo(t, server.Options{MaxQueueBytes: 64 << 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	conn := rawWebSocket(t, mb.Addr())
	frame := maskedTextFrame(`{"type":"ping","ping":"` + strings.Repeat("y", 900) + `","id":"abcd"}`)
	var err error
	for i := 0; i < 1000000 && err == nil; i++ {
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write(frame)
	}
	if err == nil {
		t.Fatal("server kept accepting a flood from a client that never reads")
	}
	waitConns(t, mb, 0)
	if !strings.Contains(logs.String(), "dropping client that does not read") {
		t.Fatalf("connection ended for another reason; log:\n%s", logs.String())
	}
}

func TestConnectionLimit(t *testing.T) {
	mb := startGo(t, server.Options{MaxConnections: 3})
	for range 3 {
		dial(t, mb.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, mb.URL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("4th connection: err %v resp %v, want 503", err, resp)
	}
}

// TestDeadPeerPinged: a peer that never answers pings is disconnected.
func TestDeadPeerPinged(t *testing.T) {
	mb := startGo(t, server.Options{PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond})
	conn := rawWebSocket(t, mb.Addr()) // never reads, so never pongs
	_ = conn
	waitConns(t, mb, 1)
	waitConns(t, mb, 0)
}

// TestHalfOpenTCPDropped: TCP connections that never send a request are
// closed after ReadHeaderTimeout.
func TestHalfOpenTCPDropped(t *testing.T) {
	mb := startGo(t, server.Options{ReadHeaderTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", mb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("server sent data to a silent connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("half-open connection not closed by the server")
	}
}

// TestMemoryPerConnection opens many half-open TCP connections and many
// idle WebSocket connections and bounds the server memory each costs.
func TestMemoryPerConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 connections")
	}
	mb := startGo(t, server.Options{ReadHeaderTimeout: 5 * time.Minute})
	const n = 1000
	before := memInUse()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", mb.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// let the server accept them all: a ping on a fresh WebSocket after
	// all dials proves the accept loop caught up
	dial(t, mb.URL()).sync()
	halfOpen := (memInUse() - before) / n
	before = memInUse()
	for range n {
		conns = append(conns, rawWebSocket(t, mb.Addr()))
	}
	waitConns(t, mb, n+1)
	idleWS := (memInUse() - before) / n
	t.Logf("memory per half-open TCP connection: %d B; per idle WebSocket: %d B", halfOpen, idleWS)
	const bound = 128 << 10 // generous: includes the client's socket and race-detector overhead
	if halfOpen > bound || idleWS > bound {
		t.Fatalf("per-connection memory %d / %d B exceeds %d", halfOpen, idleWS, bound)
	}
}

func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// rawWebSocket upgrades a bare TCP connection by hand and returns it
// without reading further, so the client side costs almost nothing.
func rawWebSocket(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /v1 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var head []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("upgrade: %v (%q)", err, head)
		}
		head = append(head, one[0])
		if len(head) > 4096 {
			t.Fatal("upgrade response too long")
		}
	}
	c.SetReadDeadline(time.Time{})
	if !strings.HasPrefix(string(head), "HTTP/1.1 101") {
		t.Fatalf("upgrade refused: %q", head)
	}
	return c
}

// maskedTextFrame builds one client→server text frame (mask key zero).
func maskedTextFrame(s string) []byte {
	b := []byte{0x81}
	switch n := len(s); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("frame too long")
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, s...)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestMailboxLimit(t *testing.T) {
	storeKinds(t, server.Options{MaxMailboxes: 3, PruneInterval: -1}, func(t *testing.T, mb *mailboxtest.Server) {
		var first string
		for i := range 3 {
			c := dial(t, mb.URL())
			c.bind("app", fmt.Sprint("s", i))
			c.cmd("allocate")
			np := c.expect("allocated", "nameplate")["nameplate"].(string)
			if i == 0 {
				first = np
			}
		}
		c := dial(t, mb.URL())
		c.bind("app", "x")
		c.cmdError("too many mailboxes", "allocate")
		c.cmdError("too many mailboxes", "open", "mailbox", "new")
		d := dial(t, mb.URL())
		d.bind("app", "y")
		d.cmdError("too many mailboxes", "claim", "nameplate", "77")
		e := dial(t, mb.URL())
		e.bind("app", "z")
		e.claim(first) // existing channels still work
	})
}
