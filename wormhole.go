// Package wormhole is a Go implementation of the magic-wormhole client
// protocol, wire-compatible with the Python magic-wormhole library.
//
// A Wormhole connects to a mailbox (rendezvous) server, gets or is given a
// code like "7-opulent-preclude", runs SPAKE2 with the peer that knows the
// same code, and then exchanges encrypted, ordered messages with it:
//
//	w, err := wormhole.New(ctx, wormhole.Options{AppID: appID, RendezvousURL: url})
//	code, err := w.AllocateCode(ctx, 2)      // or w.SetCode / w.InputCode
//	err = w.Send(ctx, []byte("hello"))
//	msg, err := w.Receive(ctx)
//	err = w.Close(ctx)                       // nil only if the peer was met
//
// The sequencing follows the Python library (wormhole/_boss.py and
// friends): the PAKE message is sent as soon as the code is known, the
// version message as soon as the key is computed, application messages are
// held until the first peer message decrypts, and any decryption failure
// closes the wormhole with mood "scary" and ErrWrongPassword.
//
// Every blocking method takes a context.Context. Alternatively, with
// Options.Events, everything is delivered as one ordered stream of Events
// (both modes run the same state machine: empty, lonely, happy, closing,
// closed).
//
// Other entry points: InputCode for typing a code with completion,
// TranscribeInitiate/TranscribeRespond for a one-blob exchange, Dilate for
// Dilation (advertised with Options.Dilation), and Timing for a
// --dump-timing style trace.
package wormhole

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/pake"
)

// State is the wormhole's top-level state, as in Python's Boss.
type State int

// The states, in the only order they can be visited.
const (
	StateEmpty   State = iota // no code yet
	StateLonely               // code known, no peer message decrypted yet
	StateHappy                // a peer message decrypted: the peer has the same code
	StateClosing              // closing: releasing nameplate, closing mailbox
	StateClosed               // closed; every goroutine has ended
)

