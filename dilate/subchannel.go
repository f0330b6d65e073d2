package dilate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// ErrWriteClosed is returned by Write after CloseWrite.
var ErrWriteClosed = errors.New("dilate: subchannel write side closed")

// Addr is the address of a subchannel end: the subprotocol name and id.
type Addr struct {
	Subprotocol string
	ID          uint32 // subchannel id (0 for a listener)
	Side        string // "local" or "peer"
}

func (a Addr) Network() string { return "dilation" }
func (a Addr) String() string {
	return a.Side + "/" + a.Subprotocol + "#" + strconv.FormatUint(uint64(a.ID), 10)
}

// Subchannel is one Dilation subchannel, a net.Conn. CloseWrite sends the
// peer a CLOSE (it sees EOF) while reading goes on until the peer's CLOSE;
// Close sends CLOSE if not already sent and discards further input.
type Subchannel struct {
	d    *Dilation
	id   uint32
	name string

	wlock chan struct{} // serializes Writes (deadline-aware)
	rdl   *deadline
	wdl   *deadline

	mu           sync.Mutex
	rbuf         [][]byte
	roff         int // bytes consumed from rbuf[0]
	rlen         int
	notify       chan struct{} // closed and replaced on every change
	remoteClosed bool          // peer's CLOSE arrived: EOF after rbuf
	localClosed  bool          // Close called
	closeSent    bool          // our CLOSE queued
	closedCh     chan struct{} // closed by Close

	// CreditVersion mode (credit.go); guarded by mu.
	credit     bool
	window     int64 // our receive window (Options.CreditWindow)
	sendCredit int64 // DATA bytes we may still send
	recvLimit  int64 // DATA bytes the peer may send in all (granted so far)
	recvTotal  int64 // DATA bytes received in all
	unGranted  int64 // bytes consumed and not yet granted back
	cerr       error // the peer exceeded its credit (wraps ErrCreditExceeded)
}

var _ net.Conn = (*Subchannel)(nil)

// newSubchannel makes a subchannel; d.mu must be held.
func newSubchannel(d *Dilation, id uint32, name string) *Subchannel {
	s := &Subchannel{
		d: d, id: id, name: name,
		wlock:    make(chan struct{}, 1),
		rdl:      newDeadline(),
		wdl:      newDeadline(),
		notify:   make(chan struct{}),
		closedCh: make(chan struct{}),
	}
	if d.creditMode {
		s.credit = true
		s.window = int64(d.opts.CreditWindow)
		s.sendCredit, s.recvLimit = creditInitial, creditInitial
	}
	return s
}

// ID is the subchannel id (Leader odd, Follower even).
func (s *Subchannel) ID() uint32 { return s.id }

// Subprotocol is the name carried by the OPEN.
func (s *Subchannel) Subprotocol() string { return s.name }

func (s *Subchannel) LocalAddr() net.Addr  { return Addr{s.name, s.id, "local"} }
func (s *Subchannel) RemoteAddr() net.Addr { return Addr{s.name, s.id, "peer"} }

func (s *Subchannel) SetDeadline(t time.Time) error {
	s.rdl.set(t)
	s.wdl.set(t)
	return nil
}
func (s *Subchannel) SetReadDeadline(t time.Time) error  { s.rdl.set(t); return nil }
func (s *Subchannel) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// changed wakes everyone waiting on s.notify; s.mu must be held.
func (s *Subchannel) changed() {
	close(s.notify)
	s.notify = make(chan struct{})
}

