//go:build linux

package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads Debian's relay usage database

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

// Environment of the copy of the test binary that runs inside the network
// namespace.
const (
	childEnv    = "WH_TEST_NETNS_CHILD" // path of the private /etc/hosts
	childBinEnv = "WH_TEST_NETNS_WH"    // path of the wh binary
)

// lanAddr is put on the namespace's loopback interface as a second
// address. It is not a 127/8 address, so wh, Python and wormhole-william
// all advertise it as a direct hint (they skip loopback addresses), yet
// the traffic never leaves the namespace.
const lanAddr = "10.77.0.1"

// bigSize is the size of the large file.
const bigSize = 256 << 20

// williamRelay is wormhole-william's built-in transit relay; inside the
// namespace its name resolves to 127.0.0.1.
const (
	williamRelayAddr  = "127.0.0.1:4001"
	williamRelayHint  = "tcp:127.0.0.1:4001"
	williamRelayAlias = "tcp:transit.magic-wormhole.io:4001"
)

// TestFilesInNetns runs the whole file-transfer interop matrix of issue 4
// inside a network namespace of its own that has nothing but a loopback
// interface (no traffic can leave the test):
//
//	peer      {Python `wormhole` 0.12, wormhole-william}
//	direction {wh sends, wh receives}
//	payload   {256 MiB file, directory tree (nested dirs, an empty file,
//	           a non-ASCII name)}
//	path      {direct, relay-only through Debian's relay, relay-only
//	           through ours}
//
// 24 cells. Each compares sha256 (file) or the per-file sha256 of the tree
// (no file missing or extra), asserts the path wh reports ("Sending (…)" /
// "Receiving (…)"), and for relay cells that the relay in question
// counted at least the payload's bytes (our relay's Stats, Debian's
// relay's usage database).
//
// What wormhole-william (Debian's 1.0.6) cannot do, and how each cell
// still runs (so no cell is skipped; see williamLimits):
//   - It has no flag for the transit relay: it always uses
//     transit.magic-wormhole.io:4001. Here a private /etc/hosts maps that
//     name to 127.0.0.1 and the relay under test (Debian's, then ours) is
//     started on port 4001 in turn. As a sender it uses only that relay
//     (it dials none of the receiver's hints); as a receiver it also dials
//     the relays the sender advertises.
//   - It has no --no-listen: as a sender it always listens and advertises
//     every non-loopback IPv4 address. Its relay-only sends are made by
//     deleting the namespace's only such address (lanAddr).
//   - As a receiver it never listens, so "direct" wh->wormhole-william is
//     wormhole-william dialling wh; as a sender it never dials, so
//     "direct" wormhole-william->wh is wh dialling it.
//   - It advertises no IPv6 direct hints (not exercised here).
//
// It re-runs this test binary there (unshare -rnm) with only
// TestNetnsChild selected; wh runs as a real process (built here, without
// -race).
func TestFilesInNetns(t *testing.T) {
	unshare := interop.NeedCommand(t, "unshare")
	interop.NeedCommand(t, "ip")
	if os.Getenv(childEnv) != "" {
		t.Skip("already inside the namespace")
	}
	if out, err := exec.Command(unshare, "-rn", "true").CombinedOutput(); err != nil {
		if interop.Required() {
			t.Fatalf("cannot create a network namespace: %v %s", err, out)
		}
		t.Skipf("cannot create a network namespace here: %v %s", err, out)
	}
	bin := buildBinary(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost transit.magic-wormhole.io\n::1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-rnm", os.Args[0], "-test.run=^TestNetnsChild$", "-test.v", "-test.count=1", "-test.timeout=15m"}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(safeEnviron(), childEnv+"="+hosts, childBinEnv+"="+bin)
	out, err := cmd.CombinedOutput()
	t.Logf("namespace run:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNetnsChild") {
		t.Fatalf("inside the namespace: %v", err)
	}
}

// connPath is the connection a wh run used, from its "Sending (…)" or
// "Receiving (…)" line.
func connPath(r result) string {
	if s := between(r.stderr, "Sending (", ")"); s != "" {
		return s
	}
	return between(r.stderr, "Receiving (", ")")
}

// wantPath checks that a wh run went direct (relayHint ""), or through
// the relay at relayHint ("tcp:127.0.0.1:PORT") or one of its other names.
func wantPath(t *testing.T, r result, relayHint string, aliases ...string) {
	t.Helper()
	p := connPath(r)
	t.Logf("path: %s", p)
	switch {
	case relayHint == "":
		if p == "" || strings.HasPrefix(p, "->relay:") {
			t.Errorf("wanted a direct connection, got %q", p)
		}
	default:
		for _, h := range append(aliases, relayHint) {
			if p == "->relay:"+h {
				return
			}
		}
		t.Errorf("wanted the relay %s, got %q", relayHint, p)
	}
}

// Axes of the matrix.
const (
	peerPython  = "python"
	peerWilliam = "william"

	whatBig = "256MiB"
	whatDir = "dir"

	pathDirect = "direct"
	pathDebian = "relay-debian"
	pathOurs   = "relay-go"
)

// williamLimits names the cells wormhole-william itself cannot do; each
// would be skipped with its reason. It is empty: every limitation listed
// in TestFilesInNetns's comment has a workaround inside the namespace.
var williamLimits = map[string]string{}

// netnsCell is one cell of the matrix.
type netnsCell struct {
	peer    string
	whSends bool
	what    string
	path    string
}

func (c netnsCell) name() string {
	peer := map[string]string{peerPython: "python", peerWilliam: "william"}[c.peer]
	dir := "wh-to-" + peer
	if !c.whSends {
		dir = peer + "-to-wh"
	}
	return dir + "/" + c.what + "-" + c.path
}

// needs is the namespace state the cell needs: lanAddr present ("up"),
// absent ("down") or either (""); which relay on wormhole-william's relay
// port 4001 (pathDebian, pathOurs, or "" for either).
func (c netnsCell) needs() (lan, at4001 string) {
	if c.path == pathDirect {
		return "up", ""
	}
	if c.peer != peerWilliam {
		return "", "" // Python and wh take --no-listen and --transit-helper
	}
	if !c.whSends {
		lan = "down" // the only way to stop wormhole-william advertising direct hints
	}
	return lan, c.path
}

// phase orders the cells so that the namespace changes state twice.
func (c netnsCell) phase() int {
	lan, at := c.needs()
	switch {
	case at == pathOurs:
		return 2
	case lan == "down":
		return 1
	}
	return 0
}

// relayUT is a relay under test and its byte counter.
type relayUT struct {
	name  string
	hint  string
	bytes func() (uint64, error)
}

// debianUsage reads the total relayed bytes from a Debian relay's
// --usage-db (one row per finished connection pair).
func debianUsage(db string) func() (uint64, error) {
	return func() (uint64, error) {
		d, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			return 0, err
		}
		defer d.Close()
		var n int64
		if err := d.QueryRow("SELECT COALESCE(SUM(total_bytes), 0) FROM usage").Scan(&n); err != nil {
			return 0, err
		}
		return uint64(n), nil
	}
}

