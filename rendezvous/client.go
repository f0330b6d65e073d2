package rendezvous

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Errors returned by the client.
var (
	// ErrServerConnection wraps every failure of the first connection
	// (Python's ServerConnectionError).
	ErrServerConnection = errors.New("rendezvous: cannot connect to mailbox server")
	// ErrClosed: the client has been closed (or failed) and can do no more.
	ErrClosed = errors.New("rendezvous: client closed")
	// ErrMailboxClosed: Add after CloseMailbox.
	ErrMailboxClosed = errors.New("rendezvous: mailbox closed")
	// ErrProtocol is wrapped by *ProtocolError.
	ErrProtocol = errors.New("rendezvous: protocol violation by server")
	// ErrBinaryFrame: the server sent a binary WebSocket frame.
	ErrBinaryFrame = errors.New("rendezvous: binary frame from server")
	// ErrPermission: the welcome requires a permission method we cannot
	// satisfy (spec 1.6).
	ErrPermission = errors.New("rendezvous: unsupported permission requirement")
	// ErrUsage: a call that contradicts earlier calls (for example claiming
	// a second nameplate).
	ErrUsage = errors.New("rendezvous: invalid use")
)

// ServerError is an "error" message from the server (for example
// "crowded" or "reclaimed"). It does not stop the client: like Python's
// RendezvousConnector, the connection stays up so that its owner can still
// release the nameplate and close the mailbox (with mood "errory"). Calls
// waiting when it arrives return it; Errored and ServerErr report it.
type ServerError struct {
	Msg  string
	Orig json.RawMessage // our message that caused it, as the server saw it
}

func (e *ServerError) Error() string { return "rendezvous: server error: " + e.Msg }

// WelcomeError is a fatal "error" in the server's welcome.
type WelcomeError struct{ Msg string }

func (e *WelcomeError) Error() string { return "rendezvous: server refused us: " + e.Msg }

// ProtocolError is a fatal violation of the protocol by the server
// (undecodable message, binary frame, oversized frame).
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string {
	return "rendezvous: protocol violation by server: " + e.Err.Error()
}
func (e *ProtocolError) Unwrap() []error { return []error{ErrProtocol, e.Err} }

// ConnState is the connection state reported through Options.OnStatus.
type ConnState int

const (
	Connecting ConnState = iota
	Connected
	Disconnected
	Closed
)

func (s ConnState) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// Status is one connection state change.
type Status struct {
	State   ConnState
	URL     string
	Err     error     // why a connection attempt failed or a connection was lost; fatal error for Closed
	Time    time.Time // when it happened
	Attempt int       // reconnection attempt number (0 for the first connection)
}

// Options configure a Client.
type Options struct {
	URL   string
	AppID string
	// Side is 10 lowercase hex digits; empty means 5 random bytes.
	Side string
	// ClientVersion is sent in bind; zero means {"wormhole-go", "0.1.0"}.
	ClientVersion [2]string
	// Logger receives debug logs; nil means silent.
	Logger *slog.Logger
	// ReconnectMin and ReconnectMax bound the jittered exponential
	// reconnection backoff (defaults 0.5s and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// OnStatus, if set, is called (from one goroutine at a time, never with
	// internal locks held) on every connection state change. It must not
	// block for long or call Close (Close waits for the goroutine calling it).
	OnStatus func(Status)
	// HTTPClient is used for the WebSocket handshake (nil: http.DefaultClient).
	HTTPClient *http.Client
	// PingInterval is how often WebSocket pings check a live connection
	// (0: 30s; negative: never).
	PingInterval time.Duration
	// ReadLimit caps one server message (0: 1 MiB).
	ReadLimit int64
}

// Message is one message from the peer.
type Message struct {
	Side, Phase string
	Body        []byte
	ID          string
	ServerRX    float64
}

const (
	defaultReadLimit   = 1 << 20
	handshakeTimeout   = 30 * time.Second // safety net for dial+welcome
	writeTimeout       = 30 * time.Second
	politeCloseTimeout = time.Second
	maxPhases          = 1 << 16 // distinct peer phases remembered before we call it hostile
	maxPhaseBytes      = 1 << 20 // total length of remembered phase names
	messagesBuffer     = 16
	defaultPing        = 30 * time.Second
	defaultReconnMin   = 500 * time.Millisecond
	defaultReconnMax   = 30 * time.Second
	requestStateIdle   = 0
	requestStatePend   = 1
	requestStateDone   = 2
	permissionHashcash = "hashcash"
)

