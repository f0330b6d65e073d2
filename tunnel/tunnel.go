package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Session is what a Tunnel needs from a dilated wormhole: named
// subchannels. *dilate.Dilation satisfies it; tunneltest.Pair gives an
// in-memory pair. Conns should implement CloseWrite() error (half-close);
// without it a half-close becomes a full close.
type Session interface {
	Listen(subprotocol string) (net.Listener, error)
	Dial(ctx context.Context, subprotocol string) (net.Conn, error)
}

// ContextDialer dials local TCP targets.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Options configure a Tunnel.
type Options struct {
	// Forwards are this side's -L and -R forwards. Names must be unique.
	Forwards []Forward
	// Logger gets debug logs; nil is silent.
	Logger *slog.Logger
	// OnEvent, if set, receives every status Event, one call at a time
	// (calls are serialised). It must not block for long nor call Run.
	OnEvent func(Event)
	// Dialer connects to local targets (default net.Dialer).
	Dialer ContextDialer
	// Listen opens local listeners (default net.ListenConfig.Listen).
	Listen func(ctx context.Context, network, addr string) (net.Listener, error)
	// DialTimeout bounds connecting to a local target (default 10 s).
	DialTimeout time.Duration
	// HandshakeTimeout bounds waiting for the peer's first message on a
	// forwarding subchannel (default 60 s).
	HandshakeTimeout time.Duration
	// BytesInterval is how often bytes-in / bytes-out events are emitted
	// per connection, with the bytes since the previous one (default
	// 250 ms). Negative disables them.
	BytesInterval time.Duration
	// BufferSize is the copy buffer per direction (default
	// DefaultBufferSize, four full Dilation records).
	BufferSize int
	// MaxConnections bounds concurrently forwarded connections, both
	// directions together (default 1024). Beyond it, new local
	// connections are closed at once and the peer's subchannels refused.
	MaxConnections int
	// PeerHalfClose reports whether the peer carries half-close, i.e.
	// whether its CLOSE of a forwarding subchannel means "no more data"
	// rather than "the connection is gone". nil means it does. fowl does
	// not: it closes a subchannel only once its local connection is gone,
	// and it keeps that subchannel's producer registered, with a closed
	// socket, until our CLOSE arrives (a bulk transfer meanwhile makes it
	// drop the Dilation connection, on every reconnection). When this
	// returns false, a CLOSE from the peer closes our local connection and
	// our side of the subchannel at once, as fowl does.
	PeerHalfClose func() bool
}

// RecordPayload is the largest write to a Dilation subchannel that still
// travels as one DATA record in both of package dilate's modes: a record
// holds 65510 payload bytes (65535-byte Noise message, 16-byte tag, 9-byte
// header) and the yamux mode puts a 12-byte frame header in front of the
// data. A 64 KiB write became a full record plus a 26- or 38-byte one
// (sealed, framed and acknowledged on its own).
const RecordPayload = 65510 - 12

// DefaultBufferSize is Options.BufferSize by default: four full records
// (about 256 KiB), so that one read from a local socket is one large write
// to the subchannel that splits into full records, and one subchannel read
// in "ged" mode may gather several records into one write to the socket.
const DefaultBufferSize = 4 * RecordPayload

// Errors.
var (
	// ErrRefused: the peer (or our own policy) refused a forward.
	ErrRefused = errors.New("tunnel: forward refused")
	// ErrUnknownForward: no forward of that name.
	ErrUnknownForward = errors.New("tunnel: no such forward")
	// ErrStopped: the Tunnel's Run has ended.
	ErrStopped = errors.New("tunnel: stopped")
)

// RefusedError says why a forward could not be set up. errors.Is(err,
// ErrRefused) holds.
type RefusedError struct {
	Name   string
	Reason string
	ByPeer bool // the peer refused (else our own check failed)
}

func (e *RefusedError) Error() string {
	who := "we refused"
	if e.ByPeer {
		who = "peer refused"
	}
	return fmt.Sprintf("tunnel: forward %q: %s: %s", e.Name, who, e.Reason)
}

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Forward states (ForwardStats.State).
const (
	StateWaiting   = "waiting"   // Local: the peer has not asked for it yet; Remote: asking
	StateListening = "listening" // Local: our listener is open
	StateReady     = "ready"     // Remote: the peer listens; we connect on demand
	StateRefused   = "refused"
	StateClosed    = "closed" // Local: the peer dropped its request; or Run ended
)

