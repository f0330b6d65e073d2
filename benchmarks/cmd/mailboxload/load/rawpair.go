package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// A raw pairing client: the same message sequence as mailboxtest.Pair
// (A: bind, allocate, claim, open, add; B: bind, claim, open, add; both:
// release, close; 13 client messages, 2 WebSocket connections), but
// written to cost the load tool as little CPU as possible so that it
// measures the server: one goroutine drives both clients, frames are built
// with append into a reused buffer and masked with a fixed key, server
// frames are read from a small bufio.Reader into a reused buffer and only
// scanned for the few keys the sequence needs (no JSON decoding, no
// WebSocket library, no extra goroutines).

// rawMask is the masking key of every client frame. RFC 6455 wants it
// unpredictable to defeat proxy cache poisoning; over loopback to a server
// under test a fixed key costs the server the same unmasking work.
const rawMask = "\x5a\x17\xc3\x81"

type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	out []byte // frame being built
	in  []byte // last payload read
}

// rawDial opens a WebSocket to u (local address 127.0.0.(1+i%8) when the
// server is on 127.0.0.1) and reads the welcome.
func rawDial(ctx context.Context, u *url.URL, i int, deadline time.Time) (*rawClient, error) {
	d := net.Dialer{}
	if h, _, _ := net.SplitHostPort(u.Host); h == "127.0.0.1" {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%8))}
	}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(deadline)
	rc := &rawClient{c: c, br: bufio.NewReaderSize(c, 2048), out: make([]byte, 0, 256), in: make([]byte, 0, 512)}
	// A fixed key: the server only checks its presence and echoes its hash.
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(line, []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, fmt.Errorf("load: upgrade refused: %q %v", strings.TrimSpace(string(line)), err)
	}
	for range 100 {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("load: upgrade headers: %w", err)
		}
		if len(line) == 2 && line[0] == '\r' {
			break
		}
	}
	if err := rc.await("welcome"); err != nil {
		c.Close()
		return nil, err
	}
	return rc, nil
}

// frame starts a frame: 14 bytes reserved for the header (2 bytes, up to
// 8 length bytes, 4 mask bytes), the caller appends the payload, and send
// writes the header just before the payload.
func (rc *rawClient) frame() []byte {
	var hdr [14]byte
	return append(rc.out[:0], hdr[:]...)
}

// send masks the payload b[14:] and writes the frame.
func (rc *rawClient) send(b []byte) error {
	p := b[14:]
	n := len(p)
	var hl int
	switch {
	case n < 126:
		hl = 2 + 4
	case n < 1<<16:
		hl = 4 + 4
	default:
		hl = 10 + 4
	}
	h := b[14-hl : 14]
	h[0] = 0x81
	switch {
	case n < 126:
		h[1] = 0x80 | byte(n)
	case n < 1<<16:
		h[1] = 0x80 | 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h[1] = 0x80 | 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	copy(h[hl-4:], rawMask)
	for i := range p {
		p[i] ^= rawMask[i&3]
	}
	rc.out = b
	_, err := rc.c.Write(b[14-hl:])
	return err
}

// read reads one server frame into rc.in (control frames answered or
// skipped; a close frame is an error).
func (rc *rawClient) read() error {
	for {
		var h [10]byte
		if _, err := io.ReadFull(rc.br, h[:2]); err != nil {
			return err
		}
		op := h[0] & 0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(rc.br, h[:2]); err != nil {
				return err
			}
			n = uint64(binary.BigEndian.Uint16(h[:2]))
		case 127:
			if _, err := io.ReadFull(rc.br, h[:8]); err != nil {
				return err
			}
			n = binary.BigEndian.Uint64(h[:8])
		}
		if n > 1<<20 {
			return errors.New("load: server frame too large")
		}
		if uint64(cap(rc.in)) < n {
			rc.in = make([]byte, n)
		}
		rc.in = rc.in[:n]
		if _, err := io.ReadFull(rc.br, rc.in); err != nil {
			return err
		}
		switch op {
		case 0x1, 0x2:
			return nil
		case 0x8:
			return errors.New("load: server closed the WebSocket")
		case 0x9:
			b := append(rc.frame(), rc.in...)
			if err := rc.sendOp(b, 0xA); err != nil {
				return err
			}
		}
	}
}

func (rc *rawClient) sendOp(b []byte, op byte) error {
	// like send, but with another opcode (pong)
	p := b[14:]
	if len(p) >= 126 {
		return errors.New("load: control payload too long")
	}
	h := b[8:14]
	h[0] = 0x80 | op
	h[1] = 0x80 | byte(len(p))
	copy(h[2:], rawMask)
	for i := range p {
		p[i] ^= rawMask[i&3]
	}
	rc.out = b
	_, err := rc.c.Write(b[8:])
	return err
}

// field returns the JSON string value of key in the last payload (simple
// scan: "key", optional spaces, colon, optional spaces, a string without
// escapes). ok is false when absent.
func (rc *rawClient) field(key string) (string, bool) {
	b := rc.in
	for range 16 {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return "", false
		}
		quoted := i > 0 && b[i-1] == '"' && i+len(key) < len(b) && b[i+len(key)] == '"'
		b = b[i+len(key):]
		if !quoted {
			continue
		}
		v := bytes.TrimLeft(b[1:], " ")
		if len(v) == 0 || v[0] != ':' {
			continue
		}
		v = bytes.TrimLeft(v[1:], " ")
		if len(v) == 0 || v[0] != '"' {
			return "", false
		}
		end := bytes.IndexByte(v[1:], '"')
		if end < 0 {
			return "", false
		}
		return string(v[1 : 1+end]), true
	}
	return "", false
}

