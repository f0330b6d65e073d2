// Package dilateinterop checks, by hand, that our Dilation (package dilate
// through (*wormhole.Wormhole).Dilate) interoperates with the LATEST upstream
// Python magic-wormhole, which CI cannot install. The tests run only when
// WH_PY_DILATION is set to a PYTHONPATH holding upstream's src/ and the
// noiseprotocol package, e.g.
//
//	WH_PY_DILATION=/work/pyenv/mw/src:/work/pyenv/noise \
//	  go test -v -timeout 30m ./dilate/interop/
//
// Every test starts Debian's Python mailbox server and transit relay on
// loopback (or uses WH_PY_DILATION_MAILBOX=ws://... and
// WH_PY_DILATION_RELAY=host:port, e.g. our own "wh serve"), runs testdata/py_peer.py (our driver, importing upstream from
// WH_PY_DILATION) and exchanges WH_PY_DILATION_SIZE bytes (default 64 MiB)
// each way on each subchannel, checking SHA-256 on both ends. See
// docs/dilation-interop.md for the record of runs.
package dilateinterop

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/netx"
)

const appID = "wormhole-go/dilation-interop"

// Dilation sides that force the roles: the larger string is the Leader.
const (
	highSide = "f0f0f0f0f0f0f0f0"
	lowSide  = "0f0f0f0f0f0f0f0f"
)

// dilater is the method the root package provides.
type dilater interface {
	Dilate(ctx context.Context, opts dilate.Options) (*dilate.Dilation, error)
}

type env struct {
	pythonPath string
	script     string
	size       int64
	chunk      int
	mailbox    string
	relay      string // host:port of Debian's transit relay
	report     string // optional JSON-lines file the results are appended to
	debug      bool
	maxFrame   int // Go MaxFrame (WH_PY_DILATION_GO_MAXFRAME); 0 = default
}

func setup(t *testing.T) *env {
	t.Helper()
	pp := os.Getenv("WH_PY_DILATION")
	if pp == "" {
		t.Skip("WH_PY_DILATION unset: set it to a PYTHONPATH with upstream magic-wormhole src/ and noiseprotocol (see docs/dilation-interop.md)")
	}
	py := interop.NeedPython(t, "twisted", "autobahn", "spake2", "nacl")
	cmd := exec.Command(py, "-c", "import wormhole, noise, wormhole._dilation.manager as m; print(wormhole.__file__, m.DILATION_VERSIONS)")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("WH_PY_DILATION=%s cannot import upstream wormhole+noise: %v\n%s", pp, err, out)
	}
	t.Logf("upstream: %s", strings.TrimSpace(string(out)))
	e := &env{pythonPath: pp, size: 64 << 20, chunk: 256 << 10, report: os.Getenv("WH_PY_DILATION_REPORT"), debug: os.Getenv("WH_PY_DILATION_DEBUG") != ""}
	if s := os.Getenv("WH_PY_DILATION_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			t.Fatalf("bad WH_PY_DILATION_SIZE %q", s)
		}
		e.size = n
	}
	if s := os.Getenv("WH_PY_DILATION_CHUNK"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("bad WH_PY_DILATION_CHUNK %q", s)
		}
		e.chunk = n
	}
	if s := os.Getenv("WH_PY_DILATION_GO_MAXFRAME"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("bad WH_PY_DILATION_GO_MAXFRAME %q", s)
		}
		e.maxFrame = n
	}
	e.script, err = filepath.Abs("testdata/py_peer.py")
	if err != nil {
		t.Fatal(err)
	}
	// Our own servers (e.g. "wh serve") instead of Debian's, if given.
	e.mailbox = os.Getenv("WH_PY_DILATION_MAILBOX")
	e.relay = os.Getenv("WH_PY_DILATION_RELAY")
	if e.mailbox == "" {
		e.mailbox = interop.StartPythonMailbox(t).URL()
	}
	if e.relay == "" {
		e.relay = interop.StartPythonRelay(t).Addr()
	}
	t.Logf("mailbox %s, transit relay %s", e.mailbox, e.relay)
	return e
}

