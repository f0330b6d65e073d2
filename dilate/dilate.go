// Package dilate implements magic-wormhole Dilation as Python
// magic-wormhole >= 0.20 speaks it (can-dilate "ged"): durable, encrypted,
// multiplexed connections between the two wormhole peers.
//
// Layers (docs/dilation-protocol.rst, py:_dilation/):
//   - L1: JSON records through the mailbox (phases dilate-N), carried by a
//     Signaling supplied by the wormhole object.
//   - L2: TCP (direct or via a transit relay), Noise NNpsk0 handshake,
//     4-byte length frames.
//   - L3: KCM, PING, PONG, OPEN, DATA, CLOSE, ACK records.
//   - L4: sequence numbers, cumulative ACKs and retransmission of unacked
//     records on each new connection, so subchannels survive reconnects.
//   - L5: subchannels, exposed as net.Conn via Dial and Listen.
package dilate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-yamux/v4"
	"github.com/wormhole-go/wormhole/hints"
)

// Signaling carries L1 records through the mailbox. The wormhole object
// encrypts each record sent as its own mailbox phase dilate-N (N counting
// from 0), and hands back the peer's dilate-N plaintexts in order.
// Receive must return when ctx is cancelled.
type Signaling interface {
	Send(ctx context.Context, record []byte) error
	Receive(ctx context.Context) ([]byte, error)
}

