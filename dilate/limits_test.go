package dilate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
)

// peerOpenCount is a's count of subchannels its peer has open (ged layer).
func peerOpenCount(d *Dilation) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peerOpen
}

// pendingCount is how many inbound subchannels wait for a Listen.
func pendingCount(d *Dilation) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, q := range d.pending {
		n += len(q)
	}
	return n
}

// waitFor polls cond (bounded: a safety net, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// expectRefused checks that a subchannel the peer refused fails on Read
// (and, where the mode can tell, on Write) instead of hanging.
func expectRefused(t *testing.T, mode string, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(60 * time.Second)) // safety net only
	_, err := c.Read(make([]byte, 16))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: Read on a refused subchannel: %v", mode, err)
	}
	switch mode {
	case "credit":
		if !errors.Is(err, ErrSubchannelRefused) {
			t.Fatalf("credit: Read on a refused subchannel: %v, want ErrSubchannelRefused", err)
		}
	case "ged":
		if err != io.EOF { // CLOSE means "closed" to Python
			t.Fatalf("ged: Read on a refused subchannel: %v, want EOF", err)
		}
	}
	// Write must not hang either; it fails where the mode can tell a
	// refusal (credit, yamux), else the bytes are dropped by the peer.
	for range 8 {
		_, err = c.Write(make([]byte, 64<<10))
		if err != nil {
			break
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: Write on a refused subchannel hung", mode)
	}
	if mode == "credit" && !errors.Is(err, ErrSubchannelRefused) {
		t.Fatalf("credit: Write on a refused subchannel: %v, want ErrSubchannelRefused", err)
	}
	if mode == "yamux" && err == nil {
		t.Fatalf("yamux: Write on a reset stream succeeded")
	}
	c.SetDeadline(time.Time{})
}

