package transit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/wormhole-go/wormhole/hints"
)

// Defaults (py:transit.py TIMEOUT = 60, connect gives up after 2*TIMEOUT).
const (
	DefaultHandshakeTimeout = 60 * time.Second
	DefaultTimeout          = 120 * time.Second
)

// Errors.
var (
	// ErrKey: the transit key is missing or not 32 bytes.
	ErrKey = errors.New("transit: transit key must be 32 bytes")
	// ErrAlreadyConnected: Connect was called twice.
	ErrAlreadyConnected = errors.New("transit: Connect already called")
	// ErrClosed: the Transit was closed.
	ErrClosed = errors.New("transit: closed")
)

// Options configure a Transit.
type Options struct {
	// IsSender selects the role (sender sends "go"; receiver waits).
	IsSender bool
	// Key is the 32-byte transit key (wormhole derive_key(appid +
	// "/transit-key")).
	Key []byte
	// RelayHints are our own relays (usually one RelayV1 from
	// hints.ParseRelayLocation; a bare DirectTCPV1 is taken as a relay at
	// that address; other types are ignored). They are advertised in
	// LocalHints and dialed together with the peer's relays.
	RelayHints []hints.Hint
	// NoListen: do not listen; advertise no direct hints (Python's
	// --no-listen).
	NoListen bool
	// Listen configures the listener (e.g. LoopbackOnly in tests).
	Listen hints.ListenOptions
	// Plan tunes the dial plan (relay delay, Tor, extra hint types,
	// NoDirect / NoRelay for testing one path).
	Plan hints.PlanOptions
	// Dial opens outbound connections; default: TCP via net.Dialer for
	// DirectTCPV1 hints. Supply one for Tor or custom hint types.
	Dial hints.Dialer
	// Side is our relay side, 16 lowercase hex characters; default random.
	Side string
	// HandshakeTimeout bounds each connection's negotiation, including the
	// wait for the relay's "ok" (default 60 s, like Python).
	HandshakeTimeout time.Duration
	// Timeout bounds Connect as a whole (default 120 s, like Python).
	// Negative: only ctx.
	Timeout time.Duration
	// RecordSize is the plaintext size Conn.Write uses per record
	// (default 16 KiB, like Python).
	RecordSize int
	// MaxRecordSize bounds received records (default 16 MiB).
	MaxRecordSize int
	// Logger gets debug lines. nil: silent.
	Logger *slog.Logger
}

// Transit is one side of a Transit connection setup.
type Transit struct {
	o   Options
	log *slog.Logger

	mu        sync.Mutex
	listener  *hints.Listener
	listenErr error
	peer      []hints.Hint
	connected bool
	closed    bool
}

// New validates the options and returns a Transit. Nothing is opened
// until LocalHints or Connect.
func New(o Options) (*Transit, error) {
	if len(o.Key) != KeySize {
		return nil, ErrKey
	}
	o.Key = append([]byte(nil), o.Key...)
	if o.Side == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("transit: random side: %w", err)
		}
		o.Side = hex.EncodeToString(b[:])
	} else if !validSide(o.Side) {
		return nil, fmt.Errorf("transit: side %q is not 16 lowercase hex characters", o.Side)
	}
	// A bare TCP hint given as a relay means "a relay at this address".
	relays := make([]hints.Hint, 0, len(o.RelayHints))
	for _, h := range o.RelayHints {
		switch h := h.(type) {
		case hints.RelayV1:
			relays = append(relays, h)
		case hints.DirectTCPV1, hints.TorTCPV1:
			relays = append(relays, hints.RelayV1{Hints: []hints.Hint{h}})
		}
	}
	o.RelayHints = relays
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Transit{o: o, log: o.Logger}, nil
}

// Abilities are the "abilities-v1" Python advertises.
func Abilities() json.RawMessage {
	return json.RawMessage(`[{"type":"direct-tcp-v1"},{"type":"relay-v1"}]`)
}