// ForwardStats is a snapshot of one forward.
type ForwardStats struct {
	Forward  Forward
	State    string
	Addr     string // Local: the listening address, once listening
	Reason   string // Refused: why
	Open     int    // open connections
	Total    int64  // connections so far
	BytesIn  int64  // local -> peer
	BytesOut int64  // peer -> local
}

type fwdState struct {
	f Forward

	mu      sync.Mutex
	state   string
	addr    net.Addr
	reason  string
	changed chan struct{} // closed and replaced on every change

	open       atomic.Int64
	total      atomic.Int64
	in, out    atomic.Int64
	ln         net.Listener // Local, while listening
	claimed    bool         // Local: a request is opening the listener
	refusedErr *RefusedError
}

func (fs *fwdState) set(state string, addr net.Addr, reason string) {
	fs.mu.Lock()
	fs.state, fs.reason = state, reason
	if addr != nil {
		fs.addr = addr
	}
	close(fs.changed)
	fs.changed = make(chan struct{})
	fs.mu.Unlock()
}

// Tunnel forwards TCP connections over a Session, speaking fowl's protocol
// (see the package documentation).
type Tunnel struct {
	opts   Options
	log    *slog.Logger
	fwds   []*fwdState
	byName map[string]*fwdState

	emitMu  sync.Mutex
	started atomic.Bool
	session Session // set by Run before any goroutine starts
	active  atomic.Int64
	bufs    sync.Pool // *[]byte of BufferSize
	small   sync.Pool // *[]byte of min(RecordPayload, BufferSize)
	nextID  atomic.Int64

	mu       sync.Mutex
	stopping bool
	closers  map[io.Closer]struct{}
	conns    map[int64]*connState
	stopped  chan struct{}
	wg       sync.WaitGroup
}

// New validates the forwards and returns a Tunnel ready to Run.
func New(opts Options) (*Tunnel, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	if opts.Listen == nil {
		var lc net.ListenConfig
		opts.Listen = lc.Listen
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 60 * time.Second
	}
	if opts.BytesInterval == 0 {
		opts.BytesInterval = 250 * time.Millisecond
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 1024
	}
	t := &Tunnel{
		opts: opts, log: opts.Logger, byName: map[string]*fwdState{},
		closers: map[io.Closer]struct{}{}, conns: map[int64]*connState{},
		stopped: make(chan struct{}),
	}
	for _, f := range opts.Forwards {
		if err := validName(f.Name); err != nil && f.Name != defaultName(f.ListenPort, f.Host, f.HostPort) {
			return nil, fmt.Errorf("%w: %v", ErrSpec, err)
		}
		if f.HostPort < 1 || f.HostPort > 65535 || f.ListenPort < 0 || f.ListenPort > 65535 || f.Host == "" {
			return nil, fmt.Errorf("%w: %s %s: bad host or port", ErrSpec, f.Dir, f)
		}
		if _, dup := t.byName[f.Name]; dup {
			return nil, fmt.Errorf("%w: two forwards named %q (name them: -L NAME=...)", ErrSpec, f.Name)
		}
		fs := &fwdState{f: f, state: StateWaiting, changed: make(chan struct{})}
		t.fwds = append(t.fwds, fs)
		t.byName[f.Name] = fs
	}
	return t, nil
}

func (t *Tunnel) emit(e Event) {
	if t.opts.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	t.emitMu.Lock()
	defer t.emitMu.Unlock()
	t.opts.OnEvent(e)
}

// track registers c to be closed when Run ends; false (and c closed) if
// Run is already ending.
func (t *Tunnel) track(c io.Closer) bool {
	t.mu.Lock()
	if t.stopping {
		t.mu.Unlock()
		c.Close()
		return false
	}
	t.closers[c] = struct{}{}
	t.mu.Unlock()
	return true
}

func (t *Tunnel) untrack(c io.Closer) {
	t.mu.Lock()
	delete(t.closers, c)
	t.mu.Unlock()
}

