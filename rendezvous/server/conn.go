package server

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous"
)

// conn is one WebSocket client. Protocol state fields are guarded by
// Server.mu; the outgoing queue by qmu.
//
// An idle connection is one goroutine blocked reading a frame header
// into hdr (no buffer), plus an optional keepalive timer: frames to send
// are queued and written by a goroutine started only while the queue is
// non-empty.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	wr     wsReader
	rw     *readWaiter // nil if nc is not a socket

	pingTimer   *time.Timer
	pingPending atomic.Bool // a ping is out and the read deadline armed

	qmu       sync.Mutex
	queue     [][]byte // encoded frames
	qbytes    int64
	writing   bool // a writer goroutine (or the reader's flushNow) is writing
	deferring bool // the reader will flush after its current frames: start no writer

	// notify lists other connections that handling the current frame
	// queued messages for (without starting their writers); the reader
	// writes them after the frame (reader goroutine only).
	notify      []*conn
	finishing   bool // the reader ended: no new writers
	killed      bool
	holding     bool     // handleFrame runs: frames go to held (qmu)
	held        [][]byte // this frame's replies, queued once it is handled
	writers     sync.WaitGroup
	closeCode   int
	closeReason string

	// protocol state (Server.mu)
	permitted    bool
	bound        bool
	app, side    string
	didAllocate  bool
	didClaim     bool
	didRelease   bool
	didClose     bool
	hasNameplate bool
	nameplate    string
	hasMailboxID bool
	mailboxID    string
	hasMbox      bool // the reference's self._mailbox is set
	mbox         string
	listening    bool
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closing", http.StatusServiceUnavailable)
		return
	}
	if s.opts.MaxConnections > 0 && len(s.conns) >= s.opts.MaxConnections {
		s.mu.Unlock()
		s.log.Warn("connection refused: limit reached", "limit", s.opts.MaxConnections)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	// The reader sends the welcome with its first flushNow.
	c := &conn{s: s, remote: r.RemoteAddr, deferring: true}
	if s.opts.Hashcash == nil {
		c.permitted = true
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	nc, rest, resp, err := upgrade(w, r)
	if err != nil {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
		s.log.Debug("websocket accept failed", "err", err)
		return
	}
	c.qmu.Lock()
	c.nc = nc
	// The 101 response goes out with the welcome, in one write.
	c.queue = append(c.queue, resp)
	c.qbytes += int64(len(resp))
	killed := c.killed
	c.qmu.Unlock()
	if killed { // Close ran during the handshake
		nc.Close()
	}
	c.wr = wsReader{r: nc, pre: rest, limit: s.opts.MaxMessageSize, onControl: c.control}
	c.rw = newReadWaiter(nc, &s.readBufs)
	s.log.Debug("client connected", "remote", r.RemoteAddr)
	c.sendFields("welcome", field{"welcome", s.welcomeValue(r)})
	if s.opts.PingInterval > 0 {
		c.pingTimer = time.AfterFunc(s.opts.PingInterval, c.ping)
	}
	// The connection gets its own goroutine so that this handler's
	// (deeper, grown) stack and net/http's per-request state go away.
	go c.run()
}

// run reads client messages until the connection ends, then flushes the
// queue, closes the WebSocket and deregisters.
func (c *conn) run() {
	s := c.s
	defer s.wg.Done()
	c.reader()
	s.mu.Lock()
	delete(s.conns, c)
	if c.hasMbox && c.listening {
		s.removeListener(c)
	}
	s.mu.Unlock()
	c.finish()
	s.log.Debug("client disconnected", "remote", c.remote)
}

// reader reads messages until the connection ends or a fatal error.
func (c *conn) reader() {
	for {
		if !c.wr.hasFrame() {
			// Everything received is handled: write the replies (one
			// write for all of them), then wait for more.
			c.flushNow()
			if len(c.wr.pre) == 0 {
				// Idle here, on a shallow stack and without a buffer;
				// then one read takes what the socket holds, so that
				// the frames in it are parsed without more system calls.
				c.wr.pre, c.wr.err = c.rw.read()
			}
		}
		op, payload, err := c.wr.readMessage()
		c.alive()
		if err == nil && op >= opClose {
			continue // ping or pong, already answered
		}
		if err != nil {
			var we *WebSocketError
			switch {
			case errors.Is(err, errPeerClosed):
				code := c.wr.closeCode
				if code == closeNoStatus {
					code = closeNormal
				}
				c.closeWith(code, "")
			case errors.As(err, &we):
				c.closeWith(we.Code, we.Reason)
			}
			c.s.log.Debug("read ended", "err", err)
			return
		}
		c.qmu.Lock()
		c.deferring = true
		c.qmu.Unlock()
		fatal := c.handleFrame(payload)
		for i, l := range c.notify {
			l.tryFlush()
			c.notify[i] = nil
		}
		c.notify = c.notify[:0]
		if fatal != nil {
			return
		}
	}
}

// flushNow ends the reader's deferral and writes the queue from the
// reader's goroutine without blocking: the replies to a client's frames
// go out in one write after they are all handled, and no writer goroutine
// is started unless the socket is full (then a writer takes the rest).
func (c *conn) flushNow() {
	c.qmu.Lock()
	c.deferring = false
	c.writeQueued()
}

// tryFlush writes c's queue without blocking, from another connection's
// reader, unless c's reader is handling frames (it flushes after them) or
// a writer runs.
func (c *conn) tryFlush() {
	c.qmu.Lock()
	if c.deferring {
		c.qmu.Unlock()
		return
	}
	c.writeQueued()
}

// writeQueued is flushNow's and tryFlush's common part; called with qmu
// held, it unlocks it.
func (c *conn) writeQueued() {
	if c.writing || c.finishing || c.killed || len(c.queue) == 0 {
		c.qmu.Unlock()
		return
	}
	if c.rw == nil { // not a socket: the writer goroutine does it
		c.writing = true
		c.writers.Add(1)
		c.qmu.Unlock()
		go c.writer()
		return
	}
	q := c.queue
	c.queue = nil
	c.qbytes = 0
	c.writing = true
	// Counted like a writer goroutine: finish (on c's own goroutine)
	// waits for this write before it writes itself.
	c.writers.Add(1)
	c.qmu.Unlock()

	buf := q[0]
	var bp *[]byte
	if len(q) > 1 {
		bp = c.s.writeBufs.Get().(*[]byte)
		buf = (*bp)[:0]
		for _, f := range q {
			buf = append(buf, f...)
		}
	}
	n, err := c.rw.tryWrite(buf)
	var rest []byte
	if err == nil && n < len(buf) {
		rest = append([]byte(nil), buf[n:]...)
	}
	if bp != nil {
		if cap(buf) <= 64<<10 {
			*bp = buf[:0]
		}
		c.s.writeBufs.Put(bp)
	}
	if err != nil {
		c.s.log.Debug("write failed", "err", err)
		c.kill()
	}
	c.qmu.Lock()
	if rest != nil {
		c.queue = append([][]byte{rest}, c.queue...)
		c.qbytes += int64(len(rest))
	}
	if len(c.queue) > 0 && !c.killed && !c.finishing {
		// writing and the writers count stay: the writer owns them now
		c.qmu.Unlock()
		go c.writer()
		return
	}
	c.writing = false
	c.qmu.Unlock()
	c.writers.Done()
}

// alive disarms the keepalive read deadline: a frame arrived.
func (c *conn) alive() {
	if c.pingPending.CompareAndSwap(true, false) {
		c.nc.SetReadDeadline(time.Time{})
	}
}

// control answers pings and notes pongs (called by the reader, also for
// control frames inside a fragmented message).
func (c *conn) control(op byte, payload []byte) {
	c.alive()
	if op == opPing {
		c.enqueue(appendFrame(nil, opPong, payload), true)
	}
}

// ping sends a keepalive ping and arms the read deadline: a peer that
// sends nothing (not even the pong) within PingTimeout is dropped.
func (c *conn) ping() {
	c.qmu.Lock()
	done := c.finishing || c.killed
	c.qmu.Unlock()
	if done {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.PingTimeout))
	c.pingPending.Store(true)
	c.enqueue(appendFrame(nil, opPing, nil), true)
	c.qmu.Lock()
	if !c.finishing { // finish stops the timer after setting finishing
		c.pingTimer.Reset(c.s.opts.PingInterval)
	}
	c.qmu.Unlock()
}

