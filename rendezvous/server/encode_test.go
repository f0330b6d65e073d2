package server

import (
	"bytes"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"testing"
	"unicode/utf8"
)

// marshalFrame is the old way: json.Marshal of the map, then a frame.
func marshalFrame(t testing.TB, typ string, tx float64, fields map[string]any) []byte {
	fields["type"] = typ
	fields["server_tx"] = tx
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return appendFrame(nil, opText, b)
}

func checkMessageEncoding(t testing.TB, sm Message, tx float64) {
	id := sm.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	want := marshalFrame(t, "message", tx, map[string]any{"side": sm.Side, "phase": sm.Phase, "body": sm.Body, "server_rx": sm.ServerRx, "id": id})
	got := encodeFrame("message", tx,
		field{"body", appendString(nil, sm.Body)},
		field{"id", appendRaw(nil, sm.ID)},
		field{"phase", appendString(nil, sm.Phase)},
		field{"server_rx", appendFloat(nil, sm.ServerRx)},
		field{"side", appendString(nil, sm.Side)})
	if !bytes.Equal(got, want) {
		t.Fatalf("message %+v:\n got %q\nwant %q", sm, got, want)
	}
}

// TestEncodeMatchesMarshal: the hand-written encoders produce exactly
// what json.Marshal of the equivalent map produced before.
func TestEncodeMatchesMarshal(t *testing.T) {
	tx := 1764405000.123456
	for _, c := range []struct {
		typ    string
		fields []field
		m      map[string]any
	}{
		{"ack", []field{{"id", appendRaw(nil, json.RawMessage(`"0001"`))}}, map[string]any{"id": json.RawMessage(`"0001"`)}},
		{"ack", []field{{"id", appendRaw(nil, json.RawMessage(`null`))}}, map[string]any{"id": json.RawMessage(`null`)}},
		{"ack", []field{{"id", appendRaw(nil, json.RawMessage(`[1, {"a" : "<&>"}]`))}}, map[string]any{"id": json.RawMessage(`[1, {"a" : "<&>"}]`)}},
		{"pong", []field{{"pong", appendRaw(nil, json.RawMessage(`12.5e3`))}}, map[string]any{"pong": json.RawMessage(`12.5e3`)}},
		{"allocated", []field{{"nameplate", appendString(nil, "17")}}, map[string]any{"nameplate": "17"}},
		{"claimed", []field{{"mailbox", appendString(nil, "x\u2028<y>\"\\\x01\xff")}}, map[string]any{"mailbox": "x\u2028<y>\"\\\x01\xff"}},
		{"released", nil, map[string]any{}},
		{"closed", nil, map[string]any{}},
	} {
		got := encodeFrame(c.typ, tx, c.fields...)
		want := marshalFrame(t, c.typ, tx, c.m)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", c.typ, got, want)
		}
	}
	for _, f := range []float64{0, 1, -1, 1e-7, 123456789.000001, 1e21, 1e300, math.SmallestNonzeroFloat64} {
		checkMessageEncoding(t, Message{Side: "s", Phase: "pake", Body: "00ff", ServerRx: f, ID: json.RawMessage(`"x"`)}, f)
	}
	long := string(bytes.Repeat([]byte("ab"), 40000)) // 16-bit and 64-bit frame lengths
	checkMessageEncoding(t, Message{Side: "s", Phase: "1", Body: long[:300], ServerRx: 1}, 2)
	checkMessageEncoding(t, Message{Side: "s", Phase: "1", Body: long, ServerRx: 1}, 2)
}

// FuzzEncodeServerMessage compares the hand-written message encoding with
// json.Marshal for arbitrary strings, ids and times.
func FuzzEncodeServerMessage(f *testing.F) {
	f.Add("side", "pake", "body", `"0005"`, 1764405000.5)
	f.Add("<s>", "ph\u2029", "b\x00dy\xc3", `{"k": [1,2]}`, -3e-9)
	f.Add("", "", "", ``, 0.0)
	f.Fuzz(func(t *testing.T, side, phase, body, id string, rx float64) {
		if math.IsNaN(rx) || math.IsInf(rx, 0) {
			return
		}
		raw := json.RawMessage(id)
		if id != "" && !json.Valid(raw) {
			return // ids come from validated client messages
		}
		checkMessageEncoding(t, Message{Side: side, Phase: phase, Body: body, ServerRx: rx, ID: raw}, rx)
	})
}

