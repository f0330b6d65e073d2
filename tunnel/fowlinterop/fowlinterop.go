// Package fowlinterop drives real fowl (https://github.com/meejah/fowl, the
// Python "Forward Over Wormhole Locally") and real wh-tunnel processes
// against each other, for the by-hand interoperability runs recorded in
// docs/fowl-interop.md and for benchmarks/fowl_test.go.
//
// CI cannot install fowl: it needs Python magic-wormhole >= 0.20 (Debian
// ships 0.12) and Twisted >= 23.10 (Debian ships 22.4). So everything here
// runs only when WH_FOWL names a PYTHONPATH holding fowl's src/, upstream
// magic-wormhole's src/, the noiseprotocol package and, on Twisted < 23.10,
// a shim providing twisted.internet.defer.race (see docs/fowl-interop.md).
// With WH_FOWL unset the tests skip and say so; with WH_FOWL set but
// unusable they fail.
//
// fowl is run as fowld (its JSON-lines daemon, `python -m fowl`) under
// Debian's /usr/bin/python3, with magic-wormhole's public transit relay
// replaced by a loopback one: fowl has no option for it, so the launcher
// sets wormhole.cli.public_relay.TRANSIT_RELAY before importing fowl.
package fowlinterop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// EnvVar is the environment variable naming fowl's PYTHONPATH.
const EnvVar = "WH_FOWL"

// WaitTimeout bounds every wait for a process event or exit (a safety net,
// not an assertion about speed).
const WaitTimeout = 2 * time.Minute

// Env is a usable fowl installation.
type Env struct {
	Python     string // interpreter (Debian's /usr/bin/python3)
	PythonPath string // value of WH_FOWL
	// Versions is what the launcher printed: fowl's version and the
	// files fowl and wormhole were imported from.
	Versions string
}

// launcher starts fowld with the transit relay hint from WH_FOWL_TRANSIT
// (fowl has no option for it; the default is the public relay, which a
// test must never reach). It refuses to run if defer.race is missing.
const launcher = `
import os, sys
from twisted.internet import defer
if not hasattr(defer, "race"):
    sys.exit("twisted.internet.defer.race is missing (Twisted < 23.10): put the defer.race shim of docs/fowl-interop.md on WH_FOWL")
import wormhole.cli.public_relay as pr
pr.TRANSIT_RELAY = os.environ["WH_FOWL_TRANSIT"]
import fowl, fowl._proto, fowl.api, wormhole
fowl._proto.TRANSIT_RELAY = pr.TRANSIT_RELAY
fowl.api.TRANSIT_RELAY = pr.TRANSIT_RELAY
if sys.argv[1:] == ["--check"]:
    import wormhole._dilation.manager as m
    print("fowl", fowl.__version__, fowl.__file__, "wormhole", wormhole.__file__, "dilation", m.DILATION_VERSIONS)
    sys.exit(0)
from fowl.cli import fowld
fowld(sys.argv[1:])
`

// Need returns the fowl environment named by WH_FOWL. It skips t when
// WH_FOWL is unset (CI cannot install fowl) and fails t when it is set but
// fowl cannot be imported and launched.
func Need(t testing.TB) *Env {
	t.Helper()
	pp := os.Getenv(EnvVar)
	if pp == "" {
		t.Skipf("%s unset: set it to a PYTHONPATH with fowl's src/, upstream magic-wormhole's src/ and noiseprotocol "+
			"(CI cannot install fowl or magic-wormhole >= 0.20; see docs/fowl-interop.md)", EnvVar)
	}
	if _, err := os.Stat(interop.Python); err != nil {
		t.Fatalf("%s is set but %s is missing: %v", EnvVar, interop.Python, err)
	}
	cmd := exec.Command(interop.Python, "-c", launcher, "--check")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pp, "WH_FOWL_TRANSIT=tcp:127.0.0.1:9")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s=%s is set but fowl cannot be launched: %v\n%s", EnvVar, pp, err, out)
	}
	return &Env{Python: interop.Python, PythonPath: pp, Versions: strings.TrimSpace(string(out))}
}

