package benchmarks

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/tunnel/fowlinterop"
)

// fowlSize is what one iteration sends through a forwarded connection:
// WH_FOWL_BENCH_MIB MiB (default 32). fowl has no half-close (EOF closes
// the whole forwarded connection), so the sink answers one byte after
// exactly that many bytes instead of at EOF; the client then closes.
func fowlSize(b *testing.B) int {
	v := os.Getenv("WH_FOWL_BENCH_MIB")
	if v == "" {
		return 32 << 20
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 4096 {
		b.Fatalf("WH_FOWL_BENCH_MIB=%q: want a whole number of MiB, 1 to 4096", v)
	}
	return n << 20
}

// BenchmarkFowlForward measures the throughput of one forwarded TCP
// connection, with the same payload and sink everywhere.
//
// The first cell, "compare", is the comparison in one run: each
// iteration moves the payload once straight over loopback TCP, once through
// a pair of wh-tunnel processes and (with WH_FOWL) once through a pair of
// fowld processes, in a rotating order, so that the three paths share the
// machine's load. It reports per path MB/s (raw-MB/s, wht-MB/s, fowl-MB/s),
// CPU of both peer processes per MiB forwarded (wht-cpu-ms/MiB,
// fowl-cpu-ms/MiB), the ratios wht/fowl and wht/raw (of the MB/s over the
// whole run) and the 1-minute load average at the end (load1). Its ns/op is
// the time of all three transfers.
//
// Then one cell per pair (MB/s of that path alone, and cpu-ms/MiB):
//
//	raw-tcp                  loopback TCP straight to the sink
//	wh-tunnel/wh-tunnel      two wh-tunnel processes (-L / -R)
//	fowl/fowl                two fowld processes (local / remote)
//	fowl-listens/wh-tunnel   fowl listens, wh-tunnel dials the sink
//	wh-tunnel-listens/fowl   wh-tunnel listens, fowl dials the sink
//
// Peers are real processes talking Dilation directly (no relay used) after
// meeting on an in-process mailbox. The fowl cells need WH_FOWL (see
// tunnel/fowlinterop; CI cannot install fowl) and skip without it ("compare"
// then reports raw and wh-tunnel only). WH_FOWL_BENCH_MIB sets the MiB per
// transfer (default 32); WH_TUNNEL_CPUPROFILE=DIR writes a CPU profile of
// every wh-tunnel process into DIR. Run e.g.
//
//	WH_FOWL=... go test -run '^$' -bench FowlForward/compare -benchtime 8x ./benchmarks/
//
// See docs/fowl-interop.md for figures.
func BenchmarkFowlForward(b *testing.B) {
	size := fowlSize(b)
	sink := startAckSink(b, size)
	rawAddr := fmt.Sprintf("127.0.0.1:%d", sink)
	bin := fowlinterop.BuildWhTunnel(b)
	mb := mailboxtest.Start(b, mailboxtest.WithMemoryStore())
	rl := relaytest.Start(b)
	b.Run("compare", func(b *testing.B) {
		type path struct {
			name  string
			addr  string
			procs []*fowlinterop.Proc
			d     time.Duration
			cpu   time.Duration
			bytes int64
		}
		paths := []*path{{name: "raw", addr: rawAddr}}
		addr, procs := forwardPair(b, nil, bin, mb.URL(), rl.Hint(), "wh-tunnel", "wh-tunnel", sink)
		paths = append(paths, &path{name: "wht", addr: addr, procs: procs})
		if os.Getenv(fowlinterop.EnvVar) != "" {
			env := fowlinterop.Need(b)
			addr, procs := forwardPair(b, env, bin, mb.URL(), rl.Hint(), "fowl", "fowl", sink)
			paths = append(paths, &path{name: "fowl", addr: addr, procs: procs})
		} else {
			b.Logf("%s unset: comparing raw TCP and wh-tunnel only", fowlinterop.EnvVar)
		}
		buf := payload()
		b.ReportAllocs()
		round := 0
		for b.Loop() {
			for k := range paths {
				p := paths[(round+k)%len(paths)]
				c0 := procsCPU(b, p.procs)
				t0 := time.Now()
				ackTransfer(b, p.addr, buf, size)
				p.d += time.Since(t0)
				p.cpu += procsCPU(b, p.procs) - c0
				p.bytes += int64(size)
			}
			round++
		}
		mbps := map[string]float64{}
		for _, p := range paths {
			mbps[p.name] = float64(p.bytes) / 1e6 / p.d.Seconds()
			b.ReportMetric(mbps[p.name], p.name+"-MB/s")
			if p.procs != nil {
				b.ReportMetric(float64(p.cpu.Milliseconds())/float64(p.bytes>>20), p.name+"-cpu-ms/MiB")
			}
		}
		b.ReportMetric(mbps["wht"]/mbps["raw"], "wht/raw")
		if f, ok := mbps["fowl"]; ok {
			b.ReportMetric(mbps["wht"]/f, "wht/fowl")
		}
		if l, err := load1(); err == nil {
			b.ReportMetric(l, "load1")
		}
	})
	b.Run("raw-tcp", func(b *testing.B) {
		benchAckTransfer(b, rawAddr, nil, size)
	})
	for _, c := range []struct{ name, listener, connector string }{
		{"wh-tunnel/wh-tunnel", "wh-tunnel", "wh-tunnel"},
		{"fowl/fowl", "fowl", "fowl"},
		{"fowl-listens/wh-tunnel", "fowl", "wh-tunnel"},
		{"wh-tunnel-listens/fowl", "wh-tunnel", "fowl"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var env *fowlinterop.Env
			if c.listener == "fowl" || c.connector == "fowl" {
				env = fowlinterop.Need(b)
			}
			addr, procs := forwardPair(b, env, bin, mb.URL(), rl.Hint(), c.listener, c.connector, sink)
			benchAckTransfer(b, addr, procs, size)
		})
	}
}

