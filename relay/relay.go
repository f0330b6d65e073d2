// Package relay implements the magic-wormhole transit relay server
// ("transit helper"), wire-compatible with the Python reference
// (magic-wormhole-transit-relay).
//
// Protocol (TCP flavour): a client sends one line,
//
//	please relay <64 word chars> for side <16 word chars>\n
//
// or the legacy "please relay <64>\n". A line that matches neither gets
// "bad handshake\n" and a disconnect; a line longer than 1024 bytes gets a
// disconnect. Any byte received after the line but before the relay said
// "ok\n" gets "impatient\n" and a disconnect. Two connections with the same
// token pair up when their sides differ (or either is unsided); the other
// connections still waiting on that token are dropped as redundant. Both
// get "ok\n" and from then on every byte is copied to the partner, with
// back-pressure. When either side closes, both are closed (no half-close).
//
// The WebSocket flavour (ServeHTTP) is the same with binary messages: the
// first message is the handshake line (with or without "\n"), "ok\n" comes
// back as one message, and later messages are relayed. TCP and WebSocket
// clients can be paired with each other.
package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// MaxLineLength is the longest handshake line accepted (Twisted
// LineReceiver.MAX_LENGTH in the reference).
const MaxLineLength = 1024

// Moods of finished connections, as in the reference's usage records.
const (
	MoodHappy      = "happy"     // paired and relayed
	MoodLonely     = "lonely"    // gave up (or timed out) waiting for a partner
	MoodErrory     = "errory"    // bad or over-long handshake line
	MoodEmpty      = "empty"     // closed before sending a handshake line
	MoodImpatient  = "impatient" // sent data before "ok\n"
	MoodRedundant  = "redundant" // spare connection dropped when its token paired
	MoodRejected   = "rejected"  // over the connection limit (not in the reference)
	MoodShutdown   = "shutdown"  // server closed while waiting (not in the reference)
	moodInProgress = ""
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("relay: server closed")

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives debug lines per connection. nil: silent.
	Logger *slog.Logger
	// UsageLog, if set, gets one JSON line per finished connection (one
	// per pair for happy ones), like the reference's --log-fd:
	// {"started":..,"total_time":..,"waiting_time":..,"total_bytes":..,"mood":..}.
	UsageLog io.Writer
	// BlurUsage rounds "started" down to a multiple of it and blurs byte
	// counts as the reference's --blur-usage does. 0: exact.
	BlurUsage time.Duration
	// MaxConns caps concurrent connections (TCP and WebSocket, waiting or
	// paired). Connections over the cap are closed at once. 0 means
	// DefaultMaxConns; negative means unlimited.
	MaxConns int
	// HandshakeTimeout bounds the time until the handshake line is
	// complete. Real clients send it immediately after connecting. 0
	// means DefaultHandshakeTimeout; negative means none (the reference
	// has none).
	HandshakeTimeout time.Duration
	// PairTimeout bounds how long a connection waits for its partner
	// after a valid handshake (mood lonely). 0 (the default) waits
	// forever, like the reference, whose MAX_WAIT_TIME is defined but
	// unused. Why no default limit: clients already give up on their own
	// (Python after 60 s per connection), a Dilation peer may
	// legitimately wait a long time for a partner that is offline (its
	// relay connection is its only way back), and a server-side cut-off
	// would only break that; resource use by idle waiters is bounded by
	// MaxConns, HandshakeTimeout (for those that never finish the line)
	// and TCP keepalive (for dead peers).
	PairTimeout time.Duration
	// BufferSize is the copy buffer per direction (default 64 KiB).
	BufferSize int
	// NotSentLowat is TCP_NOTSENT_LOWAT (Linux) on every accepted TCP
	// connection: the relay hands the kernel at most this many bytes
	// beyond what TCP has already sent to the peer, and waits for the
	// socket to drain below it before splicing more. It does not limit
	// the data in flight (the TCP window), only the relay's queue of
	// unsent bytes per connection, which otherwise grows to the send
	// buffer (net.ipv4.tcp_wmem, up to 4 MiB by default), so a slow
	// receiver pins less kernel memory per connection and back-pressure
	// reaches the sender sooner; TCP then also transmits a relayed chunk
	// while the relay's thread runs rather than later from the ACK
	// processing. The price is more splice calls: about 10 % more relay
	// CPU per byte on an idle loopback benchmark. 0 means
	// DefaultNotSentLowat; negative leaves the system default. See
	// docs/performance.md ("Transit relay") for the measurements.
	NotSentLowat int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxConns         = 10000
	DefaultHandshakeTimeout = 60 * time.Second
	DefaultBufferSize       = 64 << 10
	DefaultNotSentLowat     = 512 << 10
)