// goroutine starts f unless Run is ending.
func (t *Tunnel) goroutine(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// Run serves the forwards over s until ctx ends, then closes every
// listener, subchannel and connection it opened and returns nil once all
// its goroutines have ended. It may be called once.
func (t *Tunnel) Run(ctx context.Context, s Session) error {
	if !t.started.CompareAndSwap(false, true) {
		return errors.New("tunnel: Run called twice")
	}
	defer close(t.stopped)
	t.session = s
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lf, err := s.Listen(SubprotocolForward)
	if err != nil {
		return fmt.Errorf("tunnel: listen %q: %w", SubprotocolForward, err)
	}
	lc, err := s.Listen(SubprotocolCommands)
	if err != nil {
		lf.Close()
		return fmt.Errorf("tunnel: listen %q: %w", SubprotocolCommands, err)
	}
	t.track(lf)
	t.track(lc)
	t.goroutine(func() { t.acceptSubchannels(ctx, lf, t.serveForward) })
	t.goroutine(func() { t.acceptSubchannels(ctx, lc, t.serveCommands) })
	for _, fs := range t.fwds {
		if fs.f.Dir == Remote {
			t.goroutine(func() { t.requestRemote(ctx, s, fs) })
		}
	}
	if t.opts.BytesInterval > 0 && t.opts.OnEvent != nil {
		t.goroutine(func() { t.bytesTicker(ctx) })
	}
	<-ctx.Done()

	t.mu.Lock()
	t.stopping = true
	cs := make([]io.Closer, 0, len(t.closers))
	for c := range t.closers {
		cs = append(cs, c)
	}
	t.closers = map[io.Closer]struct{}{}
	t.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	t.wg.Wait()
	for _, fs := range t.fwds {
		fs.mu.Lock()
		st := fs.state
		fs.mu.Unlock()
		if st == StateListening || st == StateReady || st == StateWaiting {
			fs.set(StateClosed, nil, "stopped")
		}
	}
	return nil
}

func (t *Tunnel) acceptSubchannels(ctx context.Context, l net.Listener, serve func(context.Context, net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil {
				t.log.Debug("tunnel: subchannel accept ended", "err", err)
			}
			return
		}
		if !t.track(c) {
			return
		}
		if !t.goroutine(func() { serve(ctx, c) }) {
			c.Close()
			return
		}
	}
}

// Stats returns a snapshot of every forward, in flag order.
func (t *Tunnel) Stats() []ForwardStats {
	out := make([]ForwardStats, 0, len(t.fwds))
	for _, fs := range t.fwds {
		fs.mu.Lock()
		st := ForwardStats{Forward: fs.f, State: fs.state, Reason: fs.reason}
		if fs.addr != nil {
			st.Addr = fs.addr.String()
		}
		fs.mu.Unlock()
		st.Open = int(fs.open.Load())
		st.Total = fs.total.Load()
		st.BytesIn = fs.in.Load()
		st.BytesOut = fs.out.Load()
		out = append(out, st)
	}
	return out
}

// WaitReady waits until the named forward is usable: a Local forward
// listening (the peer asked for it), or a Remote forward accepted by the
// peer. It returns the forward's stats, a *RefusedError if it was refused,
// or ErrStopped once Run has ended.
func (t *Tunnel) WaitReady(ctx context.Context, name string) (ForwardStats, error) {
	fs, ok := t.byName[name]
	if !ok {
		return ForwardStats{}, fmt.Errorf("%w: %q", ErrUnknownForward, name)
	}
	for {
		fs.mu.Lock()
		st, ch, ref := fs.state, fs.changed, fs.refusedErr
		fs.mu.Unlock()
		switch st {
		case StateListening, StateReady:
			i := slices.Index(t.fwds, fs)
			return t.Stats()[i], nil
		case StateRefused:
			return ForwardStats{}, ref
		case StateClosed:
			return ForwardStats{}, ErrStopped
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ForwardStats{}, ctx.Err()
		case <-t.stopped:
		}
	}
}

func (t *Tunnel) refuse(fs *fwdState, reason string, byPeer bool) {
	fs.mu.Lock()
	fs.refusedErr = &RefusedError{Name: fs.f.Name, Reason: reason, ByPeer: byPeer}
	fs.mu.Unlock()
	fs.set(StateRefused, nil, reason)
}

