// Package soak holds long-running durability tests of package dilate that
// use only its exported API: bulk transfers through one subchannel while a
// proxy cuts the L2 connection again and again (issue 5's acceptance
// points). At the default size they are CI-sized (at least 5 cuts); with
// WH_LONG=1 they move 1 GiB each way with at least 50 cuts.
//
// The package also exports the pieces those tests share with the soak
// tests of packages built on dilate (tunnel): the Dilation modes two Go
// peers can agree on, a follower of both sides' connection status, and a
// Cutter that severs live connections while a transfer runs.
package soak

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/netx"
)

// Long reports whether WH_LONG=1 asks for the full acceptance size.
func Long() bool { return os.Getenv("WH_LONG") == "1" }

// Size returns the bytes to move each way, the number of cuts that must
// happen during the transfer, and how many cuts a Cutter aims at (one per
// total/steps bytes received; reconnecting takes time, so fewer happen
// when the transfer is fast): 1 GiB, 50 and 100 with WH_LONG=1, else ci, 5
// and 20.
func Size(ci int64) (size int64, minCuts int, steps int64) {
	if Long() {
		return 1 << 30, 50, 100
	}
	return ci, 5, 20
}

// Mode is a Dilation mode two Go peers can agree on, with the options that
// select it.
type Mode struct {
	Name  string
	Want  string // what Mode() must report on both sides
	Tweak func(*dilate.Options)
}

// Modes returns ged, credit and yamux.
func Modes() []Mode {
	return []Mode{
		{"ged", dilate.Version, func(o *dilate.Options) {}},
		{"credit", dilate.CreditVersion, func(o *dilate.Options) { o.PeerVersions = dilate.GoVersions() }},
		{"yamux", dilate.YamuxVersion, func(o *dilate.Options) { o.PeerVersions, o.NoCredit = dilate.GoVersions(), true }},
	}
}

// Link follows both sides' Dilation status; give side i OnStatus(i).
type Link struct {
	mu   sync.Mutex
	peer [2]dilate.PeerState
	gen  [2]int
}

// OnStatus returns the dilate.Options.OnStatus callback of side i (0 or 1).
func (l *Link) OnStatus(i int) func(dilate.Status) {
	return func(s dilate.Status) {
		l.mu.Lock()
		l.peer[i], l.gen[i] = s.Peer, s.Generation
		l.mu.Unlock()
	}
}

// Up reports whether both sides have a selected connection, and the
// highest generation either reports.
func (l *Link) Up() (gen int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.gen[0], l.gen[1]), l.peer[0] == dilate.PeerConnected && l.peer[1] == dilate.PeerConnected
}

// Down reports whether neither side has a connection.
func (l *Link) Down() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peer[0] != dilate.PeerConnected && l.peer[1] != dilate.PeerConnected
}

// Generation is the highest generation either side reports.
func (l *Link) Generation() int {
	gen, _ := l.Up()
	return gen
}

// Cutter cuts connections while a transfer runs. A cut counts only if it
// closed at least one connection, and the next cut waits until both sides
// report a connection of a newer generation and more bytes arrived: each
// counted cut severs a live, selected L2 connection in the middle of the
// transfer. Between those conditions it cuts every Interval, or sooner once
// Total/Steps more bytes arrived, so the number of cuts does not depend on
// the machine's speed.
type Cutter struct {
	Link     *Link
	Progress func() int64 // bytes received so far
	Total    int64        // Progress when the transfer is complete
	Steps    int64
	Interval time.Duration
}

// Run cuts with cut (a netx.Proxy's Cut, or a wrapper around it) until done
// is closed and returns the number of counted cuts.
func (c *Cutter) Run(done <-chan struct{}, cut func() int) int {
	cuts, lastGen, last, lastCut := 0, -1, int64(0), time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 100_000_000; i++ { // bound: ~6 days of ticks
		select {
		case <-done:
			return cuts
		case <-tick.C:
		}
		p := c.Progress()
		gen, up := c.Link.Up()
		if !up || gen <= lastGen || p <= last || p >= c.Total {
			continue
		}
		if time.Since(lastCut) < c.Interval && p-last < c.Total/c.Steps {
			continue
		}
		if cut() > 0 {
			cuts++
			lastGen = gen
		}
		last, lastCut = p, time.Now()
	}
	return cuts
}

// Counter hashes and counts the bytes written to it; N is readable while a
// transfer runs.
type Counter struct {
	H *netx.HashWriter
	N atomic.Int64
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter { return &Counter{H: netx.NewHashWriter()} }

func (c *Counter) Write(p []byte) (int, error) {
	c.N.Add(int64(len(p)))
	return c.H.Write(p)
}
