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
	if _, err := io.CopyN(io.Discard, r, total); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
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
// the same run.
func BenchmarkRelayThroughput(b *testing.B) {
	b.Run("raw-loopback-tcp", func(b *testing.B) {
		a, c := tcpPair(b)
		pump(b, a, c)
	})
	b.Run("go-relay", func(b *testing.B) {
		r := relaytest.Start(b)
		a, c := relayPair(b, r.Addr())
		pump(b, a, c)
	})
	b.Run("python-relay", func(b *testing.B) {
		r := interop.StartPythonRelay(b)
		a, c := relayPair(b, r.Addr())
		pump(b, a, c)
	})
}

// BenchmarkRelayBothDirections relays full duplex through our relay (two
// pumps at once); bytes counted are one direction's.
func BenchmarkRelayBothDirections(b *testing.B) {
	r := relaytest.Start(b)
	a, c := relayPair(b, r.Addr())
	go func() {
		buf := make([]byte, relayChunk)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	go io.Copy(io.Discard, a)
	pump(b, a, c)
}