// cell is one configuration of the matrix.
type cell struct {
	goSide, pySide string // "" = random
	goOpens        int    // Go opens this many "go-opens-N" (Python listens)
	pyOpens        int    // Python opens this many "py-opens-N" (Go listens)
	size           int64  // bytes each way per subchannel; 0 = env size
	relayOnly      bool   // both --no-listen, relay hints only
	cut            int    // how many times the connection is cut mid-transfer
	// stall, when set, stops the proxied connection(s) at half of the
	// transfer for this long (bytes held, TCP left open) so that the
	// Leader's keepalive has to notice, then resumes them.
	stall      time.Duration
	pyPing     float64       // Python dilate(ping_interval=) in seconds; 0 = default 30
	goPing     time.Duration // Go PingInterval; 0 = default 30 s
	idle       time.Duration // after the transfers, stay idle this long and check no reconnect
	lateListen time.Duration // Go calls Listen this long after Dilate returned
	pyChunk    int           // Python transport.write size; 0 = env chunk
	goMaxFrame int           // Go dilate.Options.MaxFrame; 0 = env/default
	// knownBad names an upstream or design problem that makes this cell
	// fail; it runs only with WH_PY_DILATION_KNOWN_BAD=1.
	knownBad string
}

func (c cell) bytes(e *env) int64 {
	if c.size > 0 {
		return c.size
	}
	return e.size
}

// pyEvent is one JSON line of py_peer.py.
type pyEvent struct {
	Event      string  `json:"event"`
	Name       string  `json:"name"`
	How        string  `json:"how"`
	ID         uint32  `json:"id"`
	Sent       int64   `json:"sent"`
	SentSHA    string  `json:"sent_sha256"`
	Recv       int64   `json:"recv"`
	RecvSHA    string  `json:"recv_sha256"`
	Seconds    float64 `json:"seconds"`
	Generation int     `json:"generation"`
	Peer       string  `json:"peer"`
	Hint       string  `json:"hint"`
	Role       string  `json:"role"`
	Side       string  `json:"side"`
	Msg        string  `json:"msg"`
	Result     string  `json:"result"`
	Version    string  `json:"version"`
}

type pyPeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan pyEvent
	errLog string
	done   chan error
}

func startPy(t *testing.T, ctx context.Context, e *env, code string, c cell, relayHint string) *pyPeer {
	t.Helper()
	args := []string{e.script, "--url", e.mailbox, "--appid", appID, "--code", code,
		"--size", strconv.FormatInt(c.bytes(e), 10), "--chunk", strconv.Itoa(cmp.Or(c.pyChunk, e.chunk))}
	if c.pySide != "" {
		args = append(args, "--side", c.pySide)
	}
	for i := range c.goOpens {
		args = append(args, "--listen", fmt.Sprintf("go-opens-%d", i))
	}
	for i := range c.pyOpens {
		args = append(args, "--open", fmt.Sprintf("py-opens-%d", i))
	}
	if c.pyPing > 0 {
		args = append(args, "--ping-interval", strconv.FormatFloat(c.pyPing, 'f', -1, 64))
	}
	if relayHint != "" {
		args = append(args, "--relay", relayHint)
	}
	if c.relayOnly {
		args = append(args, "--no-listen")
	}
	if e.debug {
		args = append(args, "--debug")
	} else if os.Getenv("WH_PY_DILATION_LOGDIR") != "" {
		args = append(args, "--state-dump")
	}
	cmd := exec.CommandContext(ctx, interop.Python, args...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+e.pythonPath)
	p := &pyPeer{cmd: cmd, events: make(chan pyEvent, 256), done: make(chan error, 1)}
	p.errLog = filepath.Join(t.TempDir(), "py.stderr")
	if d := os.Getenv("WH_PY_DILATION_LOGDIR"); d != "" {
		// keep Python's stderr (the Twisted log with --debug) after the test
		p.errLog = filepath.Join(d, strings.NewReplacer("/", "_").Replace(t.Name())+".py.stderr")
	}
	ef, err := os.Create(p.errLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = ef
	p.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("python %s", strings.Join(args[1:], " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var ev pyEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				ev = pyEvent{Event: "noise", Msg: line}
			}
			if ev.Event != "status" || e.debug {
				t.Logf("py: %.300s", line)
			}
			p.events <- ev
		}
		close(p.events)
		err := cmd.Wait()
		ef.Close()
		p.done <- err
	}()
	return p
}

