package benchmarks

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/netx"
	"golang.org/x/crypto/chacha20poly1305"
)

// dilatePair starts two Dilations on loopback over in-memory signaling.
// tweak may adjust both option sets (index 0 = Follower, 1 = Leader).
func dilatePair(b *testing.B, tweak func(i int, o *dilate.Options)) (*dilate.Dilation, *dilate.Dilation) {
	b.Helper()
	sa, sb := dilatetest.Pair()
	key := sha256.Sum256([]byte("benchmark dilation key"))
	opts := [2]dilate.Options{
		{ListenAddr: "127.0.0.1:0", Side: "aaaaaaaaaaaaaaaa"},
		{ListenAddr: "127.0.0.1:0", Side: "bbbbbbbbbbbbbbbb"},
	}
	for i := range opts {
		if tweak != nil {
			tweak(i, &opts[i])
		}
	}
	ctx := context.Background()
	a, err := dilate.New(ctx, key[:], sa, opts[0])
	if err != nil {
		b.Fatal(err)
	}
	c, err := dilate.New(ctx, key[:], sb, opts[1])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); c.Close() })
	return a, c
}

func openSub(b *testing.B, from, to *dilate.Dilation, l net.Listener, name string) (net.Conn, net.Conn) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c1, err := from.Dial(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	c2, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return c1, c2
}

const dilateChunk = 64 << 10

// streamBench pushes b.N chunks from w to r.
func streamBench(b *testing.B, w, r net.Conn) {
	buf := make([]byte, dilateChunk)
	done := make(chan error, 1)
	go func() {
		rb := make([]byte, dilateChunk)
		var err error
		left := int64(b.N) * dilateChunk
		for left > 0 && err == nil {
			var n int
			n, err = r.Read(rb[:min(int64(len(rb)), left)])
			left -= int64(n)
		}
		done <- err
	}()
	b.SetBytes(dilateChunk)
	cpu0, rw0 := processCPU(), procRWSyscalls()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	// CPU time of the whole process (both ends) per byte moved: unlike
	// MB/s, this hardly depends on what else runs on the shared machine
	// (processCPU is in relay_test.go).
	b.ReportMetric(float64(processCPU()-cpu0)/float64(int64(b.N)*dilateChunk), "cpu-ns/B")
	if rw0 >= 0 {
		// read+write system calls (both ends) per MiB moved: how well
		// the writers batch.
		b.ReportMetric(float64(procRWSyscalls()-rw0)/(float64(b.N)*dilateChunk/(1<<20)), "rwcalls/MiB")
	}
}

// procRWSyscalls is the process's read+write system call count from
// /proc/self/io (syscr + syscw), or -1 where that does not exist.
func procRWSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var n int64
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && (k == "syscr" || k == "syscw") {
			x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			n += x
			found++
		}
	}
	if found != 2 {
		return -1
	}
	return n
}

// BenchmarkDilateThroughput compares one Dilation subchannel with a raw
// loopback TCP connection in the same run (both carry 64 KiB writes).
func BenchmarkDilateThroughput(b *testing.B) {
	for _, mode := range dilateModes() {
		b.Run("subchannel-"+mode, func(b *testing.B) {
			f, l := dilatePair(b, withMode(mode))
			ln, err := l.Listen("bench")
			if err != nil {
				b.Fatal(err)
			}
			c1, c2 := openSub(b, f, l, ln, "bench")
			defer c1.Close()
			defer c2.Close()
			streamBench(b, c1, c2)
		})
	}
	b.Run("rawTCP", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); accepted <- c }()
		c1, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c2 := <-accepted
		defer c1.Close()
		defer c2.Close()
		streamBench(b, c1, c2)
	})
}

// BenchmarkDilateCreditWindow is BenchmarkDilateThroughput's credit mode
// with several Options.CreditWindow sizes (how the default was chosen).
func BenchmarkDilateCreditWindow(b *testing.B) {
	for _, w := range []int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20} {
		b.Run(strconv.Itoa(w>>10)+"KiB", func(b *testing.B) {
			f, l := dilatePair(b, func(i int, o *dilate.Options) {
				withMode("credit")(i, o)
				o.CreditWindow = w
			})
			ln, err := l.Listen("bench")
			if err != nil {
				b.Fatal(err)
			}
			c1, c2 := openSub(b, f, l, ln, "bench")
			defer c1.Close()
			defer c2.Close()
			streamBench(b, c1, c2)
		})
	}
}

// dilateModes are the Dilation modes the benchmarks compare.
func dilateModes() []string { return []string{"ged", "yamux", "credit"} }

// withMode selects "ged" (Python's mode), or a Go-only mode: "yamux"
// (YamuxVersion) or "credit" (CreditVersion).
func withMode(mode string) func(int, *dilate.Options) {
	return func(_ int, o *dilate.Options) {
		switch mode {
		case "yamux":
			o.PeerVersions, o.NoCredit = dilate.GoVersions(), true
		case "credit":
			o.PeerVersions = dilate.GoVersions()
		}
	}
}

// BenchmarkDilateParallel100 moves data through 100 subchannels at once
// (100 KiB per subchannel per op), in both directions.
func BenchmarkDilateParallel100(b *testing.B) {
	for _, mode := range dilateModes() {
		b.Run(mode, func(b *testing.B) { benchParallel100(b, mode) })
	}
}