// Options configures a Dilation. The zero value is usable.
type Options struct {
	Logger *slog.Logger // nil: silent

	// PingInterval is the Leader's keepalive period: it sends a PING each
	// interval and drops the connection when no PONG came within one
	// interval. 0 means 30 s (Python's default); negative disables pings.
	PingInterval time.Duration

	// NoListen disables the listening socket and direct hints.
	NoListen bool
	// ListenAddr is where each generation listens; default ":0" (all
	// interfaces, new port each generation, as Python). Tests use
	// "127.0.0.1:0".
	ListenAddr string
	// IncludeLoopback adds a 127.0.0.1 hint when listening on all interfaces.
	IncludeLoopback bool
	// AdvertiseAddrs, when set, replaces the published direct hints
	// ("host:port" each), e.g. a port forward or a test proxy.
	AdvertiseAddrs []string

	// Relays are transit relays to use ("tcp:host:port"), published as
	// relay-v1 hints and dialled at once.
	Relays []string
	// RelayHints are more relays, already parsed.
	RelayHints []hints.RelayV1
	// RelayDelay is how long to wait before dialling the peer's relay hints
	// when direct hints were tried; 0 means 2 s.
	RelayDelay time.Duration

	// PeerVersions is the peer's "can-dilate" list. nil means "assume it
	// speaks Version" (ged). If nothing is shared, New sends a please
	// without use-version (as Python does) and returns ErrPeerCannotDilate.
	PeerVersions []string
	// NoYamux keeps to Python's "ged" mode even with a Go peer that offers
	// the Go-only modes: it disables both CreditVersion and YamuxVersion
	// (the name predates CreditVersion; it means "ged only"). Otherwise
	// the best of CreditVersion, YamuxVersion, "ged" that PeerVersions has
	// is asked for, and used when the peer's please asks for the same (so
	// advertise GoVersions to use them); different asks give "ged".
	NoYamux bool
	// NoCredit leaves CreditVersion out of our ranking, so that a Go peer
	// gets YamuxVersion (kept for comparison and as a fallback).
	NoCredit bool
	// CreditWindow is, in CreditVersion mode, the receive window of each
	// subchannel direction: how many received-but-unread bytes the peer
	// may send before it must wait for us to Read. It bounds the memory
	// one subchannel can hold. Default 4 MiB (YamuxVersion's largest
	// window; smaller windows cost more CPU per byte, see
	// docs/performance.md); at least 256 KiB (the credit every subchannel
	// starts with by protocol), at most 1 GiB.
	CreditWindow int

	// Side is the Dilation side (16 hex digits); random when empty.
	Side string

	// OnStatus, if set, receives status changes. It is called from the
	// Dilation's internal goroutine and must not block or call back into
	// the Dilation.
	OnStatus func(Status)

	// MaxSubchannelBuffer bounds received-but-unread bytes per subchannel
	// in "ged" mode (default 1 MiB). When it is full the connection stops
	// reading, as Python pauses the whole connection. (CreditVersion mode
	// uses CreditWindow instead and never stops reading.)
	MaxSubchannelBuffer int
	// MaxSubchannels bounds the subchannels the PEER has open with us at
	// once (the ones we open with Dial are not counted: their number is
	// ours to choose). A peer subchannel holds a slot from its OPEN,
	// whether accepted, queued for Accept or queued for a subprotocol
	// nobody listens on, until it is fully closed (our CLOSE and the
	// peer's both seen). An OPEN beyond the cap is refused the way Python
	// refuses an OPEN it does not want: we answer with a CLOSE for that
	// id and keep nothing (its DATA is dropped); the other subchannels
	// and the connection are not disturbed. The refusal is logged and
	// counted (RefusedSubchannels); in CreditVersion mode the opener's
	// Read and Write then fail with ErrSubchannelRefused, in "ged" mode
	// the opener reads EOF (Python's meaning of CLOSE), in YamuxVersion
	// mode the stream is reset (go-yamux's MaxIncomingStreams, set to
	// this value). Default 4096; there is no "no limit" (a peer must not
	// be able to grow our memory without bound), set a large value
	// instead.
	//
	// Worst-case memory the peer can make us hold is about
	// MaxSubchannels x (idle cost + the per-subchannel buffer bound). The
	// idle cost is under 2 KiB (TestSubchannelIdleCost: 1.8-1.9 KB for
	// both ends together in ged and credit mode, 3.4 KB in yamux mode);
	// the buffer bound is CreditWindow in CreditVersion mode for an
	// accepted subchannel and 256 KiB (the initial credit) for one not
	// yet accepted,
	// MaxSubchannelBuffer in "ged" mode and the 4 MiB yamux window
	// (max(MaxSubchannelBuffer, 4 MiB)) in YamuxVersion mode. With the
	// defaults, if the application accepts all and reads none of them:
	// 4096 x (2 KiB + 4 MiB) = about 16 GiB in credit and yamux mode (1
	// GiB in credit mode if it accepts none), 4096 x (2 KiB + 1
	// MiB) = about 4 GiB in ged mode; idle, 4096 x 2 KiB = 8 MiB. Lower
	// this (and the window) for peers you do not trust.
	MaxSubchannels int
	// MaxUnacked bounds DATA bytes sent but not acked (default 8 MiB);
	// Write blocks beyond it.
	MaxUnacked int
	// MaxFrame bounds a received L2 frame other than DATA (default 16
	// MiB). DATA frames of any size (Python sends one per write) are
	// decrypted and delivered 65535 bytes at a time.
	MaxFrame int
	// RetryMin and RetryMax bound the backoff between repeated attempts to
	// reach the same hint within one generation (defaults 250 ms and 10 s).
	RetryMin, RetryMax time.Duration
	// HandshakeTimeout bounds dialling plus handshake of one connection
	// attempt (default 30 s).
	HandshakeTimeout time.Duration
	// Dialer is used for outbound TCP (default net.Dialer).
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

// Role is which end of the Dilation this side is.
type Role int

const (
	RoleUnknown Role = iota
	Leader
	Follower
)

func (r Role) String() string {
	switch r {
	case Leader:
		return "leader"
	case Follower:
		return "follower"
	}
	return "unknown"
}

// PeerState is the state of the peer connection.
type PeerState int

const (
	PeerNone         PeerState = iota // waiting for the peer's please
	PeerConnecting                    // first connection being made
	PeerConnected                     // a connection is selected
	PeerReconnecting                  // connection lost, making a new one
	PeerStopped                       // closed
)

func (p PeerState) String() string {
	return [...]string{"no-peer", "connecting", "connected", "reconnecting", "stopped"}[p]
}

// Status is a local status event (py:_status.py DilationStatus).
type Status struct {
	Generation int // connection round, 0 for the first
	Role       Role
	Peer       PeerState
	Via        string    // PeerConnected: how the connection was made
	At         time.Time // when the state was entered
	Err        error     // PeerReconnecting: why the previous connection ended
}

// manager states (py:_dilation/manager.py).
type mstate int

const (
	sWanting mstate = iota
	sConnecting
	sConnected
	sFlushing
	sLonely
	sAbandoning
	sStopping
)

func (s mstate) String() string {
	return [...]string{"WANTING", "CONNECTING", "CONNECTED", "FLUSHING", "LONELY", "ABANDONING", "STOPPING"}[s]
}

// manager events
type event interface{}
type (
	evSig      struct{ rec l1Record }
	evConnMade struct {
		gen int
		c   *conn
	}
	evConnLost struct {
		c   *conn
		err error
	}
)

// Dilation is one side of a dilated wormhole.
type Dilation struct {
	opts   Options
	log    *slog.Logger
	key    []byte
	side   string
	sig    Signaling
	relays []hints.RelayV1
	dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	runDone   chan struct{}
	wg        sync.WaitGroup
	events    chan event

	out *outbound
	in  inbound

	// rbufs recycles the receive buffers subchannels hold DATA in (each
	// rbufSize bytes); Read returns a buffer once it is consumed.
	rbufs sync.Pool

	sendMu   sync.Mutex
	sendQ    [][]byte
	sendKick chan struct{}

	mu          sync.Mutex
	role        Role
	nextID      uint32
	subchannels map[uint32]*Subchannel
	peerOpen    int    // subchannels in subchannels the peer opened
	refused     uint64 // peer OPENs (or yamux streams) refused
	listeners   map[string]*Listener
	pending     map[string][]net.Conn
	connected   chan struct{} // closed at the first selected connection
	fatal       error         // set once, then failed is closed
	failed      chan struct{} // Dial cannot succeed any more
	curDesc     string

	useVersion string         // what our please says
	yamuxMode  bool           // both pleases said YamuxVersion
	creditMode bool           // both pleases said CreditVersion
	yready     chan struct{}  // closed once ysess/yerr are set
	ysess      *yamux.Session // YamuxVersion mode
	yerr       error
	internal   *Listener // Follower: accepts the internal yamux subchannel
}

// Errors of the Dilation API.
var (
	ErrClosed    = errDilationClosed
	ErrListening = errors.New("dilate: subprotocol already has a listener")
	ErrBadKey    = errors.New("dilate: dilation key must be 32 bytes")
	ErrBadSide   = errors.New("dilate: side must be 1-64 word characters")
	// ErrSubchannelRefused is returned (wrapped) by Read and Write on a
	// subchannel we opened that the peer refused (CreditVersion mode; see
	// Options.MaxSubchannels).
	ErrSubchannelRefused = errors.New("dilate: peer refused the subchannel (too many open)")
	errAbandonConn       = errors.New("dilate: abandoning connection (peer asked to reconnect)")
)

// New starts Dilation. key is the dilation key, HKDF(wormhole key,
// "dilation-v1"). New sends our please at once, so call it once both the
// application wants Dilation and the peer's version message arrived (pass
// its can-dilate list in opts.PeerVersions). ctx bounds the whole
// Dilation: cancelling it is like Close.
func New(ctx context.Context, key []byte, sig Signaling, opts Options) (*Dilation, error) {
	if len(key) != 32 {
		return nil, ErrBadKey
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.ListenAddr == "" {
		opts.ListenAddr = ":0"
	}
	if opts.RelayDelay == 0 {
		opts.RelayDelay = 2 * time.Second
	}
	if opts.MaxSubchannelBuffer <= 0 {
		opts.MaxSubchannelBuffer = 1 << 20
	}
	if opts.CreditWindow <= 0 {
		opts.CreditWindow = defaultCreditWindow
	}
	opts.CreditWindow = min(max(opts.CreditWindow, creditInitial), maxCreditWindow)
	if opts.MaxSubchannels <= 0 {
		opts.MaxSubchannels = DefaultMaxSubchannels
	}
	opts.MaxSubchannels = min(opts.MaxSubchannels, maxMaxSubchannels)
	if opts.MaxUnacked <= 0 {
		opts.MaxUnacked = 8 << 20
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = maxFrameDefault
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 250 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(10*time.Second, opts.RetryMin)
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	side := opts.Side
	if side == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		side = hex.EncodeToString(b[:])
	} else if !validSide(side) {
		return nil, ErrBadSide
	}
	var relays []hints.RelayV1
	for _, r := range opts.Relays {
		h, err := hints.ParseRelayLocation(r)
		if err != nil {
			return nil, fmt.Errorf("dilate: relay: %w", err)
		}
		relays = append(relays, h)
	}
	relays = append(relays, opts.RelayHints...)
	useVersion := Version
	ours := GoVersions()
	if opts.NoYamux {
		ours = []string{Version}
	} else if opts.NoCredit {
		ours = []string{YamuxVersion, Version}
	}
	if opts.PeerVersions != nil {
		v, ok := SharedVersion(ours, opts.PeerVersions)
		if !ok {
			// Python still sends a please, without use-version.
			if err := sig.Send(ctx, marshalL1(l1Record{Type: l1Please, Side: side})); err != nil {
				return nil, fmt.Errorf("%w (and sending please failed: %w)", ErrPeerCannotDilate, err)
			}
			return nil, ErrPeerCannotDilate
		}
		useVersion = v
	}
	dctx, cancel := context.WithCancel(ctx)
	d := &Dilation{
		opts: opts, log: opts.Logger, key: append([]byte(nil), key...), side: side, sig: sig,
		relays: relays, dialer: opts.Dialer,
		ctx: dctx, cancel: cancel,
		done: make(chan struct{}), runDone: make(chan struct{}),
		events:      make(chan event),
		out:         newOutbound(opts.MaxUnacked),
		sendKick:    make(chan struct{}, 1),
		subchannels: map[uint32]*Subchannel{},
		listeners:   map[string]*Listener{},
		pending:     map[string][]net.Conn{},
		connected:   make(chan struct{}),
		failed:      make(chan struct{}),
		useVersion:  useVersion,
		yready:      make(chan struct{}),
	}
	if d.dialer == nil {
		d.dialer = &net.Dialer{}
	}
	d.in.d = d
	d.in.highest = -1
	d.in.partialSeq = -1
	d.sendL1(l1Record{Type: l1Please, Side: side, UseVersion: useVersion})
	d.wg.Add(2)
	go d.sendLoop()
	go d.recvLoop()
	go d.run()
	context.AfterFunc(dctx, func() { d.Close() })
	return d, nil
}

// Side is our Dilation side.
func (d *Dilation) Side() string { return d.side }

// Role is Leader or Follower once the peer's please arrived.
func (d *Dilation) Role() Role {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.role
}

// Mode is the Dilation mode agreed with the peer once its please arrived:
// CreditVersion or YamuxVersion when both sides asked for that
// flow-controlled mode, else Version ("ged"); "" before that.
func (d *Dilation) Mode() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.role == RoleUnknown:
		return ""
	case d.creditMode:
		return CreditVersion
	case d.yamuxMode:
		return YamuxVersion
	}
	return Version
}

