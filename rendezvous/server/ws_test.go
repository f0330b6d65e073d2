package server_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// clientFrame builds one masked client frame with a non-zero mask key.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// readServerFrame reads one server frame (which must be unmasked).
func readServerFrame(t *testing.T, c net.Conn) (fin bool, op byte, payload []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var h [10]byte
	if _, err := io.ReadFull(c, h[:2]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frame is masked")
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		io.ReadFull(c, h[:2])
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		io.ReadFull(c, h[:8])
		n = binary.BigEndian.Uint64(h[:8])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return fin, op, payload
}

// readServerMessage skips control frames and returns the next text
// message's "type" and fields.
func readServerMessage(t *testing.T, c net.Conn) map[string]any {
	t.Helper()
	for range 100 {
		fin, op, p := readServerFrame(t, c)
		if op >= 8 {
			continue
		}
		if !fin || op != 1 {
			t.Fatalf("server frame fin=%v op=%d", fin, op)
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("server message %q: %v", p, err)
		}
		return m
	}
	t.Fatal("no message")
	return nil
}

func expectClose(t *testing.T, c net.Conn, code int) {
	t.Helper()
	for range 100 {
		_, op, p := readServerFrame(t, c)
		if op != 8 {
			continue
		}
		if len(p) < 2 || int(binary.BigEndian.Uint16(p)) != code {
			t.Fatalf("close payload %q, want code %d", p, code)
		}
		return
	}
	t.Fatal("no close frame")
}

func TestWebSocketFragmentsAndControlFrames(t *testing.T) {
	mb := startGo(t, server.Options{})
	c := rawWebSocket(t, mb.Addr())
	if m := readServerMessage(t, c); m["type"] != "welcome" {
		t.Fatalf("first message %v", m)
	}
	msg := []byte(`{"type":"ping","ping":5,"id":"f1"}`)
	var w bytes.Buffer
	w.Write(clientFrame(false, 1, msg[:7]))
	w.Write(clientFrame(true, 9, []byte("hello"))) // ping inside a fragmented message
	w.Write(clientFrame(false, 0, msg[7:20]))
	w.Write(clientFrame(true, 10, []byte("unsolicited pong")))
	w.Write(clientFrame(true, 0, msg[20:]))
	if _, err := c.Write(w.Bytes()); err != nil {
		t.Fatal(err)
	}
	_, op, p := readServerFrame(t, c)
	if op != 10 || string(p) != "hello" {
		t.Fatalf("want pong %q, got op %d %q", "hello", op, p)
	}
	if m := readServerMessage(t, c); m["type"] != "ack" || m["id"] != "f1" {
		t.Fatalf("want ack, got %v", m)
	}
	if m := readServerMessage(t, c); m["type"] != "pong" || m["pong"] != float64(5) {
		t.Fatalf("want pong 5, got %v", m)
	}
	// a 70000-byte message (64-bit length form) is accepted
	big := fmt.Sprintf(`{"type":"ping","ping":"%s","id":"big"}`, strings.Repeat("x", 70000))
	c.Write(clientFrame(true, 1, []byte(big)))
	if m := readServerMessage(t, c); m["type"] != "ack" {
		t.Fatalf("want ack, got %v", m)
	}
	if m := readServerMessage(t, c); m["type"] != "pong" || len(m["pong"].(string)) != 70000 {
		t.Fatal("big pong wrong")
	}
	// client close: echoed, then the server closes the TCP connection
	c.Write(clientFrame(true, 8, []byte{0x0f, 0xa0, 'b', 'y', 'e'})) // 4000 "bye"
	expectClose(t, c, 4000)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after close: %d %v, want EOF", n, err)
	}
	waitConns(t, mb, 0)
}