func (p *pyPeer) stderrTail() string {
	b, _ := os.ReadFile(p.errLog)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// result of one direction pair on one subchannel, from Go's view.
type xfer struct {
	name            string
	id              uint32
	sent, recv      int64
	sentSum         [32]byte
	recvSum         [32]byte
	dur             time.Duration
	goLocal, goPeer string
}

// exchange writes size pattern bytes, half-closes, and reads to EOF.
func exchange(c net.Conn, name string, seed uint64, size int64, progress func(int64)) (xfer, error) {
	x := xfer{name: name, goLocal: c.LocalAddr().String(), goPeer: c.RemoteAddr().String()}
	if sc, ok := c.(*dilate.Subchannel); ok {
		x.id = sc.ID()
	}
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		n, err := io.CopyBuffer(c, netx.NewPatternReader(seed, size), buf)
		x.sent = n
		if err == nil {
			if hc, ok := c.(interface{ CloseWrite() error }); ok {
				err = hc.CloseWrite()
			} else {
				err = fmt.Errorf("%T has no CloseWrite", c)
			}
		}
		werr <- err
	}()
	hw := netx.NewHashWriter()
	_, rerr := io.Copy(io.MultiWriter(hw, progressWriter(progress)), c)
	err := <-werr
	x.dur = time.Since(start)
	x.recv, x.recvSum = hw.N, hw.Sum()
	x.sentSum = netx.PatternSum(seed, size)
	c.Close()
	if rerr != nil {
		return x, fmt.Errorf("%s: read after %d bytes: %w", name, hw.N, rerr)
	}
	if err != nil {
		return x, fmt.Errorf("%s: write: %w", name, err)
	}
	return x, nil
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}

// cutDialer routes every outbound Dilation TCP connection through its own
// netx.Proxy so the test can cut it.
type cutDialer struct {
	mu      sync.Mutex
	proxies map[string]*netx.Proxy
}

func (d *cutDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	p := d.proxies[addr]
	if p == nil {
		p = &netx.Proxy{Target: addr}
		if err := p.Start(); err != nil {
			d.mu.Unlock()
			return nil, err
		}
		d.proxies[addr] = p
	}
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, p.Addr())
}

func (d *cutDialer) cut() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, p := range d.proxies {
		n += p.Cut()
	}
	return n
}

func (d *cutDialer) each(f func(*netx.Proxy)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.proxies {
		f(p)
	}
}

func (d *cutDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.proxies {
		p.Close()
	}
}

// outcome is what one run recorded (also written to WH_PY_DILATION_REPORT).
type outcome struct {
	Test        string  `json:"test"`
	GoRole      string  `json:"go_role"`
	PyRole      string  `json:"py_role"`
	Path        string  `json:"path"`
	GoVia       string  `json:"go_via"`
	PyHint      string  `json:"py_hint"`
	Size        int64   `json:"size"`
	Cuts        int     `json:"cuts"`
	CutConns    int     `json:"cut_conns"`
	GoGen       int     `json:"go_max_generation"`
	PyGen       int     `json:"py_max_generation"`
	Subchannels int     `json:"subchannels"`
	Pongs       int     `json:"py_status_updates_while_idle,omitempty"`
	Seconds     float64 `json:"seconds"`
	MBps        float64 `json:"mb_per_s_each_way"`
	Pass        bool    `json:"pass"`
	Err         string  `json:"err,omitempty"`
}