// ---- fowl-commands: the peer asks us to listen (we are the roost side) ----

func (t *Tunnel) serveCommands(ctx context.Context, c net.Conn) {
	var owned []*fwdState
	defer func() {
		// fowl (FowlCommands.connectionLost) stops the listeners a
		// commands subchannel created when it goes away.
		for _, fs := range owned {
			t.stopListening(fs, "the peer closed its request")
		}
		t.untrack(c)
		c.Close()
	}()
	for {
		m, err := ReadMessage(c)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				t.emit(Event{Kind: EvError, Message: fmt.Sprintf("fowl-commands: %v", err)})
			}
			return
		}
		kind, _ := m.String("kind")
		if kind != KindRequestListener {
			// fowl logs and does not reply; neither do we.
			t.emit(Event{Kind: EvError, Message: fmt.Sprintf("Unknown control command: %q", kind)})
			continue
		}
		name, _ := m.String("unique-name")
		reply, fs := t.answerRequest(ctx, name, m)
		if fs != nil {
			owned = append(owned, fs)
		}
		if err := WriteMessage(c, reply); err != nil {
			return
		}
	}
}

// answerRequest applies our listen policy to a request-listener: we only
// listen for names of our own Local forwards, on our own address and port.
func (t *Tunnel) answerRequest(ctx context.Context, name string, m Message) (Message, *fwdState) {
	fs, ok := t.byName[name]
	if !ok || fs.f.Dir != Local {
		reason := fmt.Sprintf("No service permitted for name: %s", name)
		t.emit(Event{Kind: EvError, Message: fmt.Sprintf("Failed to listen on %q: %s", name, reason)})
		return listenerResponse(name, false, 0, reason), nil
	}
	f := fs.f
	port, err := m.Port("listen-port")
	if err != nil {
		return listenerResponse(name, false, 0, err.Error()), nil
	}
	if port != 0 && port != f.ListenPort {
		reason := fmt.Sprintf("peer asked for listen port %d but our -L %s chooses %s", port, f, portWord(f.ListenPort))
		t.emit(Event{Kind: EvListeningFailed, Name: name, Reason: reason})
		return listenerResponse(name, false, 0, reason), nil
	}
	fs.mu.Lock()
	busy := fs.state == StateListening || fs.claimed
	fs.claimed = true // one request at a time may set up the listener
	fs.mu.Unlock()
	if busy {
		return listenerResponse(name, false, 0, "already listening for this service"), nil
	}
	unclaim := func() {
		fs.mu.Lock()
		fs.claimed = false
		fs.mu.Unlock()
	}
	ln, err := t.opts.Listen(ctx, "tcp", f.ListenAddr())
	if err != nil {
		unclaim()
		reason := err.Error()
		t.emit(Event{Kind: EvListeningFailed, Name: name, Reason: reason})
		return listenerResponse(name, false, 0, reason), nil
	}
	if !t.track(ln) {
		unclaim()
		return listenerResponse(name, false, 0, "shutting down"), nil
	}
	fs.mu.Lock()
	fs.ln = ln
	fs.claimed = false
	fs.mu.Unlock()
	fs.set(StateListening, ln.Addr(), "")
	p := 0
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		p = ta.Port
	}
	t.emit(Event{Kind: EvListening, Name: name, Port: p, Target: f.Target()})
	t.goroutine(func() { t.acceptLocal(ctx, fs, ln) })
	return listenerResponse(name, true, f.HostPort, ""), fs
}

func portWord(p int) string {
	if p == 0 {
		return "its own (random) port"
	}
	return fmt.Sprintf("port %d", p)
}

func (t *Tunnel) stopListening(fs *fwdState, reason string) {
	fs.mu.Lock()
	ln := fs.ln
	fs.ln = nil
	fs.mu.Unlock()
	if ln != nil {
		t.untrack(ln)
		ln.Close()
		fs.set(StateClosed, nil, reason)
	}
}

// acceptLocal serves one of our listeners: each TCP connection becomes a
// "fowl" subchannel (fowl LocalServerFarSide / FowlNearToFar).
func (t *Tunnel) acceptLocal(ctx context.Context, fs *fwdState, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !t.track(c) {
			return
		}
		if !t.goroutine(func() { t.forwardOut(ctx, fs, c) }) {
			c.Close()
			return
		}
	}
}