// FlowControlled reports whether the agreed mode has per-subchannel flow
// control (CreditVersion or YamuxVersion): a subchannel nobody reads then
// never slows the others. Both modes are Go-only, so true also means the
// peer is wormhole-go, whose CLOSE after CloseWrite means "no more data"
// (half-close) rather than "connection gone". False before the peer's
// please arrived and in "ged" mode (Python, fowl).
func (d *Dilation) FlowControlled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.role != RoleUnknown && (d.creditMode || d.yamuxMode)
}

// isCreditMode reports whether CreditVersion mode was agreed.
func (d *Dilation) isCreditMode() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.creditMode
}

// post hands an event to the manager; false if the Dilation is closing.
func (d *Dilation) post(ev event) bool {
	select {
	case d.events <- ev:
		return true
	case <-d.runDone:
		return false
	}
}

func (d *Dilation) sendL1(r l1Record) {
	b := marshalL1(r)
	d.log.Debug("dilate: send L1", "record", string(b))
	d.sendMu.Lock()
	d.sendQ = append(d.sendQ, b)
	d.sendMu.Unlock()
	select {
	case d.sendKick <- struct{}{}:
	default:
	}
}

func (d *Dilation) sendLoop() {
	defer d.wg.Done()
	for {
		d.sendMu.Lock()
		q := d.sendQ
		d.sendQ = nil
		d.sendMu.Unlock()
		for _, b := range q {
			if err := d.sig.Send(d.ctx, b); err != nil {
				if d.ctx.Err() == nil {
					d.log.Warn("dilate: sending L1 record failed", "err", err)
				}
				return
			}
		}
		select {
		case <-d.sendKick:
		case <-d.ctx.Done():
			return
		}
	}
}

