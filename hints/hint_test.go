package hints

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// pythonHints is what Python 0.12's get_connection_hints produces
// (json.dumps spacing, 0.0 priorities) plus Rust-style extras.
const pythonHints = `[{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "192.168.1.5", "port": 41234},
 {"type": "direct-tcp-v1", "priority": 0.5, "hostname": "fe80::1", "port": 41234},
 {"type": "tor-tcp-v1", "priority": 0.0, "hostname": "abcdef.onion", "port": 80},
 {"type": "relay-v1", "name": "default", "hints": [
   {"type": "direct-tcp-v1", "priority": 2.0, "hostname": "transit.magic-wormhole.io", "port": 4001},
   {"type": "websocket", "url": "wss://relay.example/"}]},
 {"type": "ice-v1", "candidate": "x"}]`

func TestParsePythonHints(t *testing.T) {
	hs, err := ParseHints(json.RawMessage(pythonHints))
	if err != nil {
		t.Fatal(err)
	}
	want := []Hint{
		DirectTCPV1{Hostname: "192.168.1.5", Port: 41234},
		DirectTCPV1{Hostname: "fe80::1", Port: 41234, Priority: 0.5},
		TorTCPV1{Hostname: "abcdef.onion", Port: 80},
		RelayV1{Name: "default", Hints: []Hint{DirectTCPV1{Hostname: "transit.magic-wormhole.io", Port: 4001, Priority: 2}}},
	}
	if len(hs) != 5 {
		t.Fatalf("got %d hints: %v", len(hs), hs)
	}
	if !reflect.DeepEqual(hs[:4], want) {
		t.Fatalf("got %#v\nwant %#v", hs[:4], want)
	}
	u, ok := hs[4].(Unknown)
	if !ok || u.Type != "ice-v1" || !strings.Contains(string(u.Raw), `"candidate"`) {
		t.Fatalf("unknown hint not kept: %#v", hs[4])
	}
	if got := hs[1].(DirectTCPV1).Addr(); got != "[fe80::1]:41234" {
		t.Fatalf("IPv6 dial address %q", got)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	in := []Hint{
		DirectTCPV1{Hostname: "10.0.0.1", Port: 1234, Priority: 1.5},
		DirectTCPV1{Hostname: "2001:db8::7", Port: 99},
		TorTCPV1{Hostname: "x.onion", Port: 80},
		RelayV1{Hints: []Hint{DirectTCPV1{Hostname: "relay", Port: 4001}}},
		Unknown{Type: "future", Raw: json.RawMessage(`{"type":"future","x":1}`)},
	}
	b, err := MarshalHints(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "[2001") {
		t.Fatalf("IPv6 written with brackets: %s", b)
	}
	if !strings.Contains(string(b), `{"type":"direct-tcp-v1","priority":1.5,"hostname":"10.0.0.1","port":1234}`) {
		t.Fatalf("unexpected JSON form: %s", b)
	}
	out, err := ParseHints(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %#v\nout %#v", in, out)
	}
	if b, _ := MarshalHints(nil); string(b) != "[]" {
		t.Fatalf("nil -> %s", b)
	}
}

func TestParseLenient(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`[]`, 0},
		{`[1, "x", null, []]`, 0},
		{`[{"type":"direct-tcp-v1","hostname":"h","port":5.0}]`, 0},   // Python wants an int
		{`[{"type":"direct-tcp-v1","hostname":"h","port":"5"}]`, 0},   // string port
		{`[{"type":"direct-tcp-v1","hostname":7,"port":5}]`, 0},       // non-string host
		{`[{"type":"direct-tcp-v1","port":5}]`, 0},                    // no host
		{`[{"type":"direct-tcp-v1","hostname":"h","port":0}]`, 0},     // port range
		{`[{"type":"direct-tcp-v1","hostname":"h","port":70000}]`, 0}, // port range
		{`[{"type":"direct-tcp-v1","hostname":"h","port":5,"priority":"hi"}]`, 0},
		{`[{"type":"direct-tcp-v1","hostname":"h","port":5}]`, 1}, // priority defaults
		{`[{"type":"direct-tcp-v1","hostname":"h","port":5,"priority":null}]`, 1},
		{`[{"type":"relay-v1"}]`, 0},
		{`[{"type":"relay-v1","hints":[]}]`, 0},
		{`[{"type":"relay-v1","hints":[{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"h","port":5}]}]}]`, 0},
		{`[{"hostname":"h","port":5}]`, 1}, // no type: Unknown
	} {
		hs, err := ParseHints(json.RawMessage(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if len(hs) != tc.want {
			t.Errorf("%s: got %d hints %v, want %d", tc.in, len(hs), hs, tc.want)
		}
	}
	for _, bad := range []string{``, `{}`, `"x"`, `[`, `null1`} {
		if _, err := ParseHints(json.RawMessage(bad)); !errors.Is(err, ErrInvalidHint) {
			t.Errorf("%q: err %v, want ErrInvalidHint", bad, err)
		}
	}
}

type wsHint struct{ URL string }

func (wsHint) HintType() string { return "websocket" }
func (h wsHint) String() string { return h.URL }

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	r.Register("websocket", func(raw json.RawMessage, _ *Registry) (Hint, error) {
		var v struct{ URL string }
		if err := json.Unmarshal(raw, &v); err != nil || v.URL == "" {
			return nil, ErrInvalidHint
		}
		return wsHint{v.URL}, nil
	})
	hs, err := r.Parse(json.RawMessage(pythonHints))
	if err != nil {
		t.Fatal(err)
	}
	rh := hs[3].(RelayV1)
	if len(rh.Hints) != 2 || rh.Hints[1] != (wsHint{"wss://relay.example/"}) {
		t.Fatalf("registered nested type not decoded: %#v", rh)
	}
	// The package-level parser is unaffected (no globals).
	hs, _ = ParseHints(json.RawMessage(pythonHints))
	if n := len(hs[3].(RelayV1).Hints); n != 1 {
		t.Fatalf("ParseHints saw registry: %d", n)
	}
	if _, err := r.ParseHint(json.RawMessage(`{"type":"websocket"}`)); !errors.Is(err, ErrInvalidHint) {
		t.Fatalf("bad websocket hint: %v", err)
	}
}

func TestParseRelayLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DirectTCPV1
		ok   bool
	}{
		{"tcp:transit.magic-wormhole.io:4001", DirectTCPV1{"transit.magic-wormhole.io", 4001, 0}, true},
		{"tcp:127.0.0.1:4001:priority=2.5", DirectTCPV1{"127.0.0.1", 4001, 2.5}, true},
		{"tcp:127.0.0.1:4001:foo=bar:priority=-1", DirectTCPV1{"127.0.0.1", 4001, -1}, true},
		{"tcp:[::1]:4001", DirectTCPV1{"::1", 4001, 0}, true},
		{"tcp:[::1]:4001:priority=1", DirectTCPV1{"::1", 4001, 1}, true},
		{"tcp:host", DirectTCPV1{}, false},
		{"tcp:host:port", DirectTCPV1{}, false},
		{"tcp:host:-1", DirectTCPV1{}, false},
		{"tcp:host:99999", DirectTCPV1{}, false},
		{"tcp:host:1:priority=x", DirectTCPV1{}, false},
		{"udp:host:1", DirectTCPV1{}, false},
		{"host:1", DirectTCPV1{}, false},
		{"", DirectTCPV1{}, false},
		{"tcp:[::1", DirectTCPV1{}, false},
		{"tcp::80", DirectTCPV1{}, false},
	} {
		r, err := ParseRelayLocation(tc.in)
		if !tc.ok {
			if !errors.Is(err, ErrInvalidHint) {
				t.Errorf("%q: err %v, want ErrInvalidHint", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if len(r.Hints) != 1 || r.Hints[0] != tc.want {
			t.Errorf("%q: got %#v want %#v", tc.in, r, tc.want)
		}
	}
}

func FuzzParseHints(f *testing.F) {
	f.Add([]byte(pythonHints))
	f.Add([]byte(`[{"type":"relay-v1","hints":[{"type":"direct-tcp-v1","hostname":"h","port":5}]}]`))
	f.Add([]byte(`[{"type":"direct-tcp-v1","hostname":"::1","port":1,"priority":1e308}]`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := ParseHints(data)
		if err != nil {
			return
		}
		if len(hs) > MaxHints {
			t.Fatalf("%d hints", len(hs))
		}
		b, err := MarshalHints(hs)
		if err != nil {
			t.Fatalf("marshal of parsed hints: %v", err)
		}
		hs2, err := ParseHints(b)
		if err != nil {
			t.Fatalf("reparse %s: %v", b, err)
		}
		if len(hs2) != len(hs) {
			t.Fatalf("reparse changed count %d -> %d: %s", len(hs), len(hs2), b)
		}
		for _, h := range hs {
			switch h := h.(type) {
			case DirectTCPV1:
				if h.Port < 1 || h.Port > 65535 || h.Hostname == "" {
					t.Fatalf("bad hint accepted %#v", h)
				}
			}
		}
	})
}

func FuzzParseTCPLocation(f *testing.F) {
	f.Add("tcp:127.0.0.1:4001:priority=2.5")
	f.Add("tcp:[::1]:1")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseTCPLocation(s)
		if err != nil {
			return
		}
		if h.Port < 1 || h.Port > 65535 || h.Hostname == "" {
			t.Fatalf("%q -> %#v", s, h)
		}
		if _, err := MarshalHints([]Hint{h}); err != nil {
			t.Fatal(err)
		}
	})
}