// ---- fowl-commands: we ask the peer to listen (we are the fledge side) ----

func (t *Tunnel) requestRemote(ctx context.Context, s Session, fs *fwdState) {
	f := fs.f
	c, err := s.Dial(ctx, SubprotocolCommands)
	if err != nil {
		if ctx.Err() == nil {
			t.refuse(fs, fmt.Sprintf("opening %s subchannel: %v", SubprotocolCommands, err), false)
			t.emit(Event{Kind: EvListeningFailed, Name: f.Name, Reason: err.Error()})
		}
		return
	}
	if !t.track(c) {
		return
	}
	defer func() {
		t.untrack(c)
		c.Close()
	}()
	if err := WriteMessage(c, requestListener(f.Name, f.ListenPort)); err != nil {
		if ctx.Err() == nil {
			t.refuse(fs, err.Error(), false)
		}
		return
	}
	m, err := ReadMessage(c)
	if err != nil {
		if ctx.Err() == nil {
			t.refuse(fs, fmt.Sprintf("no answer to our request: %v", err), false)
			t.emit(Event{Kind: EvListeningFailed, Name: f.Name, Reason: err.Error()})
		}
		return
	}
	if !m.Bool("listening") {
		reason, _ := m.String("reason")
		if reason == "" {
			reason = "Unknown reason"
		}
		t.refuse(fs, reason, true)
		t.emit(Event{Kind: EvListeningFailed, Name: f.Name, Reason: reason})
		return
	}
	want, err := m.Port("desired-port")
	if err != nil || (want != 0 && want != f.HostPort) {
		reason := fmt.Sprintf("peer's -L expects us to connect to port %d but our -R %s connects to %s", want, f, f.Target())
		if err != nil {
			reason = err.Error()
		}
		t.refuse(fs, reason, false)
		t.emit(Event{Kind: EvListeningFailed, Name: f.Name, Reason: reason})
		return // closing the subchannel makes the peer drop its listener
	}
	fs.set(StateReady, nil, "")
	t.emit(Event{Kind: EvAwaitingConnect, Name: f.Name, Port: f.HostPort, Target: f.Target()})
	// Hold the subchannel open: the peer keeps listening while it lives.
	var buf [512]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			break
		}
	}
	if ctx.Err() == nil {
		fs.set(StateClosed, nil, "the peer closed the service")
	}
}

// ---- forwarding subchannels ----

type connState struct {
	id       int64
	fs       *fwdState
	outgoing bool
	in, out  atomic.Int64 // totals
	repIn    int64        // reported so far (bytesTicker only)
	repOut   int64
}

func (t *Tunnel) newConn(fs *fwdState, outgoing bool) *connState {
	cs := &connState{id: t.nextID.Add(1), fs: fs, outgoing: outgoing}
	if fs != nil {
		fs.open.Add(1)
		fs.total.Add(1)
	}
	t.mu.Lock()
	t.conns[cs.id] = cs
	t.mu.Unlock()
	return cs
}

func (t *Tunnel) endConn(cs *connState, reason string) {
	t.active.Add(-1) // every connState holds a MaxConnections slot
	t.mu.Lock()
	delete(t.conns, cs.id)
	t.mu.Unlock()
	if cs.fs != nil {
		cs.fs.open.Add(-1)
	}
	t.reportBytes(cs)
	name := ""
	if cs.fs != nil {
		name = cs.fs.f.Name
	}
	switch {
	case cs.outgoing && reason == "":
		t.emit(Event{Kind: EvOutgoingDone, Name: name, ID: cs.id})
	case cs.outgoing:
		t.emit(Event{Kind: EvOutgoingLost, Name: name, ID: cs.id, Reason: reason})
	case reason == "":
		t.emit(Event{Kind: EvIncomingDone, ID: cs.id})
	default:
		t.emit(Event{Kind: EvIncomingLost, ID: cs.id, Reason: reason})
	}
}

