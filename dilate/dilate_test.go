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

func testRolesAndSubchannels(t *testing.T, mode string) {
	yamux := mode == "yamux"
	oa, ob := pairOptsMode(t, mode)
	p := newPair(t, oa, ob)
	// follower -> leader
	c1, c2 := subPair(t, p.a, p.b, "chat")
	if p.a.Role() != Follower || p.b.Role() != Leader {
		t.Fatalf("roles: a=%v b=%v", p.a.Role(), p.b.Role())
	}
	if p.a.yamuxMode != yamux || p.b.yamuxMode != yamux {
		t.Fatalf("yamux mode a=%v b=%v, want %v", p.a.yamuxMode, p.b.yamuxMode, yamux)
	}
	wantMode := map[string]string{"ged": Version, "yamux": YamuxVersion, "credit": CreditVersion}[mode]
	for _, d := range []*Dilation{p.a, p.b} {
		if d.Mode() != wantMode || d.FlowControlled() != (mode != "ged") {
			t.Fatalf("Mode() %q FlowControlled() %v, want %q", d.Mode(), d.FlowControlled(), wantMode)
		}
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

func testBulkBothWays(t *testing.T, mode string) {
	oa, ob := pairOptsMode(t, mode)
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

func testCloseUnblocks(t *testing.T, mode string) {
	oa, ob := pairOptsMode(t, mode)
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

// TestModeNegotiation: a Go-only mode only when both pleases ask for it;
// Python peers (can-dilate ["ged"]) always get ged.
func TestModeNegotiation(t *testing.T) {
	for _, c := range []struct {
		name       string
		tweakA     func(*Options)
		tweakB     func(*Options)
		want       string
		flowContrl bool
	}{
		{"both", nil, nil, CreditVersion, true},
		{"a-no-credit", func(o *Options) { o.NoCredit = true }, nil, Version, false},
		{"both-no-credit", func(o *Options) { o.NoCredit = true }, func(o *Options) { o.NoCredit = true }, YamuxVersion, true},
		{"a-ged-only", func(o *Options) { o.NoYamux = true }, nil, Version, false},
		{"b-ged-only", nil, func(o *Options) { o.NoYamux = true }, Version, false},
		{"a-sees-python-peer", func(o *Options) { o.PeerVersions = []string{"ged"} }, nil, Version, false},
		{"extended-versions", func(o *Options) { o.PeerVersions = ExtendedVersions() },
			func(o *Options) { o.PeerVersions = ExtendedVersions() }, CreditVersion, true},
		{"older-go-peers", func(o *Options) { o.PeerVersions = []string{YamuxVersion, Version} },
			func(o *Options) { o.PeerVersions = []string{YamuxVersion, Version} }, YamuxVersion, true},
		{"one-sees-older-list", func(o *Options) { o.PeerVersions = []string{YamuxVersion, Version} }, nil, Version, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			oa, ob := pairOptsMode(t, "credit")
			if c.tweakA != nil {
				c.tweakA(&oa)
			}
			if c.tweakB != nil {
				c.tweakB(&ob)
			}
			p := newPair(t, oa, ob)
			c1, c2 := subPair(t, p.a, p.b, "n")
			for _, d := range []*Dilation{p.a, p.b} {
				if d.Mode() != c.want || d.FlowControlled() != c.flowContrl {
					t.Fatalf("Mode() %q FlowControlled() %v, want %q %v", d.Mode(), d.FlowControlled(), c.want, c.flowContrl)
				}
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

// TestNoHeadOfLineBlocking: in the flow-controlled modes a subchannel
// nobody reads does not stop another one.
func TestNoHeadOfLineBlocking(t *testing.T) {
	for _, mode := range []string{"yamux", "credit"} {
		t.Run(mode, func(t *testing.T) { testNoHeadOfLineBlocking(t, mode) })
	}
}

func testNoHeadOfLineBlocking(t *testing.T, mode string) {
	oa, ob := pairOptsMode(t, mode)
	p := newPair(t, oa, ob)
	stuckW, stuckR := subPair(t, p.a, p.b, "unread")
	w, r := subPair(t, p.a, p.b, "busy")
	// Fill the unread subchannel until its writer blocks (window full).
	stuckW.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	var filled int
	buf := make([]byte, 64<<10)
	var werr error
	for range 1000 {
		n, err := stuckW.Write(buf)
		filled += n
		if err != nil {
			werr = err
			break
		}
	}
	if filled >= 1000*len(buf) {
		t.Fatal("writes to an unread subchannel never blocked")
	}
	var ne net.Error
	if !errors.As(werr, &ne) || !ne.Timeout() {
		t.Fatalf("blocked write ended with %v, want a net.Error timeout", werr)
	}
	if mode == "credit" && filled > defaultCreditWindow {
		t.Fatalf("%d bytes written before blocking, more than the %d-byte window", filled, defaultCreditWindow)
	}
	// Much more than the stuck window must still flow on the other one.
	const n = 16 << 20
	tr := startTransfer(w, r, 51, n)
	<-tr.done
	tr.check(t, "busy subchannel", 51, n)
	// The stuck one resumes once read: what was written, then 4 MiB more.
	stuckW.SetWriteDeadline(time.Time{})
	const more = 4 << 20
	got, err := io.ReadFull(stuckR, make([]byte, filled))
	if err != nil || got != filled {
		t.Fatalf("stuck subchannel: read %d of %d buffered bytes: %v", got, filled, err)
	}
	tr2 := startTransfer(stuckW, stuckR, 52, more)
	<-tr2.done
	tr2.check(t, "stuck subchannel after reading", 52, more)
	stuckR.Close()
	stuckW.Close()
}