// Stats are the server's usage counters.
type Stats struct {
	Accepted  uint64            // connections accepted (TCP + WebSocket)
	Current   int               // connections open now
	Waiting   int               // connections with a token, waiting for a partner
	Pairs     int               // pairs relaying now
	Paired    uint64            // pairs formed since start
	Bytes     uint64            // bytes relayed, both directions, since start
	Moods     map[string]uint64 // finished connections by mood (happy counted per pair)
	Listeners int               // TCP listeners being served
}

// Server is a transit relay. Create it with New; serve TCP with Serve and
// WebSocket through ServeHTTP; stop everything with Close.
type Server struct {
	o   Options
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	pending   map[string][]*conn
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	moods     map[string]uint64
	accepted  uint64
	paired    uint64
	pairs     int
	waiting   int
	bytes     atomic.Uint64

	usageMu sync.Mutex
	wg      sync.WaitGroup
	bufs    sync.Pool
}

// New creates a server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.NotSentLowat == 0 {
		o.NotSentLowat = DefaultNotSentLowat
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		o:         o,
		log:       o.Logger,
		pending:   map[string][]*conn{},
		conns:     map[*conn]struct{}{},
		listeners: map[net.Listener]struct{}{},
		moods:     map[string]uint64{},
	}
	s.bufs.New = func() any { b := make([]byte, o.BufferSize); return &b }
	return s
}

// conn is one client connection (TCP, or WebSocket through NetConn).
type conn struct {
	s       *Server
	nc      net.Conn
	kill    func() // immediate close (CloseNow for WebSocket)
	ws      bool
	started time.Time
	remote  string

	// Guarded by s.mu.
	token    string
	side     string // "" = legacy, unsided
	waitedAt time.Time
	state    connState
	buddy    *conn
	mood     string
	recorded bool // usage already recorded (by the partner, for a pair)

	sentA     atomic.Uint64
	closeOnce sync.Once
}

type connState int

const (
	stateHandshake connState = iota
	stateWaiting
	statePaired
	stateDone
)

// Serve accepts TCP connections on l until l fails or the server is
// closed (then it returns ErrServerClosed). It closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	if l == nil {
		return errors.New("relay: Serve: nil listener")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
		s.wg.Done()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// e.g. EMFILE: back off like net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("relay: accept error", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("relay: accept: %w", err)
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetKeepAlive(true)
			if s.o.NotSentLowat > 0 {
				if err := setNotSentLowat(tc, s.o.NotSentLowat); err != nil {
					s.log.Debug("relay: TCP_NOTSENT_LOWAT", "err", err)
				}
			}
		}
		c := s.newConn(nc, func() { nc.Close() }, false)
		if c == nil {
			nc.Close()
			continue
		}
		go c.run(nil)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// newConn registers a connection, or returns nil when the server is
// closed or full (the caller then closes it). The caller must run c.run.
func (s *Server) newConn(nc net.Conn, kill func(), ws bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.accepted++
	if s.o.MaxConns > 0 && len(s.conns) >= s.o.MaxConns {
		s.moods[MoodRejected]++
		s.log.Debug("relay: connection limit reached", "remote", nc.RemoteAddr().String())
		return nil
	}
	c := &conn{s: s, nc: nc, kill: kill, ws: ws, started: s.o.Now(), remote: nc.RemoteAddr().String()}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c
}

// WebSocketHandler returns the server as an http.Handler for the WebSocket
// flavour (the same as using the Server itself).
func (s *Server) WebSocketHandler() http.Handler { return s }

