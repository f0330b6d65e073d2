// Package soak holds long-running durability tests of package dilate that use
// only its exported API: bulk transfers through one subchannel while a proxy
// cuts the L2 connection again and again (issue 5's acceptance points). At
// the default size they are CI-sized (64 MiB each way, at least 5 cuts);
// with WH_LONG=1 they move 1 GiB each way with at least 50 cuts.
package soak

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/netx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func longRun() bool { return os.Getenv("WH_LONG") == "1" }

// soakSize is the bytes moved each way, the number of cuts that must
// happen during the transfer, and how many cuts the cutter aims at (one
// per total/steps bytes received; reconnecting takes time, so fewer
// happen when the transfer is fast).
func soakSize() (size int64, minCuts int, steps int64) {
	if longRun() {
		return 1 << 30, 50, 100
	}
	// 64 MiB: in "ged" mode each offline window lets the writers queue
	// up to MaxUnacked (8 MiB) each way, delivered at once on reconnect,
	// which leaves fewer cuts per MiB than the other modes.
	return 64 << 20, 5, 20
}

// mode is a Dilation mode two Go peers can agree on, with the options that
// select it.
type mode struct {
	name  string
	want  string // the Mode() both sides must report
	tweak func(*dilate.Options)
}

func modes() []mode {
	return []mode{
		{"ged", dilate.Version, func(o *dilate.Options) {}},
		{"credit", dilate.CreditVersion, func(o *dilate.Options) { o.PeerVersions = dilate.GoVersions() }},
		{"yamux", dilate.YamuxVersion, func(o *dilate.Options) { o.PeerVersions, o.NoCredit = dilate.GoVersions(), true }},
	}
}

// link follows both sides' Dilation status.
type link struct {
	mu   sync.Mutex
	peer [2]dilate.PeerState
	gen  [2]int
}

func (l *link) onStatus(i int) func(dilate.Status) {
	return func(s dilate.Status) {
		l.mu.Lock()
		l.peer[i], l.gen[i] = s.Peer, s.Generation
		l.mu.Unlock()
	}
}

// up reports whether both sides have a selected connection, and the
// highest generation either reports.
func (l *link) up() (gen int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.gen[0], l.gen[1]), l.peer[0] == dilate.PeerConnected && l.peer[1] == dilate.PeerConnected
}

// down reports whether neither side has a connection.
func (l *link) down() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peer[0] != dilate.PeerConnected && l.peer[1] != dilate.PeerConnected
}

func (l *link) generation() int {
	gen, _ := l.up()
	return gen
}

// cutter cuts the proxy's connections while a transfer runs. A cut counts
// only if it closed at least one connection, and the next cut waits until
// both sides report a connection of a newer generation and more bytes
// arrived: each counted cut severs a live, selected L2 connection in the
// middle of the transfer. Between those conditions it cuts every interval
// or sooner, once total/steps more bytes arrived, so the number of cuts
// does not depend on the machine's speed.
type cutter struct {
	lk       *link
	progress func() int64 // bytes received so far, both directions
	total    int64        // progress when the transfer is complete
	steps    int64
	interval time.Duration
}

// runWith cuts with cut (px.Cut, or a wrapper that also opens an offline
// window) until done is closed and returns the number of counted cuts.
func (c *cutter) runWith(done <-chan struct{}, cut func() int) int {
	cuts, lastGen, last, lastCut := 0, -1, int64(0), time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 100_000_000; i++ { // bound: ~6 days of ticks
		select {
		case <-done:
			return cuts
		case <-tick.C:
		}
		p := c.progress()
		gen, up := c.lk.up()
		if !up || gen <= lastGen || p <= last || p >= c.total {
			continue
		}
		if time.Since(lastCut) < c.interval && p-last < c.total/c.steps {
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

// gatedWriter counts bytes the application wrote successfully; each Write
// holds gate's read lock (if gate is set), so the test can stop the writers
// between two Writes.
type gatedWriter struct {
	w    io.Writer
	n    *atomic.Int64
	gate *sync.RWMutex
}

func (c gatedWriter) Write(p []byte) (int, error) {
	if c.gate != nil {
		c.gate.RLock()
		defer c.gate.RUnlock()
	}
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// recvWriter hashes and counts received bytes, with an atomic count the
// cutter can read while the transfer runs.
type recvWriter struct {
	h *netx.HashWriter
	n atomic.Int64
}

func (r *recvWriter) Write(p []byte) (int, error) {
	r.n.Add(int64(len(p)))
	return r.h.Write(p)
}

// direction is one direction of the bidirectional transfer.
type direction struct {
	seed    uint64
	sent    atomic.Int64 // bytes whose Write returned
	recv    *recvWriter
	sendErr error
	recvErr error
}

// transfer sends size pattern bytes each way through c1 <-> c2 (c1 -> c2
// with seed 1, c2 -> c1 with seed 2), half-closing each direction after its
// last byte, and reads each until EOF. Writes hold gate's read lock when
// gate is not nil. done is closed when all four ends returned.
func transfer(c1, c2 net.Conn, size int64, gate *sync.RWMutex) (dirs [2]*direction, done chan struct{}) {
	done = make(chan struct{})
	var wg sync.WaitGroup
	for i, pr := range [2][2]net.Conn{{c1, c2}, {c2, c1}} {
		d := &direction{seed: uint64(i + 1), recv: &recvWriter{h: netx.NewHashWriter()}}
		dirs[i] = d
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, d.sendErr = io.CopyBuffer(gatedWriter{pr[0], &d.sent, gate}, netx.NewPatternReader(d.seed, size), make([]byte, 64<<10))
			if d.sendErr == nil {
				if cw, ok := pr[0].(interface{ CloseWrite() error }); ok {
					d.sendErr = cw.CloseWrite()
				} else {
					d.sendErr = fmt.Errorf("%T cannot half-close", pr[0])
					pr[0].Close()
				}
			}
		}()
		go func() {
			defer wg.Done()
			_, d.recvErr = io.CopyBuffer(d.recv, pr[1], make([]byte, 64<<10))
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return dirs, done
}

// sent is the bytes whose Write returned, both directions.
func sent(dirs [2]*direction) int64 { return dirs[0].sent.Load() + dirs[1].sent.Load() }

// received is the bytes the receiving applications read, both directions.
func received(dirs [2]*direction) int64 { return dirs[0].recv.n.Load() + dirs[1].recv.n.Load() }

// check asserts the acceptance point for one direction: no application
// error, exactly size bytes, SHA-256 of the pattern (nothing lost,
// duplicated or reordered).
func (d *direction) check(t *testing.T, size int64) {
	t.Helper()
	if d.sendErr != nil || d.recvErr != nil {
		t.Errorf("direction %d: application saw errors: write=%v read=%v", d.seed, d.sendErr, d.recvErr)
		return
	}
	if d.recv.h.N != size {
		t.Errorf("direction %d: received %d bytes, want %d", d.seed, d.recv.h.N, size)
		return
	}
	if d.recv.h.Sum() != netx.PatternSum(d.seed, size) {
		t.Errorf("direction %d: SHA-256 mismatch over %d bytes (bytes lost, duplicated or reordered)", d.seed, size)
	}
}
