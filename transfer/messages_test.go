package transfer

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// Python's json.dumps output for the messages the 0.12 CLI sends.
var pythonMessages = []string{
	`{"offer": {"message": "hello w\u00f6rld"}}`,
	`{"offer": {"file": {"filename": "x.bin", "filesize": 1048576}}}`,
	`{"offer": {"directory": {"mode": "zipfile/deflated", "dirname": "d", "zipsize": 10, "numbytes": 20, "numfiles": 2}}}`,
	`{"answer": {"message_ack": "ok"}}`,
	`{"answer": {"file_ack": "ok"}}`,
	`{"error": "transfer rejected"}`,
	`{"transit": {"abilities-v1": [{"type": "direct-tcp-v1"}, {"type": "relay-v1"}], "hints-v1": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "192.168.1.5", "port": 41234}, {"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "transit.magic-wormhole.io", "port": 4001}]}]}}`,
}

func TestDecodePython(t *testing.T) {
	m, err := Decode([]byte(pythonMessages[0]))
	if err != nil || m.Offer == nil || m.Offer.Kind() != KindText || *m.Offer.Message != "hello wörld" {
		t.Fatalf("text offer: %+v %v", m, err)
	}
	m, err = Decode([]byte(pythonMessages[1]))
	if err != nil || m.Offer.Kind() != KindFile || *m.Offer.File != (FileOffer{"x.bin", 1048576}) {
		t.Fatalf("file offer: %+v %v", m, err)
	}
	m, err = Decode([]byte(pythonMessages[2]))
	want := DirectoryOffer{Mode: DirectoryMode, Dirname: "d", Zipsize: 10, Numbytes: 20, Numfiles: 2}
	if err != nil || m.Offer.Kind() != KindDirectory || *m.Offer.Directory != want {
		t.Fatalf("dir offer: %+v %v", m, err)
	}
	m, err = Decode([]byte(pythonMessages[3]))
	if err != nil || m.Answer == nil || m.Answer.MessageAck != "ok" {
		t.Fatalf("message_ack: %+v %v", m, err)
	}
	m, err = Decode([]byte(pythonMessages[4]))
	if err != nil || m.Answer == nil || m.Answer.FileAck != "ok" {
		t.Fatalf("file_ack: %+v %v", m, err)
	}
	m, err = Decode([]byte(pythonMessages[5]))
	if err != nil || !m.HasError || m.Error != "transfer rejected" {
		t.Fatalf("error: %+v %v", m, err)
	}
	m, err = Decode([]byte(pythonMessages[6]))
	if err != nil || m.Transit == nil {
		t.Fatalf("transit: %+v %v", m, err)
	}
	wantT := Transit{
		Abilities: []Ability{{HintDirectTCP}, {HintRelay}},
		Hints: []Hint{
			{Type: HintDirectTCP, Hostname: "192.168.1.5", Port: 41234},
			{Type: HintRelay, Hints: []Hint{{Type: HintDirectTCP, Hostname: "transit.magic-wormhole.io", Port: 4001}}},
		},
	}
	if !reflect.DeepEqual(*m.Transit, wantT) {
		t.Fatalf("transit = %+v, want %+v", *m.Transit, wantT)
	}
}

// Our encoding must decode to the same thing in a generic JSON reader (what
// Python sees).
func TestEncodeShape(t *testing.T) {
	for _, s := range pythonMessages {
		m, err := Decode([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		var got, want any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		_ = json.Unmarshal([]byte(s), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("re-encoded\n %s\nwant\n %s", b, s)
		}
	}
}

func TestDecodeLenient(t *testing.T) {
	// unknown hint types, bad ports, wrong-typed hostnames are skipped
	m, err := Decode([]byte(`{"transit": {"abilities-v1": [{"type": "x"}, 3], "hints-v1": [
		{"type": "websocket", "url": "ws://x"},
		{"type": "direct-tcp-v1", "hostname": "a", "port": "80"},
		{"type": "direct-tcp-v1", "hostname": 5, "port": 80},
		{"type": "direct-tcp-v1", "hostname": "a", "port": 80.5},
		{"type": "direct-tcp-v1", "hostname": "ok", "port": 80, "priority": 0.5},
		{"type": "relay-v1", "hints": [{"type": "websocket"}, {"type": "tor-tcp-v1", "hostname": "x.onion", "port": 80}]},
		{"type": "relay-v1", "hints": []},
		"junk"]}, "extra": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Hint{
		{Type: HintDirectTCP, Hostname: "ok", Port: 80, Priority: 0.5},
		{Type: HintRelay, Hints: []Hint{{Type: HintTorTCP, Hostname: "x.onion", Port: 80}}},
	}
	if !reflect.DeepEqual(m.Transit.Hints, want) || len(m.Transit.Abilities) != 1 {
		t.Fatalf("got %+v", m.Transit)
	}
	// unknown offer type is not an error, just KindUnknown
	m, err = Decode([]byte(`{"offer": {"carrier-pigeon": {}}}`))
	if err != nil || m.Offer.Kind() != KindUnknown || string(m.Offer.Raw) != `{"carrier-pigeon": {}}` {
		t.Fatalf("unknown offer: %+v %v", m, err)
	}
	// non-string error is kept visible
	m, err = Decode([]byte(`{"error": {"why": 1}}`))
	if err != nil || !m.HasError || m.Error != `{"why": 1}` {
		t.Fatalf("error object: %+v %v", m, err)
	}
	// unknown keys alone: a message with nothing set
	m, err = Decode([]byte(`{"app_versions": {}}`))
	if err != nil || m.HasError || m.Offer != nil || m.Answer != nil || m.Transit != nil {
		t.Fatalf("unknown key: %+v %v", m, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, s := range []string{
		``, `null`, `[]`, `"x"`, `{"offer": 1}`, `{"offer": {"message": 1}}`,
		`{"offer": {"file": {"filename": "a"}}}`,
		`{"offer": {"file": {"filename": "a", "filesize": -1}}}`,
		`{"offer": {"file": {"filename": "a", "filesize": 1.5}}}`,
		`{"offer": {"directory": {"mode": "zipfile/deflated", "dirname": "d"}}}`,
		`{"answer": "ok"}`, `{"transit": []}`, `{"transit": {"hints-v1": {}}}`,
	} {
		if m, err := Decode([]byte(s)); err == nil || !errors.Is(err, ErrProtocol) {
			t.Errorf("Decode(%q) = %+v, %v; want ErrProtocol", s, m, err)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"a.txt": "a.txt", "../../etc/passwd": "passwd", "/abs/x": "x", `..\..\win.ini`: "win.ini", "dir/": "dir",
	} {
		if got, err := SafeName(in); err != nil || got != want {
			t.Errorf("SafeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "..", "/", "a/..", "x\x00y"} {
		if got, err := SafeName(in); err == nil {
			t.Errorf("SafeName(%q) = %q, want error", in, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range pythonMessages {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"offer": {"carrier-pigeon": {}}, "error": 5, "answer": {"message_ack": 1}}`))
	f.Add([]byte(`{"transit": {"hints-v1": [{"type": "relay-v1", "hints": [{"type": "relay-v1"}]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		enc, err := Encode(m)
		if err != nil {
			// nothing we use was present (or a non-finite number we refuse to emit)
			return
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		enc2, err := Encode(m2)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding is not a fixed point:\n%s\n%s (%v)", enc, enc2, err)
		}
		if m.Offer == nil || m.Offer.Kind() != KindUnknown { // Raw is re-compacted
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip changed message:\n%+v\n%+v\nvia %s", m, m2, enc)
			}
		}
	})
}
