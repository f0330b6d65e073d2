package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/tunnel"
)

// fowl's application id and version entry (fowl src/fowl/_proto.py APPID,
// wormhole_from_config): using them lets a fowl peer meet us.
const (
	defaultAppID = "meejah.ca/wormhole/forward"
	fowlFeature  = "core-v1"
)

// peerConfig is everything one side of a tunnel session needs.
type peerConfig struct {
	appID      string
	relayURL   string
	transit    string // "" for none
	code       string // "" allocates
	codeLength int
	forwards   []tunnel.Forward
	noListen   bool
	listenAddr string // Dilation listener (demo: 127.0.0.1:0)

	log     *slog.Logger
	emit    func(tunnel.Event) // serialised by the caller
	onCode  func(code string)
	confirm func(ctx context.Context, verifier string) (bool, error) // --verify
}

// session is one running peer.
type session struct {
	cfg     peerConfig
	w       *wormhole.Wormhole
	dl      *dilate.Dilation
	tun     *tunnel.Tunnel
	mu      sync.Mutex
	via     string
	state   dilate.PeerState
	sentTx  int
	closing chan int // the peer's {"closing": n}
	// stopped is closed when Dilation stops by itself (e.g. the wormhole
	// failed: "mailbox full" after a reconnection storm); stopErr says why.
	stopped   chan struct{}
	stopErr   error
	stopOnce2 sync.Once

	statusCh   chan tunnel.Event // Dilation status, in order, to emit
	statusDone chan struct{}
	stopOnce   sync.Once
}

// statusLoop emits Dilation status events in order (OnStatus must not
// block, so it only queues).
func (s *session) statusLoop(ch <-chan tunnel.Event) {
	defer close(s.statusDone)
	for e := range ch {
		if s.cfg.emit != nil {
			s.cfg.emit(e)
		}
	}
}

func (s *session) stopStatus() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		close(s.statusCh)
		s.statusCh = nil
		s.mu.Unlock()
		<-s.statusDone
	})
}

func (s *session) peer() (dilate.PeerState, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.via
}

// open connects to the mailbox, gets or uses the code, meets the peer,
// dilates and starts nothing else yet.
func open(ctx context.Context, cfg peerConfig) (*session, error) {
	s := &session{cfg: cfg, closing: make(chan int, 1), stopped: make(chan struct{}), statusCh: make(chan tunnel.Event, 256), statusDone: make(chan struct{})}
	go s.statusLoop(s.statusCh)
	w, err := wormhole.New(ctx, wormhole.Options{
		AppID:         cfg.appID,
		RendezvousURL: cfg.relayURL,
		AppVersions:   map[string]any{"fowl": map[string]any{"features": []any{fowlFeature}}},
		// GoVersions ranks our flow-controlled modes (per-subchannel credit,
		// then yamux over the durable stream: an unread forward never
		// stalls the others) before "ged"; fowl and Python peers share only
		// "ged" and get that.
		Dilation: &wormhole.DilationVersion{CanDilate: dilate.GoVersions(), Abilities: abilities()},
		Logger:   cfg.log,
	})
	if err != nil {
		s.stopStatus()
		return nil, &exitError{code: exitNetwork, err: fmt.Errorf("connecting to the mailbox server %s: %w", cfg.relayURL, err)}
	}
	s.w = w
	fail := func(code int, err error) (*session, error) {
		if s.dl != nil {
			s.dl.Close()
		}
		s.stopStatus()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Close(cctx)
		return nil, &exitError{code: code, err: err}
	}
	if wel, err := w.Welcome(ctx); err == nil && cfg.emit != nil {
		cfg.emit(tunnel.Event{Kind: tunnel.EvWelcome, URL: cfg.relayURL, Welcome: toMap(wel.Raw)})
	}
	code := cfg.code
	if code == "" {
		code, err = w.AllocateCode(ctx, cfg.codeLength)
		if err != nil {
			return fail(exitNetwork, fmt.Errorf("allocating a code: %w", err))
		}
	} else if err := w.SetCode(code); err != nil {
		return fail(exitUsage, fmt.Errorf("code %q: %w", code, err))
	}
	if cfg.emit != nil {
		cfg.emit(tunnel.Event{Kind: tunnel.EvCodeAllocated, Code: code})
	}
	if cfg.onCode != nil {
		cfg.onCode(code)
	}
	ver, err := w.Verifier(ctx)
	if err != nil {
		if errors.Is(err, wormhole.ErrWrongPassword) {
			return fail(exitWrongCode, err)
		}
		return fail(exitFor(ctx, err), fmt.Errorf("waiting for the peer: %w", err))
	}
	versions, _ := w.PeerVersions(ctx)
	if cfg.emit != nil {
		cfg.emit(tunnel.Event{Kind: tunnel.EvPeerConnected, Verifier: hex.EncodeToString(ver), Versions: versions})
	}
	if cfg.confirm != nil {
		ok, err := cfg.confirm(ctx, hex.EncodeToString(ver))
		if err != nil || !ok {
			if err == nil {
				err = errors.New("verifier rejected")
			}
			return fail(exitWrongCode, err)
		}
	}
	dopts := dilate.Options{
		Logger:     cfg.log,
		NoListen:   cfg.noListen,
		ListenAddr: cfg.listenAddr,
		OnStatus:   s.onStatus,
	}
	if cfg.transit != "" {
		dopts.Relays = []string{cfg.transit}
	}
	// Dilation's L1 records travel through the mailbox as dilate-N phases.
	dl, err := w.Dilate(ctx, dopts)
	if err != nil {
		return fail(exitFor(ctx, err), fmt.Errorf("dilating: %w", err))
	}
	s.dl = dl
	tun, err := tunnel.New(tunnel.Options{
		Forwards: cfg.forwards, Logger: cfg.log, OnEvent: cfg.emit,
		// Only our flow-controlled mode implies a wh-tunnel peer; fowl and
		// other "ged" peers cannot half-close (see tunnel.Options).
		PeerHalfClose: dl.FlowControlled,
	})
	if err != nil {
		return fail(exitUsage, err)
	}
	s.tun = tun
	return s, nil
}