func (s State) String() string {
	switch s {
	case StateEmpty:
		return "empty"
	case StateLonely:
		return "lonely"
	case StateHappy:
		return "happy"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Wormhole is one magic-wormhole connection to one peer. Its methods are
// safe for concurrent use. It must be closed with Close.
type Wormhole struct {
	opts   Options
	log    *slog.Logger
	rand   io.Reader
	side   string
	mb     mailboxClient
	timing timingLog

	ctx         context.Context // ends every goroutine; cancelled at the end of closing or by abort
	cancel      context.CancelFunc
	claimCtx    context.Context // ends the claimer; cancelled when closing starts
	claimCancel context.CancelFunc
	claimerDone chan struct{}
	wg          sync.WaitGroup // every goroutine but the terminator and event dispatcher
	evWG        sync.WaitGroup
	closedCh    chan struct{} // closed once StateClosed is reached
	aborted     bool          // Close's context expired

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change (under mu)
	state   State
	result  error // the closing result: nil (happy) or the error

	// code and nameplate
	codeStarted    bool
	allocRequested bool
	allocLen       int
	nameplate      string
	code           string
	claimTried     bool
	claimed        bool
	wordlistReady  bool
	mailbox        string // known after claim
	mailboxOpen    bool   // Open returned: adds may flow
	releaseStarted bool
	releaseDone    chan struct{}
	input          *CodeInput
	welcome        *Welcome

	// key
	sp         *pake.SPAKE2
	peerPake   []byte // the peer's PAKE message, stashed until our code is known
	gotPake    bool
	key        []byte
	preKey     []inbound // non-pake peer messages that came before the key
	verified   bool
	verifier   []byte
	peerVers   *peerVersions
	nextTx     int
	nextTxDil  int
	held       []outMsg // app and dilate messages waiting for verification (plaintext)
	out        []outMsg // messages for the sender (bodies final)
	senderDone bool     // the sender goroutine stopped (out will not drain)

	// receive
	rx      map[int][]byte
	nextRx  int
	recvQ   [][]byte
	rxDil   map[int][]byte
	nextDil int
	dilQ    [][]byte

	ev *eventQueue

	dilateMu sync.Mutex       // serialises Dilate
	dilation *dilate.Dilation // guarded by mu
}

// outMsg is one message for the mailbox.
type outMsg struct {
	phase string
	body  []byte        // plaintext while held, wire body once in out
	done  chan struct{} // closed when the server accepted it; may be nil
}

// New connects to the mailbox server and returns a Wormhole ready for
// AllocateCode, SetCode or InputCode. ctx bounds only the initial
// connection; a failure there wraps the mailbox client's connection error.
// Later server restarts are survived by reconnecting.
func New(ctx context.Context, opts Options) (*Wormhole, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	w := &Wormhole{
		opts:        opts,
		log:         opts.logger(),
		rand:        opts.rand(),
		changed:     make(chan struct{}),
		closedCh:    make(chan struct{}),
		claimerDone: make(chan struct{}),
		rx:          map[int][]byte{},
		rxDil:       map[int][]byte{},
	}
	var sb [5]byte
	if _, err := io.ReadFull(w.rand, sb[:]); err != nil {
		return nil, fmt.Errorf("wormhole: generating side: %w", err)
	}
	w.side = hex.EncodeToString(sb[:])
	w.log = w.log.With("side", w.side)
	if opts.Events {
		w.ev = newEventQueue()
	}
	ti := w.timing.add("open", map[string]any{"side": w.side, "appid": opts.AppID})
	newMB := opts.newMailbox
	if newMB == nil {
		newMB = newRendezvousMailbox
	}
	mb, err := newMB(ctx, w.side, &w.opts)
	if err != nil {
		return nil, err
	}
	w.timing.finish(ti, nil)
	w.mb = mb
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.claimCtx, w.claimCancel = context.WithCancel(w.ctx)
	w.wg.Add(4)
	go w.welcomer()
	go w.claimer()
	go w.sender()
	go w.reader()
	if w.ev != nil {
		w.evWG.Add(1)
		go w.dispatch()
	}
	return w, nil
}

// Side is this wormhole's random mailbox side (10 hex digits).
func (w *Wormhole) Side() string { return w.side }

// State returns the current state.
func (w *Wormhole) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// Events returns the ordered event stream (nil unless Options.Events). It
// is closed after the ClosedEvent; drain it until then.
func (w *Wormhole) Events() <-chan Event {
	if w.ev == nil {
		return nil
	}
	return w.ev.ch
}

// Timing returns a copy of the protocol timing trace so far.
func (w *Wormhole) Timing() []TimingEvent { return w.timing.snapshot() }

// AllocateCode asks the server for a free nameplate, appends length random
// words (2 is usual) and returns the code. The code is also available from
// Code. If ctx ends first, allocation still proceeds in the background.
func (w *Wormhole) AllocateCode(ctx context.Context, length int) (string, error) {
	if length < 0 {
		return "", fmt.Errorf("wormhole: code length %d < 0", length)
	}
	w.mu.Lock()
	if w.codeStarted {
		w.mu.Unlock()
		return "", ErrOnlyOneCode
	}
	if w.state >= StateClosing {
		err := w.closedErrLocked()
		w.mu.Unlock()
		return "", err
	}
	w.codeStarted = true
	w.allocRequested = true
	w.allocLen = length
	w.bumpLocked()
	w.mu.Unlock()
	return w.Code(ctx)
}

// SetCode sets a code the user already has, e.g. "7-opulent-preclude". The
// nameplate (the part before the first "-") must be numeric; the words are
// not checked, so any "NNN-anything" works (offline codes).
func (w *Wormhole) SetCode(code string) error {
	if err := validateCode(code); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.codeStarted {
		return ErrOnlyOneCode
	}
	if w.state >= StateClosing {
		return w.closedErrLocked()
	}
	w.codeStarted = true
	nameplate, _, _ := strings.Cut(code, "-")
	w.nameplate = nameplate
	w.gotCodeLocked(code)
	return nil
}

// Code waits for the code (from AllocateCode, SetCode or InputCode).
func (w *Wormhole) Code(ctx context.Context) (string, error) {
	return waitFor(ctx, w, func() (string, bool) { return w.code, w.code != "" })
}

// Welcome waits for the mailbox server's welcome message.
func (w *Wormhole) Welcome(ctx context.Context) (Welcome, error) {
	return waitFor(ctx, w, func() (Welcome, bool) {
		if w.welcome == nil {
			return Welcome{}, false
		}
		return *w.welcome, true
	})
}

// UnverifiedKey waits for the shared key, available once the PAKE finished
// and before the peer proved it has the same key.
func (w *Wormhole) UnverifiedKey(ctx context.Context) ([]byte, error) {
	return waitFor(ctx, w, func() ([]byte, bool) { return clone(w.key), w.key != nil })
}

// Verifier waits until the first peer message decrypted and returns the
// verifier (32 bytes) that both sides can compare out of band.
func (w *Wormhole) Verifier(ctx context.Context) ([]byte, error) {
	return waitFor(ctx, w, func() ([]byte, bool) { return clone(w.verifier), w.verifier != nil })
}

// PeerVersions waits for the peer's version message and returns its
// app_versions ({} if it sent none).
func (w *Wormhole) PeerVersions(ctx context.Context) (map[string]any, error) {
	return waitFor(ctx, w, func() (map[string]any, bool) {
		if w.peerVers == nil {
			return nil, false
		}
		return w.peerVers.app, true
	})
}

// Receive waits for the next application message from the peer (phases
// "0", "1", ... in order). Messages that arrived before the wormhole closed
// are still returned after it closed; then it returns the close error
// (ErrClosed after a happy close).
func (w *Wormhole) Receive(ctx context.Context) ([]byte, error) {
	if w.ev != nil {
		return nil, ErrEventsMode
	}
	return waitQueue(ctx, w, &w.recvQ)
}

// Send queues body as the next application message and waits until it was
// handed to the mailbox client, which sends it (again after every
// reconnect) until the server stored it. Messages are held until the peer
// proved it knows the code (the first peer message decrypted), so Send
// blocks at least that long. If ctx ends first the message stays queued
// and is still sent, in order. Bodies are delivered whole, once, and in
// order. A happy Close flushes every message Send has queued.
func (w *Wormhole) Send(ctx context.Context, body []byte) error {
	return w.send(ctx, false, body)
}

// DeriveKey derives a key for another purpose from the shared key, equal
// to Python's w.derive_key(purpose, length).
func (w *Wormhole) DeriveKey(purpose string, length int) ([]byte, error) {
	if length <= 0 || length > 255*32 {
		return nil, fmt.Errorf("wormhole: DeriveKey length %d out of range", length)
	}
	w.mu.Lock()
	key := w.key
	w.mu.Unlock()
	if key == nil {
		return nil, ErrNoKey
	}
	return pake.DeriveKey(key, string(pake.NFC(purpose)), length), nil
}

// Close closes the wormhole: it releases the nameplate, closes the mailbox
// with a mood, disconnects, and waits for every goroutine to end. It
// returns nil if the peer was met (happy); otherwise ErrLonely,
// ErrWrongPassword, a *WelcomeError, a *ServerError or the error that
// stopped the wormhole. If ctx ends first, Close stops without waiting for
// the server and returns the result joined with ctx's error. Closing
// twice returns the same result.
func (w *Wormhole) Close(ctx context.Context) error {
	w.mu.Lock()
	switch w.state {
	case StateEmpty, StateLonely:
		w.startCloseLocked("lonely", ErrLonely)
	case StateHappy:
		w.startCloseLocked("happy", nil)
	}
	w.mu.Unlock()
	var ctxErr error
	select {
	case <-w.closedCh:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		w.abort()
		<-w.closedCh
	}
	w.mu.Lock()
	res := w.result
	w.mu.Unlock()
	if ctxErr != nil {
		return errors.Join(res, fmt.Errorf("wormhole: close interrupted: %w", ctxErr))
	}
	return res
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
