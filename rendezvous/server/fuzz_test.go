package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// FuzzClientMessage feeds newline-separated client frames to one
// connection's handler (no network) and checks that the server neither
// panics nor emits anything but JSON objects with a type and server_tx, and
// that every frame with a type is acked before anything else it causes.
func FuzzClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","ping":1,"id":"0001"}`,
		`{"type":"bind","appid":"a","side":"s","client_version":["go","1"]}` + "\n" + `{"type":"allocate"}` + "\n" + `{"type":"claim","nameplate":"1"}`,
		`{"type":"bind","appid":"a","side":"s"}` + "\n" + `{"type":"open","mailbox":"m"}` + "\n" + `{"type":"add","phase":"pake","body":"00","id":7}` + "\n" + `{"type":"close","mood":"happy"}`,
		`{"type":"bind","appid":"a","side":"s"}` + "\n" + `{"type":"release","nameplate":null}` + "\n" + `{"type":"list"}`,
		`{"type":"submit-permissions","method":"hashcash","stamp":"1:1:260101:r::x:0"}`,
		`{"id":"x"}`, `{"type":`, `[]`, `null`, "\xff", `{"type":{"a":1}}`, `{"type":"claim","nameplate":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(Options{PruneInterval: -1, MaxMailboxMessages: 50})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// finishing: frames stay queued (no writer, no socket)
		c := &conn{s: s, finishing: true, permitted: true}
		frames := bytes.Split(data, []byte("\n"))
		if len(frames) > 50 {
			frames = frames[:50]
		}
		for _, fr := range frames {
			before := len(c.queue)
			fatal := c.handleFrame(fr)
			var out [][]byte
			for _, fr := range c.queue[before:] {
				out = append(out, serverFramePayload(t, fr))
			}
			if m, err := decodeClientMessage(fr); err == nil {
				if _, ok := m.typ(); ok {
					if len(out) == 0 || !bytes.Contains(out[0], []byte(`"type":"ack"`)) {
						t.Fatalf("frame %q: first reply %q is not an ack", fr, out)
					}
				}
			} else if fatal == nil {
				t.Fatalf("undecodable frame %q not fatal", fr)
			}
			for _, b := range out {
				var v map[string]json.RawMessage
				if err := json.Unmarshal(b, &v); err != nil || v == nil {
					t.Fatalf("server sent non-object %q", b)
				}
				var typ string
				if json.Unmarshal(v["type"], &typ) != nil || typ == "" || v["server_tx"] == nil {
					t.Fatalf("server message without type/server_tx: %s", b)
				}
			}
			if fatal != nil {
				break
			}
		}
	})
}

// serverFramePayload checks that b is one final unmasked text frame and
// returns its payload.
func serverFramePayload(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) < 2 || b[0] != 0x81 || b[1]&0x80 != 0 {
		t.Fatalf("not a final unmasked text frame: % x", b[:min(len(b), 4)])
	}
	n, h := int(b[1]), 2
	switch n {
	case 126:
		n, h = int(b[2])<<8|int(b[3]), 4
	case 127:
		n, h = int(binary.BigEndian.Uint64(b[2:10])), 10
	}
	if len(b) != h+n {
		t.Fatalf("frame length %d, header says %d+%d", len(b), h, n)
	}
	return b[h:]
}