// conn is one live WebSocket connection and its send queue.
type conn struct {
	ws     *websocket.Conn
	ctx    context.Context // ends when this connection is torn down
	cancel context.CancelFunc
	queue  [][]byte // guarded by Client.mu
	wake   chan struct{}
	wg     sync.WaitGroup // writer and pinger
}

// Client is a reconnecting mailbox-server client. All methods are safe for
// concurrent use. State lives under one mutex; one goroutine owns the
// connection (dial, read, reconnect).
type Client struct {
	opts   Options
	side   string
	log    *slog.Logger
	ctx    context.Context // root: cancelled by Close or a fatal error
	cancel context.CancelFunc
	out    chan Message
	done   chan struct{}
	wg     sync.WaitGroup // run goroutine

	mu        sync.Mutex
	started   bool // Connect called
	closing   bool
	err       error // fatal error
	cur       *conn // nil while disconnected
	welcome   *Welcome
	welcomeCh chan struct{}
	outClosed bool

	// allocate
	allocState int
	allocated  string
	allocCh    chan struct{}
	// claim
	claimState int
	nameplate  string
	mailboxID  string
	claimCh    chan struct{}
	// release
	releaseState     int
	releaseNameplate string
	releaseCh        chan struct{}
	// mailbox
	opened      string // mailbox we subscribed to ("" if not yet)
	pending     []pendingAdd
	processed   map[string]bool
	phaseBytes  int
	closeState  int
	closeBox    string
	closeMood   string
	closeCh     chan struct{}
	listWaiters []chan []string
	// server "error" messages
	errSig    *errSignal    // fires on the next server error
	firstErr  *ServerError  // the first one, nil if none yet
	erroredCh chan struct{} // closed with the first one
}

// errSignal is one generation of server-error notification: ch is closed
// (and err set) by the first server error after it was made. A waiting
// call takes the current generation when it starts, so it fails only on an
// error that arrives while it waits.
type errSignal struct {
	ch  chan struct{}
	err *ServerError
}

type pendingAdd struct {
	phase string
	body  []byte
}

// New makes a client. It does nothing until Connect.
func New(opts Options) *Client {
	if opts.ClientVersion == [2]string{} {
		opts.ClientVersion = [2]string{"wormhole-go", "0.1.0"}
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = defaultReconnMin
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = defaultReconnMax
	}
	if opts.ReconnectMax < opts.ReconnectMin {
		opts.ReconnectMax = opts.ReconnectMin
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = defaultPing
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = defaultReadLimit
	}
	side := opts.Side
	if side == "" {
		var b [5]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		side = hex.EncodeToString(b[:])
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		opts:      opts,
		side:      side,
		log:       log.With("side", side),
		ctx:       ctx,
		cancel:    cancel,
		out:       make(chan Message, messagesBuffer),
		done:      make(chan struct{}),
		welcomeCh: make(chan struct{}),
		allocCh:   make(chan struct{}),
		claimCh:   make(chan struct{}),
		releaseCh: make(chan struct{}),
		closeCh:   make(chan struct{}),
		processed: make(map[string]bool),
		errSig:    &errSignal{ch: make(chan struct{})},
		erroredCh: make(chan struct{}),
	}
}

// Side is our mailbox side (the same on every connection).
func (c *Client) Side() string { return c.side }

// Done is closed when the client stops: Close, or a fatal error (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the fatal error that stopped the client, or nil. Fatal errors are
// *WelcomeError, *ProtocolError and first-connection failures (wrapping
// ErrServerConnection). A server "error" message is not fatal: see
// ServerErr.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Errored is closed when the server sends its first "error" message; the
// client keeps running (see ServerError). Every peer message that arrived
// before that error is already buffered in Messages by then, and no later
// peer message is delivered (Python's Boss ignores them while closing).
func (c *Client) Errored() <-chan struct{} { return c.erroredCh }

// ServerErr returns the first "error" message from the server as a
// *ServerError, or nil if there was none.
func (c *Client) ServerErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstErr == nil {
		return nil
	}
	return c.firstErr
}

