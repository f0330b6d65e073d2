package netx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every connection until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func startProxy(t *testing.T) *Proxy {
	t.Helper()
	p := &Proxy{Target: echoServer(t)}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("got %q want %q", got, msg)
	}
	c.SetDeadline(time.Time{})
}

func waitActive(t *testing.T, p *Proxy, n int) {
	t.Helper()
	for i := 0; i < 1000 && p.Active() != n; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Active() != n {
		t.Fatalf("active = %d, want %d", p.Active(), n)
	}
}

func TestProxyForwards(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	roundTrip(t, c, "hello")
	big := bytes.Repeat([]byte("0123456789"), 100000)
	go c.Write(big)
	got := make([]byte, len(big))
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("bulk echo failed: %v", err)
	}
}

func TestProxyCut(t *testing.T) {
	p := startProxy(t)
	c1 := dial(t, p)
	c2 := dial(t, p)
	roundTrip(t, c1, "a")
	roundTrip(t, c2, "b")
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut cut %d, want 2", n)
	}
	for _, c := range []net.Conn{c1, c2} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) {
			t.Fatalf("read after Cut: %v, want EOF", err)
		}
	}
	// New connections still work.
	roundTrip(t, dial(t, p), "after")
}

func TestProxyReset(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	roundTrip(t, c, "a")
	p.Reset()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after Reset: %v, want ECONNRESET", err)
	}
}

func TestProxyStallResume(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	roundTrip(t, c, "warm")
	p.Stall()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read while stalled: %v, want deadline exceeded", err)
	}
	p.Resume()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
		t.Fatalf("after resume: %q %v", b, err)
	}
}

func TestProxyDelay(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	roundTrip(t, c, "warm")
	const d = 100 * time.Millisecond
	p.Delay(d)
	start := time.Now()
	roundTrip(t, c, "x") // two hops through the proxy: >= 2*d
	if el := time.Since(start); el < 2*d {
		t.Fatalf("round trip took %v with delay %v per hop", el, d)
	}
	p.Delay(0)
	roundTrip(t, c, "y")
}

func TestProxyBandwidth(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p)
	roundTrip(t, c, "warm")
	const bps = 1 << 20
	p.Bandwidth(bps)
	msg := bytes.Repeat([]byte("z"), 256<<10)
	start := time.Now()
	go c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	// 256 KiB at 1 MiB/s over each of two hops: at least ~250 ms even if
	// both hops overlap perfectly (minus one chunk of slack).
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("256 KiB at %d B/s took only %v", bps, el)
	}
}

func TestProxyRefuse(t *testing.T) {
	p := startProxy(t)
	p.Refuse(true)
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("refused connection delivered data")
	}
	if p.Accepted() != 1 {
		t.Fatalf("accepted %d", p.Accepted())
	}
	p.Refuse(false)
	roundTrip(t, dial(t, p), "ok")
	waitActive(t, p, 1)
}

func TestProxyCloseEndsEverything(t *testing.T) {
	p := &Proxy{Target: echoServer(t)}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	roundTrip(t, c, "a")
	p.Stall() // a goroutine blocked in gate must still end on Close
	c.Write([]byte("b"))
	p.Close()
	if err := p.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

func TestPatternReader(t *testing.T) {
	a, _ := io.ReadAll(NewPatternReader(7, 100000))
	b, _ := io.ReadAll(NewPatternReader(7, 100000))
	c, _ := io.ReadAll(NewPatternReader(8, 100000))
	if len(a) != 100000 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("pattern reader not deterministic per seed")
	}
	w := NewHashWriter()
	w.Write(a)
	if w.Sum() != PatternSum(7, 100000) || w.N != 100000 {
		t.Fatal("hash mismatch")
	}
}
