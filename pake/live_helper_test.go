package pake

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// pyPeer is testdata/pyhelper.py running under Debian's python3, driving
// the installed python-spake2, magic-wormhole and PyNaCl.
type pyPeer struct {
	t  testing.TB
	sc *interop.Script
}

func startPy(t testing.TB) *pyPeer {
	t.Helper()
	return &pyPeer{t: t, sc: interop.StartScript(t, "testdata/pyhelper.py", "spake2", "nacl", "wormhole")}
}

// pyResult is one reply line; "error" is set when Python raised.
type pyResult map[string]any

func (r pyResult) err() string {
	if e, ok := r["error"].(string); ok {
		return e + ": " + fmt.Sprint(r["text"])
	}
	return ""
}

func (r pyResult) bytes(t testing.TB, field string) []byte {
	t.Helper()
	if e := r.err(); e != "" {
		t.Fatalf("python raised %s", e)
	}
	s, ok := r[field].(string)
	if !ok {
		t.Fatalf("python reply %v has no %q", r, field)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call sends one request and returns Python's reply (errors included).
func (p *pyPeer) call(req map[string]any) pyResult {
	p.t.Helper()
	line := p.sc.Roundtrip(req)
	var r pyResult
	if err := json.Unmarshal(line, &r); err != nil {
		p.t.Fatalf("bad reply %q: %v", line, err)
	}
	return r
}

func hx(b []byte) string { return hex.EncodeToString(b) }