func (d *Dilation) recvLoop() {
	defer d.wg.Done()
	for {
		b, err := d.sig.Receive(d.ctx)
		if err != nil {
			if d.ctx.Err() == nil {
				d.log.Warn("dilate: signaling receive ended", "err", err)
			}
			return
		}
		r, err := parseL1(b)
		if err != nil {
			d.log.Warn("dilate: ignoring bad L1 record", "err", err)
			continue
		}
		if !d.post(evSig{rec: r}) {
			return
		}
	}
}

// run is the Manager state machine.
func (d *Dilation) run() {
	defer close(d.runDone)
	var (
		state = sWanting
		role  Role
		gen   = -1
		cn    *connector
		cur   *conn
	)
	status := func(p PeerState, via string, err error) {
		if d.opts.OnStatus != nil {
			d.opts.OnStatus(Status{Generation: max(gen, 0), Role: role, Peer: p, Via: via, At: time.Now(), Err: err})
		}
	}
	setState := func(s mstate) {
		d.log.Debug("dilate: state", "from", state, "to", s, "role", role, "gen", gen)
		state = s
	}
	connect := func() {
		if cn != nil {
			cn.stop()
		}
		gen++
		cn = d.newConnector(gen, role == Leader)
		setState(sConnecting)
		if gen == 0 {
			status(PeerConnecting, "", nil)
		}
		cn.start()
	}
	status(PeerNone, "", nil)
	for {
		var ev event
		select {
		case ev = <-d.events:
		case <-d.done:
			setState(sStopping)
			if cn != nil {
				cn.stop()
			}
			if cur != nil {
				cur.shutdown(errDilationClosed)
			}
			status(PeerStopped, "", nil)
			return
		}
		switch ev := ev.(type) {
		case evSig:
			r := ev.rec
			switch r.Type {
			case l1Please:
				if state != sWanting {
					continue
				}
				if r.Side == d.side {
					d.log.Error("dilate: peer has our side", "side", r.Side)
					d.mu.Lock()
					if d.fatal == nil {
						d.fatal = ErrReflection
						close(d.failed)
					}
					d.mu.Unlock()
					continue
				}
				role = Follower
				if d.side > r.Side {
					role = Leader
				}
				d.mu.Lock()
				d.role = role
				d.nextID = 2
				if role == Leader {
					d.nextID = 1
				}
				d.yamuxMode = d.useVersion == YamuxVersion && r.UseVersion == YamuxVersion
				d.creditMode = d.useVersion == CreditVersion && r.UseVersion == CreditVersion
				if d.yamuxMode && role == Follower {
					d.internal = &Listener{d: d, name: yamuxInternal, notify: make(chan struct{})}
					d.listeners[yamuxInternal] = d.internal
				}
				d.mu.Unlock()
				d.log.Debug("dilate: roles chosen", "role", role, "ours", d.useVersion, "theirs", r.UseVersion)
				connect()
			case l1Hints:
				if state == sConnecting && cn != nil {
					cn.addHints(r.Hints)
				}
			case l1Reconnect:
				if role != Follower {
					continue
				}
				switch state {
				case sLonely:
					d.sendL1(l1Record{Type: l1Reconnecting})
					connect()
				case sConnected:
					setState(sAbandoning)
					if cur.shutdown(errAbandonConn) {
						// Lost now: no evConnLost will come for it.
						cur = nil
						status(PeerReconnecting, "", errAbandonConn)
						d.sendL1(l1Record{Type: l1Reconnecting})
						connect()
					}
				case sConnecting:
					d.sendL1(l1Record{Type: l1Reconnecting})
					connect()
				}
			case l1Reconnecting:
				if role == Leader && state == sFlushing {
					connect()
				}
			default:
				d.log.Debug("dilate: ignoring L1 record", "type", r.Type)
			}
		case evConnMade:
			if state != sConnecting || ev.gen != gen {
				ev.c.nc.Close()
				continue
			}
			cn = nil
			cur = ev.c
			setState(sConnected)
			d.mu.Lock()
			d.curDesc = cur.desc
			first := !isClosed(d.connected)
			if first {
				close(d.connected)
			}
			ymode, internal := d.yamuxMode, d.internal
			d.mu.Unlock()
			if first && ymode {
				d.wg.Add(1)
				go d.startYamux(role, internal)
			}
			cur.start(role == Leader)
			d.log.Info("dilate: connected", "gen", gen, "role", role, "via", cur.desc)
			status(PeerConnected, cur.desc, nil)
		case evConnLost:
			if ev.c != cur {
				continue
			}
			cur = nil
			d.log.Info("dilate: connection lost", "gen", gen, "role", role, "err", ev.err)
			switch {
			case role == Leader && state == sConnected:
				setState(sFlushing)
				d.sendL1(l1Record{Type: l1Reconnect})
			case role == Follower && state == sConnected:
				setState(sLonely)
			case role == Follower && state == sAbandoning:
				d.sendL1(l1Record{Type: l1Reconnecting})
				connect()
			}
			status(PeerReconnecting, "", ev.err)
		}
	}
}