// BinEnvVar names a prebuilt wh-tunnel binary for BuildWhTunnel to return
// instead of building one (for A/B runs of two builds).
const BinEnvVar = "WH_TUNNEL_BIN"

// BuildWhTunnel builds cmd/wh-tunnel into a temporary directory, or
// returns the binary named by WH_TUNNEL_BIN.
func BuildWhTunnel(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(BinEnvVar); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v", BinEnvVar, err)
		}
		return bin
	}
	bin := filepath.Join(t.TempDir(), "wh-tunnel")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/wormhole-go/wormhole/cmd/wh-tunnel").CombinedOutput()
	if err != nil {
		t.Fatalf("go build wh-tunnel: %v\n%s", err, out)
	}
	return bin
}

// Event is one JSON line from fowld or wh-tunnel --json.
type Event map[string]any

// Kind is the event's "kind".
func (e Event) Kind() string { s, _ := e["kind"].(string); return s }

// Str is a string field ("" if absent).
func (e Event) Str(k string) string { s, _ := e[k].(string); return s }

// Int is a numeric field (0 if absent).
func (e Event) Int(k string) int { f, _ := e[k].(float64); return int(f) }

// Proc is a running fowld or wh-tunnel.
type Proc struct {
	Name string
	t    testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser

	notify chan struct{} // cap 1: new events in pending
	done   chan struct{}
	err    error // from Wait, valid after done

	mu      sync.Mutex
	pending []Event // read but not yet matched by Wait
	all     []Event
	bytes   map[string]map[int]int64 // kind -> id -> sum of "bytes" of bytes-in / bytes-out events
	stderr  bytes.Buffer
}

// maxEvents bounds the events kept (bytes-in/bytes-out are only summed).
const maxEvents = 100000

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if n := w.b.Len(); n > 2<<20 { // bounded: keep the last MiB or so
		tail := append([]byte(nil), w.b.Bytes()[n-1<<20:]...)
		w.b.Reset()
		w.b.WriteString("[...]\n")
		w.b.Write(tail)
	}
	return len(p), nil
}

func start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, t: t, cmd: cmd, notify: make(chan struct{}, 1), done: make(chan struct{}), bytes: map[string]map[int]int64{}}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.in = in
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind() != "" {
				p.mu.Lock()
				switch k := e.Kind(); {
				case k == "bytes-in" || k == "bytes-out":
					if p.bytes[k] == nil {
						p.bytes[k] = map[int]int64{}
					}
					if m := p.bytes[k]; len(m) < maxEvents {
						m[e.Int("id")] += int64(e.Int("bytes"))
					}
				case len(p.all) < maxEvents:
					p.all = append(p.all, e)
					p.pending = append(p.pending, e)
				}
				p.mu.Unlock()
				select {
				case p.notify <- struct{}{}:
				default:
				}
			} else {
				p.mu.Lock()
				fmt.Fprintf(&p.stderr, "[stdout] %s\n", sc.Bytes())
				p.mu.Unlock()
			}
		}
		io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s events:\n%s", name, p.History())
			t.Logf("%s stderr:\n%s", name, p.Stderr())
		}
	})
	return p
}

// StartFowld starts fowld (python -m fowl's daemon) on mailbox URL mb with
// transitHint as the Dilation transit relay.
func (e *Env) StartFowld(t testing.TB, name, mb, transitHint string) *Proc {
	t.Helper()
	cmd := exec.Command(e.Python, "-c", launcher, "--mailbox", mb)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+e.PythonPath, "WH_FOWL_TRANSIT="+transitHint, "PYTHONUNBUFFERED=1")
	return start(t, name, cmd)
}

// ProfileEnvVar names a directory: when set, StartWhTunnel runs wh-tunnel
// with --cpuprofile DIR/NAME-PID.pprof and, when t ends, stops it with
// SIGINT (not SIGKILL) so that the profile is written.
const ProfileEnvVar = "WH_TUNNEL_CPUPROFILE"

