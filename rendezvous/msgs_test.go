package rendezvous

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Messages as the Debian Python mailbox server 0.4.1 and Python client 0.12
// write them (json.dumps: ", " and ": " separators). More captured frames
// live in testdata/fuzz/.
var pythonServerSeeds = []string{
	`{"welcome": {}, "type": "welcome", "server_tx": 1764401234.5678}`,
	`{"welcome": {"current_cli_version": "0.12.0", "error": "go away"}, "type": "welcome", "server_tx": 1.5}`,
	`{"welcome": {"motd": "hi", "your-address": {"port": 5, "ipv4": "127.0.0.1"}, "permission-required": {"none": {}, "hashcash": {"bits": 6, "resource": "res"}}}, "type": "welcome", "server_tx": 1.5}`,
	`{"id": "6f1c", "type": "ack", "server_tx": 1764401234.6}`,
	`{"id": null, "type": "ack", "server_tx": 1764401234.6}`,
	`{"nameplates": [{"id": "1"}, {"id": "10"}, {"id": "2"}], "type": "nameplates", "server_tx": 1.0}`,
	`{"nameplates": [], "type": "nameplates", "server_tx": 1.0}`,
	`{"nameplate": "4", "type": "allocated", "server_tx": 1.0}`,
	`{"mailbox": "ivdsy2ejrpg5c", "type": "claimed", "server_tx": 1.0}`,
	`{"type": "released", "server_tx": 1.0}`,
	`{"side": "0123456789", "phase": "pake", "body": "7b2270616b655f7631223a202261626364227d", "server_rx": 1764401234.1, "id": "abcd", "type": "message", "server_tx": 1764401234.2}`,
	`{"side": "0123456789", "phase": "0", "body": "", "server_rx": 1.0, "id": null, "type": "message", "server_tx": 1.0}`,
	`{"type": "closed", "server_tx": 1.0}`,
	`{"pong": 42, "type": "pong", "server_tx": 1.0}`,
	`{"error": "crowded", "orig": {"nameplate": "4", "id": "1234", "type": "claim"}, "type": "error", "server_tx": 1.0}`,
	`{"type": "frobnicate", "server_tx": 1.0}`,
}

var pythonClientSeeds = []string{
	`{"appid": "lothar.com/wormhole/text-or-file-xfer", "side": "0123456789", "client_version": ["python", "0.12.0"], "id": "a1b2", "type": "bind"}`,
	`{"appid": "x", "side": "s", "type": "bind"}`,
	`{"id": "a1b2", "type": "list"}`,
	`{"id": "a1b2", "type": "allocate"}`,
	`{"nameplate": "4", "id": "a1b2", "type": "claim"}`,
	`{"nameplate": "4", "id": "a1b2", "type": "release"}`,
	`{"type": "release"}`,
	`{"mailbox": "ivdsy2ejrpg5c", "id": "a1b2", "type": "open"}`,
	`{"phase": "pake", "body": "7b7d", "id": "a1b2", "type": "add"}`,
	`{"mailbox": "ivdsy2ejrpg5c", "mood": "happy", "id": "a1b2", "type": "close"}`,
	`{"ping": 7, "id": "a1b2", "type": "ping"}`,
	`{"type": "submit-permissions", "method": "hashcash", "stamp": "1:6:210723:resource-string::NmZNF4eIbk87mqYz:000003n"}`,
	`{"type": "submit-permission", "method": "none"}`,
}

