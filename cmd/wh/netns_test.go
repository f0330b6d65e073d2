//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// bigSize is the size of the one large file per (peer, direction).
const bigSize = 256 << 20

// TestFilesInNetns runs the file-transfer interop matrix with Python's
// `wormhole` 0.12 and wormhole-william, direct and relay-only (Debian's
// Python relay and ours), inside a network namespace of its own that has
// nothing but a loopback interface: no traffic can leave the test.
// wormhole-william always uses its built-in relay,
// transit.magic-wormhole.io:4001, and has no flag to change it; inside the
// namespace that name resolves to 127.0.0.1 (a private /etc/hosts in a
// private mount namespace), where a Python (or our) relay listens. It
// re-runs this test binary there (unshare -rnm) with only TestNetnsChild
// selected; wh runs as a real process (built here).
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
	pyRelay, stopPyRelay := startRelay4001(t) // also wormhole-william's built-in relay
	goRelay := relaytest.Start(t).Hint()
	src := t.TempDir()
	dst := chdirTemp(t)
	big := makePayload(t, src, "big.bin", bigSize, 1)
	small := makePayload(t, src, "small.bin", 3<<20+5, 2)
	makeTree(t, filepath.Join(src, "tree"))
	makePayload(t, filepath.Join(src, "tree", "sub"), "more.bin", 1<<20+3, 3)
	treeDir := filepath.Join(src, "tree")
	tree := treeSums(t, treeDir)

	// safety nets only
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	xfer := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 3*time.Minute) }

	nameplate := 0
	code := func() string { nameplate++; return fmt.Sprintf("%d-foo-bar", nameplate) }
	// wh's and Python's flags for a path: relay "" = direct (listening,
	// with the Python relay as a fallback), else relay-only through it
	whArgs := func(cmd, relayHint string, args ...string) []string {
		a := []string{cmd, "--relay-url", mb.URL(), "--hide-progress"}
		if relayHint == "" {
			a = append(a, "--transit-helper", pyRelay)
		} else {
			a = append(a, "--transit-helper", relayHint, "--no-listen")
		}
		return append(a, args...)
	}
	pyArgs := func(cmd, relayHint string, args ...string) []string {
		a := []string{"--relay-url", mb.URL()}
		if relayHint == "" {
			a = append(a, "--transit-helper", pyRelay, cmd)
		} else {
			a = append(a, "--transit-helper", relayHint, cmd, "--no-listen")
		}
		return append(append(a, "--hide-progress"), args...)
	}
	okBoth := func(t *testing.T, s, r result, sender, receiver string) {
		t.Helper()
		if s.code != 0 || r.code != 0 {
			t.Fatalf("%s send: %v\n%s receive: %v", sender, s, receiver, r)
		}
	}

	t.Run("wh-to-wh/file-direct", func(t *testing.T) {
		ctx, cancel := xfer()
		defer cancel()
		k := code()
		ws, wr := both(
			func() result { return runCmd(ctx, "", wh, whArgs("send", "", "--code", k, small.path)...) },
			func() result { return runCmd(ctx, "", wh, whArgs("receive", "", "--accept-file", "-o", "got", k)...) },
		)
		okBoth(t, ws, wr, "wh", "wh")
		checkFile(t, filepath.Join(dst, "got"), small)
		wantPath(t, ws, "")
	})

	// --- Python `wormhole` 0.12 ---
	for _, c := range []struct {
		name  string
		what  string // "big", "small" or "tree"
		relay string
	}{
		{"256MiB-direct", "big", ""},
		{"dir-relay-python", "tree", pyRelay},
		{"file-relay-go", "small", goRelay},
	} {
		file := map[string]payload{"big": big, "small": small}[c.what]
		sendPath := file.path
		if c.what == "tree" {
			sendPath = treeDir
		}
		check := func(t *testing.T, got string) {
			if c.what == "tree" {
				checkDir(t, got, tree)
			} else {
				checkFile(t, got, file)
			}
		}
		t.Run("wh-to-python/"+c.name, func(t *testing.T) {
			ctx, cancel := xfer()
			defer cancel()
			k := code()
			ws, pr := both(
				func() result { return runCmd(ctx, "", wh, whArgs("send", c.relay, "--code", k, sendPath)...) },
				func() result {
					return runCmd(ctx, "", wormholePy, pyArgs("receive", c.relay, "--accept-file", "-o", "got", k)...)
				},
			)
			okBoth(t, ws, pr, "wh", "python")
			check(t, filepath.Join(dst, "got"))
			wantPath(t, ws, c.relay)
		})
		t.Run("python-to-wh/"+c.name, func(t *testing.T) {
			ctx, cancel := xfer()
			defer cancel()
			k := code()
			ps, wr := both(
				func() result { return runCmd(ctx, "", wormholePy, pyArgs("send", c.relay, "--code", k, sendPath)...) },
				func() result {
					return runCmd(ctx, "", wh, whArgs("receive", c.relay, "--accept-file", "-o", "got", k)...)
				},
			)
			okBoth(t, ps, wr, "python", "wh")
			check(t, filepath.Join(dst, "got"))
			wantPath(t, wr, c.relay)
		})
	}

	// --- wormhole-william (receiver: it dials our direct hints, or the
	// relay we advertise) ---
	for _, c := range []struct {
		name  string
		what  string
		relay string
	}{
		{"256MiB-direct", "big", ""},
		{"dir-relay-python", "tree", pyRelay},
		{"file-relay-go", "small", goRelay},
	} {
		t.Run("wh-to-william/"+c.name, func(t *testing.T) {
			ctx, cancel := xfer()
			defer cancel()
			k := code()
			file := map[string]payload{"big": big, "small": small}[c.what]
			sendPath := file.path
			if c.what == "tree" {
				sendPath = treeDir
			}
			ws, wr := both(
				func() result { return runCmd(ctx, "", wh, whArgs("send", c.relay, "--code", k, sendPath)...) },
				func() result { return runCmd(ctx, "y\n", ww, "receive", "--relay-url", mb.URL(), "--hide-progress", k) },
			)
			if wrongKeyWithWilliam(ws, wr) {
				t.Logf("RETRY: key confirmation failed between wh and wormhole-william (wormhole-william's own ~1%% failure, also with Python; see TRANSFER.md); retrying once:\nsend %v\nreceive %v", ws, wr)
				k = code()
				ws, wr = both(
					func() result { return runCmd(ctx, "", wh, whArgs("send", c.relay, "--code", k, sendPath)...) },
					func() result { return runCmd(ctx, "y\n", ww, "receive", "--relay-url", mb.URL(), "--hide-progress", k) },
				)
			}
			okBoth(t, ws, wr, "wh", "wormhole-william")
			if c.what == "tree" {
				checkDir(t, filepath.Join(dst, "tree"), tree)
			} else {
				checkFile(t, filepath.Join(dst, file.name), file)
			}
			wantPath(t, ws, c.relay)
		})
	}

	// --- wormhole-william as a sender: two runs in all (a directory
	// direct here, the 256 MiB file through our relay below). Its sender
	// had a race that failed ~1 run in 3-5 when the relay path won; wh's
	// receiver no longer triggers it (transitorder.go). Our rule: one
	// retry at most, and it is logged.
	williamSends := func(t *testing.T, what, receiveRelay string, check func(t *testing.T)) result {
		var wr result
		for attempt := 1; attempt <= 2; attempt++ {
			ctx, cancel := xfer()
			k := code()
			var ws result
			ws, wr = both(
				func() result {
					return runCmd(ctx, "", ww, "send", "--relay-url", mb.URL(), "--hide-progress", "--code", k, what)
				},
				func() result { return runCmd(ctx, "", wh, whArgs("receive", receiveRelay, "--accept-file", k)...) },
			)
			cancel()
			if ws.code == 0 && wr.code == 0 {
				check(t)
				return wr
			}
			if attempt == 1 {
				why := "its known sender race"
				if wrongKeyWithWilliam(wr, ws) {
					why = "key confirmation failed: wormhole-william's own ~1% failure, also with Python; see TRANSFER.md"
				}
				t.Logf("RETRY: wormhole-william send failed on attempt 1; retrying once (%s):\nsend %v\nreceive %v", why, ws, wr)
				os.RemoveAll(filepath.Join(dst, filepath.Base(what)))
				continue
			}
			t.Fatalf("wormhole-william send failed twice:\nsend %v\nwh receive %v", ws, wr)
		}
		return wr
	}
	t.Run("william-to-wh/dir-direct", func(t *testing.T) {
		wr := williamSends(t, treeDir, "", func(t *testing.T) { checkDir(t, filepath.Join(dst, "tree"), tree) })
		wantPath(t, wr, "")
	})

	// Then: no direct hints from wormhole-william (the LAN address goes),
	// and our relay in place of Python's at its built-in relay address.
	t.Run("william-to-wh/256MiB-relay-go", func(t *testing.T) {
		if out, err := exec.Command("ip", "addr", "del", lanAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("ip addr del: %v %s", err, out)
		}
		stopPyRelay()
		l, err := net.Listen("tcp", "127.0.0.1:4001")
		if err != nil {
			t.Fatal(err)
		}
		srv := relay.New(relay.Options{})
		served := make(chan struct{})
		go func() { defer close(served); srv.Serve(l) }()
		defer func() { srv.Close(); <-served }()
		wr := williamSends(t, big.path, "tcp:127.0.0.1:4001", func(t *testing.T) { checkFile(t, filepath.Join(dst, big.name), big) })
		// wormhole-william advertises its relay by name; the same relay
		wantPath(t, wr, "tcp:127.0.0.1:4001", "tcp:transit.magic-wormhole.io:4001")
	})
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

// startRelay4001 runs Debian's Python transit relay on 127.0.0.1:4001 (the
// port wormhole-william's built-in relay hint names) for the test. stop
// ends it early (it may be called more than once).
func startRelay4001(t *testing.T) (hint string, stop func()) {
	t.Helper()
	interop.NeedCommand(t, "twistd3")
	dir := t.TempDir()
	cmd := exec.Command("twistd3", "-n", "--pidfile=", "--logfile="+filepath.Join(dir, "relay.log"),
		"transitrelay", "--port=tcp:4001:interface=127.0.0.1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	if err := interop.WaitTCP("127.0.0.1:4001", 30*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "relay.log"))
		t.Fatalf("%v\n%s", err, b)
	}
	return "tcp:127.0.0.1:4001", stop
}