func (t *Tunnel) reportBytes(cs *connState) {
	if t.opts.OnEvent == nil || t.opts.BytesInterval < 0 {
		return
	}
	t.emitMu.Lock()
	in, out := cs.in.Load(), cs.out.Load()
	din, dout := in-cs.repIn, out-cs.repOut
	cs.repIn, cs.repOut = in, out
	t.emitMu.Unlock()
	if din > 0 {
		t.emit(Event{Kind: EvBytesIn, ID: cs.id, Bytes: din})
	}
	if dout > 0 {
		t.emit(Event{Kind: EvBytesOut, ID: cs.id, Bytes: dout})
	}
}

func (t *Tunnel) bytesTicker(ctx context.Context) {
	tk := time.NewTicker(t.opts.BytesInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		t.mu.Lock()
		cs := make([]*connState, 0, len(t.conns))
		for _, c := range t.conns {
			cs = append(cs, c)
		}
		t.mu.Unlock()
		for _, c := range cs {
			t.reportBytes(c)
		}
	}
}

// forwardOut: a local client connected to our listener for fs.
func (t *Tunnel) forwardOut(ctx context.Context, fs *fwdState, tcp net.Conn) {
	defer t.untrack(tcp)
	if t.active.Add(1) > int64(t.opts.MaxConnections) {
		t.active.Add(-1)
		t.emit(Event{Kind: EvError, Message: fmt.Sprintf("too many connections: closing a new one on %q", fs.f.Name)})
		tcp.Close()
		return
	}
	cs := t.newConn(fs, true)
	t.emit(Event{Kind: EvOutgoingConnection, Name: fs.f.Name, ID: cs.id})
	fail := func(reason string) {
		tcp.Close()
		t.endConn(cs, reason)
	}
	sc, err := t.session.Dial(ctx, SubprotocolForward)
	if err != nil {
		fail(fmt.Sprintf("opening subchannel: %v", err))
		return
	}
	if !t.track(sc) {
		fail("shutting down")
		return
	}
	defer t.untrack(sc)
	if err := WriteMessage(sc, openMessage(fs.f.Name)); err != nil {
		sc.Close()
		fail(err.Error())
		return
	}
	_ = sc.SetReadDeadline(time.Now().Add(t.opts.HandshakeTimeout))
	m, err := ReadMessage(sc)
	_ = sc.SetReadDeadline(time.Time{})
	if err != nil {
		sc.Close()
		fail(fmt.Sprintf("no reply from peer: %v", err))
		return
	}
	if !m.Bool("connected") {
		reason, _ := m.String("reason")
		if reason == "" {
			reason = "Unknown"
		}
		t.emit(Event{Kind: EvRemoteConnectFail, ID: cs.id, Reason: reason})
		sc.Close()
		fail(reason)
		return
	}
	t.endConn(cs, t.pump(cs, fs, tcp, sc))
}

// serveForward: the peer opened a "fowl" subchannel; we connect locally,
// but only to the target of one of our own Remote forwards (policy).
func (t *Tunnel) serveForward(ctx context.Context, sc net.Conn) {
	defer t.untrack(sc)
	if t.active.Add(1) > int64(t.opts.MaxConnections) {
		t.active.Add(-1)
		t.emit(Event{Kind: EvError, Message: "too many connections: refusing one from the peer"})
		sc.Close()
		return
	}
	slotHeld := true // until a connState owns it (endConn releases it)
	defer func() {
		if slotHeld {
			t.active.Add(-1)
		}
	}()
	_ = sc.SetReadDeadline(time.Now().Add(t.opts.HandshakeTimeout))
	m, err := ReadMessage(sc)
	_ = sc.SetReadDeadline(time.Time{})
	if err != nil {
		if ctx.Err() == nil {
			t.emit(Event{Kind: EvError, Message: fmt.Sprintf("fowl subchannel: %v", err)})
		}
		sc.Close()
		return
	}
	name, _ := m.String("unique-name")
	fs := t.byName[name]
	if fs != nil && fs.f.Dir != Remote {
		fs = nil
	}
	if fs != nil {
		fs.mu.Lock()
		refused := fs.state == StateRefused
		fs.mu.Unlock()
		if refused {
			fs = nil
		}
	}
	cs := t.newConn(fs, false)
	slotHeld = false
	ev := Event{Kind: EvIncomingConnection, Name: name, ID: cs.id}
	if fs != nil {
		ev.Target = fs.f.Target()
	}
	t.emit(ev)
	if fs == nil {
		// fowl's FowlFarToNear.local_disconnect reason.
		_ = WriteMessage(sc, openReply(false, "Against local policy"))
		_ = closeWrite(sc)
		drain(sc)
		sc.Close()
		t.endConn(cs, fmt.Sprintf("Incoming connection against local policy: no -R forward named %q", name))
		return
	}
	dctx, cancel := context.WithTimeout(ctx, t.opts.DialTimeout)
	tcp, err := t.opts.Dialer.DialContext(dctx, "tcp", fs.f.Target())
	cancel()
	if err != nil {
		_ = WriteMessage(sc, openReply(false, err.Error()))
		_ = closeWrite(sc)
		drain(sc)
		sc.Close()
		t.endConn(cs, err.Error())
		return
	}
	if !t.track(tcp) {
		sc.Close()
		t.endConn(cs, "shutting down")
		return
	}
	defer t.untrack(tcp)
	if err := WriteMessage(sc, openReply(true, "")); err != nil {
		tcp.Close()
		sc.Close()
		t.endConn(cs, err.Error())
		return
	}
	t.endConn(cs, t.pump(cs, fs, tcp, sc))
}