func TestDecodeServerMessages(t *testing.T) {
	got := []any{}
	for _, s := range pythonServerSeeds[:len(pythonServerSeeds)-1] {
		m, err := DecodeServerMessage([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		got = append(got, m)
	}
	w := got[0].(*WelcomeMsg)
	if w.ServerTX != 1764401234.5678 || w.Welcome.MOTD != "" || len(w.Welcome.Raw) != 0 {
		t.Errorf("empty welcome: %+v", w)
	}
	w = got[1].(*WelcomeMsg)
	if w.Welcome.Error != "go away" || w.Welcome.CurrentCLIVersion != "0.12.0" {
		t.Errorf("welcome: %+v", w)
	}
	w = got[2].(*WelcomeMsg)
	if w.Welcome.MOTD != "hi" || string(w.Welcome.PermissionRequired["hashcash"]) != `{"bits": 6, "resource": "res"}` ||
		string(w.Welcome.Raw["your-address"]) != `{"port": 5, "ipv4": "127.0.0.1"}` {
		t.Errorf("welcome: %+v", w)
	}
	if a := got[3].(*AckMsg); a.ID != "6f1c" {
		t.Errorf("ack %+v", a)
	}
	if a := got[4].(*AckMsg); a.ID != "" {
		t.Errorf("null ack %+v", a)
	}
	if n := got[5].(*NameplatesMsg); !reflect.DeepEqual(n.Nameplates, []NameplateInfo{{"1"}, {"10"}, {"2"}}) {
		t.Errorf("nameplates %+v", n)
	}
	if n := got[6].(*NameplatesMsg); n.Nameplates == nil || len(n.Nameplates) != 0 {
		t.Errorf("empty nameplates %+v", n)
	}
	if a := got[7].(*AllocatedMsg); a.Nameplate != "4" {
		t.Errorf("%+v", a)
	}
	if c := got[8].(*ClaimedMsg); c.Mailbox != "ivdsy2ejrpg5c" {
		t.Errorf("%+v", c)
	}
	_ = got[9].(*ReleasedMsg)
	m := got[10].(*MessageMsg)
	if m.Side != "0123456789" || m.Phase != "pake" || string(m.Body) != `{"pake_v1": "abcd"}` ||
		m.ServerRX != 1764401234.1 || m.ID != "abcd" || m.ServerTX != 1764401234.2 {
		t.Errorf("message %+v", m)
	}
	if m := got[11].(*MessageMsg); m.ID != "" || m.Body == nil || len(m.Body) != 0 {
		t.Errorf("empty message %+v", m)
	}
	_ = got[12].(*ClosedMsg)
	if p := got[13].(*PongMsg); p.Pong != 42 {
		t.Errorf("%+v", p)
	}
	e := got[14].(*ErrorMsg)
	if e.Error != "crowded" || !strings.Contains(string(e.Orig), `"claim"`) {
		t.Errorf("%+v", e)
	}
}

func TestDecodeClientMessages(t *testing.T) {
	want := []any{
		&BindMsg{ID: "a1b2", AppID: "lothar.com/wormhole/text-or-file-xfer", Side: "0123456789", ClientVersion: []string{"python", "0.12.0"}},
		&BindMsg{AppID: "x", Side: "s"},
		&ListMsg{ID: "a1b2"},
		&AllocateMsg{ID: "a1b2"},
		&ClaimMsg{ID: "a1b2", Nameplate: "4"},
		&ReleaseMsg{ID: "a1b2", Nameplate: "4"},
		&ReleaseMsg{},
		&OpenMsg{ID: "a1b2", Mailbox: "ivdsy2ejrpg5c"},
		&AddMsg{ID: "a1b2", Phase: "pake", Body: []byte("{}")},
		&CloseMsg{ID: "a1b2", Mailbox: "ivdsy2ejrpg5c", Mood: "happy"},
		&PingMsg{ID: "a1b2", Ping: 7},
		&SubmitPermissionsMsg{Method: "hashcash", Stamp: "1:6:210723:resource-string::NmZNF4eIbk87mqYz:000003n"},
		&SubmitPermissionsMsg{Method: "none"},
	}
	for i, s := range pythonClientSeeds {
		m, err := DecodeClientMessage([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !reflect.DeepEqual(m, want[i]) {
			t.Errorf("%s:\n got %#v\nwant %#v", s, m, want[i])
		}
	}
}

type typed interface{ MsgType() string }

// Every message survives encode -> decode, and the encoding carries "type".
func TestRoundTrip(t *testing.T) {
	client := []typed{
		&BindMsg{ID: "0001", AppID: "app", Side: "abcdef0123", ClientVersion: []string{"wormhole-go", "0.1.0"}},
		&ListMsg{ID: "0002"}, &AllocateMsg{ID: "0003"}, &ClaimMsg{ID: "0004", Nameplate: "12"},
		&ReleaseMsg{ID: "0005", Nameplate: "12"}, &OpenMsg{ID: "0006", Mailbox: "mb"},
		&AddMsg{ID: "0007", Phase: "pake<&>\"\x01é", Body: []byte{0, 1, 0xfe, 0xff}},
		&AddMsg{Phase: "0", Body: []byte{}},
		&CloseMsg{ID: "0008", Mailbox: "mb", Mood: "happy"}, &PingMsg{ID: "0009", Ping: -3},
		&SubmitPermissionsMsg{ID: "000a", Method: "hashcash", Stamp: "1:2:3:4::5:6"},
	}
	for _, m := range client {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"`+m.MsgType()+`"`)) {
			t.Errorf("%s lacks type first", b)
		}
		d, err := DecodeClientMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(d, m) {
			t.Errorf("%s:\n got %#v\nwant %#v", b, d, m)
		}
	}
	server := []typed{
		&WelcomeMsg{Welcome: Welcome{MOTD: "m", Raw: map[string]json.RawMessage{"motd": json.RawMessage(`"m"`)}}, ServerTX: 1.25},
		&AckMsg{ID: "0001", ServerTX: 2}, &AckMsg{ServerTX: 2},
		&NameplatesMsg{Nameplates: []NameplateInfo{{"1"}, {"2"}}, ServerTX: 3},
		&NameplatesMsg{Nameplates: []NameplateInfo{}, ServerTX: 3},
		&AllocatedMsg{Nameplate: "4", ServerTX: 4}, &ClaimedMsg{Mailbox: "mb", ServerTX: 5},
		&ReleasedMsg{ServerTX: 6},
		&MessageMsg{Side: "s", Phase: "p", Body: []byte("hello"), ServerRX: 7, ID: "0007", ServerTX: 8},
		&ClosedMsg{ServerTX: 9}, &PongMsg{Pong: 10, ServerTX: 11},
		&ErrorMsg{Error: "crowded", Orig: json.RawMessage(`{"type":"claim"}`), ServerTX: 12},
	}
	for _, m := range server {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"`+m.MsgType()+`"`)) {
			t.Errorf("%s lacks type first", b)
		}
		d, err := DecodeServerMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(d, m) {
			t.Errorf("%s:\n got %#v\nwant %#v", b, d, m)
		}
	}
	// Python servers send "id": null in acks for id-less messages.
	b, _ := json.Marshal(AckMsg{})
	if !strings.Contains(string(b), `"id":null`) {
		t.Errorf("ack without id: %s", b)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		in     string
		server bool
		kind   error
		field  string
	}{
		{`not json`, true, ErrMalformedMessage, ""},
		{`[1,2]`, false, ErrMalformedMessage, ""},
		{`null`, true, ErrMalformedMessage, ""},
		{"{\"type\":\"ack\",\"x\":\"\xff\"}", true, ErrMalformedMessage, ""},
		{`{"id":"1"}`, false, ErrMissingType, ""},
		{`{"type":5}`, true, ErrBadField, "type"},
		{`{"type":"welcome"}`, true, ErrMissingField, "welcome"},
		{`{"type":"welcome","welcome":[]}`, true, ErrBadField, "welcome"},
		{`{"type":"welcome","welcome":{"motd":3}}`, true, ErrBadField, "welcome"},
		{`{"type":"frob"}`, true, ErrUnknownType, ""},
		{`{"type":"bind","appid":"a","side":"s"}`, true, ErrUnknownType, ""},
		{`{"type":"welcome","welcome":{}}`, false, ErrUnknownType, ""},
		{`{"type":"ack","server_tx":"now"}`, true, ErrBadField, "server_tx"},
		{`{"type":"message","side":"s","phase":"p","body":"zz"}`, true, ErrBadField, "body"},
		{`{"type":"message","side":"s","phase":"p","body":"abc"}`, true, ErrBadField, "body"},
		{`{"type":"message","side":"s","phase":"p"}`, true, ErrMissingField, "body"},
		{`{"type":"message","side":"s","phase":1,"body":""}`, true, ErrBadField, "phase"},
		{`{"type":"message","side":"s","phase":"p","body":"","server_rx":"x"}`, true, ErrBadField, "server_rx"},
		{`{"type":"nameplates","nameplates":[{"id":4}]}`, true, ErrBadField, "nameplates"},
		{`{"type":"nameplates","nameplates":[null]}`, true, ErrBadField, "nameplates"},
		{`{"type":"nameplates","nameplates":{}}`, true, ErrBadField, "nameplates"},
		{`{"type":"allocated"}`, true, ErrMissingField, "nameplate"},
		{`{"type":"claimed","mailbox":{}}`, true, ErrBadField, "mailbox"},
		{`{"type":"pong","pong":"x"}`, true, ErrBadField, "pong"},
		{`{"type":"error"}`, true, ErrMissingField, "error"},
		{`{"type":"bind","side":"s"}`, false, ErrMissingField, "appid"},
		{`{"type":"bind","appid":"a"}`, false, ErrMissingField, "side"},
		{`{"type":"bind","appid":"a","side":"s","client_version":"x"}`, false, ErrBadField, "client_version"},
		{`{"type":"claim"}`, false, ErrMissingField, "nameplate"},
		{`{"type":"claim","nameplate":4}`, false, ErrBadField, "nameplate"},
		{`{"type":"open"}`, false, ErrMissingField, "mailbox"},
		{`{"type":"add","body":""}`, false, ErrMissingField, "phase"},
		{`{"type":"add","phase":"p"}`, false, ErrMissingField, "body"},
		{`{"type":"add","phase":"p","body":"0g"}`, false, ErrBadField, "body"},
		{`{"type":"close","mood":7}`, false, ErrBadField, "mood"},
		{`{"type":"ping"}`, false, ErrMissingField, "ping"},
		{`{"type":"ping","ping":1.5}`, false, ErrBadField, "ping"},
		{`{"type":"submit-permissions"}`, false, ErrMissingField, "method"},
		{`{"type":"TYPE"}`, false, ErrUnknownType, ""},
		{`{"Type":"list"}`, false, ErrMissingType, ""},
	}
	for _, c := range cases {
		var err error
		if c.server {
			_, err = DecodeServerMessage([]byte(c.in))
		} else {
			_, err = DecodeClientMessage([]byte(c.in))
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: got %v, want *DecodeError", c.in, err)
			continue
		}
		if !errors.Is(err, c.kind) || de.Field != c.field {
			t.Errorf("%s: got %v (field %q), want %v field %q", c.in, err, de.Field, c.kind, c.field)
		}
		if err.Error() == "" {
			t.Errorf("%s: empty error text", c.in)
		}
	}
	// The id is recovered even when the rest is bad, so a server can ack.
	_, err := DecodeClientMessage([]byte(`{"type":"claim","id":"beef"}`))
	var de *DecodeError
	if !errors.As(err, &de) || de.ID != "beef" || de.Type != "claim" {
		t.Errorf("id not recovered: %#v", err)
	}
}

// Non-string ids are tolerated (Python copies them without checking).
func TestLooseIDs(t *testing.T) {
	m, err := DecodeServerMessage([]byte(`{"type":"message","side":"s","phase":"p","body":"AB","id":17}`))
	if err != nil {
		t.Fatal(err)
	}
	if mm := m.(*MessageMsg); mm.ID != "17" || !bytes.Equal(mm.Body, []byte{0xab}) {
		t.Errorf("%+v", mm)
	}
	c, err := DecodeClientMessage([]byte(`{"type":"list","id":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.(*ListMsg).ID != "[1]" {
		t.Errorf("%+v", c)
	}
}

func FuzzDecodeServerMessage(f *testing.F) {
	for _, s := range pythonServerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeServerMessage(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || m != nil {
				t.Fatalf("bad error %T %v with %v", err, err, m)
			}
			_ = err.Error()
			return
		}
		// Whatever decodes must re-encode and decode to the same thing.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		m2, err := DecodeServerMessage(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if w, ok := m.(*WelcomeMsg); ok { // Raw is re-serialised compactly
			w2 := m2.(*WelcomeMsg)
			if w.Welcome.MOTD != w2.Welcome.MOTD || w.Welcome.Error != w2.Welcome.Error ||
				w.Welcome.CurrentCLIVersion != w2.Welcome.CurrentCLIVersion || len(w.Welcome.Raw) != len(w2.Welcome.Raw) {
				t.Fatalf("welcome changed: %#v -> %#v", w, w2)
			}
			return
		}
		if e, ok := m.(*ErrorMsg); ok {
			if e.Error != m2.(*ErrorMsg).Error {
				t.Fatalf("error changed")
			}
			return
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %#v -> %#v", m, m2)
		}
	})
}

func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range pythonClientSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClientMessage(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || m != nil {
				t.Fatalf("bad error %T %v with %v", err, err, m)
			}
			_ = err.Error()
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		m2, err := DecodeClientMessage(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if b, ok := m.(*BindMsg); ok && len(b.ClientVersion) == 0 {
			b.ClientVersion = nil // [] is omitted on re-encode
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %#v -> %#v", m, m2)
		}
	})
}
