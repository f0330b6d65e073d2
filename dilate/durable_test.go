package dilate

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

// proxied builds a pair where every L2 connection goes through a netx.Proxy:
// one side listens on a fixed loopback port and advertises the proxy, the
// other does not listen.
func proxied(t *testing.T, listenerIsLeader bool, tweak func(*Options)) (*pair, *netx.Proxy) {
	return proxiedMode(t, listenerIsLeader, "ged", tweak)
}

func proxiedMode(t *testing.T, listenerIsLeader bool, mode string, tweak func(*Options)) (*pair, *netx.Proxy) {
	t.Helper()
	port := interop.FreePort(t)
	target := "127.0.0.1:" + strconv.Itoa(port)
	px := &netx.Proxy{Target: target}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	oa, ob := pairOptsMode(t, mode) // a Follower, b Leader
	lis, dia := &oa, &ob
	if listenerIsLeader {
		lis, dia = &ob, &oa
	}
	lis.ListenAddr = target
	lis.AdvertiseAddrs = []string{px.Addr()}
	dia.NoListen = true
	if tweak != nil {
		tweak(&oa)
		tweak(&ob)
	}
	return newPair(t, oa, ob), px
}

// progressWriter counts bytes as they arrive.
type progressWriter struct {
	w *netx.HashWriter
	n atomic.Int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n.Add(int64(len(b)))
	return p.w.Write(b)
}

type transfer struct {
	recv    *progressWriter
	sendErr error
	recvErr error
	done    chan struct{}
}

// startTransfer sends n pattern bytes from -> to (then half-closes) and
// reads them on the other end.
func startTransfer(from, to net.Conn, seed uint64, n int64) *transfer {
	tr := &transfer{recv: &progressWriter{w: netx.NewHashWriter()}, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tr.sendErr = sendPattern(from, seed, n) }()
	go func() {
		defer wg.Done()
		_, tr.recvErr = io.CopyBuffer(tr.recv, to, make([]byte, 64<<10))
	}()
	go func() { wg.Wait(); close(tr.done) }()
	return tr
}

func (tr *transfer) check(t *testing.T, what string, seed uint64, n int64) {
	t.Helper()
	if tr.sendErr != nil || tr.recvErr != nil {
		t.Fatalf("%s: application saw errors: send=%v recv=%v", what, tr.sendErr, tr.recvErr)
	}
	if tr.recv.w.N != n {
		t.Fatalf("%s: received %d bytes, want %d", what, tr.recv.w.N, n)
	}
	if tr.recv.w.Sum() != netx.PatternSum(seed, n) {
		t.Fatalf("%s: SHA-256 mismatch (bytes lost, duplicated or reordered)", what)
	}
}

func longRun() bool { return os.Getenv("WH_LONG") == "1" }

// TestDurableThroughCuts moves data both ways through one subchannel while
// the proxy cuts the L2 connection every ~200 ms: no byte may be lost or
// duplicated and the application must see no error. WH_LONG=1 moves 1 GiB
// each way with >= 50 cuts.
func TestDurableThroughCuts(t *testing.T) { forModes(t, testDurableThroughCuts) }

func testDurableThroughCuts(t *testing.T, mode string) {
	for _, lead := range []bool{false, true} {
		name := "FollowerListens"
		if lead {
			name = "LeaderListens"
		}
		t.Run(name, func(t *testing.T) {
			size, interval, minCuts := int64(64<<20), 200*time.Millisecond, 5
			if longRun() {
				size, minCuts = 1<<30, 50
			}
			p, px := proxiedMode(t, lead, mode, nil)
			c1, c2 := subPair(t, p.a, p.b, "durable")
			up := startTransfer(c1, c2, 11, size)
			down := startTransfer(c2, c1, 12, size)
			cuts := cutWhileMoving(px, func() int64 { return up.recv.n.Load() + down.recv.n.Load() },
				2*size, int64(2*minCuts), interval, up.done, down.done)
			<-up.done
			<-down.done
			up.check(t, "follower->leader", 11, size)
			down.check(t, "leader->follower", 12, size)
			if cuts < minCuts {
				t.Fatalf("only %d cuts during the transfer, want >= %d", cuts, minCuts)
			}
			gen := 0
			for _, s := range p.status(1) {
				gen = max(gen, s.Generation)
			}
			t.Logf("%d MiB each way, %d cuts, leader reached generation %d", size>>20, cuts, gen)
			if gen < 1 {
				t.Fatalf("leader never reconnected (generation %d) despite %d cuts", gen, cuts)
			}
			c1.Close()
			c2.Close()
		})
	}
}

// cutWhileMoving cuts the proxy's connections while a transfer runs: every
// interval, or sooner once total/steps more bytes arrived, but never twice
// without progress in between (so slow machines still finish). It returns
// when every done channel is closed, with the number of effective cuts.
func cutWhileMoving(px *netx.Proxy, progress func() int64, total int64, steps int64, interval time.Duration, dones ...chan struct{}) int {
	cuts, last, lastCut := 0, int64(0), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	finished := func() bool {
		for _, d := range dones {
			if !isClosedStruct(d) {
				return false
			}
		}
		return true
	}
	for i := 0; i < 10_000_000 && !finished(); i++ {
		<-tick.C
		p := progress()
		if p > last && p < total && (time.Since(lastCut) >= interval || p-last >= total/steps) {
			if px.Cut() > 0 {
				cuts++
			}
			last, lastCut = p, time.Now()
		}
	}
	return cuts
}