// Close stops everything: connections, listeners, subchannels. Blocked
// calls return errors wrapping net.ErrClosed. It waits for all goroutines.
func (d *Dilation) Close() error {
	first := false
	d.closeOnce.Do(func() {
		first = true
		close(d.done)
		<-d.runDone
		d.cancel()
		d.mu.Lock()
		sess := d.ysess
		d.mu.Unlock()
		if sess != nil {
			sess.Close()
		}
		d.mu.Lock()
		var scs []*Subchannel
		for _, s := range d.subchannels {
			scs = append(scs, s)
		}
		var others []net.Conn
		for _, ps := range d.pending {
			for _, c := range ps {
				if _, ok := c.(*Subchannel); !ok {
					others = append(others, c)
				}
			}
		}
		d.pending = map[string][]net.Conn{}
		var ls []*Listener
		for _, l := range d.listeners {
			ls = append(ls, l)
		}
		d.mu.Unlock()
		for _, s := range scs {
			s.abort()
		}
		for _, c := range others {
			c.Close()
		}
		for _, l := range ls {
			l.Close()
		}
		d.wg.Wait()
	})
	if !first {
		d.wg.Wait()
	}
	return nil
}

func (d *Dilation) waitConnected(ctx context.Context) error {
	select {
	case <-d.connected:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return errDilationClosed
	case <-d.failed:
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.fatal
	}
}