func (s *Subchannel) opErr(op string, err error) error {
	if err == nil || err == io.EOF || err == os.ErrDeadlineExceeded {
		return err
	}
	return &net.OpError{Op: op, Net: "dilation", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// Read reads buffered data; io.EOF after the peer's CLOSE.
func (s *Subchannel) Read(p []byte) (int, error) {
	for {
		dl := s.rdl.wait()
		if isClosed(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		s.mu.Lock()
		if s.localClosed {
			s.mu.Unlock()
			return 0, s.opErr("read", net.ErrClosed)
		}
		if s.cerr != nil {
			err := s.cerr
			s.mu.Unlock()
			return 0, s.opErr("read", err)
		}
		if s.rlen > 0 {
			n := 0
			for n < len(p) && len(s.rbuf) > 0 {
				c := copy(p[n:], s.rbuf[0][s.roff:])
				n += c
				s.roff += c
				if s.roff == len(s.rbuf[0]) {
					s.d.putRbuf(s.rbuf[0])
					s.rbuf[0] = nil
					s.rbuf = s.rbuf[1:]
					s.roff = 0
				}
			}
			s.rlen -= n
			if len(s.rbuf) == 0 {
				s.rbuf = nil
			}
			if s.credit {
				s.consumedLocked(n)
			}
			s.changed()
			s.mu.Unlock()
			return n, nil
		}
		if s.remoteClosed {
			s.mu.Unlock()
			return 0, io.EOF
		}
		if len(p) == 0 {
			s.mu.Unlock()
			return 0, nil
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		case <-s.d.done:
			return 0, s.opErr("read", errDilationClosed)
		}
	}
}

// Write sends p as DATA records. It blocks while too many bytes are unacked
// (for example while no connection exists) and honours the write deadline.
func (s *Subchannel) Write(p []byte) (int, error) {
	dl := s.wdl.wait()
	select {
	case s.wlock <- struct{}{}:
	case <-dl:
		return 0, os.ErrDeadlineExceeded
	case <-s.closedCh:
		return 0, s.opErr("write", net.ErrClosed)
	case <-s.d.done:
		return 0, s.opErr("write", errDilationClosed)
	}
	defer func() { <-s.wlock }()
	s.mu.Lock()
	closed, wclosed, cerr := s.localClosed, s.closeSent, s.cerr
	s.mu.Unlock()
	switch {
	case closed:
		return 0, s.opErr("write", net.ErrClosed)
	case cerr != nil:
		return 0, s.opErr("write", cerr)
	case wclosed:
		return 0, s.opErr("write", ErrWriteClosed)
	}
	w := sendWait{deadline: dl, closed: s.closedCh, stopped: s.d.done}
	n := 0
	for first := true; first || len(p) > 0; first = false {
		size := min(len(p), maxDataPayload)
		if size == 0 {
			break
		}
		if s.credit {
			var err error
			if size, err = s.takeCredit(size, w); err != nil {
				return n, s.opErr("write", err)
			}
		}
		chunk := p[:size]
		err := s.d.out.send(true, len(chunk), w, func(seq uint32) []byte {
			return s.d.out.dataRecord(s.id, seq, chunk)
		})
		if err != nil {
			if s.credit {
				s.returnCredit(len(chunk))
			}
			return n, s.opErr("write", err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// sendClose queues our CLOSE once; s.mu must be held.
func (s *Subchannel) sendCloseLocked() {
	if s.closeSent {
		return
	}
	s.closeSent = true
	_ = s.d.out.send(false, 0, sendWait{}, func(seq uint32) []byte {
		return appendRecord(nil, record{tag: tagClose, scid: s.id, seq: seq})
	})
	if s.remoteClosed {
		s.d.forget(s.id)
	}
}

// CloseWrite half-closes: the peer reads EOF; we can still read until the
// peer's CLOSE.
func (s *Subchannel) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.localClosed {
		return s.opErr("close", net.ErrClosed)
	}
	s.sendCloseLocked()
	return nil
}

// Close sends CLOSE (unless CloseWrite did already), wakes blocked calls and
// drops buffered and future input.
func (s *Subchannel) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.localClosed {
		return s.opErr("close", net.ErrClosed)
	}
	s.localClosed = true
	close(s.closedCh)
	if s.credit {
		s.consumedLocked(s.rlen) // dropped unread: granted back
	}
	s.rbuf, s.rlen, s.roff = nil, 0, 0
	s.changed()
	s.sendCloseLocked()
	return nil
}

// deliver appends DATA for the application, waiting while the buffer is
// full. It returns false only if the Dilation closed meanwhile.
func (s *Subchannel) deliver(data []byte) bool {
	if s.credit {
		s.deliverCredit(data)
		return true
	}
	for {
		s.mu.Lock()
		if s.localClosed || s.remoteClosed {
			s.mu.Unlock()
			return true // dropped, as Python does after close
		}
		if s.rlen == 0 || s.rlen+len(data) <= s.d.opts.MaxSubchannelBuffer {
			s.rbuf = append(s.rbuf, append(s.d.getRbuf(len(data)), data...))
			s.rlen += len(data)
			s.changed()
			s.mu.Unlock()
			return true
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.d.done:
			return false
		}
	}
}

// rbufSize is the size of a pooled receive buffer: one DATA record of the
// largest single-Noise-message frame fits.
const rbufSize = noiseMaxPlain

// getRbuf returns an empty buffer for n bytes of received DATA: a recycled
// one for large records, a fresh exact-size one for small records (so idle
// subchannels holding a few bytes do not pin 64 KiB each).
func (d *Dilation) getRbuf(n int) []byte {
	if n < rbufSize/4 || n > rbufSize {
		return make([]byte, 0, n)
	}
	if p, ok := d.rbufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, rbufSize)
}

// putRbuf recycles a buffer getRbuf made, once nothing refers to it.
func (d *Dilation) putRbuf(b []byte) {
	if cap(b) == rbufSize {
		b = b[:0]
		d.rbufs.Put(&b)
	}
}

// remoteClose handles the peer's CLOSE.
func (s *Subchannel) remoteClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remoteClosed {
		return
	}
	s.remoteClosed = true
	s.changed()
	if s.closeSent {
		s.d.forget(s.id)
	}
}

// abort is used when the Dilation closes.
func (s *Subchannel) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.localClosed {
		s.localClosed = true
		close(s.closedCh)
		s.rbuf, s.rlen = nil, 0
		s.changed()
	}
}

// Listener accepts subchannels the peer opens for one subprotocol.
type Listener struct {
	d    *Dilation
	name string

	mu     sync.Mutex
	queue  []net.Conn
	notify chan struct{}
	closed bool
}

var _ net.Listener = (*Listener)(nil)

// maxPendingOpens bounds OPENs queued for one subprotocol before Accept.
const maxPendingOpens = 1024

// Accept waits for the next subchannel the peer opens.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "dilation", Addr: l.Addr(), Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			s := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			if sc, ok := s.(*Subchannel); ok {
				sc.topUpCredit() // the application reads it now
			}
			return s, nil
		}
		ch := l.notify
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.d.done:
			return nil, &net.OpError{Op: "accept", Net: "dilation", Addr: l.Addr(), Err: errDilationClosed}
		}
	}
}

// push queues an inbound subchannel; false if the listener cannot take it.
func (l *Listener) push(s net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.queue) >= maxPendingOpens {
		return false
	}
	l.queue = append(l.queue, s)
	close(l.notify)
	l.notify = make(chan struct{})
	return true
}

// Close stops accepting; subchannels not yet accepted are closed.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	q := l.queue
	l.queue = nil
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
	l.d.unlisten(l)
	for _, s := range q {
		s.Close()
	}
	return nil
}

func (l *Listener) Addr() net.Addr { return Addr{Subprotocol: l.name, Side: "local"} }

func (l *Listener) String() string { return fmt.Sprintf("dilation listener %q", l.name) }
