package load

import "testing"

func TestRawField(t *testing.T) {
	for _, c := range []struct {
		in, key, want string
		ok            bool
	}{
		{`{"mailbox":"abc","type":"claimed"}`, "mailbox", "abc", true},
		{`{"type": "allocated", "nameplate": "12"}`, "nameplate", "12", true},
		{`{"body":"nameplate","nameplate":"7"}`, "nameplate", "7", true},
		{`{"xside":"q","side":"aaaa"}`, "side", "aaaa", true},
		{`{"side":5}`, "side", "", false},
		{`{"other":"x"}`, "side", "", false},
	} {
		rc := &rawClient{in: []byte(c.in)}
		got, ok := rc.field(c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("%s %s: %q %v, want %q %v", c.in, c.key, got, ok, c.want, c.ok)
		}
	}
	rc := &rawClient{in: []byte(`{"server_tx": 1.5, "type": "ack", "id": "1"}`)}
	if !rc.is("ack") || rc.is("ac") || rc.is("error") {
		t.Error("is")
	}
}