func isClosedStruct(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func waitStatus(t *testing.T, p *pair, i int, f func(Status) bool) Status {
	t.Helper()
	for range 2000 {
		ss := p.status(i)
		if len(ss) > 0 && f(ss[len(ss)-1]) {
			return ss[len(ss)-1]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("side %d never reached the expected status; got %+v", i, p.status(i))
	return Status{}
}

// TestWritesWhileDisconnected writes and opens subchannels while no L2
// connection exists (the mailbox is held so no reconnect can happen); all
// of it arrives after the reconnect.
func TestWritesWhileDisconnected(t *testing.T) {
	p, px := proxied(t, false, nil)
	c1, c2 := subPair(t, p.a, p.b, "early")
	l, err := p.b.Listen("late")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p.sa.Hold()
	p.sb.Hold()
	px.Cut()
	for i := range 2 {
		waitStatus(t, p, i, func(s Status) bool { return s.Peer == PeerReconnecting })
	}
	const n = 512 << 10
	if _, err := io.Copy(c1, netx.NewPatternReader(21, n)); err != nil {
		t.Fatalf("write while disconnected: %v", err)
	}
	if err := c1.(*Subchannel).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	late, err := p.a.Dial(ctxT(t, 10*time.Second), "late")
	if err != nil {
		t.Fatalf("dial while disconnected: %v", err)
	}
	if _, err := late.Write([]byte("queued while offline")); err != nil {
		t.Fatal(err)
	}
	late.Close()
	if q := p.a.out.unacked(); q == 0 {
		t.Fatal("nothing queued while disconnected")
	}
	p.sa.Release()
	p.sb.Release()
	cnt, sum, err := recvAll(c2)
	if err != nil || cnt != n || sum != netx.PatternSum(21, n) {
		t.Fatalf("after reconnect: %d bytes, err=%v, hash ok=%v", cnt, err, sum == netx.PatternSum(21, n))
	}
	lc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(lc)
	if err != nil || string(got) != "queued while offline" {
		t.Fatalf("late subchannel: %q %v", got, err)
	}
	waitStatus(t, p, 0, func(s Status) bool { return s.Peer == PeerConnected && s.Generation >= 1 })
}

// TestStallDetectedByPing: a silent connection (no FIN) is detected by the
// Leader's PING/PONG and replaced.
func TestStallDetectedByPing(t *testing.T) {
	p, px := proxied(t, true, func(o *Options) { o.PingInterval = 100 * time.Millisecond })
	c1, c2 := subPair(t, p.a, p.b, "stall")
	px.Stall()
	waitStatus(t, p, 1, func(s Status) bool {
		return s.Peer == PeerReconnecting && errors.Is(s.Err, errPingTimeout)
	})
	if _, err := c1.Write([]byte("after the stall")); err != nil {
		t.Fatal(err)
	}
	c1.(*Subchannel).CloseWrite()
	px.Resume()
	got, err := io.ReadAll(c2)
	if err != nil || string(got) != "after the stall" {
		t.Fatalf("got %q %v", got, err)
	}
	waitStatus(t, p, 1, func(s Status) bool { return s.Peer == PeerConnected && s.Generation >= 1 })
}

type relayUnderTest interface{ Hint() string }

func relayPair(t *testing.T, r string, tweak func(*Options)) *pair {
	oa, ob := pairOpts(t)
	for _, o := range []*Options{&oa, &ob} {
		o.NoListen = true
		o.Relays = []string{r}
		if tweak != nil {
			tweak(o)
		}
	}
	return newPair(t, oa, ob)
}

func relayBulk(t *testing.T, p *pair) {
	c1, c2 := subPair(t, p.a, p.b, "relayed")
	const n = 8 << 20
	up := startTransfer(c1, c2, 31, n)
	down := startTransfer(c2, c1, 32, n)
	<-up.done
	<-down.done
	up.check(t, "up", 31, n)
	down.check(t, "down", 32, n)
	for i := range 2 {
		s := waitStatus(t, p, i, func(s Status) bool { return s.Peer == PeerConnected })
		if !strings.HasPrefix(s.Via, "relay ") {
			t.Fatalf("side %d connected via %q, want the relay", i, s.Via)
		}
	}
}

// TestThroughGoRelay uses our relay server (relay/relaytest).
func TestThroughGoRelay(t *testing.T) {
	relayBulk(t, relayPair(t, relaytest.Start(t).Hint(), nil))
}

// TestThroughPythonRelay uses Debian's Python transit relay (a real peer).
func TestThroughPythonRelay(t *testing.T) {
	interop.NeedPython(t, "wormhole_transit_relay")
	relayBulk(t, relayPair(t, interop.StartPythonRelay(t).Hint(), nil))
}

// TestRelayCuts: relay connection cut repeatedly (proxy in front of the
// relay); data survives.
func TestRelayCuts(t *testing.T) {
	r := relaytest.Start(t)
	px := &netx.Proxy{Target: r.Addr()}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	p := relayPair(t, "tcp:"+px.Addr(), nil)
	c1, c2 := subPair(t, p.a, p.b, "relay-cuts")
	const n = 16 << 20
	tr := startTransfer(c1, c2, 41, n)
	cuts := cutWhileMoving(px, tr.recv.n.Load, n, 8, 150*time.Millisecond, tr.done)
	tr.check(t, "through cut relay", 41, n)
	t.Logf("%d cuts", cuts)
	if cuts == 0 {
		t.Fatal("no cut happened during the transfer")
	}
}