// ServeHTTP accepts a WebSocket connection for the WebSocket flavour of the
// relay protocol. Mount it on any path, e.g. http.Handle("/", srv).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.isClosed() {
		http.Error(w, "relay closed", http.StatusServiceUnavailable)
		return
	}
	wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("relay: websocket accept failed", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc := websocket.NetConn(ctx, wc, websocket.MessageBinary)
	// Closing sends close code 1000 and waits (boundedly, inside the
	// websocket package) for the peer's answer, so do it in the
	// background; the connection's WaitGroup count is still held by
	// whoever calls kill, so the Add is safe against Close's Wait.
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				wc.Close(websocket.StatusNormalClosure, "")
				wc.CloseNow()
			}()
		})
	}
	c := s.newConn(wsAddrConn{nc, r.RemoteAddr}, kill, true)
	if c == nil {
		wc.Close(websocket.StatusTryAgainLater, "relay busy")
		return
	}
	// The handshake is the first message, read whole.
	hs := func() ([]byte, error) {
		wc.SetReadLimit(MaxLineLength + 1)
		hctx := ctx
		if s.o.HandshakeTimeout > 0 {
			var hcancel context.CancelFunc
			hctx, hcancel = context.WithTimeout(ctx, s.o.HandshakeTimeout)
			defer hcancel()
		}
		typ, msg, err := wc.Read(hctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			return nil, errTextMessage
		}
		wc.SetReadLimit(-1)
		// Python's "$" also matches before one trailing newline.
		return bytes.TrimSuffix(msg, []byte("\n")), nil
	}
	c.run(hs) // the handler goroutine runs the connection
}

var errTextMessage = errors.New("relay: text message on websocket")

type wsAddrConn struct {
	net.Conn
	remote string
}

type strAddr string

func (a strAddr) Network() string { return "websocket" }
func (a strAddr) String() string  { return string(a) }

func (w wsAddrConn) RemoteAddr() net.Addr { return strAddr(w.remote) }

var (
	errLineTooLong = errors.New("handshake line too long")
	errBadHS       = errors.New("bad handshake")
)

// readLine reads the handshake line byte-exactly through br (whatever br
// buffers beyond the line is handled as "impatient" data).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			line = line[:len(line)-1]
			if len(line) > MaxLineLength {
				return nil, errLineTooLong
			}
			return line, nil
		}
		if len(line) > MaxLineLength {
			return nil, errLineTooLong
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
}

// ParseHandshake parses a handshake line (without its "\n") as the
// reference does: "please relay TOKEN" or "please relay TOKEN for side
// SIDE", TOKEN 64 and SIDE 16 word characters ([A-Za-z0-9_]). side is ""
// for the legacy form.
func ParseHandshake(line []byte) (token, side string, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("please relay "))
	if !found || len(rest) < 64 || !allWord(rest[:64]) {
		return "", "", false
	}
	token, rest = string(rest[:64]), rest[64:]
	if len(rest) == 0 {
		return token, "", true
	}
	rest, found = bytes.CutPrefix(rest, []byte(" for side "))
	if !found || len(rest) != 16 || !allWord(rest) {
		return "", "", false
	}
	return token, string(rest), true
}

func allWord(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// run drives one connection to its end. readHS, if set, returns the
// handshake line (WebSocket); otherwise it is read from the byte stream.
func (c *conn) run(readHS func() ([]byte, error)) {
	s := c.s
	defer s.wg.Done()
	defer c.finish()

	var pending []byte // bytes read past the handshake line
	var line []byte
	var err error
	if readHS != nil {
		line, err = readHS()
	} else {
		if s.o.HandshakeTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(s.o.HandshakeTimeout))
		}
		br := bufio.NewReaderSize(c.nc, 256)
		line, err = readLine(br)
		pending = bufferedOf(br)
		// br is dropped here: from now on c.nc is read directly, so the
		// paired path below can splice between the raw sockets.
	}
	if err != nil {
		switch {
		case errors.Is(err, errLineTooLong), errors.Is(err, errTextMessage), errors.Is(err, websocket.CloseError{Code: websocket.StatusMessageTooBig}):
			c.setMood(MoodErrory)
			s.log.Debug("relay: bad handshake line", "remote", c.remote, "err", err)
		default:
			c.setMood(MoodEmpty)
		}
		return
	}
	token, side, ok := ParseHandshake(line)
	if !ok {
		c.setMood(MoodErrory)
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.nc.Write([]byte("bad handshake\n"))
		s.log.Debug("relay: bad handshake", "remote", c.remote)
		return
	}
	if readHS == nil {
		c.nc.SetReadDeadline(time.Time{})
	}
	if !s.register(c, token, side) {
		return // shut down
	}
	var pairTimer *time.Timer
	if s.o.PairTimeout > 0 {
		pairTimer = time.AfterFunc(s.o.PairTimeout, func() {
			if s.dropIfWaiting(c, MoodLonely) {
				s.log.Debug("relay: pairing timeout", "remote", c.remote)
			}
		})
	}
	defer func() {
		if pairTimer != nil {
			pairTimer.Stop()
		}
	}()
	// While waiting, a small buffer: any byte then is "impatient", and
	// thousands of waiters must not pin a copy buffer each.
	if len(pending) == 0 {
		buf := make([]byte, 512)
		n, rerr := c.nc.Read(buf)
		pending = buf[:n]
		if n == 0 && rerr != nil {
			return
		}
	}
	buddy := c.partner()
	if buddy == nil {
		// Data before "ok\n".
		c.setMoodIf(MoodImpatient)
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.nc.Write([]byte("impatient\n"))
		s.log.Debug("relay: impatient client", "remote", c.remote)
		return
	}
	// Paired: the buddy never changes again, so no lock per read.
	if pairTimer != nil {
		pairTimer.Stop()
	}
	if _, werr := buddy.nc.Write(pending); werr != nil {
		return
	}
	c.count(len(pending))
	c.pump(buddy)
}

