package benchmarks

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

const relayChunk = 64 << 10

// pump sends b.N chunks from w and reads them all from r; b.SetBytes
// makes the result MB/s through the path.
func pump(b *testing.B, w io.Writer, r io.Reader, serverPID int) {
	b.Helper()
	buf := make([]byte, relayChunk)
	rbuf := make([]byte, relayChunk)
	total := int64(b.N) * relayChunk
	done := make(chan error, 1)
	b.SetBytes(relayChunk)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	sched0 := schedOf(os.Getpid())
	var scpu0 int64
	var ssched0 sched
	if serverPID != 0 {
		scpu0 = pidCPU(serverPID)
		ssched0 = schedOf(serverPID)
	}
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := w.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if err := drain(r, total, rbuf); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	// CPU time of this whole process (clients and, for our relay, the
	// relay) per byte: unlike MB/s it does not depend on how busy the
	// machine's other cores are. The Python relay's CPU is not included.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(total), "cpu-ns/B")
	// Time this process's threads spent runnable but waiting for a CPU
	// (/proc/PID/task/*/schedstat), and context switches, per MB: how much
	// the threads of the path competed for the 2 cores.
	d := schedOf(os.Getpid()).sub(sched0)
	b.ReportMetric(float64(d.waitNs)/float64(total), "rq-wait-ns/B")
	b.ReportMetric(float64(d.switches)*1e6/float64(total), "cs/MB")
	if serverPID != 0 {
		// CPU time of the relay process per byte relayed.
		b.ReportMetric(float64(pidCPU(serverPID)-scpu0)/float64(total), "relay-cpu-ns/B")
		sd := schedOf(serverPID).sub(ssched0)
		b.ReportMetric(float64(sd.waitNs)/float64(total), "relay-rq-wait-ns/B")
		b.ReportMetric(float64(sd.switches)*1e6/float64(total), "relay-cs/MB")
	}
}

// sched is the sum over a process's threads of the time spent waiting on
// a run queue and of context switches (voluntary and not).
type sched struct{ waitNs, switches int64 }

func (a sched) sub(b sched) sched { return sched{a.waitNs - b.waitNs, a.switches - b.switches} }

// schedOf reads /proc/PID/task/*/schedstat ("run_ns wait_ns slices") and
// the threads' context-switch counts; zero where unreadable.
func schedOf(pid int) sched {
	var s sched
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, _ := os.ReadDir(dir)
	for _, t := range tasks {
		if raw, err := os.ReadFile(dir + t.Name() + "/schedstat"); err == nil {
			if f := strings.Fields(string(raw)); len(f) >= 2 {
				w, _ := strconv.ParseInt(f[1], 10, 64)
				s.waitNs += w
			}
		}
		if raw, err := os.ReadFile(dir + t.Name() + "/status"); err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					s.switches += n
				}
			}
		}
	}
	return s
}

// processCPU is this process's user+system CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// drain reads exactly total bytes from r with reads of len(buf) (the same
// size as the writes, for every path measured; io.Discard's ReadFrom would
// read in 8 KiB pieces).
func drain(r io.Reader, total int64, buf []byte) error {
	for total > 0 {
		n, err := r.Read(buf[:min(int64(len(buf)), total)])
		total -= int64(n)
		if err != nil && total > 0 {
			return err
		}
	}
	return nil
}

