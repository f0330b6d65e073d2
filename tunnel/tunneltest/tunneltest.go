// Package tunneltest provides an in-memory tunnel.Session pair: named
// subchannels as net.Conns with half-close (CloseWrite), deadlines and
// bounded buffers, behaving like Dilation subchannels (an OPEN for a name
// nobody listens on yet waits until Listen). No network is used.
package tunneltest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// ErrClosed is returned after Session.Close.
var ErrClosed = errors.New("tunneltest: session closed")

// BufferSize bounds unread bytes per direction of one conn.
const BufferSize = 256 << 10

// Session is one end of an in-memory pair. It satisfies tunnel.Session.
type Session struct {
	name string
	peer *Session

	mu        sync.Mutex
	closed    bool
	listeners map[string]*Listener
	pending   map[string][]*Conn
	conns     map[*Conn]struct{}
	nextID    int
	opened    int
}

// Pair returns two connected Sessions.
func Pair() (*Session, *Session) {
	a := &Session{name: "a", listeners: map[string]*Listener{}, pending: map[string][]*Conn{}, conns: map[*Conn]struct{}{}}
	b := &Session{name: "b", listeners: map[string]*Listener{}, pending: map[string][]*Conn{}, conns: map[*Conn]struct{}{}}
	a.peer, b.peer = b, a
	return a, b
}

// Opened is how many subchannels this side has opened with Dial.
func (s *Session) Opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// Open is how many of this side's conns are not yet closed.
func (s *Session) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Listen accepts conns the peer Dials for subprotocol.
func (s *Session) Listen(subprotocol string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.listeners[subprotocol]; ok {
		return nil, errors.New("tunneltest: already listening for " + subprotocol)
	}
	l := &Listener{s: s, name: subprotocol, notify: make(chan struct{}), done: make(chan struct{})}
	l.queue = s.pending[subprotocol]
	delete(s.pending, subprotocol)
	s.listeners[subprotocol] = l
	return l, nil
}

// Dial opens a subchannel to the peer's listener for subprotocol (queued
// until the peer listens, as Dilation does).
func (s *Session) Dial(ctx context.Context, subprotocol string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ab, ba := newHalf(), newHalf()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.nextID++
	s.opened++
	id := s.nextID
	local := &Conn{s: s, name: subprotocol, id: id, r: ba, w: ab, side: "local"}
	s.conns[local] = struct{}{}
	s.mu.Unlock()

	p := s.peer
	remote := &Conn{s: p, name: subprotocol, id: id, r: ab, w: ba, side: "peer"}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		local.Close()
		return nil, ErrClosed
	}
	p.conns[remote] = struct{}{}
	if l, ok := p.listeners[subprotocol]; ok {
		l.queue = append(l.queue, remote)
		close(l.notify)
		l.notify = make(chan struct{})
	} else {
		p.pending[subprotocol] = append(p.pending[subprotocol], remote)
	}
	p.mu.Unlock()
	return local, nil
}

// Close closes this side: its listeners and conns (the peer's ends see
// errors, as when a Dilation closes).
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var ls []*Listener
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	var cs []*Conn
	for c := range s.conns {
		cs = append(cs, c)
	}
	for _, q := range s.pending {
		cs = append(cs, q...)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, c := range cs {
		c.abort()
	}
	return nil
}

// Listener is a Session's listener for one subprotocol.
type Listener struct {
	s      *Session
	name   string
	queue  []*Conn // guarded by s.mu
	notify chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Accept returns the next conn the peer opened.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.s.mu.Lock()
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue = l.queue[1:]
			l.s.mu.Unlock()
			return c, nil
		}
		ch := l.notify
		l.s.mu.Unlock()
		select {
		case <-ch:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting; queued conns are closed.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.s.mu.Lock()
		q := l.queue
		l.queue = nil
		if l.s.listeners[l.name] == l {
			delete(l.s.listeners, l.name)
		}
		l.s.mu.Unlock()
		for _, c := range q {
			c.Close()
		}
	})
	return nil
}

// Addr names the subprotocol.
func (l *Listener) Addr() net.Addr { return Addr{Subprotocol: l.name, Side: "local"} }

// Addr is a subchannel address.
type Addr struct {
	Subprotocol string
	ID          int
	Side        string
}

func (Addr) Network() string  { return "tunneltest" }
func (a Addr) String() string { return a.Side + "/" + a.Subprotocol }

