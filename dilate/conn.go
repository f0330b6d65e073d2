package dilate

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

var (
	errPingTimeout      = errors.New("dilate: no PONG within the ping interval")
	errSubchannelClosed = fmt.Errorf("dilate: subchannel closed: %w", net.ErrClosed)
	errDilationClosed   = fmt.Errorf("dilate: dilation closed: %w", net.ErrClosed)
)

// conn is one selected L2/L3 connection: a writer goroutine (control records
// first, then L4 records from the outbound queue), a reader goroutine and,
// on the Leader, a pinger.
type conn struct {
	d      *Dilation
	nc     net.Conn
	br     *bufio.Reader
	seal   sealer
	open   opener
	gen    int
	desc   string // how it was made, for status/logs
	leader bool

	mu        sync.Mutex
	ctrl      [][]byte // encoded PING/PONG/KCM records to send
	ackSeq    uint32   // highest seqnum to acknowledge, when ackDue
	ackDue    bool     // an ACK is pending (ACKs are cumulative: one suffices)
	kickCh    chan struct{}
	done      chan struct{}
	err       error
	failOnce  sync.Once
	awaitPong bool
}

func (c *conn) kick() {
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

// queueCtrl queues an unsequenced record. ACKs are cumulative (Python's
// outbound queue retires every record up to the acked seqnum), so only the
// newest pending ACK is kept: the writer sends one ACK for everything
// processed since its last write.
func (c *conn) queueCtrl(r record) {
	if r.tag == tagAck {
		c.mu.Lock()
		// Keep the highest: an ACK for a retransmitted old record must
		// not replace a pending higher one.
		if !c.ackDue || int32(r.seq-c.ackSeq) > 0 {
			c.ackSeq, c.ackDue = r.seq, true
		}
		c.mu.Unlock()
		c.kick()
		return
	}
	b := appendRecord(make([]byte, 0, 9), r)
	c.mu.Lock()
	c.ctrl = append(c.ctrl, b)
	c.mu.Unlock()
	c.kick()
}

// fail closes the connection once and reports it lost to the manager.
// The manager goroutine itself uses shutdown instead.
func (c *conn) fail(err error) {
	if c.shutdown(err) {
		c.d.post(evConnLost{c: c, err: err})
	}
}

// shutdown closes the connection; true for the first call.
func (c *conn) shutdown(err error) bool {
	first := false
	c.failOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		c.nc.Close()
		c.d.out.detach(c)
	})
	return first
}

// start attaches c to L4 and starts its goroutines.
func (c *conn) start(kcm bool) {
	if kcm {
		c.queueCtrl(record{tag: tagKCM})
	}
	cursor := c.d.out.attach(c)
	c.d.wg.Add(2)
	go c.writeLoop(cursor)
	go c.readLoop()
	if c.leader && c.d.opts.PingInterval > 0 {
		c.d.wg.Add(1)
		go c.pingLoop()
	}
}

// writeBatch is how many encrypted bytes the writer gathers before one
// write to the socket; it also writes whenever the queues run empty.
const writeBatch = 256 << 10

func (c *conn) writeLoop(cursor uint32) {
	defer c.d.wg.Done()
	var (
		out  = make([]byte, 0, writeBatch+noiseMaxMsg+frameHeader+64)
		recs [][]byte
		ack  [9]byte
	)
	// Records are encrypted straight into out (no intermediate frame).
	write := func(pt []byte) error {
		var err error
		out, err = c.seal.appendSealed(out, pt)
		if err != nil {
			return err
		}
		if len(out) >= writeBatch {
			_, err = c.nc.Write(out)
			out = out[:0]
		}
		return err
	}
	for {
		c.mu.Lock()
		ctrl := c.ctrl
		c.ctrl = nil
		ackDue, ackSeq := c.ackDue, c.ackSeq
		c.ackDue = false
		c.mu.Unlock()
		for _, r := range ctrl {
			if err := write(r); err != nil {
				c.fail(err)
				return
			}
		}
		if ackDue {
			if err := write(appendRecord(ack[:0], record{tag: tagAck, seq: ackSeq})); err != nil {
				c.fail(err)
				return
			}
		}
		recs, cursor = c.d.out.next(recs[:0], cursor, writeBatch)
		var werr error
		for i, r := range recs {
			if werr == nil {
				werr = write(r)
			}
			recs[i] = nil
		}
		c.d.out.release(len(recs))
		if werr != nil {
			c.fail(werr)
			return
		}
		if len(ctrl) > 0 || ackDue || len(recs) > 0 {
			continue
		}
		if len(out) > 0 {
			if _, err := c.nc.Write(out); err != nil {
				c.fail(err)
				return
			}
			out = out[:0]
		}
		select {
		case <-c.kickCh:
		case <-c.done:
			return
		}
	}
}