// Dial opens a subchannel for subprotocol. It waits for the first
// connection to the peer (as Python's connector_for().connect() does); the
// OPEN is then queued and, like all data, survives reconnects.
func (d *Dilation) Dial(ctx context.Context, subprotocol string) (net.Conn, error) {
	if err := d.waitConnected(ctx); err != nil {
		return nil, fmt.Errorf("dilate: dial %q: %w", subprotocol, err)
	}
	d.mu.Lock()
	closed, ymode := isClosed(d.done), d.yamuxMode
	d.mu.Unlock()
	if closed {
		return nil, errDilationClosed
	}
	if ymode {
		return d.dialYamux(ctx, subprotocol)
	}
	return d.openSubchannel(subprotocol), nil
}

// openSubchannel allocates an id, registers the subchannel and queues its
// OPEN (ged mode; also the internal yamux subchannel).
func (d *Dilation) openSubchannel(subprotocol string) *Subchannel {
	d.mu.Lock()
	id := d.nextID
	d.nextID += 2
	s := newSubchannel(d, id, subprotocol)
	d.subchannels[id] = s
	d.mu.Unlock()
	_ = d.out.send(false, 0, sendWait{}, func(seq uint32) []byte {
		return appendRecord(nil, record{tag: tagOpen, scid: id, seq: seq, name: subprotocol})
	})
	s.topUpCredit()
	return s
}