// drain reads (bounded by time) until EOF so the peer's CLOSE is seen.
func drain(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [4096]byte
	for range 1 << 10 {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

type closeWriter interface{ CloseWrite() error }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// pump copies both ways with half-close: EOF from one side becomes
// CloseWrite on the other. It returns "" if both directions ended with
// EOF, else the first error.
func (t *Tunnel) pump(cs *connState, fs *fwdState, tcp, sc net.Conn) string {
	errc := make(chan error, 2)
	abort := sync.OnceFunc(func() {
		tcp.Close()
		sc.Close()
	})
	halfClose := t.opts.PeerHalfClose == nil || t.opts.PeerHalfClose()
	var peerClosed atomic.Bool // the peer's CLOSE ended the whole connection
	copyDir := func(dst, src net.Conn, a, b *atomic.Int64, fromPeer bool) {
		err := t.copyCounted(dst, src, a, b)
		if err == nil && fromPeer && !halfClose {
			peerClosed.Store(true)
			abort()
			errc <- nil
			return
		}
		if err == nil {
			err = closeWrite(dst)
		}
		if err != nil {
			abort()
		}
		errc <- err
	}
	go copyDir(sc, tcp, &cs.in, &fs.in, false)
	go copyDir(tcp, sc, &cs.out, &fs.out, true)
	e1, e2 := <-errc, <-errc
	abort()
	if peerClosed.Load() {
		return "" // the other direction's error is our own abort
	}
	if err := cmpErr(e1, e2); err != nil {
		return err.Error()
	}
	return ""
}

func cmpErr(e1, e2 error) error {
	if e1 != nil {
		return e1
	}
	return e2
}

// copyCounted copies src to dst until EOF (nil) or an error, adding what
// it wrote to a and b. It starts with a pooled buffer of one record (at
// most BufferSize) and swaps it for a pooled BufferSize one once a read
// fills it: an interactive connection holds 64 KiB per direction, a bulk
// one 256 KiB and gets large reads and writes (fewer syscalls, full
// records).
func (t *Tunnel) copyCounted(dst io.Writer, src io.Reader, a, b *atomic.Int64) error {
	sp, _ := t.small.Get().(*[]byte)
	if sp == nil {
		sb := make([]byte, min(RecordPayload, t.opts.BufferSize))
		sp = &sb
	}
	small := *sp
	buf := small
	var big *[]byte
	defer func() {
		if sp != nil {
			t.small.Put(sp)
		}
		if big != nil {
			t.bufs.Put(big)
		}
	}()
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			a.Add(int64(w))
			b.Add(int64(w))
			if werr == nil && w != n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return werr
			}
			if n == len(small) && big == nil && len(small) < t.opts.BufferSize {
				big, _ = t.bufs.Get().(*[]byte)
				if big == nil {
					bb := make([]byte, t.opts.BufferSize)
					big = &bb
				}
				buf = *big
				t.small.Put(sp) // a bulk connection holds one buffer
				sp = nil
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
