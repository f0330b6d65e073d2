//go:build linux

package benchmarks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
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
)

// Environment of the copy of the benchmark binary that runs inside the
// network namespace.
const (
	ftChildEnv = "WH_BENCH_NETNS_HOSTS" // path of the private /etc/hosts
	ftBinEnv   = "WH_BENCH_NETNS_WH"    // path of the wh binary
	ftSizeEnv  = "WH_BENCH_FILE_MIB"    // file size in MiB (default 256)
)

// ftLANAddr is a second, non-127/8 address on the namespace's loopback
// interface: every client advertises it as a direct hint, and the traffic
// stays in the namespace.
const ftLANAddr = "10.77.0.1"

// BenchmarkFileTransfer measures file-transfer throughput between real CLI
// processes, all on the same generated file (256 MiB by default; set
// WH_BENCH_FILE_MIB): wh->wh, wh->python, python->wh, python->python
// (reference) and wormhole-william->wormhole-william, each over three
// paths: direct (everyone listens; a LAN address on the namespace's
// loopback), relay-python (Debian's transit relay; nobody offers direct
// hints) and relay-go (our relay in the same place). wormhole-william
// only knows its built-in relay, transit.magic-wormhole.io:4001, so it all
// runs in a private network and mount namespace (unshare -rnm) where that
// name is 127.0.0.1 and the relays listen on port 4001.
//
// One op is one complete transfer: both processes started together with a
// fixed code, mailbox (Python's) exchange, transit, until both exited; the
// received file's sha256 is checked outside the timer. Files live on a
// tmpfs mounted in the namespace (the disk is not what is measured).
// MB/s = file bytes per op, so process start-up and the key exchange
// (0.2 s for Go programs, 0.5-2 s with Python's start-up) are included;
// "data-MB/s" is the data phase alone: file bytes divided by the time
// from the first byte appearing in the receiver's directory to the last
// (polled every 2 ms). "send-cpu-s" and "recv-cpu-s" are each process's
// CPU time (user+system) per op: on a shared machine these say more
// than wall time.
//
// The benchmark re-runs this binary inside the namespace; the results
// printed are the child's, and this top-level benchmark then skips.
func BenchmarkFileTransfer(b *testing.B) {
	if os.Getenv(ftChildEnv) != "" {
		benchFileTransferChild(b)
		return
	}
	unshare := interop.NeedCommand(b, "unshare")
	interop.NeedCommand(b, "ip")
	if out, err := exec.Command(unshare, "-rnm", "true").CombinedOutput(); err != nil {
		if interop.Required() {
			b.Fatalf("cannot create a network namespace: %v %s", err, out)
		}
		b.Skipf("cannot create a network namespace here: %v %s", err, out)
	}
	wh := buildWH(b)
	hosts := filepath.Join(b.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost transit.magic-wormhole.io\n::1 localhost\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"-rnm", os.Args[0], "-test.run=^$", "-test.benchmem"}
	if v := flagValue("test.bench"); v != "" && strings.HasPrefix(v, "BenchmarkFileTransfer/") {
		args = append(args, "-test.bench="+v)
	} else {
		args = append(args, "-test.bench=^BenchmarkFileTransfer$")
	}
	for _, f := range []string{"test.benchtime", "test.count", "test.cpu", "test.timeout"} {
		if v := flagValue(f); v != "" {
			args = append(args, "-"+f+"="+v)
		}
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), ftChildEnv+"="+hosts, ftBinEnv+"="+wh, "PYTHONDONTWRITEBYTECODE=1")
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(os.Stdout, &out)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "\nPASS") && !strings.Contains(out.String(), "ok ") {
		b.Fatalf("benchmark in the namespace: %v", err)
	}
	b.Skip("ran in a network namespace; the results are the lines above")
}

// flagValue is the value of a -test.* flag this binary was started with.
func flagValue(name string) string {
	for _, a := range os.Args[1:] {
		for _, p := range []string{"-" + name + "=", "--" + name + "="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				return v
			}
		}
	}
	return ""
}

