package tunnel

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// Vectors produced by Python's msgpack 1.0.3 (msgpack.packb, the call fowl
// makes), e.g. msgpack.packb({'kind':'request-listener','unique-name':'chat',
// 'listen-port':None}).hex().
var pyVectors = []struct {
	hex  string
	want Message
}{
	{"83a46b696e64b0726571756573742d6c697374656e6572ab756e697175652d6e616d65a463686174ab6c697374656e2d706f7274c0",
		Message{"kind": "request-listener", "unique-name": "chat", "listen-port": nil}},
	{"84a46b696e64b16c697374656e65722d726573706f6e7365ab756e697175652d6e616d65a463686174a96c697374656e696e67c3ac646573697265642d706f7274cd1f90",
		Message{"kind": "listener-response", "unique-name": "chat", "listening": true, "desired-port": int64(8080)}},
	{"82a9636f6e6e6563746564c2a6726561736f6eb4416761696e7374206c6f63616c20706f6c696379",
		Message{"connected": false, "reason": "Against local policy"}},
}

func TestDecodePythonVectors(t *testing.T) {
	for _, v := range pyVectors {
		b, _ := hex.DecodeString(v.hex)
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, v.want) {
			t.Errorf("got %#v want %#v", m, v.want)
		}
	}
}

// Our encoding decodes in Python's msgpack to the same dict, and Python's
// encoding of a range of values decodes in Go.
func TestMsgpackAgainstPython(t *testing.T) {
	py := interop.NeedPython(t, "msgpack")
	msgs := []Message{
		requestListener("chat", 0), requestListener("web", 8080), listenerResponse("web", true, 80, ""),
		listenerResponse("x", false, 0, "No service permitted for name: x"), openMessage("0:[::1]:22"),
		openReply(true, ""), openReply(false, strings.Repeat("é", 200)),
		{"n": -1, "big": int64(1) << 40, "neg": int64(-70000), "f": 1.5, "l": []any{int64(1), "a", nil}, "b": []byte{1, 2}},
	}
	var lines []string
	for _, m := range msgs {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, hex.EncodeToString(b[2:]))
	}
	script := `
import sys, msgpack, json
for line in sys.stdin:
    v = msgpack.unpackb(bytes.fromhex(line.strip()))
    print(msgpack.packb(v).hex())
for v in [0, 127, 128, 255, 256, 65535, 65536, 2**32, 2**63-1, 2**64-1, -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31-1, -2**63,
          "", "x"*31, "y"*32, "z"*256, "w"*70000, b"", b"q"*300, 1.25, [], list(range(20)), {str(i): i for i in range(17)}, {"a": {"b": [None, True, False]}}]:
    print(msgpack.packb({"v": v}).hex())
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	outs := strings.Fields(string(out))
	for i, m := range msgs {
		// Python re-encodes what it decoded from us; it must decode back to m.
		b, _ := hex.DecodeString(outs[i])
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want, _ := DecodeMessage(mustEncode(t, m)[2:])
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d: round trip through Python: got %#v want %#v", i, got, want)
		}
	}
	for _, h := range outs[len(msgs):] {
		b, _ := hex.DecodeString(h)
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decoding Python's %.40s...: %v", h, err)
		}
		if len(b) > MaxMessage {
			continue // decodable, but too long to send as one fowl message
		}
		// and re-encoding gives Python's bytes (same smallest encodings)
		if enc := mustEncode(t, m); !bytes.Equal(enc[2:], b) {
			if _, isMap := m["v"].(map[string]any); !isMap { // map key order may differ
				t.Errorf("re-encoding %v: got %x want %x", m["v"], enc[2:], b)
			}
		}
	}
}

func mustEncode(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMessagePort(t *testing.T) {
	m := Message{"a": int64(80), "b": nil, "c": int64(0), "d": "80", "e": int64(70000), "f": uint64(math.MaxUint64)}
	if p, err := m.Port("a"); p != 80 || err != nil {
		t.Error("a", p, err)
	}
	for _, k := range []string{"b", "missing"} {
		if p, err := m.Port(k); p != 0 || err != nil {
			t.Error(k, p, err)
		}
	}
	for _, k := range []string{"c", "d", "e", "f"} {
		if _, err := m.Port(k); !errors.Is(err, ErrMessage) {
			t.Error(k, err)
		}
	}
}

func TestReadMessageStream(t *testing.T) {
	var buf bytes.Buffer
	WriteMessage(&buf, openMessage("svc"))
	buf.WriteString("raw bytes follow")
	m, err := ReadMessage(&buf)
	if err != nil || m["unique-name"] != "svc" {
		t.Fatal(m, err)
	}
	if rest, _ := io.ReadAll(&buf); string(rest) != "raw bytes follow" {
		t.Fatalf("ReadMessage consumed forwarded bytes: %q", rest)
	}
	for _, bad := range []string{"", "\x00", "\x00\x05abc", "\x00\x01\x91", "\x00\x01\xc1", "\x00\x02\x81\x01"} {
		if _, err := ReadMessage(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := EncodeMessage(Message{"x": strings.Repeat("a", 70000)}); !errors.Is(err, ErrMessage) {
		t.Error("oversized message encoded")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, v := range pyVectors {
		b, _ := hex.DecodeString(v.hex)
		f.Add(b)
	}
	for _, m := range []Message{requestListener("a", 1), openReply(false, "r"), {"l": []any{[]any{[]any{}}}, "f": 2.5, "b": []byte("x")}} {
		b, _ := EncodeMessage(m)
		f.Add(b[2:])
	}
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa1, 'a', 0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Add(bytes.Repeat([]byte{0x91}, 40))
	f.Add([]byte{0x81, 0xa1, 'e', 0xc7, 0x01, 0x05, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatalf("error not ErrMessage: %v", err)
			}
			return
		}
		// Whatever decodes re-encodes and decodes to the same value
		// (ext values decode as nil, so compare after one round).
		enc, err := EncodeMessage(m)
		if err != nil {
			if len(b) > MaxMessage-16 || errors.Is(err, ErrMessage) {
				return
			}
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := DecodeMessage(enc[2:])
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		enc2, _ := EncodeMessage(m2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding")
		}
		_, _ = m.Port("listen-port")
		_ = m.Bool("connected")
	})
}

// FuzzReadMessage feeds arbitrary streams to the framing reader.
func FuzzReadMessage(f *testing.F) {
	b, _ := EncodeMessage(openMessage("svc"))
	f.Add(append(b, "tail"...))
	f.Add([]byte{0xff, 0xff, 0x80})
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		m, err := ReadMessage(r)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		if err == nil {
			n := int(b[0])<<8 | int(b[1])
			if r.Len() != len(b)-2-n {
				t.Fatalf("read %d bytes, message was %d", len(b)-r.Len(), n+2)
			}
		}
	})
}