// sink reads r until it fails, with the same buffer size as drain.
func sink(r io.Reader) {
	buf := make([]byte, relayChunk)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// source writes to w until it fails.
func source(w io.Writer) {
	buf := make([]byte, relayChunk)
	for {
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c2, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}

const benchToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func relayPair(b *testing.B, addr string) (net.Conn, net.Conn) {
	var cs [2]net.Conn
	for i, side := range []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(c, "please relay %s for side %s\n", benchToken, side)
		cs[i] = c
		b.Cleanup(func() { c.Close() })
	}
	for _, c := range cs {
		ok := make([]byte, 3)
		if _, err := io.ReadFull(c, ok); err != nil || string(ok) != "ok\n" {
			b.Fatalf("relay said %q %v", ok, err)
		}
	}
	return cs[0], cs[1]
}

// BenchmarkRelayThroughput compares one direction of bulk data over raw
// loopback TCP, through our relay and through Debian's Python relay, in the
// same run. Our relay runs as a separate process (go-relay-process: the
// fair comparison, Python's relay is one too, and a deployed relay is) and
// inside the benchmark process (go-relay-inprocess: its goroutines share
// the clients' Ps). Every path is measured the same way: the client writes
// 64 KiB chunks on one TCP connection and reads with 64 KiB reads on the
// other, in this process. See docs/performance.md.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, p := range relayPaths(b) {
		b.Run(p.name, func(b *testing.B) {
			a, c, pid := p.pair(b)
			pump(b, a, c, pid)
		})
	}
}

type relayPath struct {
	name string
	pair func(b *testing.B) (a, c net.Conn, serverPID int)
}

func noCPU(f func(b *testing.B) (net.Conn, net.Conn)) func(b *testing.B) (net.Conn, net.Conn, int) {
	return func(b *testing.B) (net.Conn, net.Conn, int) {
		a, c := f(b)
		return a, c, 0
	}
}

// relayPaths are the paths measured. The relay server binary is built
// once per call (not once per b.N round), when first needed.
func relayPaths(b *testing.B) []relayPath {
	parent := b
	var bin string
	relayBin := func(b *testing.B) string {
		b.Helper()
		if bin == "" {
			bin = buildRelayServer(parent) // parent's TempDir outlives the sub-benchmarks
		}
		return bin
	}
	return []relayPath{
		{"raw-loopback-tcp", noCPU(tcpPair)},
		{"go-relay-process", func(b *testing.B) (net.Conn, net.Conn, int) {
			addr, pid := startRelayProcess(b, relayBin(b))
			a, c := relayPair(b, addr)
			return a, c, pid
		}},
		{"go-relay-inprocess", noCPU(func(b *testing.B) (net.Conn, net.Conn) { return relayPair(b, relaytest.Start(b).Addr()) })},
		{"python-relay", noCPU(func(b *testing.B) (net.Conn, net.Conn) {
			return relayPair(b, interop.StartPythonRelay(b).Addr())
		})},
	}
}

// buildRelayServer builds benchmarks/cmd/relayserver into a temporary
// directory that lives as long as b.
func buildRelayServer(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "relayserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/relayserver").CombinedOutput(); err != nil {
		b.Fatalf("build relayserver: %v\n%s", err, out)
	}
	return bin
}

// startRelayProcess runs bin (benchmarks/cmd/relayserver) as a child
// process (like the Python relay, and like a deployed relay: its
// goroutines do not share the benchmark process's Ps with the clients).
func startRelayProcess(b *testing.B, bin string) (addr string, pid int) {
	b.Helper()
	// WH_RELAYSERVER_FLAGS (e.g. "-notsent-lowat -1") is for A/B runs
	// of relay options.
	cmd := exec.Command(bin, strings.Fields(os.Getenv("WH_RELAYSERVER_FLAGS"))...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
	if err != nil || !ok {
		b.Fatalf("relayserver said %q: %v", line, err)
	}
	return addr, cmd.Process.Pid
}

// pidCPU is a process's user+system CPU time in nanoseconds, from
// /proc/PID/stat (0 if unreadable).
func pidCPU(pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * int64(time.Second) / 100 // USER_HZ
}

// BenchmarkRelayBothDirections runs full duplex (a second pump in the
// other direction at the same time) over raw loopback TCP and through our
// relay (separate process); bytes counted are one direction's.
func BenchmarkRelayBothDirections(b *testing.B) {
	for _, p := range relayPaths(b)[:2] {
		b.Run(p.name, func(b *testing.B) {
			a, c, pid := p.pair(b)
			go source(c)
			go sink(a)
			pump(b, a, c, pid)
		})
	}
}
