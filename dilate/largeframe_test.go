package dilate

import (
	"io"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
)

// sendBigRecord queues one DATA record with the whole payload, as Python
// does for a large write: the writer seals it as one frame made of several
// Noise messages.
func sendBigRecord(t *testing.T, d *Dilation, scid uint32, payload []byte) {
	t.Helper()
	err := d.out.send(false, 0, sendWait{}, func(seq uint32) []byte {
		return appendRecord(make([]byte, 0, dataHeader+len(payload)), record{tag: tagData, scid: scid, seq: seq, payload: payload})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLargeFramesFromPeer: DATA records far above 65519 bytes (and above
// MaxFrame) arrive intact, also while the connection is cut repeatedly
// (records streamed halfway are resumed without duplicating bytes).
func TestLargeFramesFromPeer(t *testing.T) {
	p, px := proxied(t, false, func(o *Options) { o.MaxFrame = 1 << 20 })
	c1, c2 := subPair(t, p.a, p.b, "big")
	const recSize, recs = 2<<20 + 12345, 8
	src := netx.NewPatternReader(61, recSize*recs)
	want := netx.PatternSum(61, recSize*recs)
	recv := &progressWriter{w: netx.NewHashWriter()}
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(recv, c2, recSize*recs)
		done <- err
	}()
	scid := c1.(*Subchannel).ID()
	for range recs {
		buf := make([]byte, recSize)
		io.ReadFull(src, buf)
		sendBigRecord(t, p.a, scid, buf)
	}
	finished := make(chan struct{})
	go func() {
		<-done
		close(finished)
	}()
	cuts := cutWhileMoving(px, recv.n.Load, recSize*recs, 8, 100*time.Millisecond, finished)
	if recv.w.N != recSize*recs || recv.w.Sum() != want {
		t.Fatalf("received %d bytes, hash ok=%v (cuts %d)", recv.w.N, recv.w.Sum() == want, cuts)
	}
	t.Logf("%d records of %d bytes, %d cuts", recs, recSize, cuts)
	c1.Close()
	c2.Close()
}
