package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

const handshakeAppID = "github.com/wormhole-go/bench"

// BenchmarkHandshake measures the wormhole handshake: from "code known"
// (both sides connected to the mailbox, SetCode called) to the first
// application message decrypted by the receiver (pake both ways, key,
// version both ways, message). Connecting and closing are outside the
// timed region, but each op still does a full pairing with its own
// nameplate and a clean close. allocs/op counts both Go wormholes (and,
// for "go/ourserver", the in-process server too).
//
// "python/pythonserver" runs the same exchange between two Python
// wormholes (Debian's magic-wormhole 0.12, Twisted) in one process via
// ../testdata/pypeer.py; its ns/op is the interval Python measured, and
// wall-ns/op includes creation, close and the stdin/stdout round trip.
func BenchmarkHandshake(b *testing.B) {
	b.Run("go/ourserver", func(b *testing.B) {
		srv := mailboxtest.Start(b)
		benchGoHandshake(b, srv.URL())
	})
	pymb := interop.StartPythonMailbox(b)
	b.Run("go/pythonserver", func(b *testing.B) { benchGoHandshake(b, pymb.URL()) })
	b.Run("python/pythonserver", func(b *testing.B) { benchPythonHandshake(b, pymb.URL()) })
}

func benchGoHandshake(b *testing.B, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // safety net
	defer cancel()
	opts := wormhole.Options{AppID: handshakeAppID, RendezvousURL: url}
	b.ReportAllocs()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		a, err := wormhole.New(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		c, err := wormhole.New(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		code := fmt.Sprintf("%d-bench-code", 100+i)
		b.StartTimer()
		if err := a.SetCode(code); err != nil {
			b.Fatal(err)
		}
		if err := c.SetCode(code); err != nil {
			b.Fatal(err)
		}
		go func() { _ = a.Send(ctx, []byte("ping")) }()
		m, err := c.Receive(ctx)
		b.StopTimer()
		if err != nil || string(m) != "ping" {
			b.Fatalf("received %q %v", m, err)
		}
		if err := c.Send(ctx, []byte("pong")); err != nil {
			b.Fatal(err)
		}
		if m, err := a.Receive(ctx); err != nil || string(m) != "pong" {
			b.Fatalf("received %q %v", m, err)
		}
		if err := a.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPythonHandshake(b *testing.B, url string) {
	py := interop.NeedPython(b, "wormhole", "twisted")
	script, err := filepath.Abs(filepath.Join("..", "testdata", "pypeer.py"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(py, script, url, handshakeAppID)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr limited
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the script stops on EOF
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	var inner time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		line, _ := json.Marshal(map[string]any{"id": i, "cmd": "handshake", "code": fmt.Sprintf("%d-bench-code", 100000+i)})
		if _, err := stdin.Write(append(line, '\n')); err != nil {
			b.Fatal(err)
		}
		if !sc.Scan() {
			b.Fatalf("python peer died: %v\n%s", sc.Err(), stderr.b)
		}
		var r struct {
			CodeToMessage float64 `json:"code_to_message"`
			Error         string  `json:"error"`
			Msg           string  `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Error != "" {
			b.Fatalf("python handshake: %s %s %v", r.Error, r.Msg, err)
		}
		inner += time.Duration(r.CodeToMessage * float64(time.Second))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "wall-ns/op")
	b.ReportMetric(float64(inner.Nanoseconds())/float64(b.N), "ns/op")
}

type limited struct{ b []byte }

func (l *limited) Write(p []byte) (int, error) {
	if len(l.b) < 64<<10 {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

var _ io.Writer = (*limited)(nil)