// FuzzDecodeClientMessage: the hand-split fast path agrees with
// encoding/json (same keys, same raw values, same errors).
func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"add","phase":"pake","body":"aa","id":"0005"}`,
		` { "type" : "bind" , "appid" : "a\"b" , "x" : [1, {"y": "}"}], "n": -1.5e3, "t": true, "z": null } `,
		`{"a":1,"a":2}`, `{"t\u0079pe":"ping"}`, `{}`, `[]`, `null`, `"s"`, `{"a":}`, `{"a":"\\"}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeClientMessage(b)
		if !utf8.Valid(b) {
			if err == nil {
				t.Fatalf("%q: invalid UTF-8 decoded", b)
			}
			return
		}
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		if werr != nil || want == nil {
			if err == nil {
				t.Fatalf("%q: decoded, encoding/json says %v", b, werr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v, encoding/json decodes it", b, err)
		}
		for k, v := range want {
			got, ok := m.get(k)
			if !ok || !bytes.Equal(got, v) {
				t.Fatalf("%q: key %q = %q, encoding/json %q", b, k, got, v)
			}
			var ws string
			wstrErr := json.Unmarshal(v, &ws)
			gs, present, gerr := m.str(k)
			if !present || (gerr == nil) != (wstrErr == nil && len(v) > 0 && v[0] == '"') || (gerr == nil && gs != ws) {
				t.Fatalf("%q: str(%q) = %q, %v; encoding/json %q, %v", b, k, gs, gerr, ws, wstrErr)
			}
		}
		for _, fl := range m.fields {
			if _, ok := want[fl.key]; !ok {
				t.Fatalf("%q: extra key %q", b, fl.key)
			}
		}
	})
}

// The welcome as it was built before (a map for json.Marshal), the
// reference for TestWelcomeEncoding.
func oldWelcome(s *Server, r *http.Request) map[string]any {
	w := make(map[string]any, len(s.welcome)+1)
	for k, v := range s.welcome {
		w[k] = v
	}
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if s.opts.TrustProxyHeaders {
		if h := r.Header.Get("X-Real-IP"); h != "" {
			host, err = h, nil
			if p := r.Header.Get("X-Real-Port"); p != "" {
				port = p
			}
		}
	}
	if err != nil {
		return w
	}
	ip := net.ParseIP(host)
	p, perr := strconv.Atoi(port)
	if ip == nil || perr != nil {
		return w
	}
	if ip4 := ip.To4(); ip4 != nil {
		w["your-address"] = map[string]any{"port": p, "ipv4": ip4.String()}
	} else {
		w["your-address"] = map[string]any{"port": p, "ipv6": ip.String()}
	}
	return w
}

// TestWelcomeEncoding: the pre-encoded welcome plus your-address is what
// json.Marshal of the welcome map gave.
func TestWelcomeEncoding(t *testing.T) {
	for _, o := range []Options{
		{},
		{MOTD: "<hello> & \"bye\"\n", Error: "go away", AdvertiseVersion: "0.12.0", TrustProxyHeaders: true},
		{Hashcash: &HashcashOptions{Bits: 6, Resource: "wormhole"}},
	} {
		o.PruneInterval = -1
		s, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*http.Request{
			{RemoteAddr: "127.0.0.1:5555", Header: http.Header{}},
			{RemoteAddr: "[::1]:80", Header: http.Header{}},
			{RemoteAddr: "[::ffff:10.1.2.3]:7", Header: http.Header{}},
			{RemoteAddr: "nonsense", Header: http.Header{}},
			{RemoteAddr: "1.2.3.4:5", Header: http.Header{"X-Real-Ip": {"2001:db8::1"}, "X-Real-Port": {"-3"}}},
			{RemoteAddr: "1.2.3.4:5", Header: http.Header{"X-Real-Ip": {"bad"}}},
		} {
			got := encodeFrame("welcome", 1.5, field{"welcome", s.welcomeValue(r)})
			want := marshalFrame(t, "welcome", 1.5, map[string]any{"welcome": oldWelcome(s, r)})
			if !bytes.Equal(got, want) {
				t.Errorf("options %+v, request %s %v:\n got %q\nwant %q", o, r.RemoteAddr, r.Header, got, want)
			}
		}
		s.Close()
	}
}
