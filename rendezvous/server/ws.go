package server

// A minimal server side of RFC 6455 (WebSocket) for the mailbox protocol:
// the opening handshake over a hijacked net/http connection, masked client
// frames (text, binary, continuation, ping, pong, close) with a size
// limit, and unmasked server frames. No extensions, no subprotocols.
//
// It exists so that an idle client costs little memory: after the
// handshake no bufio reader or writer is kept (net/http's 4 KiB buffers
// are released), frames are read with a 14-byte header array held in the
// connection and payload buffers allocated per message, and writes go
// through a queue served by a goroutine that only runs while there is
// something to write.

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// WebSocket close status codes used by the server.
const (
	closeNormal          = 1000
	closeGoingAway       = 1001
	closeProtocolError   = 1002
	closeNoStatus        = 1005
	closeInvalidPayload  = 1007
	closePolicyViolation = 1008
	closeMessageTooBig   = 1009
	closeInternalError   = 1011
)

// wsGUID is the RFC 6455 key suffix.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ErrWebSocketProtocol is wrapped by the errors returned for client frames
// that break RFC 6455 or the server's limits; errors.As to *WebSocketError
// gives the close code the server sends.
var ErrWebSocketProtocol = errors.New("websocket protocol error")

// WebSocketError is a client frame error and the close code it causes.
type WebSocketError struct {
	Code   int    // close status code sent to the client
	Reason string // close reason (short, ASCII)
}

func (e *WebSocketError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

func (e *WebSocketError) Unwrap() error { return ErrWebSocketProtocol }

func wsErr(code int, reason string) error { return &WebSocketError{Code: code, Reason: reason} }

// errPeerClosed is returned by readMessage when the client sent a close
// frame; the code to echo is in the wsReader.
var errPeerClosed = errors.New("websocket: peer sent close")

// headerHasToken reports whether a comma-separated header contains token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey computes Sec-WebSocket-Accept for a client key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// upgrade validates a WebSocket opening handshake and hijacks the
// connection. It returns the raw connection, any bytes the client sent
// after its request (already read by net/http) and the 101 response,
// which the caller writes (together with its first frame). On a bad
// request it writes an HTTP error and returns an error.
func upgrade(w http.ResponseWriter, r *http.Request) (nc net.Conn, rest, resp []byte, err error) {
	if r.Method != http.MethodGet {
		http.Error(w, "websocket: method must be GET", http.StatusMethodNotAllowed)
		return nil, nil, nil, errors.New("websocket: method not GET")
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "websocket: upgrade required", http.StatusUpgradeRequired)
		return nil, nil, nil, errors.New("websocket: not an upgrade request")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "websocket: unsupported version", http.StatusBadRequest)
		return nil, nil, nil, errors.New("websocket: unsupported version")
	}
	key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		http.Error(w, "websocket: bad Sec-WebSocket-Key", http.StatusBadRequest)
		return nil, nil, nil, errors.New("websocket: bad key")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "websocket: cannot hijack", http.StatusInternalServerError)
		return nil, nil, nil, errors.New("websocket: response writer cannot hijack")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("websocket: hijack: %w", err)
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		rest = append([]byte(nil), b...)
	}
	// brw is dropped: its 4 KiB reader and writer become garbage.
	resp = []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(key) + "\r\n\r\n")
	return nc, rest, resp, nil
}

// wsReader decodes client frames from r. It holds no buffer between
// messages except the 14-byte header array.
type wsReader struct {
	r     io.Reader
	pre   []byte // bytes received but not parsed yet (read ahead)
	err   error  // the error of a read ahead that got no bytes
	limit int64  // maximum message size
	hdr   [14]byte

	// onControl is called for each ping and pong frame (payload valid
	// only during the call). May be nil.
	onControl func(op byte, payload []byte)
	// closeCode and closeReason hold the client's close frame after
	// readMessage returned errPeerClosed.
	closeCode   int
	closeReason string
}

func (wr *wsReader) Read(p []byte) (int, error) {
	if len(wr.pre) > 0 {
		n := copy(p, wr.pre)
		wr.pre = wr.pre[n:]
		if len(wr.pre) == 0 {
			wr.pre = nil
		}
		return n, nil
	}
	if wr.err != nil {
		return 0, wr.err
	}
	return wr.r.Read(p)
}

// hasFrame reports whether pre holds a complete frame.
func (wr *wsReader) hasFrame() bool {
	p := wr.pre
	if len(p) < 2 {
		return false
	}
	n, hl := uint64(p[1]&0x7f), 2
	switch n {
	case 126:
		if len(p) < 4 {
			return false
		}
		n, hl = uint64(binary.BigEndian.Uint16(p[2:4])), 4
	case 127:
		if len(p) < 10 {
			return false
		}
		n, hl = binary.BigEndian.Uint64(p[2:10]), 10
	}
	if p[1]&0x80 != 0 {
		hl += 4
	}
	return n <= uint64(len(p)-hl) // a bad length is found by readFrame
}