// Listen accepts subchannels the peer opens with this subprotocol name,
// including OPENs that arrived before Listen.
func (d *Dilation) Listen(subprotocol string) (net.Listener, error) {
	d.mu.Lock()
	if isClosed(d.done) {
		d.mu.Unlock()
		return nil, errDilationClosed
	}
	if _, ok := d.listeners[subprotocol]; ok {
		d.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrListening, subprotocol)
	}
	l := &Listener{d: d, name: subprotocol, notify: make(chan struct{})}
	d.listeners[subprotocol] = l
	early := d.pending[subprotocol]
	delete(d.pending, subprotocol)
	d.mu.Unlock()
	for _, s := range early {
		if !l.push(s) {
			s.Close()
		}
	}
	return l, nil
}

func (d *Dilation) unlisten(l *Listener) {
	d.mu.Lock()
	if d.listeners[l.name] == l {
		delete(d.listeners, l.name)
	}
	d.mu.Unlock()
}

// forget drops a fully closed subchannel (both CLOSEs seen), freeing its
// MaxSubchannels slot if the peer opened it. Ids are never reused.
func (d *Dilation) forget(id uint32) {
	d.mu.Lock()
	if _, ok := d.subchannels[id]; ok {
		delete(d.subchannels, id)
		if d.peerIDLocked(id) {
			d.peerOpen--
		}
	}
	d.mu.Unlock()
}

// peerIDLocked reports whether id is one the peer allocates (Leader ids
// are odd, Follower ids even); d.mu must be held.
func (d *Dilation) peerIDLocked(id uint32) bool {
	return d.role == Leader && id%2 == 0 || d.role == Follower && id%2 == 1
}

// DefaultMaxSubchannels is Options.MaxSubchannels' default.
const DefaultMaxSubchannels = 4096

// maxMaxSubchannels caps Options.MaxSubchannels (go-yamux counts streams
// in a uint32; beyond this the cap means nothing anyway).
const maxMaxSubchannels = 1 << 24

// RefusedSubchannels is how many subchannels the peer opened that we
// refused so far: beyond Options.MaxSubchannels, or with no room in the
// queue of a subprotocol nobody accepts.
func (d *Dilation) RefusedSubchannels() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused
}

// noteRefused counts and logs one refused peer subchannel. Under a flood
// only the first and every 1024th refusal are logged at Warn.
func (d *Dilation) noteRefused(id uint32, name, why string) {
	d.mu.Lock()
	d.refused++
	n := d.refused
	d.mu.Unlock()
	lvl := slog.LevelDebug
	if n == 1 || n%1024 == 0 {
		lvl = slog.LevelWarn
	}
	d.log.Log(context.Background(), lvl, "dilate: refused a subchannel the peer opened",
		"scid", id, "subprotocol", name, "why", why, "refused", n, "max", d.opts.MaxSubchannels)
}

// refuseOpen answers an OPEN we do not take: a CLOSE for its id, as
// Python does for an unexpected subprotocol (py:_dilation/inbound.py
// handle_open). In CreditVersion mode (Go only) a CREDIT granting 0 bytes,
// never sent otherwise, goes first and tells the opener it was refused
// (older Go peers ignore it), so its Write fails instead of waiting for
// credit that will never come.
func (d *Dilation) refuseOpen(id uint32, name, why string, credit bool) {
	d.noteRefused(id, name, why)
	if credit {
		_ = d.out.send(false, 0, sendWait{}, func(seq uint32) []byte {
			return appendRecord(make([]byte, 0, 13), record{tag: tagCredit, scid: id, seq: seq, grant: 0})
		})
	}
	_ = d.out.send(false, 0, sendWait{}, func(seq uint32) []byte {
		return appendRecord(nil, record{tag: tagClose, scid: id, seq: seq})
	})
}

