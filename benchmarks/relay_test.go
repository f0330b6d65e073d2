package benchmarks

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

const relayChunk = 64 << 10

// pump sends b.N chunks from w and reads them all from r; b.SetBytes
// makes the result MB/s through the path.
func pump(b *testing.B, w io.Writer, r io.Reader) {
	b.Helper()
	buf := make([]byte, relayChunk)
	rbuf := make([]byte, relayChunk)
	total := int64(b.N) * relayChunk
	done := make(chan error, 1)
	b.SetBytes(relayChunk)
	b.ReportAllocs()
	b.ResetTimer()
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
// loopback TCP, through our relay, and through Debian's Python relay, in
// the same run. Every path is measured the same way: the client writes
// 64 KiB chunks on one TCP connection and reads with 64 KiB reads on the
// other, in this process; the relays run as servers on loopback (ours
// in-process, Python's as a child process). See docs/performance.md.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, p := range relayPaths {
		b.Run(p.name, func(b *testing.B) {
			a, c := p.pair(b)
			pump(b, a, c)
		})
	}
}

type relayPath struct {
	name string
	pair func(b *testing.B) (net.Conn, net.Conn)
}

var relayPaths = []relayPath{
	{"raw-loopback-tcp", tcpPair},
	{"go-relay", func(b *testing.B) (net.Conn, net.Conn) { return relayPair(b, relaytest.Start(b).Addr()) }},
	{"python-relay", func(b *testing.B) (net.Conn, net.Conn) {
		return relayPair(b, interop.StartPythonRelay(b).Addr())
	}},
}

// BenchmarkRelayBothDirections runs full duplex (a second pump in the
// other direction at the same time) over raw loopback TCP and through our
// relay; bytes counted are one direction's.
func BenchmarkRelayBothDirections(b *testing.B) {
	for _, p := range relayPaths[:2] {
		b.Run(p.name, func(b *testing.B) {
			a, c := p.pair(b)
			go source(c)
			go sink(a)
			pump(b, a, c)
		})
	}
}