func (c *conn) readLoop() {
	defer c.d.wg.Done()
	var buf []byte
	for {
		var hdr [frameHeader]byte
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			c.fail(err)
			return
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n > noiseMaxMsg {
			// Several Noise messages in one frame (a Python write larger
			// than 65519 bytes): stream it chunk by chunk.
			if err := c.readLargeFrame(n); err != nil {
				c.fail(err)
				return
			}
			continue
		}
		// Decrypt in place inside the reader's buffer (no copy); the
		// frame is discarded once dispatch has copied what it keeps.
		frame, err := c.br.Peek(int(n))
		if errors.Is(err, bufio.ErrBufferFull) {
			if cap(buf) < int(n) {
				buf = make([]byte, noiseMaxMsg)
			}
			frame = buf[:n]
			_, err = io.ReadFull(c.br, frame)
			n = 0
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.fail(err)
			return
		}
		pt, err := c.open.open(frame)
		if err != nil {
			c.fail(err)
			return
		}
		if err := c.dispatch(pt); err != nil {
			c.fail(err)
			return
		}
		if n > 0 {
			c.br.Discard(int(n))
		}
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// dispatch handles one complete L3 record.
func (c *conn) dispatch(pt []byte) error {
	r, err := parseRecord(pt)
	if err != nil {
		return err
	}
	switch r.tag {
	case tagKCM:
		c.d.log.Debug("dilate: unexpected KCM after selection", "gen", c.gen)
	case tagPing:
		c.queueCtrl(record{tag: tagPong, pingID: r.pingID})
	case tagPong:
		c.mu.Lock()
		c.awaitPong = false
		c.mu.Unlock()
	case tagAck:
		c.d.out.ack(r.seq)
	default: // OPEN, DATA, CLOSE, CREDIT
		if r.tag == tagCredit && !c.d.isCreditMode() {
			// Not part of "ged": as for any unknown tag.
			return fmt.Errorf("%w: CREDIT record outside %s mode", ErrBadRecord, CreditVersion)
		}
		if !c.d.in.handle(r) {
			return errDilationClosed
		}
		c.queueCtrl(record{tag: tagAck, seq: r.seq})
	}
	return nil
}

// readLargeFrame reads a frame of n > 65535 bytes: 65535-byte ciphertext
// chunks, each its own Noise message. A DATA record is delivered piece by
// piece as the chunks are decrypted, so memory stays bounded whatever the
// frame size; other records are assembled up to MaxFrame.
func (c *conn) readLargeFrame(n int64) error {
	chunk := make([]byte, noiseMaxMsg)
	next := func() ([]byte, error) {
		k := min(n, noiseMaxMsg)
		if _, err := io.ReadFull(c.br, chunk[:k]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n -= k
		pt, err := c.open.cs.Decrypt(chunk[:0], nil, chunk[:k])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errDecrypt, err)
		}
		return pt, nil
	}
	first, err := next()
	if err != nil {
		return err
	}
	if len(first) < dataHeader || first[0] != tagData {
		if n+int64(len(first)) > int64(c.d.opts.MaxFrame) {
			return fmt.Errorf("%w: %d-byte non-DATA frame", ErrFrameTooBig, n+int64(len(first)))
		}
		pt := append([]byte(nil), first...)
		for n > 0 {
			p, err := next()
			if err != nil {
				return err
			}
			pt = append(pt, p...)
		}
		return c.dispatch(pt)
	}
	scid := binary.BigEndian.Uint32(first[1:])
	seq := binary.BigEndian.Uint32(first[5:])
	ok, err := c.d.in.handleStream(scid, seq, first[dataHeader:], func() ([]byte, bool, error) {
		if n == 0 {
			return nil, false, nil
		}
		p, err := next()
		return p, err == nil, err
	})
	if err != nil {
		return err
	}
	if !ok {
		return errDilationClosed
	}
	c.queueCtrl(record{tag: tagAck, seq: seq})
	return nil
}

func (c *conn) pingLoop() {
	defer c.d.wg.Done()
	t := time.NewTicker(c.d.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		late := c.awaitPong
		c.awaitPong = true
		c.mu.Unlock()
		if late {
			c.d.log.Info("dilate: PONG overdue, dropping connection", "gen", c.gen)
			c.fail(errPingTimeout)
			return
		}
		var id [4]byte
		_, _ = rand.Read(id[:])
		c.queueCtrl(record{tag: tagPing, pingID: binary.BigEndian.Uint32(id[:])})
	}
}

// readBuffer is the L2 read buffer: larger than the largest Noise message,
// so a frame is decrypted in place, and large enough for few read calls.
const readBuffer = 256 << 10

// hsParams describes one connection attempt.
type hsParams struct {
	dk      []byte
	leader  bool
	side    string
	relay   bool
	timeout time.Duration
}

// hsResult is a connection that finished the handshake and saw the peer's
// KCM (Leader: the Follower's; Follower: the Leader's, i.e. selection).
type hsResult struct {
	nc   net.Conn
	br   *bufio.Reader
	seal sealer
	open opener
}

// handshake runs the relay exchange (optional), the prologues, the Noise
// NNpsk0 handshake and the KCM exchange on nc. The Follower sends its KCM
// right after message 2; the Leader's KCM is sent later by whoever selects
// the connection.
func handshake(ctx context.Context, nc net.Conn, p hsParams) (*hsResult, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if p.timeout > 0 {
		nc.SetDeadline(time.Now().Add(p.timeout))
	}
	br := bufio.NewReaderSize(nc, readBuffer)
	if p.relay {
		if _, err := nc.Write(relayLine(p.dk, p.side)); err != nil {
			return nil, err
		}
		if err := expectExact(br, "ok\n", "relay response"); err != nil {
			return nil, err
		}
	}
	own, peer := prologueFollower, prologueLeader
	if p.leader {
		own, peer = prologueLeader, prologueFollower
	}
	if _, err := nc.Write([]byte(own)); err != nil {
		return nil, err
	}
	if err := expectExact(br, peer, "peer prologue"); err != nil {
		return nil, err
	}
	hs, err := newNoise(p.dk, p.leader)
	if err != nil {
		return nil, err
	}
	res := &hsResult{nc: nc, br: br}
	if p.leader {
		msg1, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			return nil, err
		}
		if _, err := nc.Write(appendFrame(nil, msg1)); err != nil {
			return nil, err
		}
		msg2, err := readFrame(br, nil, 1024)
		if err != nil {
			return nil, err
		}
		if _, cs1, cs2, err := hs.ReadMessage(nil, msg2); err != nil || cs1 == nil {
			return nil, fmt.Errorf("%w: noise message 2: %v", ErrBadHandshake, err)
		} else {
			res.seal, res.open = sealer{cs1}, opener{cs: cs2}
		}
	} else {
		msg1, err := readFrame(br, nil, 1024)
		if err != nil {
			return nil, err
		}
		if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
			return nil, fmt.Errorf("%w: noise message 1: %v", ErrBadHandshake, err)
		}
		msg2, cs1, cs2, err := hs.WriteMessage(nil, nil)
		if err != nil || cs1 == nil {
			return nil, fmt.Errorf("%w: noise message 2: %v", ErrBadHandshake, err)
		}
		res.seal, res.open = sealer{cs2}, opener{cs: cs1}
		out := appendFrame(nil, msg2)
		if out, err = res.seal.appendSealed(out, []byte{tagKCM}); err != nil {
			return nil, err
		}
		if _, err := nc.Write(out); err != nil {
			return nil, err
		}
	}
	// Both roles now wait for the peer's KCM.
	f, err := readFrame(br, nil, 1024)
	if err != nil {
		return nil, err
	}
	pt, err := res.open.open(f)
	if err != nil {
		return nil, err
	}
	if len(pt) != 1 || pt[0] != tagKCM {
		return nil, fmt.Errorf("%w: first record is not a KCM", ErrBadHandshake)
	}
	if !stop() {
		return nil, context.Cause(ctx)
	}
	nc.SetDeadline(time.Time{})
	return res, nil
}
