package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("server: closed")

// Defaults used for zero Options fields.
const (
	DefaultPruneInterval      = 5 * time.Minute
	DefaultChannelExpiration  = 11 * time.Minute
	DefaultMaxConnections     = 10000
	DefaultMaxMessageSize     = 1 << 20
	DefaultMaxMailboxMessages = 1000
	DefaultMaxMailboxBytes    = 16 << 20
	DefaultMaxMailboxes       = 100000
	DefaultPingInterval       = 60 * time.Second
	DefaultPingTimeout        = 60 * time.Second
	DefaultWriteTimeout       = 60 * time.Second
	DefaultReadHeaderTimeout  = 10 * time.Second
)

// HashcashOptions makes the server require a hashcash stamp before bind.
type HashcashOptions struct {
	Bits     int    // required leading zero bits of SHA-1(stamp)
	Resource string // resource string the stamp must name (no ':')
}

// Options configures a Server. The zero value serves an in-memory mailbox
// that behaves like the reference server's defaults.
type Options struct {
	// Store holds state. Nil means a new MemoryStore owned (and closed) by
	// the server; a Store passed in is not closed by Server.Close.
	Store Store
	// Logger receives operational logs. Nil means silent.
	Logger *slog.Logger

	// MOTD, Error and AdvertiseVersion fill the welcome message's motd,
	// error and current_cli_version keys when non-empty.
	MOTD             string
	Error            string
	AdvertiseVersion string
	// DisallowList makes "list" return no nameplates (reference:
	// --disallow-list). The default allows listing.
	DisallowList bool
	// Hashcash, when set, advertises permission-required and requires a
	// valid submit-permissions (or submit-permission) before bind.
	Hashcash *HashcashOptions
	// TrustProxyHeaders makes welcome's your-address use the X-Real-IP and
	// X-Real-Port request headers when present (set by a reverse proxy).
	TrustProxyHeaders bool

	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// PruneInterval is how often abandoned channels are pruned
	// (default 5m); negative disables the timer (call Prune yourself).
	PruneInterval time.Duration
	// ChannelExpiration is how long a mailbox may go without activity or a
	// connected subscriber before pruning deletes it (default 11m).
	ChannelExpiration time.Duration
	// BlurUsage rounds the start times in usage records down to a multiple
	// of it (reference: --blur-usage). Zero keeps exact times.
	BlurUsage time.Duration

	// MaxConnections caps concurrent WebSocket connections; more get HTTP
	// 503 (default 10000, negative for no cap).
	MaxConnections int
	// MaxMessageSize is the WebSocket read limit in bytes (default 1 MiB).
	// A larger frame closes the connection with status 1009.
	MaxMessageSize int64
	// MaxMailboxMessages and MaxMailboxBytes bound one mailbox's queue
	// (defaults 1000 and 16 MiB of bodies); an add beyond them gets the
	// error "mailbox full".
	MaxMailboxMessages int
	MaxMailboxBytes    int64
	// MaxMailboxes caps the mailboxes that exist at once (all apps). A
	// claim, allocate or open that would create one more gets the error
	// "too many mailboxes" (default 100000, negative for no cap). With the
	// connection cap and pruning this bounds the state an attacker can
	// create.
	MaxMailboxes int
	// MaxQueueBytes bounds the bytes waiting to be written to one
	// connection; a client that does not read is disconnected when it is
	// exceeded (default 2*MaxMailboxBytes + 4*MaxMessageSize).
	MaxQueueBytes int64
	// PingInterval and PingTimeout control WebSocket keepalive pings
	// (defaults 60s, 60s; negative interval disables pings). A peer that
	// does not answer is disconnected.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// WriteTimeout bounds one frame write (default 60s).
	WriteTimeout time.Duration
	// ReadHeaderTimeout is used by Serve's http.Server (default 10s), so
	// half-open TCP connections that never send a request are dropped.
	ReadHeaderTimeout time.Duration
}