// TestWebSocketFirstFrameWithRequest sends the HTTP request and the first
// frame in one write: the bytes net/http buffered must not be lost.
func TestWebSocketFirstFrameWithRequest(t *testing.T) {
	mb := startGo(t, server.Options{})
	c, err := net.Dial("tcp", mb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := fmt.Sprintf("GET /v1 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", mb.Addr())
	c.Write(append([]byte(req), clientFrame(true, 1, []byte(`{"type":"ping","ping":1,"id":"early"}`))...))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) && len(head) < 4096 {
		if _, err := c.Read(one); err != nil {
			t.Fatal(err)
		}
		head = append(head, one[0])
	}
	if !bytes.Contains(head, []byte("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")) {
		t.Fatalf("handshake response %q", head)
	}
	if m := readServerMessage(t, c); m["type"] != "welcome" {
		t.Fatalf("want welcome, got %v", m)
	}
	if m := readServerMessage(t, c); m["type"] != "ack" || m["id"] != "early" {
		t.Fatalf("want ack, got %v", m)
	}
}

func TestWebSocketProtocolErrors(t *testing.T) {
	mb := startGo(t, server.Options{MaxMessageSize: 1000})
	for _, tc := range []struct {
		name  string
		frame []byte
		code  int
	}{
		{"unmasked", []byte{0x81, 0x02, '{', '}'}, 1002},
		{"reserved-bits", func() []byte { b := clientFrame(true, 1, []byte("{}")); b[0] |= 0x40; return b }(), 1002},
		{"unknown-opcode", clientFrame(true, 3, nil), 1002},
		{"fragmented-ping", clientFrame(false, 9, nil), 1002},
		{"lone-continuation", clientFrame(true, 0, []byte("x")), 1002},
		{"too-big", clientFrame(true, 1, make([]byte, 1001)), 1009},
		{"too-big-fragmented", append(clientFrame(false, 1, make([]byte, 600)), clientFrame(true, 0, make([]byte, 600))...), 1009},
		{"interleaved-start", append(clientFrame(false, 1, []byte("{")), clientFrame(true, 1, []byte("{}"))...), 1002},
		{"bad-close-code", clientFrame(true, 8, []byte{0x03, 0xed}), 1002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawWebSocket(t, mb.Addr())
			readServerMessage(t, c) // welcome
			c.Write(tc.frame)
			expectClose(t, c, tc.code)
		})
	}
	waitConns(t, mb, 0)
}

func TestWebSocketBadUpgrade(t *testing.T) {
	mb := startGo(t, server.Options{})
	for _, tc := range []struct {
		name, headers string
		status        string
	}{
		{"plain-get", "", "426"},
		{"bad-version", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "400"},
		{"bad-key", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n", "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", mb.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /v1 HTTP/1.1\r\nHost: x\r\n%s\r\n", tc.headers)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b := make([]byte, 12)
			if _, err := io.ReadFull(c, b); err != nil || string(b[9:12]) != tc.status {
				t.Fatalf("response %q %v, want %s", b, err, tc.status)
			}
		})
	}
	waitConns(t, mb, 0)
}

// TestKeepaliveAnsweredPings: a client that answers every ping stays
// connected over many ping intervals, each much longer than PingTimeout
// after the first ping (the pong must disarm the read deadline even
// though it is the only frame the client sends).
func TestKeepaliveAnsweredPings(t *testing.T) {
	mb := startGo(t, server.Options{PingInterval: 10 * time.Millisecond, PingTimeout: 30 * time.Millisecond})
	c := rawWebSocket(t, mb.Addr())
	pings := 0
	for pings < 20 {
		_, op, p := readServerFrame(t, c)
		switch op {
		case 9:
			pings++
			if _, err := c.Write(clientFrame(true, 10, p)); err != nil {
				t.Fatal(err)
			}
		case 8:
			t.Fatalf("closed after %d answered pings: %q", pings, p)
		}
	}
	c.Write(clientFrame(true, 1, []byte(`{"type":"ping","ping":1,"id":"alive"}`)))
	for {
		_, op, p := readServerFrame(t, c)
		if op == 9 {
			c.Write(clientFrame(true, 10, p))
			continue
		}
		if op == 1 && bytes.Contains(p, []byte(`"ack"`)) {
			return
		}
	}
}