func benchParallel100(b *testing.B, mode string) {
	const subs, per = 100, 100 << 10
	f, l := dilatePair(b, withMode(mode))
	ln, err := l.Listen("par")
	if err != nil {
		b.Fatal(err)
	}
	type sp struct{ a, b net.Conn }
	pairs := make([]sp, subs)
	for i := range pairs {
		pairs[i].a, pairs[i].b = openSub(b, f, l, ln, "par")
	}
	defer func() {
		for _, p := range pairs {
			p.a.Close()
			p.b.Close()
		}
	}()
	b.SetBytes(subs * per)
	cpu0 := processCPU()
	b.ResetTimer()
	defer func() {
		b.ReportMetric(float64(processCPU()-cpu0)/float64(int64(b.N)*subs*per), "cpu-ns/B")
	}()
	for range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, 2*subs)
		for i, p := range pairs {
			w, r := p.a, p.b
			if i%2 == 1 {
				w, r = p.b, p.a
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := io.Copy(w, io.LimitReader(netx.NewPatternReader(uint64(i), per), per))
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := io.CopyN(io.Discard, r, per)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDilateReconnect measures the time from cutting the L2
// connection (netx.Proxy.Cut) until a byte written afterwards arrives:
// reconnect signaling over in-memory mailbox, new listener, dial, Noise
// handshake, KCM, retransmission. Reported as ms/recovery.
func BenchmarkDilateReconnect(b *testing.B) {
	for _, mode := range dilateModes() {
		b.Run(mode, func(b *testing.B) { benchReconnect(b, mode) })
	}
}

func benchReconnect(b *testing.B, mode string) {
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	target := "127.0.0.1:" + strconv.Itoa(port)
	px := &netx.Proxy{Target: target}
	if err := px.Start(); err != nil {
		b.Fatal(err)
	}
	defer px.Close()
	f, l := dilatePair(b, func(i int, o *dilate.Options) {
		withMode(mode)(i, o)
		if i == 0 {
			o.ListenAddr, o.AdvertiseAddrs = target, []string{px.Addr()}
		} else {
			o.NoListen = true
		}
	})
	ln, err := l.Listen("reconnect")
	if err != nil {
		b.Fatal(err)
	}
	c1, c2 := openSub(b, f, l, ln, "reconnect")
	defer c1.Close()
	defer c2.Close()
	one := make([]byte, 1)
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		// Make sure the current connection carries data, then cut it.
		if _, err := c1.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c2, one); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		px.Cut()
		if _, err := c1.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c2, one); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/recovery")
}

// BenchmarkDilateIdleSubchannel reports the heap held per open, idle
// subchannel (both ends together).
func BenchmarkDilateIdleSubchannel(b *testing.B) {
	for _, mode := range dilateModes() {
		b.Run(mode, func(b *testing.B) { benchIdle(b, mode) })
	}
}

func benchIdle(b *testing.B, mode string) {
	f, l := dilatePair(b, withMode(mode))
	ln, err := l.Listen("idle")
	if err != nil {
		b.Fatal(err)
	}
	// Subchannels stay open across iterations (closing them frees memory
	// only once both CLOSEs went through, which would blur the figure).
	const n = 100
	var before, after runtime.MemStats
	var conns []net.Conn
	var delta int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for range n {
			c1, c2 := openSub(b, f, l, ln, "idle")
			// One byte each way so both ends are fully set up.
			c1.Write([]byte{1})
			io.ReadFull(c2, make([]byte, 1))
			c2.Write([]byte{1})
			io.ReadFull(c1, make([]byte, 1))
			conns = append(conns, c1, c2)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		delta += int64(after.HeapAlloc) - int64(before.HeapAlloc)
		b.StartTimer()
	}
	b.ReportMetric(float64(delta)/float64(b.N*n), "B/subchannel")
	b.ReportMetric(float64(len(conns)/2), "subchannels")
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkDilate1000Subchannels opens 1,000 subchannels in one session
// (our target), checks that every one of them still carries a byte each way
// once all are open, and reports the heap and goroutines held per open idle
// subchannel (both ends together) and the time to open one.
func BenchmarkDilate1000Subchannels(b *testing.B) {
	for _, mode := range dilateModes() {
		b.Run(mode, func(b *testing.B) { bench1000(b, mode) })
	}
}

func bench1000(b *testing.B, mode string) {
	const n = 1000
	var heap, gor int64
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		f, l := dilatePair(b, withMode(mode))
		ln, err := l.Listen("k")
		if err != nil {
			b.Fatal(err)
		}
		// Warm up: the first subchannel starts the session (and, in yamux
		// mode, the internal subchannel).
		w1, w2 := openSub(b, f, l, ln, "k")
		w1.Close()
		w2.Close()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		b.StartTimer()
		conns := make([]net.Conn, 0, 2*n)
		for range n {
			c1, c2 := openSub(b, f, l, ln, "k")
			conns = append(conns, c1, c2)
		}
		b.StopTimer()
		one := []byte{1}
		for i := 0; i < len(conns); i += 2 {
			for _, p := range [][2]net.Conn{{conns[i], conns[i+1]}, {conns[i+1], conns[i]}} {
				if _, err := p[0].Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(p[1], one); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap += int64(after.HeapAlloc) - int64(before.HeapAlloc)
		gor += int64(runtime.NumGoroutine() - g0)
		for _, c := range conns {
			c.Close()
		}
		f.Close()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/float64(b.N*n), "B/subchannel")
	b.ReportMetric(float64(gor)/float64(b.N*n), "goroutines/subchannel")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "us/open")
}

// BenchmarkDilateCryptoFloor is the cost the protocol imposes whatever the
// implementation: sealing and opening one 65519-byte Noise transport
// message (ChaCha20-Poly1305) on one core, per byte moved.
func BenchmarkDilateCryptoFloor(b *testing.B) {
	aead, err := chacha20poly1305.New(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 65519)
	ct := make([]byte, 0, len(pt)+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for range b.N {
		ct = aead.Seal(ct[:0], nonce, pt, nil)
		if _, err := aead.Open(pt[:0], nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}