// kill drops the connection at once (server Close, overflow, dead peer).
func (c *conn) kill() {
	c.qmu.Lock()
	c.killed = true
	nc := c.nc
	c.qmu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// closeWith sets the close frame sent once the queue is flushed.
func (c *conn) closeWith(code int, reason string) {
	c.qmu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
	c.qmu.Unlock()
}

// send queues one server message. It never blocks; a connection whose
// queue exceeds MaxQueueBytes is dropped.
func (c *conn) send(typ string, fields map[string]any) {
	if fields == nil {
		fields = make(map[string]any, 2)
	}
	fields["type"] = typ
	fields["server_tx"] = c.s.nowF()
	b, err := json.Marshal(fields)
	if err != nil {
		c.s.log.Error("marshal server message", "type", typ, "err", err)
		return
	}
	c.enqueue(appendFrame(make([]byte, 0, len(b)+10), opText, b), false)
}

// enqueue adds an encoded frame to the queue and starts a writer if none
// runs. Control frames are not counted against MaxQueueBytes.
func (c *conn) enqueue(frame []byte, control bool) { c.enqueueFrame(frame, control, false) }

// enqueueFrame is enqueue; with later it starts no writer (the caller
// calls tryFlush).
func (c *conn) enqueueFrame(frame []byte, control, later bool) {
	c.qmu.Lock()
	if c.killed {
		c.qmu.Unlock()
		return
	}
	if c.holding && !control {
		c.held = append(c.held, frame)
		c.qmu.Unlock()
		return
	}
	if !control && c.qbytes+int64(len(frame)) > c.s.opts.MaxQueueBytes {
		c.qmu.Unlock()
		c.s.log.Warn("dropping client that does not read", "queued", c.qbytes)
		c.kill()
		return
	}
	c.queue = append(c.queue, frame)
	c.qbytes += int64(len(frame))
	start := !c.writing && !c.finishing && !c.deferring && !later
	if start {
		c.writing = true
		c.writers.Add(1)
	}
	c.qmu.Unlock()
	if start {
		go c.writer()
	}
}

// take removes every queued frame.
func (c *conn) take() net.Buffers {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	q := c.queue
	c.queue = nil
	c.qbytes = 0
	return q
}

// flush writes every queued frame; it returns when the queue is empty.
func (c *conn) flush() error {
	for {
		q := c.take()
		if len(q) == 0 {
			return nil
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		if _, err := q.WriteTo(c.nc); err != nil {
			return err
		}
	}
}

// writer drains the queue and exits when it is empty.
func (c *conn) writer() {
	defer c.writers.Done()
	for {
		if err := c.flush(); err != nil {
			c.s.log.Debug("write failed", "err", err)
			c.kill()
		}
		c.qmu.Lock()
		if len(c.queue) == 0 || c.killed {
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
	}
}

// closeLinger bounds how long the server waits for the client's answer to
// its close frame.
const closeLinger = 2 * time.Second

// finish flushes what is queued, sends the close frame (if any) and closes
// the TCP connection. Called once, by run, after the reader ended.
func (c *conn) finish() {
	c.qmu.Lock()
	c.finishing = true
	c.qmu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop() // ping re-arms it only while !finishing
	}
	c.writers.Wait()
	err := c.flush()
	c.qmu.Lock()
	code, reason, killed := c.closeCode, c.closeReason, c.killed
	c.qmu.Unlock()
	if err == nil && !killed && code != 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		_, err = c.nc.Write(appendFrame(nil, opClose, closePayload(code, reason)))
		if err == nil && c.wr.closeCode == 0 {
			// We started the close: let the client read it and answer
			// rather than reset the connection under it.
			if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now().Add(closeLinger))
			io.CopyN(io.Discard, c.nc, 1<<20)
		}
	}
	c.nc.Close()
}