// Messages delivers peer messages (never our own), each phase once, in
// arrival order. It is closed when the client stops. After a server error
// no more peer messages are delivered.
func (c *Client) Messages() <-chan Message { return c.out }

func (c *Client) status(s Status) {
	if c.opts.OnStatus != nil {
		s.URL = c.opts.URL
		if s.Time.IsZero() {
			s.Time = time.Now()
		}
		c.opts.OnStatus(s)
	}
}

// Connect makes the first connection: WebSocket, welcome, (permission,)
// bind, and anything queued before. Its failure wraps ErrServerConnection
// and stops the client (a refusing welcome gives *WelcomeError instead).
// After it succeeds the client reconnects on its own until Close.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("%w: Connect called twice", ErrUsage)
	}
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	c.started = true
	c.wg.Add(1) // Close waits for Connect too
	c.mu.Unlock()

	c.status(Status{State: Connecting})
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel) // Close aborts Connect
	defer stop()
	defer cancel()
	cn, err := c.dialAndHandshake(ctx)
	if err != nil {
		var we *WelcomeError
		if !errors.As(err, &we) {
			err = fmt.Errorf("%w %s: %w", ErrServerConnection, c.opts.URL, err)
		}
		c.fail(err)
		c.status(Status{State: Closed, Err: err})
		c.mu.Lock()
		c.closeOut()
		c.mu.Unlock()
		c.wg.Done()
		return err
	}
	c.status(Status{State: Connected})
	go c.run(cn) // inherits the wg count
	return nil
}

// dialAndHandshake dials, waits for the welcome, sends permission and bind
// and replays state. On success the connection is installed as c.cur.
func (c *Client) dialAndHandshake(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, c.opts.URL, &websocket.DialOptions{HTTPClient: c.opts.HTTPClient})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(c.opts.ReadLimit)
	w, err := c.readWelcome(ctx, ws)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	var perm []byte
	if w.PermissionRequired != nil {
		if perm, err = c.permission(w.PermissionRequired); err != nil {
			ws.CloseNow()
			return nil, err
		}
	}

	cctx, ccancel := context.WithCancel(c.ctx)
	cn := &conn{ws: ws, ctx: cctx, cancel: ccancel, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		ccancel()
		ws.CloseNow()
		return nil, ErrClosed
	}
	if c.welcome == nil {
		c.welcome = &w
		close(c.welcomeCh)
	}
	c.cur = cn
	if perm != nil {
		cn.queue = append(cn.queue, perm)
	}
	c.sendLocked(BindMsg{AppID: c.opts.AppID, Side: c.side, ClientVersion: c.opts.ClientVersion[:]})
	c.replayLocked()
	cn.wg.Add(1)
	go c.writer(cn)
	if c.opts.PingInterval > 0 {
		cn.wg.Add(1)
		go c.pinger(cn)
	}
	return cn, nil
}

// readWelcome reads until the welcome (the server sends it first).
func (c *Client) readWelcome(ctx context.Context, ws *websocket.Conn) (Welcome, error) {
	for i := 0; i < 16; i++ {
		m, err := c.readMsg(ctx, ws)
		if err != nil {
			return Welcome{}, err
		}
		switch m := m.(type) {
		case nil: // unknown type: ignored
		case *WelcomeMsg:
			if m.Welcome.Error != "" {
				return Welcome{}, &WelcomeError{Msg: m.Welcome.Error}
			}
			return m.Welcome, nil
		default:
			return Welcome{}, &ProtocolError{Err: fmt.Errorf("got %q before welcome", m.(interface{ MsgType() string }).MsgType())}
		}
	}
	return Welcome{}, &ProtocolError{Err: errors.New("no welcome in the first 16 messages")}
}

// readMsg reads one frame and decodes it. Unknown types give (nil, nil);
// other bad input gives *ProtocolError; connection errors are returned as-is.
func (c *Client) readMsg(ctx context.Context, ws *websocket.Conn) (any, error) {
	typ, b, err := ws.Read(ctx)
	if err != nil {
		if errors.Is(err, websocket.ErrMessageTooBig) {
			return nil, &ProtocolError{Err: err}
		}
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, &ProtocolError{Err: ErrBinaryFrame}
	}
	m, err := DecodeServerMessage(b)
	if err != nil {
		if errors.Is(err, ErrUnknownType) {
			c.log.Debug("ignoring unknown server message", "err", err)
			return nil, nil
		}
		return nil, &ProtocolError{Err: err}
	}
	return m, nil
}