// count adds n relayed bytes to the connection's and the server's totals.
func (c *conn) count(n int) {
	c.sentA.Add(uint64(n))
	c.s.bytes.Add(uint64(n))
}

// pump copies c's incoming bytes to buddy until either side fails. Between
// two plain TCP connections this is (*net.TCPConn).ReadFrom with the raw
// source socket, which uses splice(2) on Linux: the bytes go socket to
// pipe to socket inside the kernel. Otherwise (WebSocket) it copies
// through a pooled buffer.
func (c *conn) pump(buddy *conn) {
	if dst, ok := buddy.nc.(*net.TCPConn); ok {
		if src, ok := c.nc.(*net.TCPConn); ok {
			// src must be the unwrapped *net.TCPConn for splice.
			n, _ := dst.ReadFrom(src)
			c.count(int(n))
			return
		}
	}
	bp := c.s.bufs.Get().(*[]byte)
	defer c.s.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := c.nc.Read(buf)
		if n > 0 {
			if _, werr := buddy.nc.Write(buf[:n]); werr != nil {
				return
			}
			c.count(n)
		}
		if rerr != nil {
			return
		}
	}
}

func bufferedOf(br *bufio.Reader) []byte {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	return bytes.Clone(b)
}

func (c *conn) setMood(m string) {
	c.s.mu.Lock()
	c.mood = m
	c.s.mu.Unlock()
}

// setMoodIf sets the mood only while the connection is still waiting.
func (c *conn) setMoodIf(m string) {
	c.s.mu.Lock()
	if c.state == stateWaiting {
		c.mood = m
	}
	c.s.mu.Unlock()
}

// partner returns the buddy once "ok\n" has been sent, else nil.
func (c *conn) partner() *conn {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.state == statePaired {
		return c.buddy
	}
	return nil
}

// register records a token and pairs the connection if a partner waits.
func (s *Server) register(c *conn, token, side string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	c.token, c.side = token, side
	c.waitedAt = s.o.Now()
	waiters := s.pending[token]
	for i, old := range waiters {
		if old.side != "" && side != "" && old.side == side {
			continue
		}
		// Match. Every other waiter on this token is redundant.
		for j, w := range waiters {
			if j == i {
				continue
			}
			w.state = stateDone
			w.mood = MoodRedundant
			s.waiting--
			w.kill()
		}
		delete(s.pending, token)
		s.waiting--
		// "ok\n" to both before either may relay.
		for _, x := range []*conn{old, c} {
			x.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			x.nc.Write([]byte("ok\n"))
			x.nc.SetWriteDeadline(time.Time{})
		}
		old.buddy, c.buddy = c, old
		old.state, c.state = statePaired, statePaired
		old.mood, c.mood = MoodHappy, MoodHappy
		s.paired++
		s.pairs++
		s.log.Debug("relay: paired", "token", token[:16], "a", old.remote, "b", c.remote)
		return true
	}
	c.state = stateWaiting
	c.mood = MoodLonely
	s.pending[token] = append(waiters, c)
	s.waiting++
	s.log.Debug("relay: waiting", "token", token[:16], "side", side, "remote", c.remote)
	return true
}

