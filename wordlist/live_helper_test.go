package wordlist

import (
	"encoding/json"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// pyPeer is testdata/pyhelper.py under Debian's python3, calling
// magic-wormhole 0.12's _wordlist, _code and _nameplate.
type pyPeer struct {
	t  testing.TB
	sc *interop.Script
}

func startPy(t testing.TB) *pyPeer {
	t.Helper()
	return &pyPeer{t: t, sc: interop.StartScript(t, "testdata/pyhelper.py", "wormhole")}
}

// call sends req and decodes the reply into resp; a Python exception fails
// the test.
func (p *pyPeer) call(req map[string]any, resp any) {
	p.t.Helper()
	line := p.sc.Roundtrip(req)
	var e struct{ Error, Text string }
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		p.t.Fatalf("python raised %s: %s", e.Error, e.Text)
	}
	if err := json.Unmarshal(line, resp); err != nil {
		p.t.Fatalf("bad reply %.200q: %v", line, err)
	}
}
