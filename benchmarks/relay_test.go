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
func pump(b *testing.B, w io.Writer, r io.Reader, serverCPU func() int64) {
	b.Helper()
	buf := make([]byte, relayChunk)
	rbuf := make([]byte, relayChunk)
	total := int64(b.N) * relayChunk
	done := make(chan error, 1)
	b.SetBytes(relayChunk)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	var scpu0 int64
	if serverCPU != nil {
		scpu0 = serverCPU()
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
	if serverCPU != nil {
		// CPU time of the relay process per byte relayed.
		b.ReportMetric(float64(serverCPU()-scpu0)/float64(total), "relay-cpu-ns/B")
	}
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
	for _, p := range relayPaths {
		b.Run(p.name, func(b *testing.B) {
			a, c, cpu := p.pair(b)
			pump(b, a, c, cpu)
		})
	}
}

type relayPath struct {
	name string
	pair func(b *testing.B) (a, c net.Conn, serverCPU func() int64)
}

func noCPU(f func(b *testing.B) (net.Conn, net.Conn)) func(b *testing.B) (net.Conn, net.Conn, func() int64) {
	return func(b *testing.B) (net.Conn, net.Conn, func() int64) {
		a, c := f(b)
		return a, c, nil
	}
}

var relayPaths = []relayPath{
	{"raw-loopback-tcp", noCPU(tcpPair)},
	{"go-relay-process", func(b *testing.B) (net.Conn, net.Conn, func() int64) {
		addr, pid := startRelayProcess(b)
		a, c := relayPair(b, addr)
		return a, c, func() int64 { return pidCPU(pid) }
	}},
	{"go-relay-inprocess", noCPU(func(b *testing.B) (net.Conn, net.Conn) { return relayPair(b, relaytest.Start(b).Addr()) })},
	{"python-relay", noCPU(func(b *testing.B) (net.Conn, net.Conn) {
		return relayPair(b, interop.StartPythonRelay(b).Addr())
	})},
}

// startRelayProcess builds benchmarks/cmd/relayserver and runs it as a
// child process (like the Python relay, and like a deployed relay: its
// goroutines do not share the benchmark process's Ps with the clients).
func startRelayProcess(b *testing.B) (addr string, pid int) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "relayserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/relayserver").CombinedOutput(); err != nil {
		b.Fatalf("build relayserver: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
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
	for _, p := range relayPaths[:2] {
		b.Run(p.name, func(b *testing.B) {
			a, c, cpu := p.pair(b)
			go source(c)
			go sink(a)
			pump(b, a, c, cpu)
		})
	}
}