// is reports whether the last payload's type is typ (no allocation).
func (rc *rawClient) is(typ string) bool {
	b := rc.in
	i := bytes.Index(b, []byte(`"type"`))
	if i < 0 {
		return false
	}
	b = bytes.TrimLeft(b[i+6:], " ")
	if len(b) == 0 || b[0] != ':' {
		return false
	}
	b = bytes.TrimLeft(b[1:], " ")
	return len(b) >= len(typ)+2 && b[0] == '"' && string(b[1:1+len(typ)]) == typ && b[1+len(typ)] == '"'
}

// await reads until a message of type typ; an error message fails.
func (rc *rawClient) await(typ string) error {
	for range 1000 {
		if err := rc.read(); err != nil {
			return fmt.Errorf("load: waiting for %s: %w", typ, err)
		}
		if rc.is(typ) {
			return nil
		}
		if rc.is("error") {
			e, _ := rc.field("error")
			return fmt.Errorf("load: server error %q (waiting for %s)", e, typ)
		}
	}
	return fmt.Errorf("load: no %s in 1000 messages", typ)
}

// close sends a close frame (1000), waits for the server's close frame
// (bounded by the deadline) and closes the TCP connection.
func (rc *rawClient) close() {
	b := append(rc.frame(), 0x03, 0xe8)
	if rc.sendOp(b, 0x8) == nil {
		for range 100 {
			if err := rc.read(); err != nil {
				break
			}
		}
	}
	rc.c.Close()
}

func (rc *rawClient) sendf(parts ...string) error {
	b := rc.frame()
	for _, p := range parts {
		b = append(b, p...)
	}
	return rc.send(b)
}

// RawPair runs one pairing with the raw client (see mailboxtest.Pair for
// the sequence). i selects the local address.
func RawPair(ctx context.Context, u *url.URL, appID string, i int, deadline time.Time) error {
	a, err := rawDial(ctx, u, i, deadline)
	if err != nil {
		return err
	}
	defer a.c.Close()
	b, err := rawDial(ctx, u, i+1, deadline)
	if err != nil {
		return err
	}
	defer b.c.Close()
	if err := a.sendf(`{"type":"bind","appid":"`, appID, `","side":"aaaa","id":"0001"}`); err != nil {
		return err
	}
	if err := a.sendf(`{"type":"allocate","id":"0002"}`); err != nil {
		return err
	}
	if err := a.await("allocated"); err != nil {
		return err
	}
	np, ok := a.field("nameplate")
	if !ok {
		return errors.New("load: allocated without nameplate")
	}
	claim := func(c *rawClient) (string, error) {
		if err := c.sendf(`{"type":"claim","nameplate":"`, np, `","id":"0003"}`); err != nil {
			return "", err
		}
		if err := c.await("claimed"); err != nil {
			return "", err
		}
		mb, ok := c.field("mailbox")
		if !ok {
			return "", errors.New("load: claimed without mailbox")
		}
		return mb, nil
	}
	mbox, err := claim(a)
	if err != nil {
		return err
	}
	if err := a.sendf(`{"type":"open","mailbox":"`, mbox, `","id":"0004"}`); err != nil {
		return err
	}
	if err := a.sendf(`{"type":"add","phase":"pake","body":"aa","id":"0005"}`); err != nil {
		return err
	}
	if err := a.await("message"); err != nil { // echo
		return err
	}
	if err := b.sendf(`{"type":"bind","appid":"`, appID, `","side":"bbbb","id":"0001"}`); err != nil {
		return err
	}
	mboxB, err := claim(b)
	if err != nil {
		return err
	}
	if mboxB != mbox {
		return fmt.Errorf("load: sides got mailboxes %q and %q", mbox, mboxB)
	}
	if err := b.sendf(`{"type":"open","mailbox":"`, mbox, `","id":"0004"}`); err != nil {
		return err
	}
	if err := b.await("message"); err != nil {
		return err
	}
	if s, _ := b.field("side"); s != "aaaa" {
		return fmt.Errorf("load: B's first message from side %q", s)
	}
	if err := b.sendf(`{"type":"add","phase":"pake","body":"bb","id":"0005"}`); err != nil {
		return err
	}
	for _, c := range []*rawClient{b, a} {
		if err := c.await("message"); err != nil {
			return err
		}
		if s, _ := c.field("side"); s != "bbbb" {
			return fmt.Errorf("load: B's pake from side %q", s)
		}
	}
	for _, c := range []*rawClient{a, b} {
		if err := c.sendf(`{"type":"release","nameplate":"`, np, `","id":"0006"}`); err != nil {
			return err
		}
		if err := c.await("released"); err != nil {
			return err
		}
		if err := c.sendf(`{"type":"close","mailbox":"`, mbox, `","mood":"happy","id":"0007"}`); err != nil {
			return err
		}
		if err := c.await("closed"); err != nil {
			return err
		}
	}
	a.close()
	b.close()
	return nil
}

// parseWS checks a ws:// URL.
func parseWS(wsURL string) (*url.URL, error) {
	u, err := url.Parse(wsURL)
	if err != nil || u.Scheme != "ws" {
		return nil, fmt.Errorf("load: need a ws:// URL, got %q", wsURL)
	}
	return u, nil
}