// welcomeValue is the JSON of the welcome message's "welcome" value:
// the server's fixed fields (encoded once in New) plus your-address, as
// json.Marshal encoded the map (TestWelcomeEncoding).
func (s *Server) welcomeValue(r *http.Request) []byte {
	ip, port, ok := s.peerAddress(r)
	if !ok {
		return s.welcomeJSON
	}
	b := make([]byte, 0, len(s.welcomeJSON)+80)
	if len(s.welcomeJSON) > 2 { // every fixed key sorts before your-address
		b = append(b, s.welcomeJSON[:len(s.welcomeJSON)-1]...)
		b = append(b, ',')
	} else {
		b = append(b, '{')
	}
	b = append(b, `"your-address":{"`...)
	if ip4 := ip.To4(); ip4 != nil {
		b = append(b, `ipv4":"`...)
		b = append(b, ip4.String()...)
	} else {
		b = append(b, `ipv6":"`...)
		b = append(b, ip.String()...)
	}
	b = append(b, `","port":`...)
	b = strconv.AppendInt(b, int64(port), 10)
	return append(b, "}}"...)
}

// peerAddress is welcome's your-address: the peer address (or the proxy
// headers when trusted).
func (s *Server) peerAddress(r *http.Request) (net.IP, int, bool) {
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if s.opts.TrustProxyHeaders {
		if h := r.Header.Get("X-Real-IP"); h != "" {
			host, err = h, nil
			if p := r.Header.Get("X-Real-Port"); p != "" {
				port = p
			}
		}
	}
	if err != nil {
		return nil, 0, false
	}
	ip := net.ParseIP(host)
	p, perr := strconv.Atoi(port)
	if ip == nil || perr != nil {
		return nil, 0, false
	}
	return ip, p, true
}

