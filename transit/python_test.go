package transit_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/transit"
)

// payload is the script's deterministic data: sha256 chain from "seed".
func payload(n int) []byte {
	h := sha256.Sum256([]byte("seed"))
	var out []byte
	for len(out) < n {
		out = append(out, h[:]...)
		h = sha256.Sum256(h[:])
	}
	return out[:n]
}

type pyTransit struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	errb *lockedBuffer
}

// lockedBuffer collects the script's stderr, written by os/exec's copier
// goroutine while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPyTransitHints starts the script and reads its hints. Python 0.12's
// transit picks its listening port by binding 127.0.0.1:0, closing it and
// then listening on *:port (transit.py allocate_tcp_port); under a busy
// test run another socket can take that port in between, and the script
// dies with CannotListenError before doing anything. That race is
// Python's own, so this retries exactly once, and says so.
func startPyTransitHints(t *testing.T, cfg map[string]any, v any) *pyTransit {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := startPyTransit(t, cfg)
		if p.out.Scan() {
			if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
				t.Fatalf("python said %q: %v", p.out.Bytes(), err)
			}
			return p
		}
		_ = p.cmd.Wait() // stdout hit EOF: collect all of stderr
		stderr := p.errb.String()
		if attempt == 1 && strings.Contains(stderr, "CannotListenError") {
			t.Logf("retrying once: Python transit lost its own listen-port race:\n%s", stderr)
			continue
		}
		t.Fatalf("python transit ended before its hints: %v\nstderr:\n%s", p.out.Err(), stderr)
	}
}

func startPyTransit(t *testing.T, cfg map[string]any) *pyTransit {
	t.Helper()
	py := interop.NeedPython(t, "wormhole.transit", "twisted")
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(py, "testdata/pytransit.py", string(b))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &pyTransit{cmd: cmd, errb: &lockedBuffer{}}
	var err error
	if p.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.errb
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(nil, 1<<20)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return p
}

func (p *pyTransit) read(t *testing.T, v any) {
	t.Helper()
	if !p.out.Scan() {
		t.Fatalf("python transit ended: %v\nstderr:\n%s", p.out.Err(), p.errb.String())
	}
	if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
		t.Fatalf("python said %q: %v", p.out.Bytes(), err)
	}
}

// Go transit against Python's wormhole.transit, both roles, direct and
// relayed (through our relay and through Python's).
func TestPythonTransit(t *testing.T) {
	const n = 300_000
	for _, goSender := range []bool{true, false} {
		for _, mode := range []string{"direct", "direct-inbound", "our-relay", "python-relay", "dead-relay", "dead-direct"} {
			name := map[bool]string{true: "go-sends", false: "python-sends"}[goSender] + "/" + mode
			t.Run(name, func(t *testing.T) {
				key := testKey()
				var relayLoc string
				switch mode {
				case "our-relay":
					relayLoc = relaytest.Start(t).Hint()
				case "python-relay":
					relayLoc = interop.StartPythonRelay(t).Hint()
				case "dead-direct":
					relayLoc = relaytest.Start(t).Hint()
				}
				var bogus []hints.Hint // unreachable direct hints, sent both ways
				if mode == "dead-direct" {
					bogus = []hints.Hint{hints.DirectTCPV1{Hostname: "127.0.0.1", Port: deadPort(t)}}
				}
				cfg := map[string]any{"role": "receiver", "key": hex.EncodeToString(key), "payload": n, "relay_delay": 0.05}
				if goSender == false {
					cfg["role"] = "sender"
				}
				o := transit.Options{IsSender: goSender, Key: key, Listen: hints.ListenOptions{LoopbackOnly: true}}
				if relayLoc != "" {
					// Relay only: neither side listens. Python knows the
					// relay itself; Go learns it from Python's hints.
					cfg["relay"] = relayLoc
					cfg["no_listen"] = true
					o.NoListen = true
				}
				wantRelay := relayLoc != ""
				if mode == "dead-relay" {
					// Both listen, and both know a relay that is down.
					cfg["relay"] = "tcp:127.0.0.1:" + itoa(deadPort(t))
					o.Plan.RelayDelay = -1 // try it at once
				}
				if mode == "direct-inbound" {
					// Go only listens: Python has to dial us.
					o.Plan.NoDirect = true
				}
				var ph struct{ Hints json.RawMessage }
				py := startPyTransitHints(t, cfg, &ph)
				peer, err := hints.ParseHints(ph.Hints)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := transit.New(o)
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				mine, err := tr.LocalHints(ctx)
				if err != nil {
					t.Fatal(err)
				}
				mj, _ := hints.MarshalHints(append(mine, bogus...))
				py.in.Write([]byte(`{"hints": ` + string(mj) + "}\n"))
				tr.AddPeerHints(append(peer, bogus...))
				c, err := tr.Connect(ctx)
				if err != nil {
					t.Fatalf("connect: %v\npython stderr:\n%s", err, py.errb)
				}
				defer c.Close()
				c.NetConn().SetDeadline(time.Now().Add(60 * time.Second)) // safety net
				var conn struct{ Connected string }
				py.read(t, &conn)
				t.Logf("go via %s, python via %s", c.Candidate(), conn.Connected)
				if c.Relayed() != wantRelay || strings.Contains(conn.Connected, "relay") != wantRelay {
					t.Fatalf("wrong path: go %v, python %q", c.Candidate(), conn.Connected)
				}
				if mode == "direct-inbound" && !c.Candidate().Inbound {
					t.Fatalf("not inbound: %v", c.Candidate())
				}
				// Python -> Go.
				first, err := c.ReceiveRecord()
				if err != nil || string(first) != "hello from python" {
					t.Fatalf("first record %q %v", first, err)
				}
				got := make([]byte, n)
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(err)
				}
				if sha256.Sum256(got) != sha256.Sum256(payload(n)) {
					t.Fatal("payload from python differs")
				}
				// Go -> Python.
				if err := c.SendRecord([]byte("hello from go")); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(payload(n)); err != nil {
					t.Fatal(err)
				}
				c.SendRecord([]byte("bye"))
				var res struct{ Got, Sha256, Last string }
				py.read(t, &res)
				want := sha256.Sum256(payload(n))
				if res.Got != "hello from go" || res.Sha256 != hex.EncodeToString(want[:]) || res.Last != "bye" {
					t.Fatalf("python got %+v", res)
				}
			})
		}
	}
}