// LocalHints starts the listener (unless NoListen) and returns the hints
// to send to the peer ("hints-v1"): one direct-tcp-v1 hint per local
// address, then our relay hints. Calling it again returns the same hints.
func (t *Transit) LocalHints(ctx context.Context) ([]hints.Hint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	var out []hints.Hint
	if !t.o.NoListen {
		if t.listener == nil && t.listenErr == nil {
			t.listener, t.listenErr = hints.Listen(ctx, t.o.Listen)
			if t.listenErr == nil {
				t.log.Debug("transit: listening", "addrs", t.listener.Addrs())
			}
		}
		if t.listenErr != nil {
			return nil, fmt.Errorf("transit: %w", t.listenErr)
		}
		out = append(out, t.listener.Hints()...)
	}
	return append(out, t.o.RelayHints...), nil
}

// AddPeerHints adds hints received from the peer (their "hints-v1").
// Only hints added before Connect are used.
func (t *Transit) AddPeerHints(hs []hints.Hint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peer = append(t.peer, hs...)
}

// Plan is the dial plan Connect would use now.
func (t *Transit) Plan() []hints.Candidate {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.planLocked()
}

func (t *Transit) planLocked() []hints.Candidate {
	all := make([]hints.Hint, 0, len(t.peer)+len(t.o.RelayHints))
	all = append(all, t.peer...)
	all = append(all, t.o.RelayHints...)
	return hints.MakePlan(all, t.o.Plan)
}

func defaultDial(ctx context.Context, c hints.Candidate) (net.Conn, error) {
	h, ok := c.Hint.(hints.DirectTCPV1)
	if !ok {
		return nil, fmt.Errorf("transit: no dialer for %s hints", c.Hint.HintType())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.Addr())
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return conn, nil
}

// Connect races every path (the peer's direct hints at once, relays after
// the plan's delay, inbound connections on our listener) and returns the
// first connection that completes the Transit negotiation. A failing path,
// relay or direct, only matters if every path fails: then the error is a
// *hints.RaceError naming each attempt. The listener is closed when
// Connect returns.
func (t *Transit) Connect(ctx context.Context) (*Conn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if t.connected {
		t.mu.Unlock()
		return nil, ErrAlreadyConnected
	}
	t.connected = true
	plan := t.planLocked()
	l := t.listener
	t.mu.Unlock()
	defer t.closeListener()

	if t.o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.o.Timeout)
		defer cancel()
	}
	dial := t.o.Dial
	if dial == nil {
		dial = defaultDial
	}
	relayHS, err := RelayHandshake(t.o.Key, t.o.Side)
	if err != nil {
		return nil, err
	}
	accept := func(ctx context.Context, a *hints.Attempt, conn net.Conn) error {
		var rhs []byte
		if a.Candidate.Relay {
			rhs = relayHS
		}
		conn.SetDeadline(time.Now().Add(t.o.HandshakeTimeout))
		n := newNegotiation(t.o.Key, t.o.IsSender, rhs)
		if err := n.run(conn, a.Claim); err != nil {
			return err
		}
		conn.SetDeadline(time.Time{})
		return nil
	}
	var ro hints.RaceOptions
	ro.Logger = t.log
	if l != nil {
		ro.Inbound = l.Conns()
	}
	t.log.Debug("transit: connecting", "sender", t.o.IsSender, "candidates", len(plan), "listening", l != nil)
	w, err := hints.Race(ctx, plan, dial, accept, ro)
	if err != nil {
		return nil, fmt.Errorf("transit: connect: %w", err)
	}
	t.log.Debug("transit: connected", "via", w.Candidate.String())
	var send, recv [32]byte
	if t.o.IsSender {
		send, recv = SenderRecordKey(t.o.Key), ReceiverRecordKey(t.o.Key)
	} else {
		send, recv = ReceiverRecordKey(t.o.Key), SenderRecordKey(t.o.Key)
	}
	c := newConn(w.Conn, send, recv, t.o.RecordSize, t.o.MaxRecordSize)
	c.candidate = w.Candidate
	return c, nil
}

func (t *Transit) closeListener() {
	t.mu.Lock()
	l := t.listener
	t.listener = nil
	if l != nil {
		t.listenErr = ErrClosed
	}
	t.mu.Unlock()
	if l != nil {
		l.Close()
	}
}

// Close stops the listener. It does not close a Conn returned by Connect.
func (t *Transit) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.closeListener()
	return nil
}