func (s *Server) addListener(c *conn) {
	k := mailboxKey{c.app, c.mbox}
	ls := s.listeners[k]
	if ls == nil {
		ls = make(map[*conn]struct{})
		s.listeners[k] = ls
	}
	ls[c] = struct{}{}
}

func (s *Server) removeListener(c *conn) {
	k := mailboxKey{c.app, c.mbox}
	if ls := s.listeners[k]; ls != nil {
		delete(ls, c)
		if len(ls) == 0 {
			delete(s.listeners, k)
		}
	}
}

// errFatal marks a frame after which the connection is closed.
var errFatal = errors.New("fatal client error")

// handleFrame processes one client frame.
//
// The replies it causes for this connection are held until the frame is
// handled, so that none (not even the ack, which comes first) can reach
// the client before the store transaction committed: an acked add is in
// the store.
func (c *conn) handleFrame(payload []byte) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c.qmu.Lock()
	c.holding = true
	c.qmu.Unlock()
	defer c.release()
	rx := s.nowF()
	m, err := decodeClientMessage(payload)
	if err != nil {
		c.send("error", map[string]any{"error": err.Error(), "orig": nil})
		c.closeWith(closeInvalidPayload, "malformed message")
		return errFatal
	}
	typ, ok := m.typ()
	if !ok {
		c.sendError("missing 'type'", m)
		return nil
	}
	c.sendAck(m.raw("id"))
	perr, fatal := c.dispatch(typ, m, rx)
	if perr != "" {
		c.sendError(perr, m)
	}
	if fatal != nil {
		if errors.Is(fatal, errPermission) {
			c.closeWith(closePolicyViolation, "permission denied")
		} else {
			s.log.Error("store failure", "err", fatal)
			c.closeWith(closeInternalError, "server error")
		}
		return fatal
	}
	return nil
}

// release queues the frames held while a frame was handled.
func (c *conn) release() {
	c.qmu.Lock()
	held := c.held
	c.held, c.holding = nil, false
	c.qmu.Unlock()
	for _, f := range held {
		c.enqueue(f, false)
	}
}

func (c *conn) sendError(e string, m *clientMessage) {
	c.send("error", map[string]any{"error": e, "orig": m.orig})
}

var errPermission = errors.New("permission denied")