func run(t *testing.T, e *env, c cell) {
	// Safety net only, below go test's default 10m so the Python peer and
	// the servers are always cleaned up.
	limit := 4 * time.Minute
	if c.knownBad != "" {
		limit = time.Minute // expected to hang; fail sooner
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	size := c.bytes(e)
	res := outcome{Test: t.Name(), Size: size, Cuts: c.cut, Path: "direct"}
	if c.relayOnly {
		res.Path = "relay"
	}
	defer func() {
		res.Pass = !t.Failed()
		t.Logf("RESULT %+v", res)
		if e.report == "" {
			return
		}
		f, err := os.OpenFile(e.report, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer f.Close()
		b, _ := json.Marshal(res)
		f.Write(append(b, '\n'))
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		res.Err = fmt.Sprintf(format, args...)
		t.Fatal(res.Err)
	}

	var logger *slog.Logger
	if e.debug {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else if d := os.Getenv("WH_PY_DILATION_LOGDIR"); d != "" {
		// Go debug log to a file: cheaper than t.Logf, keeps timing closer
		// to a quiet run.
		f, err := os.Create(filepath.Join(d, strings.NewReplacer("/", "_").Replace(t.Name())+".go.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := wormhole.New(ctx, wormhole.Options{
		AppID:         appID,
		RendezvousURL: e.mailbox,
		// Every mode we speak, as a Go application would advertise it:
		// Python shares only "ged", which must be what is used.
		Dilation: &wormhole.DilationVersion{CanDilate: dilate.GoVersions(), Abilities: abilities()},
		Logger:   logger,
	})
	if err != nil {
		fail("wormhole.New: %v", err)
	}
	defer w.Close(context.Background())
	dw, ok := any(w).(dilater)
	if !ok {
		fail("this build's *wormhole.Wormhole has no Dilate method yet")
	}
	code, err := w.AllocateCode(ctx, 2)
	if err != nil {
		fail("AllocateCode: %v", err)
	}

	// Relay: Debian's transit relay, behind a cuttable proxy when relay-only.
	relayHint := ""
	var relayProxy *netx.Proxy
	if c.relayOnly {
		relayProxy = &netx.Proxy{Target: e.relay}
		if err := relayProxy.Start(); err != nil {
			fail("proxy: %v", err)
		}
		defer relayProxy.Close()
		relayHint = "tcp:" + relayProxy.Addr()
	}
	py := startPy(t, ctx, e, code, c, relayHint)
	defer func() {
		if t.Failed() {
			t.Logf("python stderr tail:\n%s", py.stderrTail())
		}
		py.cmd.Process.Kill()
	}()

	var st struct {
		sync.Mutex
		maxGen int
		via    string
		log    []dilate.Status
	}
	opts := dilate.Options{
		Side:            c.goSide,
		ListenAddr:      "127.0.0.1:0",
		IncludeLoopback: true,
		Logger:          logger,
		PingInterval:    c.goPing,
		MaxFrame:        cmp.Or(c.goMaxFrame, e.maxFrame),
		OnStatus: func(s dilate.Status) {
			st.Lock()
			defer st.Unlock()
			st.log = append(st.log, s)
			st.maxGen = max(st.maxGen, s.Generation)
			if s.Peer == dilate.PeerConnected {
				st.via = s.Via
			}
		},
	}
	dialer := &cutDialer{proxies: map[string]*netx.Proxy{}}
	defer dialer.close()
	if c.relayOnly {
		opts.NoListen = true
		opts.Relays = []string{relayHint}
	} else if c.cut > 0 || c.stall > 0 {
		// Go only dials, through proxies; Python listens.
		opts.NoListen = true
		opts.Dialer = dialer
	}
	dl, err := dw.Dilate(ctx, opts)
	if err != nil {
		fail("Dilate: %v", err)
	}
	defer dl.Close()

	// Cutting: after each third of the bytes Go receives.
	var got atomic.Int64
	var cuts atomic.Int32
	var cutConns atomic.Int32
	total := int64(c.goOpens+c.pyOpens) * size
	var stalled atomic.Bool
	progress := func(n int64) {
		v := got.Add(n)
		if c.stall > 0 && v >= total/2 && stalled.CompareAndSwap(false, true) {
			if relayProxy != nil {
				relayProxy.Stall()
			} else {
				dialer.each((*netx.Proxy).Stall)
			}
			t.Logf("stalled at %d bytes received, for %v", v, c.stall)
			time.AfterFunc(c.stall, func() {
				if relayProxy != nil {
					relayProxy.Resume()
				} else {
					dialer.each((*netx.Proxy).Resume)
				}
				t.Logf("resumed")
			})
		}
		if c.cut == 0 {
			return
		}
		k := int(cuts.Load())
		if k < c.cut && v >= total*int64(k+1)/int64(c.cut+1) && cuts.CompareAndSwap(int32(k), int32(k+1)) {
			var m int
			if relayProxy != nil {
				m = relayProxy.Cut()
			} else {
				m = dialer.cut()
			}
			cutConns.Add(int32(m))
			t.Logf("cut %d at %d bytes received: %d TCP connections closed", k+1, v, m)
		}
	}

	start := time.Now()
	type r struct {
		x   xfer
		err error
	}
	n := c.goOpens + c.pyOpens
	results := make(chan r, n)
	for i := range c.goOpens {
		go func() {
			name := fmt.Sprintf("go-opens-%d", i)
			conn, err := dl.Dial(ctx, name)
			if err != nil {
				results <- r{err: fmt.Errorf("Dial: %w", err)}
				return
			}
			x, err := exchange(conn, name, uint64(1000+i), size, progress)
			results <- r{x, err}
		}()
	}
	for i := range c.pyOpens {
		go func() {
			name := fmt.Sprintf("py-opens-%d", i)
			if c.lateListen > 0 {
				select {
				case <-time.After(c.lateListen):
				case <-ctx.Done():
				}
			}
			ln, err := dl.Listen(name)
			if err != nil {
				results <- r{err: fmt.Errorf("Listen: %w", err)}
				return
			}
			defer ln.Close()
			conn, err := ln.Accept()
			if err != nil {
				results <- r{err: fmt.Errorf("Accept: %w", err)}
				return
			}
			x, err := exchange(conn, name, uint64(2000+i), size, progress)
			results <- r{x, err}
		}()
	}
	goX := map[string]xfer{}
	for range n {
		select {
		case rr := <-results:
			if rr.err != nil {
				fail("go side: %v", rr.err)
			}
			goX[rr.x.name] = rr.x
		case <-ctx.Done():
			st.Lock()
			for _, s := range st.log {
				t.Logf("go status: %+v", s)
			}
			st.Unlock()
			buf := make([]byte, 1<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			fail("timeout waiting for the Go side")
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if m := dl.Mode(); m != dilate.Version || dl.FlowControlled() {
		fail("mode with Python: %q (flow-controlled %v), want %q", m, dl.FlowControlled(), dilate.Version)
	}
	res.Subchannels = n
	res.MBps = float64(int64(n)*size) / 1e6 / res.Seconds

	// Python's view.
	pyX := map[string]pyEvent{}
	pyDone := false
	for !pyDone {
		select {
		case ev, ok := <-py.events:
			if !ok {
				fail("python exited before transfers-done: %v", <-py.done)
			}
			switch ev.Event {
			case "error":
				fail("python error: %s", ev.Msg)
			case "dilated":
				res.PyRole = ev.Role
			case "status":
				res.PyGen = max(res.PyGen, ev.Generation)
				if ev.Peer == "ConnectedPeer" {
					res.PyHint = ev.Hint
				}
			case "subchannel":
				pyX[ev.Name] = ev
			case "transfers-done":
				pyDone = true
			}
		case <-ctx.Done():
			fail("timeout waiting for python")
		}
	}
	res.GoRole = dl.Role().String()
	res.Cuts = int(cuts.Load())
	res.CutConns = int(cutConns.Load())
	st.Lock()
	res.GoGen, res.GoVia = st.maxGen, st.via
	st.Unlock()

	for name, gx := range goX {
		px, ok := pyX[name]
		if !ok {
			fail("python reported no subchannel %q", name)
		}
		if px.Recv != gx.sent || px.RecvSHA != hex.EncodeToString(gx.sentSum[:]) {
			fail("%s Go->Python: Go sent %d sha256 %x, Python got %d sha256 %s", name, gx.sent, gx.sentSum, px.Recv, px.RecvSHA)
		}
		if px.Sent != gx.recv || px.SentSHA != hex.EncodeToString(gx.recvSum[:]) {
			fail("%s Python->Go: Python sent %d sha256 %s, Go got %d sha256 %x", name, px.Sent, px.SentSHA, gx.recv, gx.recvSum)
		}
		if gx.sent != size || gx.recv != size {
			fail("%s: sizes %d/%d, want %d", name, gx.sent, gx.recv, size)
		}
		wantOdd := (res.GoRole == dilate.Leader.String()) == strings.HasPrefix(name, "go-opens")
		if (gx.id%2 == 1) != wantOdd {
			fail("%s: subchannel id %d has the wrong parity for Go role %s", name, gx.id, res.GoRole)
		}
		if px.ID != gx.id {
			fail("%s: ids differ: Go %d, Python %d", name, gx.id, px.ID)
		}
		t.Logf("%s id %d: %d bytes each way in %v (%.1f MB/s each way), sha256 ok both ways", name, gx.id, gx.sent, gx.dur.Round(time.Millisecond), float64(gx.sent)/1e6/gx.dur.Seconds())
	}
	if c.goSide != "" && c.pySide != "" {
		wantGo := dilate.Follower.String()
		if c.goSide > c.pySide {
			wantGo = dilate.Leader.String()
		}
		if res.GoRole != wantGo {
			fail("Go role %s, want %s", res.GoRole, wantGo)
		}
	}
	if (res.GoRole == dilate.Leader.String()) == strings.Contains(res.PyRole, "LEADER") {
		fail("both sides claim the same role: Go %s, Python %s", res.GoRole, res.PyRole)
	}
	if c.cut > 0 && (res.Cuts != c.cut || res.GoGen < 1) {
		fail("cuts %d (want %d), Go max generation %d: no reconnect seen", res.Cuts, c.cut, res.GoGen)
	}
	if c.stall > 0 && res.GoGen < 1 {
		fail("stall of %v: Go max generation %d: the keepalive did not replace the connection", c.stall, res.GoGen)
	}
	if ids := map[uint32]string{}; len(goX) > 0 {
		for name, gx := range goX {
			if other, dup := ids[gx.id]; dup {
				fail("subchannel id %d used by %s and %s", gx.id, other, name)
			}
			ids[gx.id] = name
		}
	}
	if c.idle > 0 {
		// The Leader pings every interval; nothing may reconnect while idle.
		goGen0 := res.GoGen
		timer := time.NewTimer(c.idle)
	idle:
		for {
			select {
			case ev, ok := <-py.events:
				if !ok {
					fail("python exited while idle: %v", <-py.done)
				}
				if ev.Event == "status" && ev.Peer == "ReconnectingPeer" {
					fail("python reconnects while idle (gen %d)", ev.Generation)
				}
				if ev.Event == "status" {
					res.Pongs++
				}
			case <-timer.C:
				break idle
			}
		}
		st.Lock()
		g := st.maxGen
		st.Unlock()
		if g != goGen0 {
			fail("Go reconnected while idle: generation %d -> %d", goGen0, g)
		}
		t.Logf("idle %v: no reconnect; %d Python status updates (keepalive)", c.idle, res.Pongs)
	}

	// Orderly close: Python first (it waits for our word), then us.
	io.WriteString(py.stdin, "close\n")
	if err := dl.Close(); err != nil {
		t.Logf("Dilation.Close: %v", err)
	}
	cerr := w.Close(ctx)
	for ev := range py.events {
		if ev.Event == "closed" {
			t.Logf("python close result: %s", ev.Result)
		}
	}
	if err := <-py.done; err != nil {
		fail("python exit: %v", err)
	}
	if cerr != nil {
		t.Logf("wormhole.Close: %v", cerr)
	}
}

func abilities() []map[string]any {
	var out []map[string]any
	for _, a := range dilate.Abilities() {
		m := map[string]any{}
		for k, v := range a {
			m[k] = v
		}
		out = append(out, m)
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestPythonDilation is the matrix of docs/dilation-interop.md.
func TestPythonDilation(t *testing.T) {
	e := setup(t)
	cells := []struct {
		name string
		c    cell
	}{
		{"direct/go-leader/both-open", cell{goSide: highSide, pySide: lowSide, goOpens: 1, pyOpens: 1}},
		{"direct/go-follower/both-open", cell{goSide: lowSide, pySide: highSide, goOpens: 1, pyOpens: 1}},
		{"direct/random-sides/both-open", cell{goOpens: 1, pyOpens: 1}},
		{"direct/go-leader/go-opens-only", cell{goSide: highSide, pySide: lowSide, goOpens: 1}},
		{"direct/go-follower/py-opens-only", cell{goSide: lowSide, pySide: highSide, pyOpens: 1}},
		{"relay/go-leader/both-open", cell{goSide: highSide, pySide: lowSide, goOpens: 1, pyOpens: 1, relayOnly: true}},
		{"relay/go-follower/both-open", cell{goSide: lowSide, pySide: highSide, goOpens: 1, pyOpens: 1, relayOnly: true}},
		{"direct-cut/go-leader", cell{goSide: highSide, pySide: lowSide, goOpens: 1, pyOpens: 1, cut: 2}},
		{"direct-cut/go-follower", cell{goSide: lowSide, pySide: highSide, goOpens: 1, pyOpens: 1, cut: 2}},
		{"relay-cut/go-leader", cell{goSide: highSide, pySide: lowSide, goOpens: 1, pyOpens: 1, relayOnly: true, cut: 2}},
		{"relay-cut/go-follower", cell{goSide: lowSide, pySide: highSide, goOpens: 1, pyOpens: 1, relayOnly: true, cut: 2}},
		{"many/go-leader/8+8", cell{goSide: highSide, pySide: lowSide, goOpens: 8, pyOpens: 8, size: 1 << 20}},
		{"many/go-follower/8+8", cell{goSide: lowSide, pySide: highSide, goOpens: 8, pyOpens: 8, size: 1 << 20}},
		{"late-listen/go-leader", cell{goSide: highSide, pySide: lowSide, pyOpens: 2, size: 1 << 20, lateListen: 2 * time.Second}},
		{"late-listen/go-follower", cell{goSide: lowSide, pySide: highSide, pyOpens: 2, size: 1 << 20, lateListen: 2 * time.Second}},
		{"keepalive/go-leader", cell{goSide: highSide, pySide: lowSide, goOpens: 1, size: 1 << 20, goPing: time.Second, pyPing: 1, idle: 6 * time.Second}},
		{"keepalive/go-follower", cell{goSide: lowSide, pySide: highSide, goOpens: 1, size: 1 << 20, goPing: time.Second, pyPing: 1, idle: 6 * time.Second}},
		{"stall/go-leader", cell{goSide: highSide, pySide: lowSide, goOpens: 1, pyOpens: 1, size: 8 << 20, relayOnly: true, goPing: time.Second, pyPing: 1, stall: 5 * time.Second,
			knownBad: "upstream, intermittent (about 1 run in 7): the Python Follower drops the old connection on 'reconnect' with transport.loseConnection() while its Outbound is a paused producer, hangs the same way and never sends 'reconnecting' (docs/dilation-interop.md, bug U1)"}},
		{"stall/go-follower", cell{goSide: lowSide, pySide: highSide, goOpens: 1, pyOpens: 1, size: 8 << 20, relayOnly: true, goPing: time.Second, pyPing: 1, stall: 5 * time.Second,
			knownBad: "upstream: the Python Leader's keepalive calls transport.loseConnection() while its Outbound is a registered, paused producer; Twisted then stops reading and never closes (docs/dilation-interop.md, bug U1)"}},
		{"bigwrite/maxframe-80MiB", cell{goSide: highSide, pySide: lowSide, pyOpens: 1, size: 32 << 20, pyChunk: 32 << 20, goMaxFrame: 80 << 20}},
		// Bug G1 (docs/dilation-interop.md): before DATA frames were
		// streamed, this livelocked (frame above MaxFrame, dropped and
		// re-sent on every reconnect).
		{"bigwrite/default-maxframe", cell{goSide: highSide, pySide: lowSide, pyOpens: 1, size: 32 << 20, pyChunk: 32 << 20}},
		{"bigwrite/default-maxframe-cut", cell{goSide: lowSide, pySide: highSide, pyOpens: 1, goOpens: 1, size: 32 << 20, pyChunk: 32 << 20, cut: 2}},
	}
	only := os.Getenv("WH_PY_DILATION_ONLY")
	for _, tc := range cells {
		t.Run(tc.name, func(t *testing.T) {
			if only != "" && !strings.Contains(tc.name, only) {
				t.Skipf("not selected by WH_PY_DILATION_ONLY=%s", only)
			}
			if tc.c.knownBad != "" && os.Getenv("WH_PY_DILATION_KNOWN_BAD") == "" {
				t.Skipf("known bad, set WH_PY_DILATION_KNOWN_BAD=1 to run: %s", tc.c.knownBad)
			}
			run(t, e, tc.c)
		})
	}
}
