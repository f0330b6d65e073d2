package soak

import (
	"context"
	"crypto/sha256"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

// setup is a connected Dilation pair whose only L2 path goes through px.
type setup struct {
	a, b *dilate.Dilation
	px   *netx.Proxy
	lk   *Link
}

// newDirect: b listens on a fixed loopback port and advertises only the
// proxy in front of it; a does not listen, so every L2 connection is a
// dials b through the proxy.
func newDirect(t *testing.T, m Mode) *setup {
	target := "127.0.0.1:" + strconv.Itoa(interop.FreePort(t))
	oa := dilate.Options{NoListen: true}
	ob := dilate.Options{ListenAddr: target}
	return newSetup(t, m, target, &oa, &ob, func(px *netx.Proxy) {
		ob.AdvertiseAddrs = []string{px.Addr()}
	})
}

// newRelayed: neither side listens; both reach each other only through our
// relay, with the proxy in front of the relay.
func newRelayed(t *testing.T, m Mode) *setup {
	r := relaytest.Start(t)
	oa := dilate.Options{NoListen: true, RelayDelay: time.Millisecond}
	ob := dilate.Options{NoListen: true, RelayDelay: time.Millisecond}
	return newSetup(t, m, r.Addr(), &oa, &ob, func(px *netx.Proxy) {
		oa.Relays = []string{"tcp:" + px.Addr()}
		ob.Relays = oa.Relays
	})
}

func newSetup(t *testing.T, m Mode, target string, oa, ob *dilate.Options, withProxy func(*netx.Proxy)) *setup {
	t.Helper()
	px := &netx.Proxy{Target: target}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	withProxy(px)
	lk := &Link{}
	oa.Side, ob.Side = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"
	oa.OnStatus, ob.OnStatus = lk.OnStatus(0), lk.OnStatus(1)
	m.Tweak(oa)
	m.Tweak(ob)
	sa, sb := dilatetest.Pair()
	key := sha256.Sum256([]byte("dilate soak key " + t.Name()))
	a, err := dilate.New(context.Background(), key[:], sa, *oa)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dilate.New(context.Background(), key[:], sb, *ob)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close(); sa.Close(); sb.Close() })
	return &setup{a: a, b: b, px: px, lk: lk}
}

// subchannel opens one subchannel a -> b.
func (s *setup) subchannel(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := s.b.Listen("soak")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c1, err := s.a.Dial(ctx, "soak")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c1.Close() })
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		ln.Close()
		r = <-ch
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return c1, r.c
}

func (s *setup) checkMode(t *testing.T, m Mode) {
	t.Helper()
	if ma, mb := s.a.Mode(), s.b.Mode(); ma != m.Want || mb != m.Want {
		t.Fatalf("agreed modes %q / %q, want %q", ma, mb, m.Want)
	}
}

// TestOfflineWritesThroughCuts is issue 5's "again with writes made while no
// connection exists": size bytes each way through one subchannel while the
// proxy cuts the L2 connection again and again, every cut followed by a
// window in which the proxy refuses new connections (so none exists) while
// both applications keep writing. Every byte arrives exactly once, in order
// (length and SHA-256 checked), the application sees no error, at least
// minCuts cuts sever a live connection, and the applications' writes
// returned while no connection existed.
func TestOfflineWritesThroughCuts(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			size, minCuts, steps := soakSize()
			s := newDirect(t, m)
			c1, c2 := s.subchannel(t)
			s.checkMode(t, m)
			var gate sync.RWMutex
			start := time.Now()
			dirs, done := transfer(c1, c2, size, &gate)
			var offline int64
			windows, offlineWindows := 0, 0
			const window = 200 * time.Millisecond
			cut := func() int {
				// Every other cut, the writers are first stopped until the
				// receivers have read everything, so that when the cut
				// comes they have room (unacked bytes, credit, yamux
				// window) to write while no connection exists. The other
				// cuts hit the stream in full flight.
				drained := windows%2 == 1
				if drained {
					gate.Lock()
					for i := 0; i < 2000 && received(dirs) < sent(dirs); i++ {
						time.Sleep(5 * time.Millisecond)
					}
					time.Sleep(50 * time.Millisecond) // acks, credit and window updates reach the writers
					if sent(dirs) >= 2*size {         // nothing left to write offline
						gate.Unlock()
						return 0
					}
				}
				unlock := func() {
					if drained {
						gate.Unlock()
						drained = false
					}
				}
				defer unlock()
				s.px.Refuse(true) // before the cut: no reconnect can slip in
				defer s.px.Refuse(false)
				n := s.px.Cut()
				if n == 0 {
					return 0
				}
				windows++
				for i := 0; i < 400 && !s.lk.Down(); i++ { // both sides saw the loss
					time.Sleep(5 * time.Millisecond)
				}
				if !s.lk.Down() {
					return n
				}
				before := sent(dirs)
				unlock()
				time.Sleep(window)
				if d := sent(dirs) - before; d > 0 && s.lk.Down() {
					offline += d
					offlineWindows++
				}
				return n
			}
			c := &Cutter{
				Link: s.lk, Total: 2 * size, Steps: steps, Interval: 200 * time.Millisecond,
				Progress: func() int64 { return received(dirs) },
			}
			cuts := c.Run(done, cut)
			elapsed := time.Since(start)
			for _, d := range dirs {
				d.check(t, size)
			}
			t.Logf("%s: %d MiB each way in %v, length and SHA-256 equal both ways, no application error; %d cuts, generation %d, proxy accepted %d; "+
				"%d offline windows of %v, %d with writes returning while no connection existed (%d bytes)",
				m.Name, size>>20, elapsed.Round(time.Millisecond), cuts, s.lk.Generation(), s.px.Accepted(), windows, window, offlineWindows, offline)
			if cuts < minCuts {
				t.Errorf("only %d cuts during the transfer, want >= %d", cuts, minCuts)
			}
			if want := max(1, minCuts/2); offlineWindows < want {
				t.Errorf("application writes returned while no connection existed in %d windows, want >= %d", offlineWindows, want)
			}
		})
	}
}

// TestRelayThroughCuts is issue 5's "again through the relay": both sides
// reach each other only through our transit relay, and the proxy in front
// of the relay cuts both relay connections again and again while size
// bytes move each way through one subchannel.
func TestRelayThroughCuts(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			size, minCuts, steps := soakSize()
			s := newRelayed(t, m)
			c1, c2 := s.subchannel(t)
			s.checkMode(t, m)
			start := time.Now()
			dirs, done := transfer(c1, c2, size, nil)
			c := &Cutter{
				Link: s.lk, Total: 2 * size, Steps: steps, Interval: 200 * time.Millisecond,
				Progress: func() int64 { return received(dirs) },
			}
			cuts := c.Run(done, s.px.Cut)
			elapsed := time.Since(start)
			for _, d := range dirs {
				d.check(t, size)
			}
			t.Logf("%s: %d MiB each way through the relay in %v, length and SHA-256 equal both ways, no application error; %d cuts, generation %d, proxy accepted %d",
				m.Name, size>>20, elapsed.Round(time.Millisecond), cuts, s.lk.Generation(), s.px.Accepted())
			if cuts < minCuts {
				t.Errorf("only %d cuts during the transfer, want >= %d", cuts, minCuts)
			}
		})
	}
}