func ourUsage(s *relay.Server) func() (uint64, error) {
	return func() (uint64, error) { return s.Stats().Bytes, nil }
}

// wantRelayed waits (bounded) until r has counted at least min more bytes
// than before: the payload went through it.
func wantRelayed(t *testing.T, r relayUT, before, min uint64) {
	t.Helper()
	var now uint64
	var err error
	for i := 0; i < 300; i++ {
		if now, err = r.bytes(); err == nil && now-before >= min {
			t.Logf("%s relayed %d bytes (payload %d)", r.name, now-before, min)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s relayed %d bytes (err %v), want at least %d", r.name, now-before, err, min)
}

// makeNetnsTree writes the directory payload: nested directories, an
// empty file, a non-ASCII name, incompressible contents.
func makeNetnsTree(t *testing.T, root string) {
	t.Helper()
	for name, data := range map[string]string{
		"a.txt":                  "alpha\n",
		"sub/deeper/empty":       "",
		"ünïcødé/naïve 名前.txt":   "non-ASCII name\n",
		"sub/deeper/even/more/z": "z",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	makePayload(t, filepath.Join(root, "sub"), "b.bin", 100_000, 4)
	makePayload(t, filepath.Join(root, "sub", "deeper"), "more.bin", 1<<20+3, 3)
}

// treeRandomBytes is a lower bound of the zip's size (what a relay must
// have carried): the incompressible files.
const treeRandomBytes = 100_000 + 1<<20 + 3

// TestNetnsChild is the body of TestFilesInNetns; it only runs there.
func TestNetnsChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("helper of TestFilesInNetns (runs inside a network namespace)")
	}
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", lanAddr + "/32", "dev", "lo"},
		{"mount", "--bind", os.Getenv(childEnv), "/etc/hosts"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	wh := os.Getenv(childBinEnv)
	ww := interop.NeedCommand(t, "wormhole-william")
	wormholePy := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	pyR := interop.StartPythonRelay(t, "--usage-db=usage.sqlite")
	goR := relaytest.Start(t)
	relays := map[string]relayUT{
		pathDebian: {"Debian's relay", pyR.Hint(), debianUsage(filepath.Join(pyR.Dir(), "usage.sqlite"))},
		pathOurs:   {"our relay", goR.Hint(), ourUsage(goR.Server)},
	}
	slot := &relaySlot{t: t}
	t.Cleanup(slot.stop)
	lanUp := true
	ensure := func(c netnsCell) {
		lan, at := c.needs()
		if (lan == "up") != lanUp && lan != "" {
			op := map[string]string{"up": "add", "down": "del"}[lan]
			if out, err := exec.Command("ip", "addr", op, lanAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
				t.Fatalf("ip addr %s: %v %s", op, err, out)
			}
			lanUp = lan == "up"
			t.Logf("namespace: %s %s", op, lanAddr)
		}
		if at == "" && slot.kind == "" {
			at = pathDebian // wormhole-william needs something there
		}
		if at != "" && at != slot.kind {
			slot.start(at)
			t.Logf("namespace: %s now listens on wormhole-william's relay address", slot.relay.name)
		}
	}

	src := t.TempDir()
	dst := chdirTemp(t)
	big := makePayload(t, src, "big.bin", bigSize, 1)
	small := makePayload(t, src, "small.bin", 3<<20+5, 2)
	treeDir := filepath.Join(src, "tree")
	makeNetnsTree(t, treeDir)
	tree := treeSums(t, treeDir)

	// safety nets only
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	xfer := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 3*time.Minute) }

	nameplate := 0
	code := func() string { nameplate++; return fmt.Sprintf("%d-foo-bar", nameplate) }
	// wh's and Python's flags for a path: relay "" = direct (listening,
	// with Debian's relay as a fallback), else relay-only through it
	whArgs := func(cmd, relayHint string, args ...string) []string {
		a := []string{cmd, "--relay-url", mb.URL(), "--hide-progress"}
		if relayHint == "" {
			a = append(a, "--transit-helper", pyR.Hint())
		} else {
			a = append(a, "--transit-helper", relayHint, "--no-listen")
		}
		return append(a, args...)
	}
	pyArgs := func(cmd, relayHint string, args ...string) []string {
		a := []string{"--relay-url", mb.URL()}
		if relayHint == "" {
			a = append(a, "--transit-helper", pyR.Hint(), cmd)
		} else {
			a = append(a, "--transit-helper", relayHint, cmd, "--no-listen")
		}
		return append(append(a, "--hide-progress"), args...)
	}

	t.Run("wh-to-wh/file-direct", func(t *testing.T) {
		ensure(netnsCell{path: pathDirect})
		ctx, cancel := xfer()
		defer cancel()
		k := code()
		ws, wr := both(
			func() result { return runCmd(ctx, "", wh, whArgs("send", "", "--code", k, small.path)...) },
			func() result { return runCmd(ctx, "", wh, whArgs("receive", "", "--accept-file", "-o", "got", k)...) },
		)
		if ws.code != 0 || wr.code != 0 {
			t.Fatalf("wh send: %v\nwh receive: %v", ws, wr)
		}
		checkFile(t, filepath.Join(dst, "got"), small)
		wantPath(t, ws, "")
	})

	var cells []netnsCell
	for _, peer := range []string{peerPython, peerWilliam} {
		for _, whSends := range []bool{true, false} {
			for _, what := range []string{whatBig, whatDir} {
				for _, path := range []string{pathDirect, pathDebian, pathOurs} {
					cells = append(cells, netnsCell{peer, whSends, what, path})
				}
			}
		}
	}
	slices.SortStableFunc(cells, func(a, b netnsCell) int { return a.phase() - b.phase() })

	for _, c := range cells {
		t.Run(c.name(), func(t *testing.T) {
			if c.peer == peerWilliam {
				if why := williamLimits[c.name()]; why != "" {
					t.Skip("wormhole-william cannot: " + why)
				}
			}
			ensure(c)
			// the relay of a relay-only cell, its hint, and the other
			// names wh may report it by
			var ru relayUT
			var relayHint string
			var aliases []string
			switch {
			case c.path == pathDirect:
			case c.peer == peerWilliam:
				ru, relayHint, aliases = slot.relay, williamRelayHint, []string{williamRelayAlias}
			default:
				ru = relays[c.path]
				relayHint = ru.hint
			}
			var before uint64
			if relayHint != "" {
				var err error
				if before, err = ru.bytes(); err != nil {
					t.Fatalf("%s usage: %v", ru.name, err)
				}
			}
			sendPath, minBytes := big.path, uint64(big.size)
			if c.what == whatDir {
				sendPath, minBytes = treeDir, treeRandomBytes
			}
			// receivers: wh and Python write to "got", wormhole-william
			// to the sent name
			got := filepath.Join(dst, "got")
			if c.peer == peerWilliam {
				got = filepath.Join(dst, filepath.Base(sendPath))
			}
			check := func(t *testing.T) {
				if c.what == whatDir {
					checkDir(t, got, tree)
				} else {
					checkFile(t, got, big)
				}
			}
			whSide := netnsRun(t, ctx, c, xfer, code, func(ctx context.Context, k string) (result, result) {
				switch {
				case c.peer == peerPython && c.whSends:
					return both(
						func() result { return runCmd(ctx, "", wh, whArgs("send", relayHint, "--code", k, sendPath)...) },
						func() result {
							return runCmd(ctx, "", wormholePy, pyArgs("receive", relayHint, "--accept-file", "-o", "got", k)...)
						})
				case c.peer == peerPython:
					pr, wr := both(
						func() result { return runCmd(ctx, "", wormholePy, pyArgs("send", relayHint, "--code", k, sendPath)...) },
						func() result {
							return runCmd(ctx, "", wh, whArgs("receive", relayHint, "--accept-file", "-o", "got", k)...)
						})
					return wr, pr
				case c.whSends:
					return both(
						func() result { return runCmd(ctx, "", wh, whArgs("send", relayHint, "--code", k, sendPath)...) },
						func() result {
							return runCmd(ctx, "y\n", ww, "receive", "--relay-url", mb.URL(), "--hide-progress", k)
						})
				default:
					wwr, wr := both(
						func() result {
							return runCmd(ctx, "", ww, "send", "--relay-url", mb.URL(), "--hide-progress", "--code", k, sendPath)
						},
						func() result { return runCmd(ctx, "", wh, whArgs("receive", relayHint, "--accept-file", k)...) })
					return wr, wwr
				}
			}, func() { os.RemoveAll(got) })
			check(t)
			wantPath(t, whSide, relayHint, aliases...)
			if relayHint != "" {
				wantRelayed(t, ru, before, minBytes)
			}
		})
	}
}