// dispatch runs one command with Server.mu held. perr is an error string
// for the client; fatal closes the connection.
func (c *conn) dispatch(typ string, m *clientMessage, rx float64) (perr string, fatal error) {
	s := c.s
	switch typ {
	case "ping":
		if !m.has("ping") {
			return "ping requires 'ping'", nil
		}
		var b [64]byte
		c.sendFields("pong", field{"pong", appendRaw(b[:0], m.raw("ping"))})
		return "", nil
	case "bind":
		return c.handleBind(m, rx)
	case "submit-permissions", "submit-permission":
		if s.opts.Hashcash != nil && !c.bound {
			return c.handlePermission(m)
		}
	}
	if !c.bound {
		return "must bind first", nil
	}
	var err error
	switch typ {
	case "list":
		err = s.update(c.s.ctx, func(tx Tx) error {
			names := []string{}
			if !s.opts.DisallowList {
				n, err := tx.NameplateNames(c.app)
				if err != nil {
					return err
				}
				names = append(names, n...)
			}
			nps := make([]map[string]string, len(names))
			for i, n := range names {
				nps[i] = map[string]string{"id": n}
			}
			c.send("nameplates", map[string]any{"nameplates": nps})
			return nil
		})
	case "allocate":
		if c.didAllocate {
			return "you already allocated one, don't be greedy", nil
		}
		err = s.update(c.s.ctx, func(tx Tx) error {
			name, err := findAvailableNameplate(tx, c.app)
			if errors.Is(err, errNoNameplate) {
				perr = err.Error()
				return nil
			}
			if err != nil {
				return err
			}
			_, perr, err = s.claimNameplate(tx, c.app, name, c.side, rx)
			if err != nil || perr != "" {
				return err
			}
			c.didAllocate = true
			c.sendString("allocated", "nameplate", name)
			return nil
		})
	case "claim":
		if !m.has("nameplate") {
			return "claim requires 'nameplate'", nil
		}
		if c.didClaim {
			return "only one claim per connection", nil
		}
		name, _, terr := m.str("nameplate")
		if terr != nil {
			return terr.Error(), nil
		}
		c.didClaim = true
		c.hasNameplate, c.nameplate = true, name
		err = s.update(c.s.ctx, func(tx Tx) error {
			var mb string
			var err error
			mb, perr, err = s.claimNameplate(tx, c.app, name, c.side, rx)
			if err != nil || perr != "" {
				return err
			}
			c.sendString("claimed", "mailbox", mb)
			return nil
		})
	case "release":
		if c.didRelease {
			return "only one release per connection", nil
		}
		name, present, terr := m.str("nameplate")
		if present {
			if c.hasNameplate && (terr != nil || name != c.nameplate) {
				return "release and claim must use same nameplate", nil
			}
			if terr != nil {
				return terr.Error(), nil
			}
		} else {
			if !c.hasNameplate {
				return "release without nameplate must follow claim", nil
			}
			name = c.nameplate
		}
		c.didRelease = true
		err = s.update(c.s.ctx, func(tx Tx) error {
			if err := s.releaseNameplate(tx, c.app, name, c.side, rx); err != nil {
				return err
			}
			c.sendFields("released")
			return nil
		})
	case "open":
		if c.hasMbox {
			return "only one open per connection", nil
		}
		if !m.has("mailbox") {
			return "open requires 'mailbox'", nil
		}
		id, _, terr := m.str("mailbox")
		if terr != nil {
			return terr.Error(), nil
		}
		c.hasMailboxID, c.mailboxID = true, id
		err = s.update(c.s.ctx, func(tx Tx) error {
			var err error
			perr, err = s.openMailbox(tx, c.app, id, c.side, rx)
			if err != nil || perr != "" {
				return err
			}
			msgs, err := tx.Messages(c.app, id)
			if err != nil {
				return err
			}
			c.hasMbox, c.mbox, c.listening = true, id, true
			s.addListener(c)
			for i := range msgs {
				c.sendMessage(&msgs[i], false)
			}
			return nil
		})
	case "add":
		if !c.hasMbox {
			return "must open mailbox before adding", nil
		}
		if !m.has("phase") {
			return "missing 'phase'", nil
		}
		if !m.has("body") {
			return "missing 'body'", nil
		}
		phase, _, terr := m.str("phase")
		if terr != nil {
			return terr.Error(), nil
		}
		body, _, terr := m.str("body")
		if terr != nil {
			return terr.Error(), nil
		}
		sm := Message{Side: c.side, Phase: phase, Body: body, ServerRx: rx, ID: m.raw("id")}
		err = s.update(c.s.ctx, func(tx Tx) error {
			n, size, err := tx.MessageStats(c.app, c.mbox)
			if err != nil {
				return err
			}
			if n >= s.opts.MaxMailboxMessages || size+int64(len(body)) > s.opts.MaxMailboxBytes {
				perr = "mailbox full"
				return nil
			}
			if err := tx.AddMessage(c.app, c.mbox, sm); err != nil {
				return err
			}
			return tx.TouchMailbox(c.mbox, rx)
		})
		if err == nil && perr == "" {
			for l := range s.listeners[mailboxKey{c.app, c.mbox}] {
				if l == c {
					l.sendMessage(&sm, false)
				} else {
					// written by this reader after the frame, without
					// starting a goroutine for it
					l.sendMessage(&sm, true)
					c.notify = append(c.notify, l)
				}
			}
		}
	case "close":
		if c.didClose {
			return "only one close per connection", nil
		}
		var id string
		if id0, present, terr := m.str("mailbox"); present {
			if c.hasMailboxID && (terr != nil || id0 != c.mailboxID) {
				return "open and close must use same mailbox", nil
			}
			if terr != nil {
				return terr.Error(), nil
			}
			id = id0
		} else {
			if !c.hasMailboxID {
				return "close without mailbox must follow open", nil
			}
			id = c.mailboxID
		}
		mood, _, terr := m.optStr("mood")
		if terr != nil {
			return terr.Error(), nil
		}
		err = s.update(c.s.ctx, func(tx Tx) error {
			if !c.hasMbox {
				var err error
				perr, err = s.openMailbox(tx, c.app, id, c.side, rx)
				if err != nil || perr != "" {
					return err
				}
				c.hasMbox, c.mbox = true, id
			}
			if c.listening {
				s.removeListener(c)
				c.listening = false
			}
			c.didClose = true
			if err := s.closeMailbox(tx, c.app, c.mbox, c.side, mood, rx); err != nil {
				return err
			}
			c.hasMbox = false
			c.sendFields("closed")
			return nil
		})
	default:
		return "unknown type", nil
	}
	if err != nil {
		return "server error", err
	}
	return perr, nil
}

