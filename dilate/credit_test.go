package dilate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
)

// creditState snapshots a subchannel's credit accounting.
func creditState(c net.Conn) (sendCredit, recvLimit, recvTotal int64, rlen int) {
	s := c.(*Subchannel)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendCredit, s.recvLimit, s.recvTotal, s.rlen
}

// waitBlockedOnCredit waits until w's writer has used all its credit and
// everything it sent sits unread in r's buffer: exactly one window.
func waitBlockedOnCredit(t *testing.T, w, r net.Conn, window int) {
	t.Helper()
	for range 3000 {
		sc, _, _, _ := creditState(w)
		_, _, _, rlen := creditState(r)
		if sc == 0 && rlen == window {
			return
		}
		if rlen > window {
			t.Fatalf("%d bytes buffered, more than the %d-byte window", rlen, window)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sc, lim, tot, rlen := creditState(r)
	t.Fatalf("writer never blocked on credit: receiver limit %d total %d buffered %d, sender credit %d", lim, tot, rlen, sc)
}

// TestCreditBlockedWriteAcrossCuts: a Write blocked on credit (the reader
// paused) survives connection cuts while blocked; once the reader resumes,
// every byte arrives exactly once, in order, and the buffered amount never
// exceeds the window.
func TestCreditBlockedWriteAcrossCuts(t *testing.T) {
	for _, lead := range []bool{false, true} {
		t.Run(fmt.Sprintf("listenerIsLeader=%v", lead), func(t *testing.T) {
			const window = creditInitial
			p, px := proxiedMode(t, lead, "credit", func(o *Options) { o.CreditWindow = window })
			c1, c2 := subPair(t, p.a, p.b, "blocked")
			const n, rounds = 4 << 20, 3
			sendErr := make(chan error, 1)
			go func() { sendErr <- sendPattern(c1, 61, n) }()
			h := netx.NewHashWriter()
			buf := make([]byte, 32<<10)
			for round := range rounds {
				waitBlockedOnCredit(t, c1, c2, window)
				gen := 0
				for _, s := range p.status(1) {
					gen = max(gen, s.Generation)
				}
				if px.Cut() == 0 {
					t.Fatalf("round %d: nothing to cut", round)
				}
				waitStatus(t, p, 1, func(s Status) bool { return s.Peer == PeerConnected && s.Generation > gen })
				// Read a window and a half: the writer resumes and blocks again.
				if _, err := io.CopyBuffer(h, io.LimitReader(c2, window*3/2), buf); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := io.CopyBuffer(h, c2, buf); err != nil {
				t.Fatal(err)
			}
			if err := <-sendErr; err != nil {
				t.Fatalf("sender: %v", err)
			}
			if h.N != n || h.Sum() != netx.PatternSum(61, n) {
				t.Fatalf("received %d bytes (want %d), hash ok=%v", h.N, n, h.Sum() == netx.PatternSum(61, n))
			}
			c1.Close()
			c2.Close()
		})
	}
}

// TestCreditWritesWhileDisconnected: writes queued with no connection
// (mailbox held) are bounded by credit, and all arrive after reconnecting.
func TestCreditWritesWhileDisconnected(t *testing.T) {
	p, px := proxiedMode(t, false, "credit", nil)
	c1, c2 := subPair(t, p.a, p.b, "offline")
	// Let the window top-up arrive before going offline.
	for i := 0; ; i++ {
		sc, _, _, _ := creditState(c1)
		if sc == defaultCreditWindow {
			break
		}
		if i == 6000 {
			t.Fatalf("send credit %d, the top-up to %d never arrived", sc, defaultCreditWindow)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.sa.Hold()
	p.sb.Hold()
	px.Cut()
	for i := range 2 {
		waitStatus(t, p, i, func(s Status) bool { return s.Peer == PeerReconnecting })
	}
	// More than the window: the write blocks at the window, with a deadline
	// (long enough for a slow, loaded -race run to queue the window first).
	c1.SetWriteDeadline(time.Now().Add(2 * time.Second))
	wrote, err := io.Copy(c1, netx.NewPatternReader(71, 2*defaultCreditWindow))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || wrote != defaultCreditWindow {
		t.Fatalf("offline write: %d bytes, %v; want %d bytes then a timeout", wrote, err, defaultCreditWindow)
	}
	c1.SetWriteDeadline(time.Time{})
	p.sa.Release()
	p.sb.Release()
	got := make([]byte, wrote)
	if _, err := io.ReadFull(c2, got); err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(netx.NewPatternReader(71, wrote))
	if !bytes.Equal(got, want) {
		t.Fatal("data written while offline differs")
	}
}

// TestCredit1000Subchannels: 1,000 subchannels in one session, opened from
// both sides, each moving data both ways concurrently (more than the
// initial credit on some), all checked.
func TestCredit1000Subchannels(t *testing.T) {
	oa, ob := pairOptsMode(t, "credit")
	p := newPair(t, oa, ob)
	const subs = 1000
	la, err := p.a.Listen("k")
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := p.b.Listen("k")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	type sp struct{ x, y net.Conn }
	pairs := make([]sp, subs)
	for i := range pairs {
		from, l := p.a, lb
		if i%2 == 1 {
			from, l = p.b, la
		}
		x, err := from.Dial(ctxT(t, 30*time.Second), "k")
		if err != nil {
			t.Fatal(err)
		}
		y, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		pairs[i] = sp{x, y}
	}
	size := func(i int) int64 {
		if i%100 == 0 {
			return 2 << 20 // several windows
		}
		return int64(1 + i*37%8192)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*subs)
	for i, pr := range pairs {
		for dir, c := range [2][2]net.Conn{{pr.x, pr.y}, {pr.y, pr.x}} {
			seed := uint64(2*i + dir)
			wg.Add(2)
			go func() {
				defer wg.Done()
				if err := sendPattern(c[0], seed, size(i)); err != nil {
					errs <- fmt.Errorf("sub %d dir %d send: %w", i, dir, err)
				}
			}()
			go func() {
				defer wg.Done()
				n, sum, err := recvAll(c[1])
				if err != nil || n != size(i) || sum != netx.PatternSum(seed, size(i)) {
					errs <- fmt.Errorf("sub %d dir %d: %d of %d bytes, err %v", i, dir, n, size(i), err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, pr := range pairs {
		pr.x.Close()
		pr.y.Close()
	}
	// Both CLOSEs went through on every one: all forgotten.
	for _, d := range []*Dilation{p.a, p.b} {
		n := -1
		for range 2000 {
			d.mu.Lock()
			n = len(d.subchannels)
			d.mu.Unlock()
			if n == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n != 0 {
			t.Fatalf("%d subchannels still registered", n)
		}
	}
}

// TestCreditExceeded: a peer that sends more DATA than granted gets that
// subchannel reset (our Read fails with ErrCreditExceeded, its side sees
// our CLOSE), nothing beyond the window is buffered, and the connection
// and the other subchannels carry on.
func TestCreditExceeded(t *testing.T) {
	oa, ob := pairOptsMode(t, "credit")
	oa.CreditWindow, ob.CreditWindow = creditInitial, creditInitial
	p := newPair(t, oa, ob)
	bad1, bad2 := subPair(t, p.a, p.b, "victim")
	ok1, ok2 := subPair(t, p.a, p.b, "bystander")
	// p.a misbehaves: DATA records straight into L4, ignoring credit.
	id := bad1.(*Subchannel).ID()
	chunk := bytes.Repeat([]byte{0xee}, 32<<10)
	for range (creditInitial / len(chunk)) + 4 {
		err := p.a.out.send(true, len(chunk), sendWait{}, func(seq uint32) []byte {
			return appendRecord(nil, record{tag: tagData, scid: id, seq: seq, payload: chunk})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// No Read meanwhile (reading would grant more credit).
	violated := func() bool {
		s := bad2.(*Subchannel)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cerr != nil
	}
	for i := 0; !violated(); i++ {
		if _, _, _, rlen := creditState(bad2); rlen > creditInitial {
			t.Fatalf("%d bytes buffered beyond the %d-byte window", rlen, creditInitial)
		}
		if i == 6000 {
			t.Fatal("excess DATA never detected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, _, rlen := creditState(bad2); rlen != 0 {
		t.Fatalf("%d bytes still buffered after the reset", rlen)
	}
	_, err := bad2.Read(make([]byte, 100))
	if !errors.Is(err, ErrCreditExceeded) {
		t.Fatalf("victim Read: %v, want ErrCreditExceeded", err)
	}
	if _, err := bad2.Write([]byte("x")); !errors.Is(err, ErrCreditExceeded) {
		t.Fatalf("victim Write: %v, want ErrCreditExceeded", err)
	}
	// The offender sees our CLOSE (EOF).
	bad1.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(bad1); err != nil {
		t.Fatalf("offender's read: %v, want EOF", err)
	}
	// The bystander is unaffected.
	const n = 4 << 20
	tr := startTransfer(ok1, ok2, 81, n)
	<-tr.done
	tr.check(t, "bystander", 81, n)
	for i := range 2 {
		for _, s := range p.status(i) {
			if s.Generation > 0 {
				t.Fatalf("side %d reconnected (%+v): the connection must be kept", i, s)
			}
		}
	}
	for _, c := range []net.Conn{bad1, bad2, ok1, ok2} {
		c.Close()
	}
}

// TestCreditRecordOnlyInCreditMode: in "ged" mode a CREDIT record is an
// unknown record (as for Python), and in CreditVersion mode it is
// accepted.
func TestCreditRecordOnlyInCreditMode(t *testing.T) {
	for _, mode := range []string{"ged", "credit"} {
		t.Run(mode, func(t *testing.T) {
			oa, ob := pairOptsMode(t, mode)
			p := newPair(t, oa, ob)
			c1, c2 := subPair(t, p.a, p.b, "x")
			defer c1.Close()
			defer c2.Close()
			before, _, _, _ := creditState(c2)
			p.b.in.mu.Lock()
			seq := uint32(p.b.in.highest + 1)
			p.b.in.mu.Unlock()
			c := &conn{d: p.b}
			err := c.dispatch(appendRecord(nil, record{tag: tagCredit, scid: c1.(*Subchannel).ID(), seq: seq, grant: 5}))
			after, _, _, _ := creditState(c2)
			if mode == "ged" && (!errors.Is(err, ErrBadRecord) || after != before) {
				t.Fatalf("ged: CREDIT gave %v (credit %d -> %d), want ErrBadRecord", err, before, after)
			}
			if mode == "credit" && (err != nil || after != before+5) {
				t.Fatalf("credit: %v, send credit %d -> %d, want +5", err, before, after)
			}
		})
	}
}

// TestCreditClosedReceiverGrantsBack: after the reader Closes, the
// writer's Writes keep succeeding (the data is dropped and granted back),
// as in ged mode; they do not hang on credit.
func TestCreditClosedReceiverGrantsBack(t *testing.T) {
	oa, ob := pairOptsMode(t, "credit")
	p := newPair(t, oa, ob)
	c1, c2 := subPair(t, p.a, p.b, "gone")
	c2.Close()
	c1.SetWriteDeadline(time.Now().Add(60 * time.Second))
	n, err := io.Copy(c1, netx.NewPatternReader(91, 4*defaultCreditWindow))
	if err != nil || n != 4*defaultCreditWindow {
		t.Fatalf("writing to a closed peer: %d bytes, %v", n, err)
	}
	c1.Close()
}

// TestCreditBlockedWriteUnblocks: a Write blocked on credit returns an
// error wrapping net.ErrClosed when its subchannel is closed, and when the
// Dilation is closed.
func TestCreditBlockedWriteUnblocks(t *testing.T) {
	for _, what := range []string{"subchannel", "dilation"} {
		t.Run(what, func(t *testing.T) {
			oa, ob := pairOptsMode(t, "credit")
			oa.CreditWindow, ob.CreditWindow = creditInitial, creditInitial
			p := newPair(t, oa, ob)
			c1, c2 := subPair(t, p.a, p.b, "blocked")
			errc := make(chan error, 1)
			go func() {
				_, err := c1.Write(make([]byte, 2*creditInitial))
				errc <- err
			}()
			waitBlockedOnCredit(t, c1, c2, creditInitial)
			if what == "subchannel" {
				c1.Close()
			} else {
				p.a.Close()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("blocked Write: %v, want net.ErrClosed", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Write still blocked")
			}
			c2.Close()
		})
	}
}

// TestCreditUnacceptedHoldsInitial: a subchannel the peer opened that the
// application has not accepted yet (here: no listener at all, then a
// listener that has not called Accept) holds at most the initial credit,
// whatever the window; Accept grants the rest and every byte then arrives.
func TestCreditUnacceptedHoldsInitial(t *testing.T) {
	oa, ob := pairOptsMode(t, "credit")
	p := newPair(t, oa, ob) // default window: 4 MiB, 16x the initial credit
	c1, err := p.a.Dial(ctxT(t, 30*time.Second), "late")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2 * defaultCreditWindow
	sendErr := make(chan error, 1)
	go func() { sendErr <- sendPattern(c1, 81, n) }()
	// The writer stops at the initial credit: nobody accepted.
	for i := 0; ; i++ {
		sc, _, _, _ := creditState(c1)
		if sc == 0 {
			break
		}
		if i == 3000 {
			t.Fatalf("writer still has %d bytes of credit with no listener", sc)
		}
		time.Sleep(5 * time.Millisecond)
	}
	l, err := p.b.Listen("late")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	time.Sleep(50 * time.Millisecond) // room for a (wrong) grant to arrive
	if sc, _, _, _ := creditState(c1); sc != 0 {
		t.Fatalf("writer got %d bytes of credit before Accept", sc)
	}
	c2, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, lim, _, rlen := creditState(c2)
	if rlen > creditInitial {
		t.Fatalf("%d bytes buffered before Accept, more than the initial credit %d", rlen, creditInitial)
	}
	if lim != defaultCreditWindow {
		t.Fatalf("after Accept the peer may send %d bytes, want the window %d", lim, defaultCreditWindow)
	}
	h := netx.NewHashWriter()
	if _, err := io.Copy(h, c2); err != nil {
		t.Fatal(err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if h.N != n || h.Sum() != netx.PatternSum(81, n) {
		t.Fatalf("received %d bytes (hash match %v), want %d pattern bytes", h.N, h.Sum() == netx.PatternSum(81, n), n)
	}
}