// moveBytes sends n checked bytes each way over every pair concurrently.
func moveBytes(t *testing.T, openers, accepted []net.Conn, n int64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(openers))
	for i := range openers {
		for dir, pr := range [][2]net.Conn{{openers[i], accepted[i]}, {accepted[i], openers[i]}} {
			seed := uint64(100*i + dir)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := io.Copy(pr[0], netx.NewPatternReader(seed, n)); err != nil {
					errs <- err
				}
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := netx.NewHashWriter()
				if _, err := io.CopyN(w, pr[1], n); err != nil {
					errs <- fmt.Errorf("pair %d dir %d: %w", i, dir, err)
					return
				}
				if w.Sum() != netx.PatternSum(seed, n) {
					errs <- fmt.Errorf("pair %d dir %d: hash mismatch", i, dir)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestMaxSubchannels(t *testing.T) { forModes(t, testMaxSubchannels) }

// testMaxSubchannels: the Leader opens cap+extra subchannels to a Follower
// capped at cap; exactly cap are accepted, the rest refused without
// disturbing the others, and closing some frees their slots.
func testMaxSubchannels(t *testing.T, mode string) {
	const limit, extra = 8, 4
	oa, ob := pairOptsMode(t, mode)
	oa.MaxSubchannels = limit
	p := newPair(t, oa, ob)
	l, err := p.a.Listen("cap")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := ctxT(t, 60*time.Second)
	seq := byte(0)
	dial := func() net.Conn {
		t.Helper()
		c, err := p.b.Dial(ctx, "cap")
		if err != nil {
			t.Fatal(err)
		}
		// A numbering byte each (which also makes a yamux stream send its
		// header at once): yamux streams may be accepted out of order.
		seq++
		if _, err := c.Write([]byte{seq}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// acceptN accepts n subchannels and returns them in the order of the
	// numbering bytes (first is the first number expected).
	acceptN := func(n int, first byte) []net.Conn {
		t.Helper()
		out := make([]net.Conn, n)
		for range n {
			c, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatal(err)
			}
			i := int(b[0] - first)
			if i < 0 || i >= n || out[i] != nil {
				t.Fatalf("accepted subchannel number %d, want %d..%d", b[0], first, int(first)+n-1)
			}
			out[i] = c
		}
		return out
	}
	var openers, accepted []net.Conn
	for range limit + extra {
		openers = append(openers, dial())
	}
	accepted = acceptN(limit, 1)
	for i, c := range openers[limit:] {
		expectRefused(t, mode, c)
		if got := p.a.RefusedSubchannels(); got < uint64(i+1) {
			t.Fatalf("RefusedSubchannels = %d after %d refusals", got, i+1)
		}
		c.Close()
	}
	if got := p.a.RefusedSubchannels(); got != extra {
		t.Fatalf("RefusedSubchannels = %d, want %d", got, extra)
	}
	if mode != "yamux" {
		if got := peerOpenCount(p.a); got != limit {
			t.Fatalf("peer subchannels open = %d, want %d", got, limit)
		}
	}
	// The accepted ones (and the connection) are undisturbed.
	moveBytes(t, openers[:limit], accepted, 256<<10)

	// Closing some frees their slots: the peer may open that many again,
	// and not one more.
	const freed = 3
	for i := range freed {
		openers[i].Close()
		if _, err := io.Copy(io.Discard, accepted[i]); err != nil {
			t.Fatal(err)
		}
		accepted[i].Close()
	}
	if mode != "yamux" {
		waitFor(t, "slots to be freed", func() bool { return peerOpenCount(p.a) == limit-freed })
	}
	var again []net.Conn
	for range freed {
		again = append(again, dial())
	}
	againAcc := acceptN(freed, seq-freed+1)
	over := dial()
	expectRefused(t, mode, over)
	over.Close()
	if got := p.a.RefusedSubchannels(); got != extra+1 {
		t.Fatalf("RefusedSubchannels = %d, want %d", got, extra+1)
	}
	moveBytes(t, append(openers[freed:limit:limit], again...), append(accepted[freed:], againAcc...), 64<<10)
	for _, c := range append(append(openers, accepted...), append(again, againAcc...)...) {
		c.Close()
	}
}

func TestMaxSubchannelsFlood(t *testing.T) { forModes(t, testMaxSubchannelsFlood) }

// testMaxSubchannelsFlood: the peer opens many subchannels, each for a
// subprotocol nobody listens on, and writes into each. What the capped
// side keeps stays bounded by the cap, and an existing subchannel keeps
// working.
func testMaxSubchannelsFlood(t *testing.T, mode string) {
	const (
		limit = 16
		opens = 600
		each  = 64 << 10 // an unbounded receiver would keep opens*each = 37.5 MiB
	)
	oa, ob := pairOptsMode(t, mode)
	oa.MaxSubchannels = limit
	p := newPair(t, oa, ob)
	c1, c2 := subPair(t, p.b, p.a, "sentinel")
	defer c1.Close()
	defer c2.Close()
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // and the sync.Pool victims
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	ctx := ctxT(t, 120*time.Second)
	payload := make([]byte, each)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range opens {
		c, err := p.b.Dial(ctx, fmt.Sprintf("nobody-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetWriteDeadline(time.Now().Add(60 * time.Second)) // safety net
		_, err = c.Write(payload)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write %d hung", i)
		}
	}
	// Everything sent before this round trip has been processed.
	if _, err := c1.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c2, got); err != nil || string(got) != "ping" {
		t.Fatalf("sentinel: %q %v", got, err)
	}
	want := uint64(opens - (limit - 1)) // the sentinel holds one slot
	waitFor(t, "all refusals", func() bool { return p.a.RefusedSubchannels() >= want })
	if r := p.a.RefusedSubchannels(); r != want {
		t.Fatalf("RefusedSubchannels = %d, want %d", r, want)
	}
	if mode == "yamux" {
		waitFor(t, "streams routed", func() bool { return pendingCount(p.a) == limit-1 })
	}
	if n := pendingCount(p.a); n != limit-1 {
		t.Fatalf("%d subchannels queued for Listen, want %d", n, limit-1)
	}
	if mode != "yamux" {
		if n := peerOpenCount(p.a); n != limit {
			t.Fatalf("peer subchannels open = %d, want %d", n, limit)
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	growth := int64(ms.HeapAlloc) - int64(before)
	t.Logf("%s: %d opens of %d B each, cap %d: heap growth %.2f MiB (both ends; the opener keeps its %d subchannels)",
		mode, opens, each, limit, float64(growth)/(1<<20), opens)
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d bytes for %d refused opens (cap %d)", growth, opens, limit)
	}
	moveBytes(t, []net.Conn{c1}, []net.Conn{c2}, 1<<20)
}

func TestSubchannelIdleCost(t *testing.T) { forModes(t, testSubchannelIdleCost) }

// testSubchannelIdleCost measures the heap an idle open subchannel costs
// (both ends together: the opener's and the accepted one), the "idle
// cost" term of Options.MaxSubchannels' worst case, with a generous bound.
func testSubchannelIdleCost(t *testing.T, mode string) {
	const n = 1000
	oa, ob := pairOptsMode(t, mode)
	p := newPair(t, oa, ob)
	c1, c2 := subPair(t, p.b, p.a, "warm") // connection and yamux session up
	defer c1.Close()
	defer c2.Close()
	l, err := p.a.Listen("idle")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	ctx := ctxT(t, 60*time.Second)
	conns := make([]net.Conn, 0, 2*n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := p.b.Dial(ctx, "idle")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{1}); err != nil { // yamux: send the header
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for range n {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	per := (int64(ms.HeapAlloc) - int64(before)) / n
	t.Logf("%s: %d B of heap per idle subchannel (opener + acceptor)", mode, per)
	if per > 64<<10 {
		t.Fatalf("%s: an idle subchannel costs %d B of heap", mode, per)
	}
}