// netnsRun runs one exchange (run returns wh's result, then the peer's)
// and fails the test unless both sides exit 0. wormhole-william's two
// known failures get one logged retry (cleanup removes what the failed
// attempt wrote): its sender race (it failed ~1 run in 3-5 when the relay
// path won; wh's receiver no longer triggers it, transitorder.go) and the
// ~1% key-confirmation failure it also has with Python 0.12 (see
// TRANSFER.md). It returns wh's result.
func netnsRun(t *testing.T, parent context.Context, c netnsCell,
	xfer func() (context.Context, context.CancelFunc), code func() string,
	run func(ctx context.Context, k string) (whRun, peerRun result), cleanup func()) result {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := xfer()
		whRun, peerRun := run(ctx, code())
		cancel()
		if whRun.code == 0 && peerRun.code == 0 {
			return whRun
		}
		why := ""
		if c.peer == peerWilliam {
			switch {
			case wrongKeyWithWilliam(whRun, peerRun):
				why = "key confirmation failed: wormhole-william's own ~1% failure, also with Python; see TRANSFER.md"
			case !c.whSends:
				why = "wormhole-william's known sender race"
			}
		}
		if why == "" || attempt == 2 || parent.Err() != nil {
			t.Fatalf("%s (attempt %d):\nwh: %v\n%s: %v", c.name(), attempt, whRun, c.peer, peerRun)
		}
		t.Logf("RETRY: %s failed on attempt 1; retrying once (%s):\nwh %v\n%s %v", c.name(), why, whRun, c.peer, peerRun)
		cleanup()
	}
}

