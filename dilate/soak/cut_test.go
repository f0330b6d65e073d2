// Helpers of the dilate soak tests (the transfer and its checks).

package soak

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/netx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// soakSize is Size at this package's CI size: 64 MiB, because in "ged"
// mode each offline window lets the writers queue up to MaxUnacked (8 MiB)
// each way, delivered at once on reconnect, which leaves fewer cuts per MiB
// than the other modes.
func soakSize() (size int64, minCuts int, steps int64) { return Size(64 << 20) }

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

// direction is one direction of the bidirectional transfer.
type direction struct {
	seed    uint64
	sent    atomic.Int64 // bytes whose Write returned
	recv    *Counter
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
		d := &direction{seed: uint64(i + 1), recv: NewCounter()}
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
func received(dirs [2]*direction) int64 { return dirs[0].recv.N.Load() + dirs[1].recv.N.Load() }

// check asserts the acceptance point for one direction: no application
// error, exactly size bytes, SHA-256 of the pattern (nothing lost,
// duplicated or reordered).
func (d *direction) check(t *testing.T, size int64) {
	t.Helper()
	if d.sendErr != nil || d.recvErr != nil {
		t.Errorf("direction %d: application saw errors: write=%v read=%v", d.seed, d.sendErr, d.recvErr)
		return
	}
	if d.recv.H.N != size {
		t.Errorf("direction %d: received %d bytes, want %d", d.seed, d.recv.H.N, size)
		return
	}
	if d.recv.H.Sum() != netx.PatternSum(d.seed, size) {
		t.Errorf("direction %d: SHA-256 mismatch over %d bytes (bytes lost, duplicated or reordered)", d.seed, size)
	}
}
