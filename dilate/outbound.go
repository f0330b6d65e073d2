package dilate

import (
	"os"
	"sync"
)

// outRec is one queued (unacked) OPEN/DATA/CLOSE record, already encoded.
type outRec struct {
	seq  uint32
	data []byte
}

// outbound is L4's sending half: one seqnum counter for OPEN, DATA and
// CLOSE, a queue of every record not yet acked (re-sent in order on each new
// connection), and back-pressure on DATA once too many bytes are unacked.
type outbound struct {
	mu      sync.Mutex
	nextSeq uint32
	queue   []outRec // ascending seq, contiguous
	head    int      // queue[head:] are live; compacted lazily
	bytes   int      // unacked DATA bytes
	limit   int
	space   chan struct{} // closed (and replaced) when bytes go down
	conn    *conn         // current connection, nil when none

	// Full-size DATA records (recBufSize) are recycled once acked. A
	// writer seals records outside mu, so while any writer holds some
	// (busy > 0) acked buffers wait in retired.
	bufs    sync.Pool
	busy    int
	retired [][]byte
}

// recBufSize is the capacity of a recycled DATA record: header plus the
// largest payload one Noise message carries.
const recBufSize = dataHeader + maxDataPayload

// dataRecord encodes a DATA record, in a recycled buffer when the payload
// is large.
func (o *outbound) dataRecord(scid, seq uint32, payload []byte) []byte {
	var b []byte
	if len(payload) >= maxDataPayload/4 && len(payload) <= maxDataPayload {
		if p, ok := o.bufs.Get().(*[]byte); ok {
			b = (*p)[:0]
		} else {
			b = make([]byte, 0, recBufSize)
		}
	} else {
		b = make([]byte, 0, dataHeader+len(payload))
	}
	return appendRecord(b, record{tag: tagData, scid: scid, seq: seq, payload: payload})
}

// recycleLocked returns an acked record's buffer; o.mu must be held.
func (o *outbound) recycleLocked(b []byte) {
	if cap(b) != recBufSize || b[0] != tagData {
		return
	}
	if o.busy > 0 {
		o.retired = append(o.retired, b)
		return
	}
	b = b[:0]
	o.bufs.Put(&b)
}

// release ends a writer's use of the records next returned (when it
// returned any).
func (o *outbound) release(n int) {
	if n == 0 {
		return
	}
	o.mu.Lock()
	o.busy--
	if o.busy == 0 {
		for i, b := range o.retired {
			b = b[:0]
			o.bufs.Put(&b)
			o.retired[i] = nil
		}
		o.retired = o.retired[:0]
	}
	o.mu.Unlock()
}

func newOutbound(limit int) *outbound {
	return &outbound{limit: limit, space: make(chan struct{})}
}

// waiters for a blocking DATA send: any closing channel aborts it.
type sendWait struct {
	deadline <-chan struct{} // write deadline (ErrDeadlineExceeded)
	closed   <-chan struct{} // subchannel closed
	stopped  <-chan struct{} // Dilation closed
}

// send queues a record built by build(seq). DATA (flow=true) waits while
// the unacked bytes exceed the limit; OPEN and CLOSE never wait.
func (o *outbound) send(flow bool, size int, w sendWait, build func(seq uint32) []byte) error {
	o.mu.Lock()
	for flow && o.bytes > 0 && o.bytes+size > o.limit {
		ch := o.space
		o.mu.Unlock()
		select {
		case <-ch:
		case <-w.deadline:
			return os.ErrDeadlineExceeded
		case <-w.closed:
			return errSubchannelClosed
		case <-w.stopped:
			return errDilationClosed
		}
		o.mu.Lock()
	}
	// Re-check the aborting conditions after waking, so that a write
	// racing with Close or a deadline does not slip through.
	select {
	case <-w.deadline:
		o.mu.Unlock()
		return os.ErrDeadlineExceeded
	case <-w.closed:
		o.mu.Unlock()
		return errSubchannelClosed
	case <-w.stopped:
		o.mu.Unlock()
		return errDilationClosed
	default:
	}
	seq := o.nextSeq
	o.nextSeq++
	o.queue = append(o.queue, outRec{seq: seq, data: build(seq)})
	if flow {
		o.bytes += size
	}
	c := o.conn
	o.mu.Unlock()
	if c != nil {
		c.kick()
	}
	return nil
}

// ack retires every record with seq <= n (cumulative).
func (o *outbound) ack(n uint32) {
	o.mu.Lock()
	freed := false
	for o.head < len(o.queue) && int32(o.queue[o.head].seq-n) <= 0 {
		r := o.queue[o.head]
		if r.data[0] == tagData {
			o.bytes -= len(r.data) - dataHeader
			freed = true
			o.recycleLocked(r.data)
		}
		o.queue[o.head] = outRec{}
		o.head++
	}
	if o.head == len(o.queue) {
		o.queue, o.head = o.queue[:0], 0
	} else if o.head > 1024 && o.head*2 > len(o.queue) {
		n := copy(o.queue, o.queue[o.head:])
		clear(o.queue[n:])
		o.queue, o.head = o.queue[:n], 0
	}
	if freed {
		close(o.space)
		o.space = make(chan struct{})
	}
	o.mu.Unlock()
}

// attach makes c the current connection (nil detaches) and returns the
// seqnum from which c must (re)send.
func (o *outbound) attach(c *conn) uint32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conn = c
	if o.head < len(o.queue) {
		return o.queue[o.head].seq
	}
	return o.nextSeq
}

// detach clears the current connection if it is c.
func (o *outbound) detach(c *conn) {
	o.mu.Lock()
	if o.conn == c {
		o.conn = nil
	}
	o.mu.Unlock()
}

// next appends to dst the queued records from seq cursor on, up to about
// maxBytes, and returns them with the new cursor. When dst grew, the
// caller must call release(len) once it no longer uses them.
func (o *outbound) next(dst [][]byte, cursor uint32, maxBytes int) ([][]byte, uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n0 := len(dst)
	defer func() {
		if len(dst) > n0 {
			o.busy++
		}
	}()
	live := o.queue[o.head:]
	if len(live) == 0 {
		return dst, o.nextSeq
	}
	first := live[0].seq
	if int32(cursor-first) < 0 {
		cursor = first // acked meanwhile: skip ahead
	}
	idx := int(cursor - first)
	total := 0
	for idx < len(live) && (total == 0 || total+len(live[idx].data) <= maxBytes) {
		dst = append(dst, live[idx].data)
		total += len(live[idx].data)
		idx++
		cursor++
	}
	return dst, cursor
}

// unacked reports the number of queued records (for tests).
func (o *outbound) unacked() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue) - o.head
}