// inbound is L4's receiving half plus L5 dispatch.
type inbound struct {
	d       *Dilation
	mu      sync.Mutex
	highest int64 // highest processed seqnum, -1 before any

	// A DATA record streamed from a multi-message frame whose connection
	// broke midway: partialDone payload bytes of seq partialSeq were
	// delivered already, so its retransmission skips them.
	partialSeq  int64 // -1 when none
	partialDone int
}

// handleStream processes a DATA record whose payload arrives in pieces:
// first, then whatever more() returns until it reports no more. The
// record counts as processed only once complete. ok is false if the
// Dilation closed.
func (in *inbound) handleStream(scid, seq uint32, first []byte, more func() ([]byte, bool, error)) (ok bool, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	dup := in.highest >= 0 && int32(seq-uint32(in.highest)) <= 0
	skip := 0
	if !dup {
		if in.partialSeq == int64(seq) {
			skip = in.partialDone
			in.d.log.Debug("dilate: resuming a partly delivered record", "seq", seq, "delivered", skip)
		} else {
			in.partialSeq, in.partialDone = int64(seq), 0
		}
	}
	var s *Subchannel
	if !dup {
		in.d.mu.Lock()
		s = in.d.subchannels[scid]
		in.d.mu.Unlock()
	}
	off := 0
	piece := first
	for {
		if !dup && s != nil && off+len(piece) > skip {
			p := piece[max(skip-off, 0):]
			if !s.deliver(p) {
				return false, nil
			}
			in.partialDone = off + len(piece)
		}
		off += len(piece)
		var more_ bool
		piece, more_, err = more()
		if err != nil {
			return true, err
		}
		if !more_ {
			break
		}
	}
	if !dup {
		in.highest = int64(seq)
		in.partialSeq, in.partialDone = -1, 0
	}
	return true, nil
}

// handle processes one OPEN/DATA/CLOSE unless it is a duplicate. It returns
// false if the Dilation closed while delivering.
func (in *inbound) handle(r record) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.highest >= 0 && int32(r.seq-uint32(in.highest)) <= 0 {
		return true // already processed (retransmission)
	}
	in.highest = int64(r.seq)
	d := in.d
	switch r.tag {
	case tagOpen:
		d.remoteOpen(r.scid, r.name)
	case tagData:
		d.mu.Lock()
		s := d.subchannels[r.scid]
		d.mu.Unlock()
		payload := r.payload
		if in.partialSeq == int64(r.seq) {
			payload = payload[min(in.partialDone, len(payload)):]
			in.partialSeq, in.partialDone = -1, 0
		}
		if s == nil {
			d.log.Debug("dilate: DATA for unknown subchannel", "scid", r.scid)
			return true
		}
		return s.deliver(payload)
	case tagClose:
		d.mu.Lock()
		s := d.subchannels[r.scid]
		d.mu.Unlock()
		if s == nil {
			d.log.Debug("dilate: CLOSE for unknown subchannel", "scid", r.scid)
			return true
		}
		s.remoteClose()
	case tagCredit:
		d.mu.Lock()
		s := d.subchannels[r.scid]
		d.mu.Unlock()
		if s != nil {
			s.addCredit(r.grant)
		}
	}
	return true
}

func (d *Dilation) remoteOpen(id uint32, name string) {
	d.mu.Lock()
	if d.subchannels[id] != nil {
		d.mu.Unlock()
		d.log.Debug("dilate: duplicate OPEN", "scid", id)
		return
	}
	if d.role == Leader && id%2 == 1 || d.role == Follower && id%2 == 0 {
		d.mu.Unlock()
		d.log.Warn("dilate: OPEN with one of our own ids", "scid", id)
		return
	}
	if d.peerOpen >= d.opts.MaxSubchannels {
		credit := d.creditMode
		d.mu.Unlock()
		d.refuseOpen(id, name, "MaxSubchannels reached", credit)
		return
	}
	s := newSubchannel(d, id, name)
	d.subchannels[id] = s
	d.peerOpen++
	d.mu.Unlock()
	// No credit top-up yet: a subchannel waiting for Accept (or for a
	// listener) holds at most creditInitial; Accept grants the rest.
	d.deliverInbound(s, name)
}
