package dilate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/flynn/noise"
	"github.com/wormhole-go/wormhole/hints"
)

// cipherPair returns the two transport CipherStates of a completed
// NNpsk0 handshake (leader send, follower recv).
func cipherPair(t testing.TB) (send, recv *noise.CipherState) {
	t.Helper()
	l, err := newNoise(testKey(), true)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newNoise(testKey(), false)
	if err != nil {
		t.Fatal(err)
	}
	m1, _, _, err := l.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, fcs1, _, err := f.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, lcs1, _, err := l.ReadMessage(nil, m2)
	if err != nil {
		t.Fatal(err)
	}
	if len(m1) != handshakeMsgLen || len(m2) != handshakeMsgLen {
		t.Fatalf("handshake messages %d and %d bytes, want 48 (spec 6.4)", len(m1), len(m2))
	}
	return lcs1, fcs1
}

func TestHandshakeWrongKeyFails(t *testing.T) {
	l, _ := newNoise(testKey(), true)
	other := bytes.Repeat([]byte{7}, 32)
	f, _ := newNoise(other, false)
	m1, _, _, _ := l.WriteMessage(nil, nil)
	if _, _, _, err := f.ReadMessage(nil, m1); err == nil {
		t.Fatal("follower with another psk accepted message 1")
	}
}

func TestRelayLine(t *testing.T) {
	line := string(relayLine(testKey(), "0123456789abcdef"))
	if !strings.HasPrefix(line, "please relay ") || !strings.HasSuffix(line, " for side 0123456789abcdef\n") {
		t.Fatalf("relay line %q", line)
	}
	token := strings.TrimSuffix(strings.TrimPrefix(line, "please relay "), " for side 0123456789abcdef\n")
	if len(token) != 64 {
		t.Fatalf("token %q", token)
	}
}

// TestLargeFrames: a record longer than 65519 bytes is one frame made of
// several Noise messages (plaintext split at 65519, ciphertext cut at 65535).
func TestLargeFrames(t *testing.T) {
	send, recv := cipherPair(t)
	s, o := sealer{send}, &opener{cs: recv}
	for _, n := range []int{0, 1, noiseMaxPlain - 1, noiseMaxPlain, noiseMaxPlain + 1, 3*noiseMaxPlain + 5, 1 << 20} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		frame, err := s.appendSealed(nil, pt)
		if err != nil {
			t.Fatal(err)
		}
		pieces := max(1, (n+noiseMaxPlain-1)/noiseMaxPlain)
		if got, want := binary.BigEndian.Uint32(frame), uint32(n+16*pieces); got != want {
			t.Fatalf("n=%d: frame length %d, want %d", n, got, want)
		}
		body, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), nil, 2<<20)
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.open(body)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("n=%d: roundtrip failed: %v", n, err)
		}
	}
}

func TestFrameLimit(t *testing.T) {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 1<<30)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(b)), nil, 1<<20); !errors.Is(err, ErrFrameTooBig) {
		t.Fatalf("got %v", err)
	}
}

func TestRecordEncodings(t *testing.T) {
	cases := []struct {
		r    record
		wire string
	}{
		{record{tag: tagKCM}, "00"},
		{record{tag: tagPing, pingID: 0x01020304}, "0101020304"},
		{record{tag: tagPong, pingID: 7}, "0200000007"},
		{record{tag: tagOpen, scid: 1, seq: 2, name: "chat"}, "03000000010000000263686174"},
		{record{tag: tagData, scid: 2, seq: 3, payload: []byte("hi")}, "04000000020000000368 69"},
		{record{tag: tagClose, scid: 5, seq: 9}, "050000000500000009"},
		{record{tag: tagAck, seq: 0xfffffffe}, "06fffffffe"},
	}
	for _, c := range cases {
		want := strings.ReplaceAll(c.wire, " ", "")
		got := appendRecord(nil, c.r)
		if hexs(got) != want {
			t.Fatalf("%v: %s, want %s", c.r, hexs(got), want)
		}
		back, err := parseRecord(got)
		if err != nil {
			t.Fatal(err)
		}
		if back.String() != c.r.String() || !bytes.Equal(back.payload, c.r.payload) {
			t.Fatalf("parse(%s) = %v, want %v", want, back, c.r)
		}
	}
	for _, bad := range []string{"", "07", "0001", "01", "0101", "03000000", "0500000001000000", "06000000000000", "0300000001000000 02ff"} {
		b := unhex(strings.ReplaceAll(bad, " ", ""))
		if _, err := parseRecord(b); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("parseRecord(%s) = %v, want ErrBadRecord", bad, err)
		}
	}
}