// dropIfWaiting closes c with mood if it is still waiting for a partner.
func (s *Server) dropIfWaiting(c *conn, mood string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state != stateWaiting {
		return false
	}
	s.unpendLocked(c)
	c.mood = mood
	c.state = stateDone
	c.kill()
	return true
}

func (s *Server) unpendLocked(c *conn) {
	ws := s.pending[c.token]
	for i, w := range ws {
		if w == c {
			ws = append(ws[:i:i], ws[i+1:]...)
			s.waiting--
			break
		}
	}
	if len(ws) == 0 {
		delete(s.pending, c.token)
	} else {
		s.pending[c.token] = ws
	}
}

// finish closes the connection (and its partner) and records usage: one
// record per unpaired connection, one per pair (written by whichever side
// finishes first, like the reference, where the "jilted" side records
// nothing).
func (c *conn) finish() {
	s := c.s
	c.kill()
	s.mu.Lock()
	end := s.o.Now()
	var rec *usageRecord
	switch {
	case c.recorded:
	case c.state == statePaired:
		b := c.buddy
		b.kill() // no half-close
		s.pairs--
		b.recorded = true
		start, other := c.started, b.started
		if other.Before(start) {
			start, other = other, start
		}
		wait := c.waitedAt.Sub(b.waitedAt)
		if wait < 0 {
			wait = -wait
		}
		rec = &usageRecord{started: start, total: end.Sub(start), waiting: &wait,
			bytes: c.sentA.Load() + b.sentA.Load(), mood: MoodHappy}
	default:
		if c.state == stateWaiting {
			s.unpendLocked(c)
		}
		mood := c.mood
		if mood == moodInProgress {
			mood = MoodEmpty
		}
		rec = &usageRecord{started: c.started, total: end.Sub(c.started), mood: mood}
	}
	c.state = stateDone
	c.recorded = true
	if rec != nil {
		s.moods[rec.mood]++
	}
	delete(s.conns, c)
	s.mu.Unlock()
	if rec != nil {
		s.writeUsage(rec)
	}
	s.log.Debug("relay: connection finished", "remote", c.remote, "mood", c.mood)
}

type usageRecord struct {
	started time.Time
	total   time.Duration
	waiting *time.Duration
	bytes   uint64
	mood    string
}

func blurSize(n uint64) uint64 {
	roundTo := func(size, c uint64) uint64 { return c * (1 + (size-1)/c) }
	switch {
	case n == 0:
		return 0
	case n < 1e6:
		return roundTo(n, 10e3)
	case n < 1e9:
		return roundTo(n, 1e6)
	}
	return roundTo(n, 100e6)
}

func (s *Server) writeUsage(r *usageRecord) {
	if s.o.UsageLog == nil {
		return
	}
	started := float64(r.started.UnixNano()) / 1e9
	bytesN := r.bytes
	if b := s.o.BlurUsage.Seconds(); b > 0 {
		started = b * math.Floor(started/b)
		bytesN = blurSize(bytesN)
	}
	var waiting any
	if r.waiting != nil {
		waiting = r.waiting.Seconds()
	}
	line, _ := json.Marshal(map[string]any{
		"started":      started,
		"total_time":   r.total.Seconds(),
		"waiting_time": waiting,
		"total_bytes":  bytesN,
		"mood":         r.mood,
	})
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	s.o.UsageLog.Write(append(line, '\n'))
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]uint64, len(s.moods))
	for k, v := range s.moods {
		m[k] = v
	}
	return Stats{
		Accepted:  s.accepted,
		Current:   len(s.conns),
		Waiting:   s.waiting,
		Pairs:     s.pairs,
		Paired:    s.paired,
		Bytes:     s.bytes.Load(),
		Moods:     m,
		Listeners: len(s.listeners),
	}
}

// Close stops every listener given to Serve, closes every connection and
// waits until all of the server's goroutines have ended. WebSocket
// connections are closed too; the http.Server that carries them is the
// caller's to shut down.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for l := range s.listeners {
			l.Close()
		}
		for c := range s.conns {
			if c.state == stateWaiting {
				c.mood = MoodShutdown
			}
			c.kill()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