func (c *conn) handleBind(m *clientMessage, rx float64) (string, error) {
	s := c.s
	if c.bound {
		return "already bound", nil
	}
	if !m.has("appid") {
		return "bind requires 'appid'", nil
	}
	if !m.has("side") {
		return "bind requires 'side'", nil
	}
	app, _, err := m.str("appid")
	if err != nil {
		return err.Error(), nil
	}
	side, _, err := m.str("side")
	if err != nil {
		return err.Error(), nil
	}
	if !c.permitted {
		return "permission required", errPermission
	}
	c.bound, c.app, c.side = true, app, side
	impl, ver := m.clientVersion()
	// Recorded with the next store transaction (a statistic: not worth
	// a transaction of its own).
	s.pendingVersions = append(s.pendingVersions, ClientVersion{App: app, Side: side, ConnectTime: s.blur(rx), Implementation: impl, Version: ver})
	if len(s.pendingVersions) >= maxPendingVersions {
		if err := s.update(c.s.ctx, func(Tx) error { return nil }); err != nil {
			return "server error", err
		}
	}
	return "", nil
}

func (c *conn) handlePermission(m *clientMessage) (string, error) {
	h := c.s.opts.Hashcash
	method, _, _ := m.str("method")
	stamp, _, _ := m.str("stamp")
	if method != "hashcash" {
		return "permission denied: unsupported method", errPermission
	}
	now := c.s.now()
	if err := rendezvous.VerifyHashcash(stamp, h.Bits, h.Resource, now); err != nil {
		return "permission denied: " + err.Error(), errPermission
	}
	if c.s.spendStamp(stamp, now) {
		return "permission denied: stamp already used", errPermission
	}
	c.permitted = true
	return "", nil
}

// spendStamp records a hashcash stamp and reports whether it was already
// used. Stamps older than four days are forgotten (VerifyHashcash rejects
// dates more than 48 hours away). Called with Server.mu held.
func (s *Server) spendStamp(stamp string, now time.Time) (replayed bool) {
	if _, ok := s.spent[stamp]; ok {
		return true
	}
	if len(s.spent) >= maxSpentStamps {
		for k, t := range s.spent {
			if now.Sub(t) > 96*time.Hour {
				delete(s.spent, k)
			}
		}
		if len(s.spent) >= maxSpentStamps {
			// still full of fresh stamps: forget them rather than grow
			clear(s.spent)
		}
	}
	s.spent[stamp] = now
	return false
}
