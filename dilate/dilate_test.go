package dilate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRolesAndSubchannelsBothWays(t *testing.T) { forModes(t, testRolesAndSubchannels) }

func testRolesAndSubchannels(t *testing.T, yamux bool) {
	oa, ob := pairOptsMode(t, yamux)
	p := newPair(t, oa, ob)
	// follower -> leader
	c1, c2 := subPair(t, p.a, p.b, "chat")
	if p.a.Role() != Follower || p.b.Role() != Leader {
		t.Fatalf("roles: a=%v b=%v", p.a.Role(), p.b.Role())
	}
	if p.a.yamuxMode != yamux || p.b.yamuxMode != yamux {
		t.Fatalf("yamux mode a=%v b=%v, want %v", p.a.yamuxMode, p.b.yamuxMode, yamux)
	}
	type named interface{ Subprotocol() string }
	if c2.(named).Subprotocol() != "chat" {
		t.Fatalf("subprotocol %q", c2.(named).Subprotocol())
	}
	if !yamux {
		if id := c1.(*Subchannel).ID(); id%2 != 0 {
			t.Fatalf("follower opened odd id %d", id)
		}
	}
	// leader -> follower
	d1, d2 := subPair(t, p.b, p.a, "files")
	if !yamux {
		if id := d1.(*Subchannel).ID(); id%2 != 1 {
			t.Fatalf("leader opened even id %d", id)
		}
	}
	for _, pr := range [][2]net.Conn{{c1, c2}, {c2, c1}, {d1, d2}, {d2, d1}} {
		msg := []byte(fmt.Sprintf("hello from %v", pr[0].LocalAddr()))
		if _, err := pr[0].Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(pr[1], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	for _, c := range []net.Conn{c1, c2, d1, d2} {
		c.Close()
	}
}

func TestBulkBothWays(t *testing.T) { forModes(t, testBulkBothWays) }

func testBulkBothWays(t *testing.T, yamux bool) {
	oa, ob := pairOptsMode(t, yamux)
	p := newPair(t, oa, ob)
	c1, c2 := subPair(t, p.a, p.b, "bulk")
	const n = 32 << 20
	errs := make(chan error, 4)
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	r1, r2 := make(chan result, 1), make(chan result, 1)
	go func() { errs <- sendPattern(c1, 1, n) }()
	go func() { errs <- sendPattern(c2, 2, n) }()
	go func() { n, s, err := recvAll(c2); r2 <- result{n, s, err} }()
	go func() { n, s, err := recvAll(c1); r1 <- result{n, s, err} }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	a, b := <-r1, <-r2
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	if a.n != n || a.sum != netx.PatternSum(2, n) {
		t.Fatalf("leader->follower: %d bytes, hash mismatch=%v", a.n, a.sum != netx.PatternSum(2, n))
	}
	if b.n != n || b.sum != netx.PatternSum(1, n) {
		t.Fatalf("follower->leader: %d bytes, hash mismatch=%v", b.n, b.sum != netx.PatternSum(1, n))
	}
	c1.Close()
	c2.Close()
}

func TestCloseUnblocks(t *testing.T) { forModes(t, testCloseUnblocks) }

func testCloseUnblocks(t *testing.T, yamux bool) {
	oa, ob := pairOptsMode(t, yamux)
	p := newPair(t, oa, ob)
	c1, _ := subPair(t, p.a, p.b, "x")
	l, err := p.a.Listen("never")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() { _, err := c1.Read(make([]byte, 10)); errc <- err }()
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	p.a.Close()
	for range 2 {
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after Close: %v, want net.ErrClosed", err)
		}
	}
	if _, err := p.a.Dial(ctxT(t, time.Second), "y"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
}

// TestYamuxNegotiation: yamux only when both pleases ask for it.
func TestYamuxNegotiation(t *testing.T) {
	for _, c := range []struct {
		name     string
		noA, noB bool
		peerA    []string
		want     bool
	}{
		{"both", false, false, nil, true},
		{"a-refuses", true, false, nil, false},
		{"b-refuses", false, true, nil, false},
		{"a-sees-python-peer", false, false, []string{"ged"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			oa, ob := pairOptsMode(t, true)
			oa.NoYamux, ob.NoYamux = c.noA, c.noB
			if c.peerA != nil {
				oa.PeerVersions = c.peerA
			}
			p := newPair(t, oa, ob)
			c1, c2 := subPair(t, p.a, p.b, "n")
			if p.a.yamuxMode != c.want || p.b.yamuxMode != c.want {
				t.Fatalf("yamux a=%v b=%v, want %v", p.a.yamuxMode, p.b.yamuxMode, c.want)
			}
			c1.Write([]byte("x"))
			if _, err := io.ReadFull(c2, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			c1.Close()
			c2.Close()
		})
	}
}

// TestYamuxNoHeadOfLineBlocking: in yamux mode a subchannel nobody reads
// does not stop another one.
func TestYamuxNoHeadOfLineBlocking(t *testing.T) {
	oa, ob := pairOptsMode(t, true)
	p := newPair(t, oa, ob)
	stuckW, stuckR := subPair(t, p.a, p.b, "unread")
	w, r := subPair(t, p.a, p.b, "busy")
	// Fill the unread subchannel until its writer blocks (window full).
	stuckW.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	var filled int
	buf := make([]byte, 64<<10)
	for range 1000 {
		n, err := stuckW.Write(buf)
		filled += n
		if err != nil {
			break
		}
	}
	if filled >= 1000*len(buf) {
		t.Fatal("writes to an unread subchannel never blocked")
	}
	// Much more than the stuck window must still flow on the other one.
	const n = 16 << 20
	tr := startTransfer(w, r, 51, n)
	<-tr.done
	tr.check(t, "busy subchannel", 51, n)
	stuckR.Close()
	stuckW.Close()
}