// ftFile writes size pseudo-random bytes and returns the path and sha256.
func ftFile(b *testing.B, dir string, size int64) (string, string) {
	p := filepath.Join(dir, "payload.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{42})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		rng.Read(buf[:n])
		f.Write(buf[:n])
		h.Write(buf[:n])
		left -= n
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p, hex.EncodeToString(h.Sum(nil))
}

func ftSum(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// ftRun runs one process in dir and returns the CPU time it used (user +
// system), or an error with its output if it fails.
func ftRun(ctx context.Context, dir, stdin string, argv []string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func benchFileTransferChild(b *testing.B) {
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", ftLANAddr + "/32", "dev", "lo"},
		{"mount", "--bind", os.Getenv(ftChildEnv), "/etc/hosts"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v %s", c, err, out)
		}
	}
	wh := os.Getenv(ftBinEnv)
	if wh == "" {
		wh = buildWH(b)
	}
	py := interop.NeedCommand(b, "wormhole")
	ww := interop.NeedCommand(b, "wormhole-william")
	interop.NeedCommand(b, "twistd3")
	mb := interop.StartPythonMailbox(b)
	url := mb.URL()
	const relayHint = "tcp:127.0.0.1:4001" // every relay used sits here

	size := int64(256 << 20)
	if v := os.Getenv(ftSizeEnv); v != "" {
		var mib int64
		if _, err := fmt.Sscan(v, &mib); err != nil || mib <= 0 {
			b.Fatalf("%s=%q", ftSizeEnv, v)
		}
		size = mib << 20
	}
	// files on a private tmpfs: the VM's disk (ext4, writes 200-550 MB/s
	// and erratic) would otherwise be what is measured
	dir := b.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+fmt.Sprint(3*size+64<<20), "whbench", dir).CombinedOutput(); err != nil {
		b.Fatalf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	src, sum := ftFile(b, dir, size)

	// Python relay on 4001 first; swapped for ours for relay-go
	stopPy := ftStartPythonRelay(b, dir)
	defer func() { stopPy() }()

	type prog struct {
		send func(code string, direct bool) []string
		recv func(code string, direct bool) []string
		out  string // file name the receiver writes in its directory
	}
	listen := func(direct bool) []string {
		if direct {
			return nil
		}
		return []string{"--no-listen"}
	}
	progs := map[string]prog{
		"wh": {
			send: func(code string, direct bool) []string {
				return append(append([]string{wh, "send", "--relay-url", url, "--transit-helper", relayHint, "--hide-progress", "--code", code}, listen(direct)...), src)
			},
			recv: func(code string, direct bool) []string {
				return append(append([]string{wh, "receive", "--relay-url", url, "--transit-helper", relayHint, "--hide-progress", "--accept-file", "-o", "got"}, listen(direct)...), code)
			},
			out: "got",
		},
		"python": {
			send: func(code string, direct bool) []string {
				return append(append([]string{py, "--relay-url", url, "--transit-helper", relayHint, "send", "--hide-progress", "--code", code}, listen(direct)...), src)
			},
			recv: func(code string, direct bool) []string {
				return append(append([]string{py, "--relay-url", url, "--transit-helper", relayHint, "receive", "--hide-progress", "--accept-file", "-o", "got"}, listen(direct)...), code)
			},
			out: "got",
		},
		// no --no-listen: for the relay paths the namespace has no
		// non-loopback address, so it advertises no direct hint
		"william": {
			send: func(code string, _ bool) []string {
				return []string{ww, "send", "--relay-url", url, "--hide-progress", "--code", code, src}
			},
			recv: func(code string, _ bool) []string {
				return []string{ww, "receive", "--relay-url", url, "--hide-progress", code}
			},
			out: "payload.bin",
		},
	}
	pairs := [][2]string{{"wh", "wh"}, {"wh", "python"}, {"python", "wh"}, {"python", "python"}, {"william", "william"}}

	nameplate := 1000
	// transfer runs one op and returns the sender's and receiver's CPU
	// time and how long the data took to arrive
	transfer := func(b *testing.B, p [2]string, direct bool) (time.Duration, time.Duration, time.Duration) {
		nameplate++
		code := fmt.Sprintf("%d-bench-file", nameplate)
		rdir, err := os.MkdirTemp(dir, "recv-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(rdir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // safety net
		defer cancel()
		s, r := progs[p[0]].send(code, direct), progs[p[1]].recv(code, direct)
		var wg sync.WaitGroup
		var serr, rerr error
		var scpu, rcpu time.Duration
		wg.Add(2)
		go func() { defer wg.Done(); scpu, serr = ftRun(ctx, dir, "", s) }()
		recvDone := make(chan struct{})
		go func() { defer wg.Done(); defer close(recvDone); rcpu, rerr = ftRun(ctx, rdir, "y\n", r) }()
		data := watchArrival(rdir, size, recvDone)
		wg.Wait()
		if serr != nil || rerr != nil {
			b.Fatalf("send: %v\nreceive: %v", serr, rerr)
		}
		b.StopTimer()
		if got := ftSum(filepath.Join(rdir, progs[p[1]].out)); got != sum {
			b.Fatalf("received sha256 %s, want %s", got, sum)
		}
		b.StartTimer()
		return scpu, rcpu, data
	}

	run := func(path string, direct bool) {
		for _, p := range pairs {
			b.Run(fmt.Sprintf("%s/%s-to-%s", path, p[0], p[1]), func(b *testing.B) {
				b.SetBytes(size)
				b.ResetTimer()
				n := 0
				var scpu, rcpu, data time.Duration
				for b.Loop() {
					sc, rc, d := transfer(b, p, direct)
					scpu += sc
					rcpu += rc
					data += d
					n++
				}
				b.ReportMetric(float64(size)*float64(n)/1e6/data.Seconds(), "data-MB/s")
				b.ReportMetric(scpu.Seconds()/float64(n), "send-cpu-s")
				b.ReportMetric(rcpu.Seconds()/float64(n), "recv-cpu-s")
			})
		}
	}
	run("direct", true)
	// relay only from here: no address worth advertising
	if out, err := exec.Command("ip", "addr", "del", ftLANAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
		b.Fatalf("ip addr del: %v %s", err, out)
	}
	run("relay-python", false)
	stopPy()
	l, err := net.Listen("tcp", "127.0.0.1:4001")
	if err != nil {
		b.Fatal(err)
	}
	srv := relay.New(relay.Options{})
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(l) }()
	defer func() { srv.Close(); <-served }()
	run("relay-go", false)
}

// watchArrival polls the bytes in dir (every receiver writes its file, or
// a temporary one, there as the data arrives) until they reach size or
// done is closed, and returns the time from the first byte to the last:
// the data phase, without process start-up, key exchange or connection
// setup. Polling every 2 ms bounds the error to a few ms per op.
func watchArrival(dir string, size int64, done <-chan struct{}) time.Duration {
	var first, last time.Time
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		var total int64
		if es, err := os.ReadDir(dir); err == nil {
			for _, e := range es {
				if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
					total += info.Size()
				}
			}
		}
		now := time.Now()
		if total > 0 && first.IsZero() {
			first = now
		}
		if total >= size {
			last = now
			break
		}
		select {
		case <-done:
			last = time.Now()
		case <-tick.C:
			continue
		}
		break
	}
	if d := last.Sub(first); !first.IsZero() && d > 0 {
		return d
	}
	return 2 * time.Millisecond // all at once, between two polls

}

// ftStartPythonRelay runs Debian's transit relay on 127.0.0.1:4001 and
// returns a function that stops it (idempotent).
func ftStartPythonRelay(b *testing.B, dir string) func() {
	cmd := exec.Command("twistd3", "-n", "--pidfile=", "--logfile="+filepath.Join(dir, "relay.log"),
		"transitrelay", "--port=tcp:4001:interface=127.0.0.1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	if err := interop.WaitTCP("127.0.0.1:4001", 30*time.Second); err != nil {
		stop()
		b.Fatal(err)
	}
	return stop
}