// wrongKeyWithWilliam reports wormhole-william's own failure, seen about
// once in a hundred exchanges in both directions with wh AND with Python
// 0.12 (3 of 400): key confirmation fails (wh exits 3, wormhole-william
// says "decrypt message failed"). Our SPAKE2 agreed with Python's spake2
// in 5000 of 5000 exchanges; see TRANSFER.md. whRun is wh's result, wwRun
// wormhole-william's.
func wrongKeyWithWilliam(whRun, wwRun result) bool {
	return whRun.code == exitWrongCode || strings.Contains(wwRun.stderr, "decrypt message failed")
}

// relaySlot is wormhole-william's relay address, 127.0.0.1:4001, with
// Debian's relay or ours on it.
type relaySlot struct {
	t     *testing.T
	kind  string // pathDebian, pathOurs or "" (nothing)
	relay relayUT
	halt  func()
}

func (s *relaySlot) stop() {
	if s.halt != nil {
		s.halt()
		s.halt = nil
	}
	s.kind = ""
}

func (s *relaySlot) start(kind string) {
	t := s.t
	t.Helper()
	s.stop()
	switch kind {
	case pathDebian:
		interop.NeedCommand(t, "twistd3")
		dir := t.TempDir()
		cmd := exec.Command("twistd3", "-n", "--pidfile=", "--logfile="+filepath.Join(dir, "relay.log"),
			"transitrelay", "--port=tcp:4001:interface=127.0.0.1", "--usage-db=usage.sqlite")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		s.halt = func() {
			once.Do(func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				_ = cmd.Wait()
			})
		}
		if err := interop.WaitTCP(williamRelayAddr, 30*time.Second); err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "relay.log"))
			t.Fatalf("%v\n%s", err, b)
		}
		s.relay = relayUT{"Debian's relay (port 4001)", williamRelayHint, debianUsage(filepath.Join(dir, "usage.sqlite"))}
	case pathOurs:
		l, err := net.Listen("tcp", williamRelayAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv := relay.New(relay.Options{})
		served := make(chan struct{})
		go func() { defer close(served); srv.Serve(l) }()
		s.halt = func() { srv.Close(); <-served }
		s.relay = relayUT{"our relay (port 4001)", williamRelayHint, ourUsage(srv)}
	default:
		t.Fatalf("relay slot: unknown kind %q", kind)
	}
	s.kind = kind
}