// StartWhTunnel starts wh-tunnel --json with loopback-only Dilation
// listening and the given extra arguments (forwards, code); with
// WH_FOWL_VERBOSE set, also -v; with WH_TUNNEL_CPUPROFILE set, a CPU
// profile (see ProfileEnvVar).
func StartWhTunnel(t testing.TB, bin, name, mb, transitHint string, args ...string) *Proc {
	t.Helper()
	all := []string{"--json", "--relay-url", mb, "--transit-helper", transitHint, "--listen-addr", "127.0.0.1:0"}
	if os.Getenv("WH_FOWL_VERBOSE") != "" {
		all = append(all, "-v") // debug logs on stderr, shown when the test fails
	}
	dir := os.Getenv(ProfileEnvVar)
	if dir != "" {
		f, err := os.CreateTemp(dir, strings.ReplaceAll(name, "/", "_")+"-*.pprof")
		if err != nil {
			t.Fatalf("%s: %v", ProfileEnvVar, err)
		}
		f.Close()
		all = append(all, "--cpuprofile", f.Name())
	}
	all = append(all, args...)
	cmd := exec.Command(bin, all...)
	p := start(t, name, cmd)
	if dir != "" {
		// Runs before start's SIGKILL cleanup (cleanups run last first).
		t.Cleanup(func() { p.Stop(WaitTimeout) })
	}
	return p
}

// Stop asks the process to end (SIGINT) and waits up to timeout for it.
// It reports whether the process has exited.
func (p *Proc) Stop(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Send writes one fowld command (a JSON line).
func (p *Proc) Send(cmd map[string]any) {
	p.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("%s: sending %s: %v", p.Name, b, err)
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// ErrExited is returned by Next when the process ended.
var ErrExited = errors.New("fowlinterop: process exited")

// Wait returns the first event of this kind for which match (nil: any)
// holds, looking first at events already read; it fails t after
// WaitTimeout or if the process exits first.
func (p *Proc) Wait(kind string, match func(Event) bool) Event {
	p.t.Helper()
	e, err := p.next(kind, match, WaitTimeout)
	if err != nil {
		p.t.Fatalf("%s: waiting for %q: %v\nevents so far: %s", p.Name, kind, err, p.History())
	}
	return e
}

// Named matches events whose "name" is n.
func Named(n string) func(Event) bool { return func(e Event) bool { return e.Str("name") == n } }

func (p *Proc) next(kind string, match func(Event) bool, timeout time.Duration) (Event, error) {
	ok := func(e Event) bool { return e.Kind() == kind && (match == nil || match(e)) }
	take := func() Event {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, e := range p.pending {
			if ok(e) {
				p.pending = append(p.pending[:i], p.pending[i+1:]...)
				return e
			}
		}
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if e := take(); e != nil {
			return e, nil
		}
		select {
		case <-p.notify:
		case <-p.done:
			if e := take(); e != nil {
				return e, nil
			}
			return nil, fmt.Errorf("%w (%v)", ErrExited, p.err)
		case <-timer.C:
			return nil, fmt.Errorf("no such event after %v", timeout)
		}
	}
}

// Bytes is the sum of the "bytes" fields of the bytes-in or bytes-out
// events (kind) seen so far, per connection id.
func (p *Proc) Bytes(kind string) map[int]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[int]int64{}
	for id, n := range p.bytes[kind] {
		m[id] = n
	}
	return m
}

// ExitCode waits for the process to end and returns its exit status.
func (p *Proc) ExitCode() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(WaitTimeout):
		p.t.Fatalf("%s did not exit", p.Name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("%s: %v", p.Name, p.err)
	}
	return 0
}

// History is every event read so far, one JSON object a line.
func (p *Proc) History() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sb strings.Builder
	for _, e := range p.all {
		b, _ := json.Marshal(e)
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Events returns a copy of every event read so far.
func (p *Proc) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.all...)
}

// Stderr is what the process wrote to stderr (the last MiB or so).
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// CPU is the user+system CPU time the process has used so far (Linux
// /proc/PID/stat, clock ticks of 10ms).
func (p *Proc) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("fowlinterop: odd /proc stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("fowlinterop: short /proc stat %q", b)
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}
