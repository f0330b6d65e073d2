package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func maskFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := appendFrame(nil, op, payload)
	f[0] = b0
	f[1] |= 0x80
	h := len(f) - len(payload)
	out := append(append(append([]byte(nil), f[:h]...), key[:]...), payload...)
	for i := range payload {
		out[h+4+i] ^= key[i&3]
	}
	return out
}

// FuzzWebSocketFrames feeds arbitrary bytes to the frame decoder: it must
// not panic, must return messages no larger than the limit, and must fail
// only with a read error, a close from the peer or a *WebSocketError.
func FuzzWebSocketFrames(f *testing.F) {
	k := [4]byte{1, 2, 3, 4}
	f.Add(maskFrame(true, opText, []byte(`{"type":"ping"}`), k))
	f.Add(append(maskFrame(false, opText, []byte("ab"), k), append(maskFrame(true, opPing, []byte("p"), k), maskFrame(true, opContinuation, []byte("cd"), k)...)...))
	f.Add(maskFrame(true, opClose, []byte{0x03, 0xe8, 'x'}, k))
	f.Add(maskFrame(true, opBinary, make([]byte, 300), k))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xfe, 0x01})
	f.Add([]byte{0x89, 0xfe, 0x00, 0x80, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1024
		var controls int
		wr := &wsReader{r: bytes.NewReader(data), limit: limit, onControl: func(op byte, p []byte) {
			if op != opPing && op != opPong || len(p) > 125 {
				t.Fatalf("control op %d len %d", op, len(p))
			}
			controls++
		}}
		for range 1000 {
			op, msg, err := wr.readMessage()
			if err != nil {
				var we *WebSocketError
				switch {
				case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errPeerClosed):
				case errors.As(err, &we):
					if we.Code < 1000 || we.Code > 1011 || !errors.Is(err, ErrWebSocketProtocol) {
						t.Fatalf("bad close code %d", we.Code)
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if (op == opPing || op == opPong) && msg == nil {
				continue
			}
			if op != opText && op != opBinary || len(msg) > limit {
				t.Fatalf("message op %d len %d", op, len(msg))
			}
		}
	})
}

// TestFrameRoundTrip: frames built by appendFrame (server side, masked
// here as a client would) decode to the same payloads at every length
// encoding boundary.
func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200000} {
		p := bytes.Repeat([]byte{'a'}, n)
		f := maskFrame(true, opText, p, [4]byte{9, 8, 7, 6})
		wr := &wsReader{r: bytes.NewReader(f), limit: 1 << 20}
		op, msg, err := wr.readMessage()
		if err != nil || op != opText || !bytes.Equal(msg, p) {
			t.Fatalf("len %d: op %d len %d err %v", n, op, len(msg), err)
		}
		srv := appendFrame(nil, opText, p)
		h := len(srv) - n
		if want := map[bool]int{n < 126: 2, n >= 126 && n < 65536: 4, n >= 65536: 10}[true]; h != want {
			t.Fatalf("len %d: server header %d bytes, want %d", n, h, want)
		}
		if h == 4 && int(binary.BigEndian.Uint16(srv[2:4])) != n {
			t.Fatalf("len %d: 16-bit length wrong", n)
		}
	}
}