// permission builds the submit-permissions message for a welcome's
// permission-required, or nil if "none" is offered.
func (c *Client) permission(req map[string]json.RawMessage) ([]byte, error) {
	if _, ok := req["none"]; ok {
		return nil, nil
	}
	raw, ok := req[permissionHashcash]
	if !ok {
		methods := make([]string, 0, len(req))
		for k := range req {
			methods = append(methods, k)
		}
		return nil, fmt.Errorf("%w: offered %q", ErrPermission, methods)
	}
	var p struct {
		Bits     int    `json:"bits"`
		Resource string `json:"resource"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("%w: hashcash parameters: %v", ErrPermission, err)
	}
	stamp, err := MintHashcash(p.Bits, p.Resource, time.Now(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return json.Marshal(SubmitPermissionsMsg{ID: newID(), Method: permissionHashcash, Stamp: stamp})
}

func newID() string {
	var b [2]byte
	v := mrand.Uint32()
	b[0], b[1] = byte(v), byte(v>>8)
	return hex.EncodeToString(b[:])
}

// sendLocked queues m on the current connection (if any). c.mu held.
func (c *Client) sendLocked(m interface{ MsgType() string }) {
	cn := c.cur
	if cn == nil {
		return
	}
	var b []byte
	var err error
	switch m := m.(type) {
	case BindMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	case ListMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	case AllocateMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	case ClaimMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	case ReleaseMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	case OpenMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	case AddMsg:
		m.ID = newID()
		b, err = m.MarshalJSON() // valid by construction; skips re-validation
	case CloseMsg:
		m.ID = newID()
		b, err = json.Marshal(m)
	default:
		err = fmt.Errorf("cannot send %T", m)
	}
	if err != nil { // cannot happen for these types
		c.log.Error("encode", "err", err)
		return
	}
	c.log.Debug("tx", "type", m.MsgType())
	cn.queue = append(cn.queue, b)
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// replayLocked re-sends what a new connection needs (spec 7, Python order:
// nameplate, mailbox, lister, allocator).
func (c *Client) replayLocked() {
	if c.claimState == requestStatePend && c.releaseState == requestStateIdle {
		// Python's Nameplate re-claims after a reconnect only while it is
		// not releasing (after a "crowded" error it only releases).
		c.sendLocked(ClaimMsg{Nameplate: c.nameplate})
	}
	if c.releaseState == requestStatePend {
		c.sendLocked(ReleaseMsg{Nameplate: c.releaseNameplate})
	}
	if c.closeState == requestStatePend {
		c.sendLocked(CloseMsg{Mailbox: c.closeBox, Mood: c.closeMood})
	} else if c.opened != "" && c.closeState == requestStateIdle {
		c.sendLocked(OpenMsg{Mailbox: c.opened})
		for _, p := range c.pending {
			c.sendLocked(AddMsg{Phase: p.phase, Body: p.body})
		}
	}
	if len(c.listWaiters) > 0 {
		c.sendLocked(ListMsg{})
	}
	if c.allocState == requestStatePend {
		c.sendLocked(AllocateMsg{})
	}
}

// writer sends queued frames in order.
func (c *Client) writer(cn *conn) {
	defer cn.wg.Done()
	for {
		select {
		case <-cn.ctx.Done():
			return
		case <-cn.wake:
		}
		for {
			c.mu.Lock()
			q := cn.queue
			cn.queue = nil
			c.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, b := range q {
				ctx, cancel := context.WithTimeout(cn.ctx, writeTimeout)
				err := cn.ws.Write(ctx, websocket.MessageText, b)
				cancel()
				if err != nil {
					c.log.Debug("write failed", "err", err)
					cn.ws.CloseNow() // the reader notices and reconnects
					return
				}
			}
		}
	}
}

// pinger checks liveness with WebSocket pings.
func (c *Client) pinger(cn *conn) {
	defer cn.wg.Done()
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-cn.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(cn.ctx, 2*c.opts.PingInterval)
		err := cn.ws.Ping(ctx)
		cancel()
		if err != nil {
			if cn.ctx.Err() == nil {
				c.log.Debug("ping failed", "err", err)
				cn.ws.CloseNow()
			}
			return
		}
	}
}

// run owns the connection: reads, and reconnects with backoff.
func (c *Client) run(cn *conn) {
	defer c.wg.Done()
	var final error
	defer func() {
		c.mu.Lock()
		c.closeOut()
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = final
		}
		c.status(Status{State: Closed, Err: err})
	}()
	for {
		err := c.serve(cn)
		c.teardown(cn)
		var pe *ProtocolError
		if errors.As(err, &pe) {
			c.fail(err)
		}
		if c.stopped() {
			return
		}
		c.log.Debug("connection lost", "err", err)
		c.status(Status{State: Disconnected, Err: err})
		cn = c.reconnect()
		if cn == nil {
			return
		}
	}
}

// teardown stops a connection's goroutines and detaches it.
func (c *Client) teardown(cn *conn) {
	cn.cancel()
	cn.ws.CloseNow()
	cn.wg.Wait()
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	c.mu.Unlock()
}

// reconnect retries with jittered exponential backoff until it connects
// (returns the connection) or the client stops (returns nil).
func (c *Client) reconnect() *conn {
	delay := c.opts.ReconnectMin
	for attempt := 1; ; attempt++ {
		d := delay/2 + time.Duration(mrand.Int64N(int64(delay/2)+1))
		t := time.NewTimer(d)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		c.status(Status{State: Connecting, Attempt: attempt})
		cn, err := c.dialAndHandshake(c.ctx)
		if err == nil {
			c.log.Debug("reconnected", "attempt", attempt)
			c.status(Status{State: Connected, Attempt: attempt})
			return cn
		}
		var we *WelcomeError
		var pe *ProtocolError
		if errors.As(err, &we) || errors.As(err, &pe) {
			c.fail(err)
			return nil
		}
		if c.stopped() {
			return nil
		}
		c.log.Debug("reconnect failed", "attempt", attempt, "err", err)
		c.status(Status{State: Disconnected, Err: err, Attempt: attempt})
		delay = min(delay*2, c.opts.ReconnectMax)
	}
}

// serve reads and dispatches until the connection ends.
func (c *Client) serve(cn *conn) error {
	for {
		m, err := c.readMsg(c.ctx, cn.ws)
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		deliver, err := c.dispatch(m)
		if err != nil {
			return err
		}
		if deliver != nil {
			select {
			case c.out <- *deliver:
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
	}
}

// dispatch applies one server message to the state. It returns a peer
// message to deliver, or a fatal error.
func (c *Client) dispatch(m any) (*Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m := m.(type) {
	case *WelcomeMsg, *AckMsg, *PongMsg:
		// nothing to do (a second welcome is ignored, like Python's)
	case *NameplatesMsg:
		ids := make([]string, len(m.Nameplates))
		for i, n := range m.Nameplates {
			ids[i] = n.ID
		}
		for _, w := range c.listWaiters {
			w <- ids // buffered, cap 1
		}
		c.listWaiters = nil
	case *AllocatedMsg:
		if c.allocState == requestStatePend {
			c.allocState = requestStateDone
			c.allocated = m.Nameplate
			close(c.allocCh)
		}
	case *ClaimedMsg:
		if c.claimState == requestStatePend {
			c.claimState = requestStateDone
			c.mailboxID = m.Mailbox
			close(c.claimCh)
		}
	case *ReleasedMsg:
		if c.releaseState == requestStatePend {
			c.releaseState = requestStateDone
			close(c.releaseCh)
		}
	case *ClosedMsg:
		if c.closeState == requestStatePend {
			c.closeState = requestStateDone
			close(c.closeCh)
		}
	case *MessageMsg:
		if c.closeState != requestStateIdle || c.firstErr != nil {
			return nil, nil // Python ignores messages once closing
		}
		if m.Side == c.side {
			for i, p := range c.pending {
				if p.phase == m.Phase {
					c.pending = append(c.pending[:i], c.pending[i+1:]...)
					break
				}
			}
			return nil, nil
		}
		if c.processed[m.Phase] {
			return nil, nil
		}
		c.phaseBytes += len(m.Phase)
		if len(c.processed) >= maxPhases || c.phaseBytes > maxPhaseBytes {
			return nil, &ProtocolError{Err: fmt.Errorf("too many distinct phases (%d, %d bytes)", len(c.processed), c.phaseBytes)}
		}
		c.processed[m.Phase] = true
		return &Message{Side: m.Side, Phase: m.Phase, Body: m.Body, ID: m.ID, ServerRX: m.ServerRX}, nil
	case *ErrorMsg:
		// Not fatal (Python: Boss.rx_error starts closing with mood
		// "errory" over this same connection): wake the calls waiting now.
		err := &ServerError{Msg: m.Error, Orig: m.Orig}
		c.log.Debug("server error", "err", err.Msg, "orig", string(m.Orig))
		sig := c.errSig
		sig.err = err
		close(sig.ch)
		c.errSig = &errSignal{ch: make(chan struct{})}
		if c.firstErr == nil {
			c.firstErr = err
			close(c.erroredCh)
		}
	}
	return nil, nil
}

// fail records a fatal error and stops the client.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(err)
}

func (c *Client) failLocked(err error) {
	if c.err == nil && !c.closing {
		c.err = err
		c.log.Debug("fatal", "err", err)
	}
	c.stopLocked()
}

func (c *Client) stopLocked() {
	if !c.closing {
		c.closing = true
		close(c.done)
	}
	c.cancel()
}

func (c *Client) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// closeOut closes the Messages channel once. c.mu held; only the sender
// (run, or Connect before run exists) calls it.
func (c *Client) closeOut() {
	if !c.outClosed {
		c.outClosed = true
		close(c.out)
	}
}

// Close closes the connection and stops every goroutine. It returns nil;
// the fatal error, if any, stays available from Err.
func (c *Client) Close() error {
	c.mu.Lock()
	first := !c.closing
	if first {
		c.closing = true
		close(c.done)
	}
	cn := c.cur
	if !c.started {
		c.started = true
		c.closeOut()
	}
	c.mu.Unlock()
	if first && cn != nil {
		// Polite close handshake; the reader sees closing and does not
		// reconnect. A server that does not answer within
		// politeCloseTimeout is cut off.
		handshake := make(chan struct{})
		go func() {
			defer close(handshake)
			_ = cn.ws.Close(websocket.StatusNormalClosure, "")
		}()
		t := time.NewTimer(politeCloseTimeout)
		select {
		case <-handshake:
		case <-t.C:
		}
		t.Stop()
		c.cancel()
		<-handshake
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

// wait blocks until ch closes, ctx ends, the client stops or a server
// error arrives (sig, taken with c.mu held when the request was made).
func (c *Client) wait(ctx context.Context, ch <-chan struct{}, sig *errSignal) error {
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-sig.ch:
		return sig.err
	case <-c.done:
		select {
		case <-ch:
			return nil
		default:
		}
		return c.stoppedErr()
	}
}

func (c *Client) stoppedErr() error {
	if err := c.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// checkLocked returns an error if the client has stopped. c.mu held.
func (c *Client) checkLocked() error {
	if c.closing {
		if c.err != nil {
			return c.err
		}
		return ErrClosed
	}
	return nil
}

// Welcome returns the first welcome (waiting for it if needed).
func (c *Client) Welcome(ctx context.Context) (Welcome, error) {
	c.mu.Lock()
	sig := c.errSig
	c.mu.Unlock()
	if err := c.wait(ctx, c.welcomeCh, sig); err != nil {
		return Welcome{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.welcome, nil
}

// List asks for the nameplates in use.
func (c *Client) List(ctx context.Context) ([]string, error) {
	ch := make(chan []string, 1)
	c.mu.Lock()
	if err := c.checkLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.listWaiters = append(c.listWaiters, ch)
	c.sendLocked(ListMsg{})
	sig := c.errSig
	c.mu.Unlock()
	select {
	case ids := <-ch:
		return ids, nil
	case <-sig.ch:
		c.dropListWaiter(ch)
		return nil, sig.err
	case <-ctx.Done():
		c.dropListWaiter(ch)
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.stoppedErr()
	}
}

func (c *Client) dropListWaiter(ch chan []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.listWaiters {
		if w == ch {
			c.listWaiters = append(c.listWaiters[:i], c.listWaiters[i+1:]...)
			break
		}
	}
}

// Allocate asks the server for a free nameplate (which it also claims for
// us; Claim it afterwards to learn the mailbox). Calling it again returns
// the same nameplate.
func (c *Client) Allocate(ctx context.Context) (string, error) {
	c.mu.Lock()
	if err := c.checkLocked(); err != nil {
		c.mu.Unlock()
		return "", err
	}
	if c.allocState == requestStateIdle {
		c.allocState = requestStatePend
		c.sendLocked(AllocateMsg{})
	}
	ch, sig := c.allocCh, c.errSig
	c.mu.Unlock()
	if err := c.wait(ctx, ch, sig); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allocated, nil
}

// Claim claims a nameplate and returns its mailbox id. Only one nameplate
// per client; claiming the same one again returns the same mailbox.
func (c *Client) Claim(ctx context.Context, nameplate string) (string, error) {
	c.mu.Lock()
	if err := c.checkLocked(); err != nil {
		c.mu.Unlock()
		return "", err
	}
	switch {
	case c.claimState == requestStateIdle:
		c.claimState = requestStatePend
		c.nameplate = nameplate
		c.sendLocked(ClaimMsg{Nameplate: nameplate})
	case c.nameplate != nameplate:
		c.mu.Unlock()
		return "", fmt.Errorf("%w: already claimed nameplate %q, cannot claim %q", ErrUsage, c.nameplate, nameplate)
	}
	ch, sig := c.claimCh, c.errSig
	c.mu.Unlock()
	if err := c.wait(ctx, ch, sig); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mailboxID, nil
}

// Release releases a nameplate and waits for "released". It is re-sent
// after reconnects until answered; calling it again just waits.
func (c *Client) Release(ctx context.Context, nameplate string) error {
	c.mu.Lock()
	if err := c.checkLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	if c.releaseState == requestStateIdle {
		c.releaseState = requestStatePend
		c.releaseNameplate = nameplate
		c.sendLocked(ReleaseMsg{Nameplate: nameplate})
	} else if c.releaseNameplate != nameplate {
		c.mu.Unlock()
		return fmt.Errorf("%w: already released nameplate %q", ErrUsage, c.releaseNameplate)
	}
	ch, sig := c.releaseCh, c.errSig
	c.mu.Unlock()
	return c.wait(ctx, ch, sig)
}

// Open subscribes to a mailbox. The server replays its stored messages;
// queued Adds are sent. It returns once the open is queued.
func (c *Client) Open(ctx context.Context, mailbox string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkLocked(); err != nil {
		return err
	}
	if c.opened != "" {
		if c.opened == mailbox {
			return nil
		}
		return fmt.Errorf("%w: already opened mailbox %q", ErrUsage, c.opened)
	}
	if c.closeState != requestStateIdle {
		return ErrMailboxClosed
	}
	c.opened = mailbox
	c.sendLocked(OpenMsg{Mailbox: mailbox})
	for _, p := range c.pending {
		c.sendLocked(AddMsg{Phase: p.phase, Body: p.body})
	}
	return nil
}

// Add queues a message for the mailbox and returns. It is sent once the
// mailbox is open and re-sent after every reconnect until the server echoes
// it back to us. Adding a phase again replaces a still-unsent body.
func (c *Client) Add(ctx context.Context, phase string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkLocked(); err != nil {
		return err
	}
	if c.closeState != requestStateIdle {
		return ErrMailboxClosed
	}
	body = append([]byte{}, body...)
	replaced := false
	for i := range c.pending {
		if c.pending[i].phase == phase {
			c.pending[i].body = body
			replaced = true
			break
		}
	}
	if !replaced {
		c.pending = append(c.pending, pendingAdd{phase, body})
	}
	if c.opened != "" {
		c.sendLocked(AddMsg{Phase: phase, Body: body})
	}
	return nil
}

// CloseMailbox closes the mailbox with a mood (happy, lonely, scary,
// errory) and waits for "closed". It is re-sent after reconnects until
// answered. Peer messages are ignored from now on. It works after a server
// error (that is when Python closes with mood "errory").
func (c *Client) CloseMailbox(ctx context.Context, mailbox, mood string) error {
	c.mu.Lock()
	if err := c.checkLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	if c.closeState == requestStateIdle {
		c.closeState = requestStatePend
		c.closeBox, c.closeMood = mailbox, mood
		c.sendLocked(CloseMsg{Mailbox: mailbox, Mood: mood})
	}
	ch, sig := c.closeCh, c.errSig
	c.mu.Unlock()
	return c.wait(ctx, ch, sig)
}
