package pake

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// pyPeer is testdata/pyhelper.py running under Debian's python3, driving
// the installed python-spake2, magic-wormhole and PyNaCl.
type pyPeer struct {
	t     testing.TB
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startPy(t testing.TB) *pyPeer {
	t.Helper()
	py := interop.NeedPython(t, "spake2", "nacl", "wormhole")
	// Safety net only: the helper answers each line immediately.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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
	stderr := &limitedBuffer{max: 64 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("python helper: %v\n%s", err, stderr.buf)
		}
		cancel()
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	return &pyPeer{t: t, stdin: stdin, out: sc}
}

type limitedBuffer struct {
	buf []byte
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
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
	var r pyResult
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		p.t.Fatalf("bad reply %q: %v", p.out.Bytes(), err)
	}
	return r
}

func hx(b []byte) string { return hex.EncodeToString(b) }
