package tunnel_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/wormhole-go/wormhole/tunnel"
)

// recSession records every Write on its conns: with Dilation each Write
// of a small message is one DATA record, and fowl's Python code assumes
// one whole control message per record (FowlCommands.dataReceived,
// fledge's reply parsing, FowlNearToFar's "too much data" check).
type recSession struct {
	tunnel.Session
	mu     sync.Mutex
	writes map[string][][]byte // subprotocol -> writes in order (all conns)
	firsts map[string][][]byte // subprotocol -> first write of each conn
}

type recConn struct {
	net.Conn
	s     *recSession
	proto string
	n     int
}

func (c *recConn) Write(p []byte) (int, error) {
	c.s.mu.Lock()
	cp := append([]byte(nil), p...)
	c.s.writes[c.proto] = append(c.s.writes[c.proto], cp)
	if c.n == 0 {
		c.s.firsts[c.proto] = append(c.s.firsts[c.proto], cp)
	}
	c.n++
	c.s.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recConn) CloseWrite() error { return c.Conn.(interface{ CloseWrite() error }).CloseWrite() }

type recListener struct {
	net.Listener
	s     *recSession
	proto string
}

func (l recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, s: l.s, proto: l.proto}, nil
}

func (s *recSession) Listen(p string) (net.Listener, error) {
	l, err := s.Session.Listen(p)
	if err != nil {
		return nil, err
	}
	return recListener{l, s, p}, nil
}

func (s *recSession) Dial(ctx context.Context, p string) (net.Conn, error) {
	c, err := s.Session.Dial(ctx, p)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, s: s, proto: p}, nil
}

func wholeMessage(t *testing.T, b []byte) tunnel.Message {
	t.Helper()
	if len(b) < 2 || int(binary.BigEndian.Uint16(b))+2 != len(b) {
		t.Fatalf("write of %d bytes is not exactly one framed message: %x", len(b), b)
	}
	m, err := tunnel.DecodeMessage(b[2:])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOneMessagePerRecord(t *testing.T) {
	sa, sb := memPair(t)
	ra := &recSession{Session: sa, writes: map[string][][]byte{}, firsts: map[string][][]byte{}}
	rb := &recSession{Session: sb, writes: map[string][][]byte{}, firsts: map[string][][]byte{}}
	srv := startServer(t, func(c net.Conn) {
		c.Write([]byte("server speaks first"))
		io.Copy(io.Discard, c)
	})
	spec := fmt.Sprintf("svc=0:127.0.0.1:%d", srv)
	a := startPeer(t, ra, mustParse(t, tunnel.Local, spec))
	startPeer(t, rb, mustParse(t, tunnel.Remote, spec))
	st, err := a.t.WaitReady(tctx(t), "svc")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", st.Addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("server speaks first"))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "connection end", func() bool { return a.t.Stats()[0].Open == 0 })

	ra.mu.Lock()
	defer ra.mu.Unlock()
	rb.mu.Lock()
	defer rb.mu.Unlock()
	// fowl-commands: request (B) and response (A), one Write each.
	if len(rb.writes["fowl-commands"]) != 1 || len(ra.writes["fowl-commands"]) != 1 {
		t.Fatalf("commands writes: B %d, A %d", len(rb.writes["fowl-commands"]), len(ra.writes["fowl-commands"]))
	}
	req := wholeMessage(t, rb.writes["fowl-commands"][0])
	resp := wholeMessage(t, ra.writes["fowl-commands"][0])
	if k, _ := req.String("kind"); k != "request-listener" {
		t.Fatal(req)
	}
	if k, _ := resp.String("kind"); k != "listener-response" || !resp.Bool("listening") {
		t.Fatal(resp)
	}
	// fowl: the opener's first Write is exactly {"unique-name"}, the
	// connector's first Write exactly the reply, even though the server
	// talks at once.
	if m := wholeMessage(t, ra.firsts["fowl"][0]); m["unique-name"] != "svc" || len(m) != 1 {
		t.Fatal(m)
	}
	if m := wholeMessage(t, rb.firsts["fowl"][0]); !m.Bool("connected") || len(m) != 1 {
		t.Fatal(m)
	}
	if len(rb.writes["fowl"]) < 2 || string(rb.writes["fowl"][1]) != "server speaks first" {
		t.Fatalf("forwarded bytes: %q", rb.writes["fowl"])
	}
}