// half is one direction of a conn.
type half struct {
	mu      sync.Mutex
	data    []byte // BufferSize backing array, allocated on first write
	off, n  int    // unread bytes are data[off:off+n]
	eof     bool   // writer half-closed
	rclosed bool   // reader closed: writes fail
	wclosed bool   // writer closed or aborted
	aborted bool
	notify  chan struct{}
}

func newHalf() *half { return &half{notify: make(chan struct{})} }

func (h *half) kick() {
	close(h.notify)
	h.notify = make(chan struct{})
}

// Conn is one end of an in-memory subchannel.
type Conn struct {
	s    *Session
	name string
	id   int
	side string
	r, w *half

	dlMu      sync.Mutex
	rdl, wdl  time.Time
	closeOnce sync.Once
}

func (c *Conn) deadline(read bool) time.Time {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	if read {
		return c.rdl
	}
	return c.wdl
}

func wait(ch <-chan struct{}, dl time.Time) error {
	if dl.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tunneltest", Addr: c.RemoteAddr(), Err: err}
}

// Read reads; io.EOF after the peer's CloseWrite or Close.
func (c *Conn) Read(p []byte) (int, error) {
	h := c.r
	for {
		h.mu.Lock()
		if h.rclosed {
			h.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if h.n > 0 {
			n := copy(p, h.data[h.off:h.off+h.n])
			h.off += n
			h.n -= n
			if h.n == 0 {
				h.off = 0
			}
			h.kick()
			h.mu.Unlock()
			return n, nil
		}
		if h.aborted {
			h.mu.Unlock()
			return 0, c.opErr("read", ErrClosed)
		}
		if h.eof {
			h.mu.Unlock()
			return 0, io.EOF
		}
		if len(p) == 0 {
			h.mu.Unlock()
			return 0, nil
		}
		ch := h.notify
		h.mu.Unlock()
		if err := wait(ch, c.deadline(true)); err != nil {
			return 0, err
		}
	}
}

// Write blocks while BufferSize bytes are unread.
func (c *Conn) Write(p []byte) (int, error) {
	h := c.w
	n := 0
	for {
		h.mu.Lock()
		switch {
		case h.wclosed && !h.eof:
			h.mu.Unlock()
			return n, c.opErr("write", net.ErrClosed)
		case h.eof:
			h.mu.Unlock()
			return n, c.opErr("write", errors.New("write after CloseWrite"))
		case h.rclosed || h.aborted:
			h.mu.Unlock()
			return n, c.opErr("write", errors.New("peer closed"))
		}
		if room := BufferSize - h.n; room > 0 {
			if h.data == nil {
				h.data = make([]byte, BufferSize)
			}
			k := min(room, len(p)-n)
			if h.off+h.n+k > BufferSize {
				copy(h.data, h.data[h.off:h.off+h.n])
				h.off = 0
			}
			copy(h.data[h.off+h.n:], p[n:n+k])
			h.n += k
			n += k
			h.kick()
			if n == len(p) {
				h.mu.Unlock()
				return n, nil
			}
		}
		ch := h.notify
		h.mu.Unlock()
		if err := wait(ch, c.deadline(false)); err != nil {
			return n, err
		}
	}
}

// CloseWrite half-closes: the peer reads EOF, we can still read.
func (c *Conn) CloseWrite() error {
	h := c.w
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wclosed {
		return nil
	}
	h.wclosed, h.eof = true, true
	h.kick()
	return nil
}

// Close closes both directions: the peer reads EOF after buffered data,
// and its writes fail.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.CloseWrite()
		h := c.r
		h.mu.Lock()
		h.rclosed = true
		h.data, h.off, h.n = nil, 0, 0
		h.kick()
		h.mu.Unlock()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return nil
}

func (c *Conn) abort() {
	for _, h := range []*half{c.r, c.w} {
		h.mu.Lock()
		h.aborted = true
		h.kick()
		h.mu.Unlock()
	}
	c.Close()
}

func (c *Conn) LocalAddr() net.Addr {
	return Addr{Subprotocol: c.name, ID: c.id, Side: c.side}
}
func (c *Conn) RemoteAddr() net.Addr {
	return Addr{Subprotocol: c.name, ID: c.id, Side: "remote-" + c.side}
}

func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	c.rdl = t
	c.dlMu.Unlock()
	c.r.mu.Lock()
	c.r.kick()
	c.r.mu.Unlock()
	return nil
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlMu.Lock()
	c.wdl = t
	c.dlMu.Unlock()
	c.w.mu.Lock()
	c.w.kick()
	c.w.mu.Unlock()
	return nil
}
