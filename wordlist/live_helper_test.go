package wordlist

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// pyPeer is testdata/pyhelper.py under Debian's python3, calling
// magic-wormhole 0.12's _wordlist, _code and _nameplate.
type pyPeer struct {
	t     testing.TB
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startPy(t testing.TB) *pyPeer {
	t.Helper()
	py := interop.NeedPython(t, "wormhole")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // safety net
	cmd := exec.CommandContext(ctx, py, "testdata/pyhelper.py")
	cmd.Env = append(cmd.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("python helper: %v", err)
		}
		cancel()
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	return &pyPeer{t: t, stdin: stdin, out: sc}
}

// call sends req and decodes the reply into resp; a Python exception fails
// the test.
func (p *pyPeer) call(req map[string]any, resp any) {
	p.t.Helper()
	line, err := json.Marshal(req)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		p.t.Fatalf("write to python: %v", err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("python helper closed its output: %v", p.out.Err())
	}
	var e struct{ Error, Text string }
	if json.Unmarshal(p.out.Bytes(), &e) == nil && e.Error != "" {
		p.t.Fatalf("python raised %s: %s", e.Error, e.Text)
	}
	if err := json.Unmarshal(p.out.Bytes(), resp); err != nil {
		p.t.Fatalf("bad reply %.200q: %v", p.out.Bytes(), err)
	}
}