func (s *session) onStatus(st dilate.Status) {
	s.mu.Lock()
	s.state = st.Peer
	if st.Peer == dilate.PeerConnected {
		s.via = st.Via
	}
	s.mu.Unlock()
	if st.Peer == dilate.PeerStopped {
		s.stopOnce2.Do(func() {
			s.stopErr = st.Err
			close(s.stopped)
		})
	}
	e := tunnel.Event{Kind: tunnel.EvPeerConnection, State: st.Peer.String(), Time: st.At}
	if st.Peer == dilate.PeerConnected {
		e.Hint = st.Via
	}
	if st.Err != nil {
		e.Reason = st.Err.Error()
	}
	s.mu.Lock()
	if s.statusCh != nil {
		select {
		case s.statusCh <- e:
		default: // a stuck consumer loses status lines, never blocks Dilation
		}
	}
	s.mu.Unlock()
}

// receiveLoop watches application messages for fowl's {"closing": n}.
func (s *session) receiveLoop(ctx context.Context) {
	for {
		b, err := s.w.Receive(ctx)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if v, ok := m["closing"]; ok {
			n, _ := v.(float64)
			select {
			case s.closing <- int(n):
			default:
			}
		}
	}
}

// sayClosing sends fowl's {"closing": <next phase>}.
func (s *session) sayClosing(ctx context.Context) error {
	s.mu.Lock()
	n := s.sentTx
	s.sentTx++
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"closing": n})
	return s.w.Send(ctx, b)
}

// close tears down in order: tunnel (by the caller's ctx), dilation,
// wormhole.
func (s *session) close(timeout time.Duration) error {
	if s.dl != nil {
		s.dl.Close()
	}
	s.stopStatus()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.w.Close(ctx)
}

func abilities() []map[string]any {
	var out []map[string]any
	for _, a := range dilate.Abilities() {
		m := map[string]any{}
		for k, v := range a {
			m[k] = v
		}
		out = append(out, m)
	}
	return out
}

func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func exitFor(ctx context.Context, err error) int {
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, wormhole.ErrWrongPassword):
		return exitWrongCode
	case errors.Is(err, dilate.ErrPeerCannotDilate):
		return exitPeer
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return exitNetwork
	}
	return exitFailure
}