func hexs(b []byte) string { return strings.ToLower(strings.TrimSpace(string(hexEnc(b)))) }

func hexEnc(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func unhex(s string) []byte {
	out := make([]byte, len(s)/2)
	for i := range out {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c-'a') + 10
			}
		}
		out[i] = v
	}
	return out
}

func TestL1Records(t *testing.T) {
	// The exact bytes Python would produce differ only in whitespace; what
	// matters is that Python's json.loads reads our keys.
	b := marshalL1(l1Record{Type: l1Please, Side: "0123456789abcdef", UseVersion: "ged"})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, map[string]any{"type": "please", "side": "0123456789abcdef", "use-version": "ged"}) {
		t.Fatalf("please = %s", b)
	}
	if string(marshalL1(l1Record{Type: l1Please, Side: "0123456789abcdef"})) != `{"type":"please","side":"0123456789abcdef"}` {
		t.Fatal("please without shared version must omit use-version")
	}
	if string(marshalL1(l1Record{Type: l1Reconnect})) != `{"type":"reconnect"}` ||
		string(marshalL1(l1Record{Type: l1Reconnecting})) != `{"type":"reconnecting"}` {
		t.Fatal("reconnect records")
	}
	// Python's formatting (spaces, floats), plus an unknown hint and a
	// relay hint with a websocket entry, as Rust sends.
	py := `{"type": "connection-hints", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "10.0.0.5", "port": 41234}, {"type": "tor-tcp-v1", "priority": 0.0, "hostname": "x.onion", "port": 80}, {"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "relay.example", "port": 4001}, {"type": "websocket", "url": "wss://x"}]}, {"type": "new-thing"}]}`
	r, err := parseL1([]byte(py))
	if err != nil {
		t.Fatal(err)
	}
	var direct, relays int
	for _, h := range r.Hints {
		switch h := h.(type) {
		case hints.DirectTCPV1:
			direct++
			if h.Addr() != net.JoinHostPort("10.0.0.5", "41234") {
				t.Fatalf("direct %v", h)
			}
		case hints.RelayV1:
			relays++
		}
	}
	if direct != 1 || relays != 1 {
		t.Fatalf("parsed %d direct, %d relay hints from %s", direct, relays, py)
	}
	back, err := parseL1(marshalL1(r))
	if err != nil || len(back.Hints) != len(r.Hints) {
		t.Fatalf("hints roundtrip: %v %v", back, err)
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"type": 5}`, `{"type":"please"}`, `{"type":"please","side":"has space"}`, `{"type":"connection-hints","hints":{}}`} {
		if _, err := parseL1([]byte(bad)); !errors.Is(err, ErrBadL1) {
			t.Fatalf("parseL1(%s) = %v, want ErrBadL1", bad, err)
		}
	}
	if r, err := parseL1([]byte(`{"type":"future-thing","x":1}`)); err != nil || r.Type != "future-thing" {
		t.Fatalf("unknown type: %v %v", r, err)
	}
}

func TestSharedVersion(t *testing.T) {
	if v, ok := SharedVersion([]string{"wormhole-go-x", "ged"}, []string{"ged", "1"}); !ok || v != "ged" {
		t.Fatal(v, ok)
	}
	if _, ok := SharedVersion([]string{"ged"}, []string{"1"}); ok {
		t.Fatal("ged and 1 must not match (0.12-0.18 peers)")
	}
	if v, _ := SharedVersion([]string{"a", "b"}, []string{"b", "a"}); v != "a" {
		t.Fatal("ranking must follow our own list")
	}
	if f := VersionFields(false); !reflect.DeepEqual(f["can-dilate"], []string{"ged"}) {
		t.Fatalf("can-dilate %v", f["can-dilate"])
	}
	if f := VersionFields(true); !reflect.DeepEqual(f["can-dilate"], []string{CreditVersion, YamuxVersion, "ged"}) {
		t.Fatalf("extended can-dilate %v", f["can-dilate"])
	}
	if v, ok := SharedVersion(GoVersions(), GoVersions()); !ok || v != CreditVersion {
		t.Fatalf("two Go peers share %q", v)
	}
	if v, ok := SharedVersion(GoVersions(), []string{YamuxVersion, Version}); !ok || v != YamuxVersion {
		t.Fatalf("with an older Go peer: %q", v)
	}
	if v, ok := SharedVersion(GoVersions(), Versions()); !ok || v != Version {
		t.Fatalf("with a Python peer: %q", v)
	}
	if got := PeerVersions(map[string]any{"can-dilate": []any{"ged", 3}}); !reflect.DeepEqual(got, []string{"ged"}) {
		t.Fatal(got)
	}
}