// Server is a mailbox server. It is an http.Handler serving "/" and "/v1".
type Server struct {
	opts      Options
	store     Store
	ownsStore bool
	log       *slog.Logger
	now       func() time.Time
	rebooted  float64
	welcome   map[string]any
	// pendingVersions are client versions from binds, written with the
	// next store transaction (mu).
	pendingVersions []ClientVersion
	// welcomeJSON is welcome encoded (json.Marshal).
	welcomeJSON []byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu serialises all protocol state changes (like the reference
	// server's single-threaded reactor).
	mu        sync.Mutex
	closed    bool
	conns     map[*conn]struct{}
	listeners map[mailboxKey]map[*conn]struct{}
	https     []*http.Server
	addr      net.Addr
	spent     map[string]time.Time // hashcash stamps already used

	// Scratch buffers for the connections' read-ahead and coalesced
	// writes (*[]byte), held only during one read or write.
	readBufs, writeBufs sync.Pool
}

// readAheadSize is the most one read-ahead takes from a socket.
const readAheadSize = 4 << 10

// maxPendingVersions bounds the client versions waiting for a store
// transaction.
const maxPendingVersions = 256

// update runs fn in a store transaction, after writing the pending client
// versions. Called with mu held.
func (s *Server) update(ctx context.Context, fn func(Tx) error) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		for _, v := range s.pendingVersions {
			if err := tx.AddClientVersion(v); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if err == nil {
		clear(s.pendingVersions)
		s.pendingVersions = s.pendingVersions[:0]
	}
	return err
}

// maxSpentStamps bounds the replay-protection memory for hashcash stamps.
const maxSpentStamps = 100000

type mailboxKey struct{ app, id string }

// New creates a Server. It starts the prune timer; call Close to stop it.
func New(opts Options) (*Server, error) {
	if opts.Hashcash != nil {
		if opts.Hashcash.Bits < 0 || opts.Hashcash.Bits > 160 {
			return nil, fmt.Errorf("server: hashcash bits %d out of range", opts.Hashcash.Bits)
		}
		for _, r := range opts.Hashcash.Resource {
			if r == ':' {
				return nil, errors.New("server: hashcash resource must not contain ':'")
			}
		}
	}
	if opts.PruneInterval == 0 {
		opts.PruneInterval = DefaultPruneInterval
	}
	if opts.ChannelExpiration <= 0 {
		opts.ChannelExpiration = DefaultChannelExpiration
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.MaxMailboxMessages <= 0 {
		opts.MaxMailboxMessages = DefaultMaxMailboxMessages
	}
	if opts.MaxMailboxBytes <= 0 {
		opts.MaxMailboxBytes = DefaultMaxMailboxBytes
	}
	if opts.MaxMailboxes == 0 {
		opts.MaxMailboxes = DefaultMaxMailboxes
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = 2*opts.MaxMailboxBytes + 4*opts.MaxMessageSize
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	s := &Server{
		opts:      opts,
		store:     opts.Store,
		log:       opts.Logger,
		now:       opts.Clock,
		conns:     make(map[*conn]struct{}),
		listeners: make(map[mailboxKey]map[*conn]struct{}),
		spent:     make(map[string]time.Time),
	}
	s.readBufs.New = func() any { b := make([]byte, readAheadSize); return &b }
	s.writeBufs.New = func() any { b := make([]byte, 0, 4<<10); return &b }
	if s.store == nil {
		s.store = NewMemoryStore()
		s.ownsStore = true
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.rebooted = s.nowF()
	s.welcome = map[string]any{}
	if opts.MOTD != "" {
		s.welcome["motd"] = opts.MOTD
	}
	if opts.Error != "" {
		s.welcome["error"] = opts.Error
	}
	if opts.AdvertiseVersion != "" {
		s.welcome["current_cli_version"] = opts.AdvertiseVersion
	}
	if h := opts.Hashcash; h != nil {
		s.welcome["permission-required"] = map[string]any{
			"hashcash": map[string]any{"bits": h.Bits, "resource": h.Resource},
		}
	}
	var err error
	if s.welcomeJSON, err = json.Marshal(s.welcome); err != nil {
		return nil, fmt.Errorf("server: encode welcome: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if opts.PruneInterval > 0 {
		s.wg.Add(1)
		go s.pruneLoop()
	}
	return s, nil
}

// nowF is the current time as float Unix seconds.
func (s *Server) nowF() float64 {
	t := s.now()
	return float64(t.UnixNano()) / 1e9
}

// ServeHTTP serves "/" (the text "Wormhole Relay\n") and the WebSocket at
// "/v1"; other paths get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("Wormhole Relay\n"))
	case "/v1":
		s.serveWebSocket(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Serve accepts HTTP connections on l until Close. It returns
// ErrServerClosed after Close, or the listener's error.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout:       s.opts.ReadHeaderTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.https = append(s.https, hs)
	s.addr = l.Addr()
	s.mu.Unlock()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Addr is the address of the listener most recently passed to Serve, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the WebSocket URL ("ws://host:port/v1") of the listener most
// recently passed to Serve, or "" before Serve.
func (s *Server) URL() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	return WebSocketURL(a.String())
}

// WebSocketURL turns a listening address ("127.0.0.1:4000", "[::]:4000",
// ":4000") into the URL a client on the same host uses.
func WebSocketURL(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "ws://" + hostport + "/v1"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "ws://" + net.JoinHostPort(host, port) + "/v1"
}

// Close stops accepting connections, disconnects every client, stops the
// prune timer and waits for all the server's goroutines. It closes the
// Store only if the server created it.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	https := s.https
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, hs := range https {
		if err := hs.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range conns {
		c.kill()
	}
	s.wg.Wait()
	s.mu.Lock()
	if err := s.update(context.Background(), func(Tx) error { return nil }); err != nil && !errors.Is(err, ErrStoreClosed) {
		errs = append(errs, err)
	}
	s.mu.Unlock()
	if s.ownsStore {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Store returns the server's store (for operators and tests reading usage).
func (s *Server) Store() Store { return s.store }

// Connections reports the number of open WebSocket connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) pruneLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.Prune(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Error("prune failed", "err", err)
			}
		}
	}
}
