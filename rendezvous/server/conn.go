package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wormhole-go/wormhole/rendezvous"
)

// conn is one WebSocket client. Protocol state fields are guarded by
// Server.mu; the outgoing queue by qmu.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	address map[string]any // welcome's your-address

	ctx    context.Context // cancelled by kill
	cancel context.CancelFunc
	finish chan struct{} // closed when the reader is done

	qmu         sync.Mutex
	queue       [][]byte
	qbytes      int64
	wake        chan struct{}
	closeCode   websocket.StatusCode
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
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		s:       s,
		address: s.yourAddress(r),
		ctx:     ctx,
		cancel:  cancel,
		finish:  make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	if s.opts.Hashcash == nil {
		c.permitted = true
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer cancel()

	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // no cookies or credentials: any origin may connect
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.log.Debug("websocket accept failed", "err", err)
		return
	}
	c.ws = ws
	ws.SetReadLimit(s.opts.MaxMessageSize)
	s.log.Debug("client connected", "remote", r.RemoteAddr)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer()
	}()
	c.send("welcome", map[string]any{"welcome": s.welcomeFor(c)})
	c.reader()

	s.mu.Lock()
	delete(s.conns, c)
	if c.hasMbox && c.listening {
		s.removeListener(c)
	}
	s.mu.Unlock()
	close(c.finish)
	<-writerDone
	s.log.Debug("client disconnected", "remote", r.RemoteAddr)
}

func (s *Server) welcomeFor(c *conn) map[string]any {
	w := make(map[string]any, len(s.welcome)+1)
	for k, v := range s.welcome {
		w[k] = v
	}
	if c.address != nil {
		w["your-address"] = c.address
	}
	return w
}

// yourAddress builds welcome's your-address from the peer address (or the
// proxy headers when trusted).
func (s *Server) yourAddress(r *http.Request) map[string]any {
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
		return nil
	}
	ip := net.ParseIP(host)
	p, perr := strconv.Atoi(port)
	if ip == nil || perr != nil {
		return nil
	}
	if ip4 := ip.To4(); ip4 != nil {
		return map[string]any{"port": p, "ipv4": ip4.String()}
	}
	return map[string]any{"port": p, "ipv6": ip.String()}
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

// reader reads frames until the connection ends or a fatal error.
func (c *conn) reader() {
	for {
		_, payload, err := c.ws.Read(c.ctx)
		if err != nil {
			c.s.log.Debug("read ended", "err", err)
			return
		}
		if fatal := c.handleFrame(payload); fatal != nil {
			return
		}
	}
}

// kill drops the connection at once (server Close, overflow, dead peer).
func (c *conn) kill() { c.cancel() }

// closeWith asks the writer to flush and then close with code and reason.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
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
	c.enqueue(b)
}

func (c *conn) enqueue(b []byte) {
	c.qmu.Lock()
	if c.qbytes+int64(len(b)) > c.s.opts.MaxQueueBytes {
		c.qmu.Unlock()
		c.s.log.Warn("dropping client that does not read", "queued", c.qbytes)
		c.kill()
		return
	}
	c.queue = append(c.queue, b)
	c.qbytes += int64(len(b))
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) dequeue() []byte {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		c.queue = nil
		return nil
	}
	b := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	c.qbytes -= int64(len(b))
	return b
}

func (c *conn) flush() error {
	for {
		b := c.dequeue()
		if b == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.s.opts.WriteTimeout)
		err := c.ws.Write(ctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			return err
		}
	}
}

// writer writes queued messages and keepalive pings.
func (c *conn) writer() {
	var tick <-chan time.Time
	if c.s.opts.PingInterval > 0 {
		t := time.NewTicker(c.s.opts.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.ctx.Done():
			c.ws.CloseNow()
			return
		case <-c.wake:
			if err := c.flush(); err != nil {
				c.kill()
			}
		case <-tick:
			ctx, cancel := context.WithTimeout(c.ctx, c.s.opts.PingTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.s.log.Debug("ping failed", "err", err)
				c.kill()
			}
		case <-c.finish:
			err := c.flush()
			c.qmu.Lock()
			code, reason := c.closeCode, c.closeReason
			c.qmu.Unlock()
			if err == nil && code != 0 {
				_ = c.ws.Close(code, reason)
			}
			c.ws.CloseNow()
			return
		}
	}
}

// errFatal marks a frame after which the connection is closed.
var errFatal = errors.New("fatal client error")

// handleFrame processes one client frame.
func (c *conn) handleFrame(payload []byte) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	rx := s.nowF()
	m, err := decodeClientMessage(payload)
	if err != nil {
		c.send("error", map[string]any{"error": err.Error(), "orig": nil})
		c.closeWith(websocket.StatusInvalidFramePayloadData, "malformed message")
		return errFatal
	}
	typ, ok := m.typ()
	if !ok {
		c.sendError("missing 'type'", m)
		return nil
	}
	c.send("ack", map[string]any{"id": m.raw("id")})
	perr, fatal := c.dispatch(typ, m, rx)
	if perr != "" {
		c.sendError(perr, m)
	}
	if fatal != nil {
		if errors.Is(fatal, errPermission) {
			c.closeWith(websocket.StatusPolicyViolation, "permission denied")
		} else {
			s.log.Error("store failure", "err", fatal)
			c.closeWith(websocket.StatusInternalError, "server error")
		}
		return fatal
	}
	return nil
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
		c.send("pong", map[string]any{"pong": m.raw("ping")})
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
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
			c.send("allocated", map[string]any{"nameplate": name})
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
			var mb string
			var err error
			mb, perr, err = s.claimNameplate(tx, c.app, name, c.side, rx)
			if err != nil || perr != "" {
				return err
			}
			c.send("claimed", map[string]any{"mailbox": mb})
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
			if err := s.releaseNameplate(tx, c.app, name, c.side, rx); err != nil {
				return err
			}
			c.send("released", nil)
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
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
			for _, sm := range msgs {
				c.send("message", messageFields(sm))
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
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
			f := messageFields(sm)
			for l := range s.listeners[mailboxKey{c.app, c.mbox}] {
				l.send("message", maps(f))
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
		err = s.store.Update(c.ctx, func(tx Tx) error {
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
			c.send("closed", nil)
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

func messageFields(sm Message) map[string]any {
	id := sm.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	return map[string]any{"side": sm.Side, "phase": sm.Phase, "body": sm.Body, "server_rx": sm.ServerRx, "id": id}
}

// maps copies a field map (send adds keys to the map it is given).
func maps(f map[string]any) map[string]any {
	out := make(map[string]any, len(f)+2)
	for k, v := range f {
		out[k] = v
	}
	return out
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
	err = s.store.Update(c.ctx, func(tx Tx) error {
		return tx.AddClientVersion(ClientVersion{App: app, Side: side, ConnectTime: s.blur(rx), Implementation: impl, Version: ver})
	})
	if err != nil {
		return "server error", err
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
