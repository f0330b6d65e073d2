package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Script is one of our Python helper scripts running under Debian's
// python3 and speaking JSON lines: one request line in, one reply line out.
type Script struct {
	t      testing.TB
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr *headBuffer
}

// StartScript runs path (relative to the test's directory) with Debian's
// python3 after checking that it can import modules; it fails or skips
// like NeedPython. The script is stopped, and its exit status checked, when
// the test ends.
func StartScript(t testing.TB, path string, modules ...string) *Script {
	t.Helper()
	py := NeedPython(t, modules...)
	// Safety net only: the scripts answer each line at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, py, path)
	cmd.Env = append(cmd.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &Script{t: t, stdin: stdin, stderr: &headBuffer{max: 64 << 10}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("python %s: %v\n%s", path, err, s.stderr.String())
		}
		cancel()
	})
	s.out = bufio.NewScanner(stdout)
	s.out.Buffer(make([]byte, 0, 64<<10), 64<<20)
	return s
}

// Roundtrip sends req as one JSON line and returns the reply line.
func (s *Script) Roundtrip(req any) []byte {
	s.t.Helper()
	line, err := json.Marshal(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.stdin.Write(append(line, '\n')); err != nil {
		s.t.Fatalf("write to python: %v\n%s", err, s.stderr.String())
	}
	if !s.out.Scan() {
		s.t.Fatalf("python closed its output: %v\n%s", s.out.Err(), s.stderr.String())
	}
	return s.out.Bytes()
}

// headBuffer keeps the first max bytes of a process's stderr; os/exec's
// copier writes it while a test may read it.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *headBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