// readFrame reads one frame header and its unmasked payload.
func (wr *wsReader) readFrame() (fin bool, op byte, payload []byte, err error) {
	h := wr.hdr[:]
	if _, err := io.ReadFull(wr, h[:2]); err != nil {
		return false, 0, nil, err
	}
	fin = h[0]&0x80 != 0
	if h[0]&0x70 != 0 {
		return false, 0, nil, wsErr(closeProtocolError, "reserved bits set")
	}
	op = h[0] & 0x0f
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return false, 0, nil, wsErr(closeProtocolError, "unknown opcode")
	}
	if h[1]&0x80 == 0 {
		return false, 0, nil, wsErr(closeProtocolError, "unmasked client frame")
	}
	n7 := h[1] & 0x7f
	if op >= opClose && (!fin || n7 > 125) {
		return false, 0, nil, wsErr(closeProtocolError, "bad control frame")
	}
	extra := 4
	switch n7 {
	case 126:
		extra += 2
	case 127:
		extra += 8
	}
	if _, err := io.ReadFull(wr, h[2:2+extra]); err != nil {
		return false, 0, nil, noEOF(err)
	}
	var length uint64
	switch n7 {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:10])
		if length>>63 != 0 {
			return false, 0, nil, wsErr(closeProtocolError, "bad frame length")
		}
	default:
		length = uint64(n7)
	}
	var key [4]byte
	copy(key[:], h[2+extra-4:2+extra])
	if length > uint64(wr.limit) {
		return false, 0, nil, wsErr(closeMessageTooBig, "message too big")
	}
	if uint64(len(wr.pre)) >= length {
		// The payload is in the read-ahead bytes (ours, not reused):
		// unmask it in place.
		payload, wr.pre = wr.pre[:length:length], wr.pre[length:]
		if len(wr.pre) == 0 {
			wr.pre = nil
		}
	} else {
		payload, err = readN(wr, int(length))
	}
	if err != nil {
		return false, 0, nil, noEOF(err)
	}
	for i := range payload {
		payload[i] ^= key[i&3]
	}
	return fin, op, payload, nil
}

// readN reads exactly n bytes, growing the buffer as data arrives so that
// a declared length costs memory only once it is sent.
func readN(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	if n <= step {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf := make([]byte, 0, step)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), len(buf)))
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			return nil, err
		}
	}
	return buf, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readMessage returns the next complete text or binary message, handling
// fragmentation and control frames (passed to onControl). A ping or pong
// between messages is returned as it is (op opPing or opPong, no message)
// after onControl ran. It returns errPeerClosed after a close frame, a
// *WebSocketError for protocol violations, or the read error.
func (wr *wsReader) readMessage() (op byte, msg []byte, err error) {
	var started bool
	for {
		fin, fop, payload, err := wr.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch fop {
		case opPing, opPong:
			if wr.onControl != nil {
				wr.onControl(fop, payload)
			}
			if !started {
				// Between messages: return so that the caller can go
				// back to waiting on its shallow stack.
				return fop, nil, nil
			}
			continue
		case opClose:
			return 0, nil, wr.parseClose(payload)
		case opContinuation:
			if !started {
				return 0, nil, wsErr(closeProtocolError, "continuation without start")
			}
			if int64(len(msg))+int64(len(payload)) > wr.limit {
				return 0, nil, wsErr(closeMessageTooBig, "message too big")
			}
			msg = append(msg, payload...)
		default: // text, binary
			if started {
				return 0, nil, wsErr(closeProtocolError, "new message inside fragmented message")
			}
			started, op, msg = true, fop, payload
		}
		if fin {
			// Text is not checked for UTF-8 here: the message decoder
			// rejects it (error reply, then close 1007).
			return op, msg, nil
		}
	}
}

// parseClose records the client's close code and returns errPeerClosed,
// or a protocol error for a malformed close frame.
func (wr *wsReader) parseClose(p []byte) error {
	switch {
	case len(p) == 0:
		wr.closeCode = closeNoStatus
		return errPeerClosed
	case len(p) == 1:
		return wsErr(closeProtocolError, "bad close frame")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return wsErr(closeProtocolError, "bad close code")
	}
	if !utf8.Valid(p[2:]) {
		return wsErr(closeInvalidPayload, "invalid UTF-8 close reason")
	}
	wr.closeCode, wr.closeReason = code, string(p[2:])
	return errPeerClosed
}

func validCloseCode(c int) bool {
	switch {
	case c >= 3000 && c <= 4999:
		return true
	case c >= 1000 && c <= 1014:
		return c != 1004 && c != 1005 && c != 1006
	}
	return false
}

// appendFrame appends one unmasked, final server frame.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n < 1<<16:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// closePayload is the body of a close frame with code and reason (the
// reason is cut to fit a control frame).
func closePayload(code int, reason string) []byte {
	if code == 0 || code == closeNoStatus {
		return nil
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}
