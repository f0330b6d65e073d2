package benchmarks

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/tunnel"
	"github.com/wormhole-go/wormhole/tunnel/tunneltest"
)

// tunnelChunk is what one benchmark iteration sends through a forwarded
// connection (then half-closes and waits for the sink's 1-byte ack).
const tunnelChunk = 8 << 20

// BenchmarkTunnel compares, in one run, raw loopback TCP with the same
// transfer through a wh-tunnel forward over the in-memory session, over
// real Dilation direct on loopback (Python's "ged" mode, and the mode two
// wh-tunnel processes negotiate), and over Dilation through a relay.
// cpu-ms/MiB is the CPU time of the whole benchmark process (client, sink
// and, for the tunnel cells, both tunnels and Dilations) per MiB moved.
func BenchmarkTunnel(b *testing.B) {
	sink := startSink(b)
	b.Run("raw-tcp", func(b *testing.B) {
		benchTransfer(b, fmt.Sprintf("127.0.0.1:%d", sink))
	})
	b.Run("tunnel-memory", func(b *testing.B) {
		sa, sb := tunneltest.Pair()
		defer sa.Close()
		defer sb.Close()
		benchTransfer(b, forwardTo(b, sa, sb, sink))
	})
	b.Run("tunnel-dilate-direct", func(b *testing.B) {
		sa, sb := dilationPair(b, nil, nil)
		benchTransfer(b, forwardTo(b, sa, sb, sink))
	})
	// What two wh-tunnel processes negotiate: dilate.GoVersions' first
	// mode (the "ged" cells are what fowl gets).
	b.Run("tunnel-dilate-extended", func(b *testing.B) {
		sa, sb := dilationPair(b, nil, dilate.GoVersions())
		addr := forwardTo(b, sa, sb, sink)
		b.Logf("mode %s", sa.(*dilate.Dilation).Mode())
		benchTransfer(b, addr)
	})
	b.Run("tunnel-dilate-relay", func(b *testing.B) {
		r := relaytest.Start(b)
		sa, sb := dilationPair(b, []string{r.Hint()}, nil)
		benchTransfer(b, forwardTo(b, sa, sb, sink))
	})
}

// tunnelProcCPU is the user+system CPU time this process has used.
func tunnelProcCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchTransfer(b *testing.B, addr string) {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	b.SetBytes(tunnelChunk)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, n := tunnelProcCPU(b), 0
	defer func() {
		// Everything in this process: client, sink, both tunnels and
		// Dilations (raw-tcp: client and sink only).
		b.ReportMetric(float64((tunnelProcCPU(b)-cpu0).Microseconds())/1e3/float64(n*(tunnelChunk>>20)), "cpu-ms/MiB")
	}()
	for b.Loop() {
		n++
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		for sent := 0; sent < tunnelChunk; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		var ack [1]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// startSink counts what it reads and answers one byte after EOF, so the
// timing includes delivery of every byte.
func startSink(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(netx.Serve(ln, func(c net.Conn) {
		n, _ := io.CopyBuffer(discard{}, struct{ io.Reader }{c}, make([]byte, 256<<10)) // 256 KiB reads
		if n == tunnelChunk {
			c.Write([]byte{1})
		}
	}))
	return ln.Addr().(*net.TCPAddr).Port
}

// forwardTo runs -L on sa and the mirror -R on sb and returns the local
// listening address that leads to the sink.
func forwardTo(b *testing.B, sa, sb tunnel.Session, sink int) string {
	spec := fmt.Sprintf("bench=0:127.0.0.1:%d", sink)
	fl, _ := tunnel.ParseForward(tunnel.Local, spec)
	fr, _ := tunnel.ParseForward(tunnel.Remote, spec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ta *tunnel.Tunnel
	for i, pair := range []struct {
		s tunnel.Session
		f tunnel.Forward
	}{{sa, fl}, {sb, fr}} {
		t, err := tunnel.New(tunnel.Options{Forwards: []tunnel.Forward{pair.f}})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			ta = t
		}
		wg.Add(1)
		go func() { defer wg.Done(); t.Run(ctx, pair.s) }()
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	st, err := ta.WaitReady(wctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return st.Addr
}

// dilationPair is two real Dilations on loopback (L1 in memory). With
// relays, neither listens, so the only path is the relay.
func dilationPair(b *testing.B, relays, peerVersions []string) (tunnel.Session, tunnel.Session) {
	l1a, l1b := dilatetest.Pair()
	key := sha256.Sum256([]byte("tunnel benchmark"))
	opts := func(side string) dilate.Options {
		return dilate.Options{ListenAddr: "127.0.0.1:0", Side: side, Relays: relays, NoListen: relays != nil, PeerVersions: peerVersions}
	}
	a, err := dilate.New(context.Background(), key[:], l1a, opts("aaaaaaaaaaaaaaaa"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := dilate.New(context.Background(), key[:], l1b, opts("bbbbbbbbbbbbbbbb"))
	if err != nil {
		a.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); c.Close(); l1a.Close(); l1b.Close() })
	return a, c
}
