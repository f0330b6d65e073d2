package benchmarks

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/tunnel/fowlinterop"
)

// fowlChunk is what one iteration sends through a forwarded connection.
// fowl has no half-close (EOF closes the whole forwarded connection), so
// the sink answers one byte after exactly fowlChunk bytes instead of at
// EOF; the client then closes.
const fowlChunk = 32 << 20

// BenchmarkFowlForward measures, in one run and with the same payload and
// sink, the throughput of one forwarded TCP connection:
//
//	raw-tcp                  loopback TCP straight to the sink
//	wh-tunnel/wh-tunnel      two wh-tunnel processes (-L / -R)
//	fowl/fowl                two fowld processes (local / remote)
//	fowl-listens/wh-tunnel   fowl listens, wh-tunnel dials the sink
//	wh-tunnel-listens/fowl   wh-tunnel listens, fowl dials the sink
//
// Peers are real processes talking Dilation directly (no relay used) after
// meeting on an in-process mailbox. The fowl cells need WH_FOWL (see
// tunnel/fowlinterop; CI cannot install fowl) and skip without it. Each
// process cell also reports the CPU time both peer processes used per MiB
// forwarded (cpu-ms/MiB). Run e.g.
//
//	WH_FOWL=... go test -run '^$' -bench FowlForward -benchtime 8x ./benchmarks/
//
// See docs/fowl-interop.md for figures.
func BenchmarkFowlForward(b *testing.B) {
	sink := startAckSink(b)
	b.Run("raw-tcp", func(b *testing.B) {
		benchAckTransfer(b, fmt.Sprintf("127.0.0.1:%d", sink), nil)
	})
	bin := fowlinterop.BuildWhTunnel(b)
	mb := mailboxtest.Start(b, mailboxtest.WithMemoryStore())
	rl := relaytest.Start(b)
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
			benchAckTransfer(b, addr, procs)
		})
	}
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

func benchAckTransfer(b *testing.B, addr string, procs []*fowlinterop.Proc) {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	cpu := func() time.Duration {
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
	cpu0 := cpu()
	b.SetBytes(fowlChunk)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		for sent := 0; sent < fowlChunk; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		var ack [1]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil {
			b.Fatalf("no ack after %d bytes: %v", fowlChunk, err)
		}
		c.Close()
		n++
	}
	if procs != nil {
		b.ReportMetric(float64((cpu()-cpu0).Milliseconds())/float64(n*(fowlChunk>>20)), "cpu-ms/MiB")
	}
}

// startAckSink reads exactly fowlChunk bytes per connection, answers one
// byte, then waits for the client to close.
func startAckSink(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Minute))
				if n, _ := io.CopyN(io.Discard, c, fowlChunk); n == fowlChunk {
					c.Write([]byte{1})
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}