// load1 is the 1-minute load average (Linux).
func load1() (float64, error) {
	s, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(s))
	if len(f) == 0 {
		return 0, fmt.Errorf("odd /proc/loadavg %q", s)
	}
	return strconv.ParseFloat(f[0], 64)
}

// forwardPair starts the listening peer (which allocates the code) and
// the connecting peer, and returns the listening address.
func forwardPair(b *testing.B, env *fowlinterop.Env, bin, mb, hint, listener, connector string, sink int) (string, []*fowlinterop.Proc) {
	spec := fmt.Sprintf("bench=0:127.0.0.1:%d", sink)
	var lp, cp *fowlinterop.Proc
	var code string
	if listener == "fowl" {
		lp = env.StartFowld(b, "fowld-listener", mb, hint)
		lp.Send(map[string]any{"kind": "allocate-code"})
		lp.Send(map[string]any{"kind": "local", "name": "bench"})
	} else {
		lp = fowlinterop.StartWhTunnel(b, bin, "wh-tunnel-listener", mb, hint, "-L", spec)
	}
	code = lp.Wait("code-allocated", nil).Str("code")
	if connector == "fowl" {
		cp = env.StartFowld(b, "fowld-connector", mb, hint)
		cp.Send(map[string]any{"kind": "remote", "name": "bench", "local_connect_port": sink})
		cp.Send(map[string]any{"kind": "set-code", "code": code})
	} else {
		cp = fowlinterop.StartWhTunnel(b, bin, "wh-tunnel-connector", mb, hint, "-R", spec, code)
	}
	port := lp.Wait("listening", fowlinterop.Named("bench")).Int("listening_port")
	cp.Wait("awaiting-connect", fowlinterop.Named("bench"))
	return fmt.Sprintf("127.0.0.1:%d", port), []*fowlinterop.Proc{lp, cp}
}

func payload() []byte {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	return buf
}

// procsCPU is the CPU time procs have used so far.
func procsCPU(b *testing.B, procs []*fowlinterop.Proc) time.Duration {
	var sum time.Duration
	for _, p := range procs {
		d, err := p.CPU()
		if err != nil {
			b.Fatal(err)
		}
		sum += d
	}
	return sum
}

// ackTransfer sends size bytes to addr (256 KiB writes), waits for the
// sink's one-byte ack and closes.
func ackTransfer(b *testing.B, addr string, buf []byte, size int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	for sent := 0; sent < size; {
		n, err := c.Write(buf[:min(len(buf), size-sent)])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		b.Fatalf("no ack after %d bytes: %v", size, err)
	}
}

func benchAckTransfer(b *testing.B, addr string, procs []*fowlinterop.Proc, size int) {
	buf := payload()
	cpu0 := procsCPU(b, procs)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		ackTransfer(b, addr, buf, size)
		n++
	}
	if procs != nil {
		b.ReportMetric(float64((procsCPU(b, procs)-cpu0).Milliseconds())/float64(n*(size>>20)), "cpu-ms/MiB")
	}
}

// startAckSink reads exactly size bytes per connection, answers one
// byte, then waits for the client to close.
func startAckSink(b *testing.B, size int) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(netx.Serve(ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		// Large reads (io.Discard would read 8 KiB at a time: 128
		// syscalls per MiB on the shared cores).
		buf := make([]byte, 256<<10)
		if n, _ := io.CopyBuffer(discard{}, io.LimitReader(c, int64(size)), buf); n == int64(size) {
			c.Write([]byte{1})
		}
		io.CopyBuffer(discard{}, c, buf)
	}))
	return ln.Addr().(*net.TCPAddr).Port
}

// discard is io.Discard without ReadFrom (which reads 8 KiB at a time), so
// io.CopyBuffer uses the caller's buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
