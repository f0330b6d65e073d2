package wormhole

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// pyPeer is testdata/pypeer.py: Python's magic-wormhole library (with the
// Twisted reactor) driven over stdin/stdout JSON lines.
type pyPeer struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	nextID int
	wait   map[int]chan map[string]any
	dead   chan struct{}
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.b) < 1<<20 {
		s.b = append(s.b, p...)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func startPyPeer(t testing.TB, relayURL, appID string) *pyPeer {
	t.Helper()
	py := interop.NeedPython(t, "wormhole", "twisted")
	script, err := filepath.Abs(filepath.Join("testdata", "pypeer.py"))
	if err != nil {
		t.Fatal(err)
	}
	p := &pyPeer{t: t, wait: map[int]chan map[string]any{}, dead: make(chan struct{}), stderr: &syncBuffer{}}
	p.cmd = exec.Command(py, script, relayURL, appID)
	p.cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.dead)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue
			}
			id, _ := m["id"].(float64)
			p.mu.Lock()
			ch := p.wait[int(id)]
			delete(p.wait, int(id))
			p.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pyPeer) stop() {
	_ = p.stdin.Close() // the script stops its reactor on EOF
	select {
	case <-p.dead:
	case <-waitTimeout():
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.dead
	}
	_ = p.cmd.Wait()
}

// call sends a command and returns a function that waits for its reply.
func (p *pyPeer) start(cmd map[string]any) func(ctx context.Context) (map[string]any, error) {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan map[string]any, 1)
	p.wait[id] = ch
	p.mu.Unlock()
	cmd["id"] = id
	b, _ := json.Marshal(cmd)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		return func(context.Context) (map[string]any, error) { return nil, err }
	}
	return func(ctx context.Context) (map[string]any, error) {
		select {
		case m := <-ch:
			if e, ok := m["error"]; ok {
				return m, fmt.Errorf("python %v: %v: %v", cmd["cmd"], e, m["msg"])
			}
			return m, nil
		case <-p.dead:
			return nil, fmt.Errorf("python peer exited; stderr:\n%s", p.stderr.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("python %v: %w; stderr:\n%s", cmd["cmd"], ctx.Err(), p.stderr.String())
		}
	}
}

func (p *pyPeer) call(ctx context.Context, cmd map[string]any) (map[string]any, error) {
	return p.start(cmd)(ctx)
}

func (p *pyPeer) must(ctx context.Context, cmd map[string]any) map[string]any {
	p.t.Helper()
	m, err := p.call(ctx, cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

func hexField(t testing.TB, m map[string]any) []byte {
	t.Helper()
	s, _ := m["hex"].(string)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in %v", m)
	}
	return b
}
