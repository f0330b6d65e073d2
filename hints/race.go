package hints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Errors reported inside a RaceError.
var (
	// ErrNoCandidates: the plan was empty and there was no listener.
	ErrNoCandidates = errors.New("hints: no usable connection hints")
	// ErrLostRace: the attempt finished after another one had won.
	ErrLostRace = errors.New("hints: another connection won the race")
)

// AttemptError is one failed candidate of a race.
type AttemptError struct {
	Candidate Candidate
	Err       error
}

func (e AttemptError) Error() string { return e.Candidate.String() + ": " + e.Err.Error() }
func (e AttemptError) Unwrap() error { return e.Err }

// RaceError is the single error Race returns when no attempt succeeded. It
// names every candidate that was started or skipped and why it failed.
// errors.Is/As see the cause (Err) and every attempt's error.
type RaceError struct {
	Attempts []AttemptError
	// Err is why the race as a whole ended: ErrNoCandidates, the context's
	// error, or nil when every attempt simply failed.
	Err error
}

func (e *RaceError) Error() string {
	var b strings.Builder
	b.WriteString("hints: no connection")
	if e.Err != nil {
		b.WriteString(" (")
		b.WriteString(e.Err.Error())
		b.WriteString(")")
	}
	if len(e.Attempts) > 0 {
		fmt.Fprintf(&b, "; %d attempt(s) failed: ", len(e.Attempts))
		for i, a := range e.Attempts {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(a.Error())
		}
	}
	return b.String()
}

// Unwrap returns the race-level cause followed by every attempt's error.
func (e *RaceError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts)+1)
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

// Attempt is one running attempt, handed to the Accepter.
type Attempt struct {
	Candidate Candidate
	claim     func() bool
	claimed   bool
}

// Claim makes this attempt the winner if no other attempt has won yet and
// reports whether it did. An Accepter that must act on the decision (the
// Transit sender writes "go\n" or "nevermind\n") calls it itself; otherwise
// Race claims when the Accepter returns nil. Calling it again returns the
// first answer.
func (a *Attempt) Claim() bool {
	if !a.claimed {
		a.claimed = a.claim()
		if !a.claimed {
			a.claim = func() bool { return false }
		}
	}
	return a.claimed
}

// Dialer opens a connection for a candidate. It must give up when ctx is
// done.
type Dialer func(ctx context.Context, c Candidate) (net.Conn, error)

// Accepter runs the protocol handshake on a fresh connection (relay
// handshake, transit handshake...). Race closes conn when ctx is cancelled,
// so blocking reads return. Returning nil means the connection is ready to
// use. The Accepter must not close conn; Race does on failure.
type Accepter func(ctx context.Context, a *Attempt, conn net.Conn) error

// RaceOptions are the optional parts of a race.
type RaceOptions struct {
	// Inbound delivers connections accepted by our own listener; each
	// one runs the Accepter like a dialed connection. While Inbound is
	// open the race does not give up when every outbound attempt failed
	// (the peer may still connect to us); it ends when Inbound is closed
	// or ctx is done. Race stops reading it when it returns.
	Inbound <-chan net.Conn
	// Logger gets one debug line per attempt. nil: silent.
	Logger *slog.Logger
}

// Winner is the result of a successful race.
type Winner struct {
	Conn      net.Conn
	Candidate Candidate
}

type attemptResult struct {
	c       Candidate
	conn    net.Conn
	err     error
	claimed bool
}

// Race starts every candidate of plan at its delay (and every inbound
// connection as it arrives), runs accept on each connection, and returns the
// first one that completes (claims) its handshake. The losers are cancelled
// through their context, their connections closed, and Race waits for all of
// them before it returns: no goroutine outlives the call. If nothing
// succeeds it returns a *RaceError.
func Race(ctx context.Context, plan []Candidate, dial Dialer, accept Accepter, o RaceOptions) (Winner, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	won := false
	claim := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if won {
			return false
		}
		won = true
		return true
	}

	results := make(chan attemptResult)
	start := func(c Candidate, conn net.Conn) {
		go func() {
			r := runAttempt(ctx, c, conn, dial, accept, claim)
			if r.err != nil {
				log.Debug("connection attempt failed", "candidate", c.String(), "err", r.err)
			} else {
				log.Debug("connection attempt succeeded", "candidate", c.String())
			}
			results <- r
		}()
	}
	for _, c := range plan {
		start(c, nil)
	}
	pending := len(plan)
	inbound := o.Inbound

	var (
		winner   *attemptResult
		failures []AttemptError
		cause    error
	)
	ctxDone := ctx.Done()
	for pending > 0 || (inbound != nil && winner == nil && cause == nil) {
		select {
		case r := <-results:
			pending--
			if r.err == nil && winner == nil {
				winner = &r
				cancel() // stop the losers
				continue
			}
			if r.err == nil { // cannot happen: only one claim succeeds
				r.conn.Close()
				r.err = ErrLostRace
			}
			if winner == nil || !errors.Is(r.err, context.Canceled) {
				failures = append(failures, AttemptError{r.c, r.err})
			}
			if r.claimed && winner == nil && cause == nil {
				// The winner died after claiming; nobody else can win.
				cause = r.err
				cancel()
			}
		case conn, ok := <-inbound:
			if !ok {
				inbound = nil
				continue
			}
			if winner != nil || cause != nil {
				conn.Close()
				continue
			}
			pending++
			start(Candidate{Inbound: true, Hint: hintFromAddr(conn.RemoteAddr())}, conn)
		case <-ctxDone:
			ctxDone = nil
			if winner == nil && cause == nil {
				cause = context.Cause(ctx)
				if cause == nil {
					cause = ctx.Err()
				}
			}
			inbound = nil
		}
	}
	if winner != nil {
		return Winner{Conn: winner.conn, Candidate: winner.c}, nil
	}
	if cause == nil && len(failures) == 0 {
		cause = ErrNoCandidates
	}
	return Winner{}, &RaceError{Attempts: failures, Err: cause}
}

func runAttempt(ctx context.Context, c Candidate, conn net.Conn, dial Dialer, accept Accepter, claim func() bool) (r attemptResult) {
	r.c = c
	if conn == nil {
		if c.Delay > 0 {
			t := time.NewTimer(c.Delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				r.err = fmt.Errorf("not started: %w", ctx.Err())
				return r
			}
		}
		var err error
		conn, err = dial(ctx, c)
		if err != nil {
			r.err = err
			return r
		}
		if conn == nil {
			r.err = errors.New("dialer returned no connection")
			return r
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	a := &Attempt{Candidate: c, claim: claim}
	err := accept(ctx, a, conn)
	if err == nil && !a.Claim() {
		err = ErrLostRace
	}
	r.claimed = a.claimed
	if !stop() {
		// ctx was cancelled and conn is (being) closed.
		if err == nil || ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
	}
	if err != nil {
		conn.Close()
		r.err = err
		return r
	}
	r.conn = conn
	return r
}

func hintFromAddr(a net.Addr) Hint {
	if ta, ok := a.(*net.TCPAddr); ok {
		return DirectTCPV1{Hostname: ta.IP.String(), Port: ta.Port}
	}
	if a == nil {
		return Unknown{Type: "inbound"}
	}
	return Unknown{Type: a.Network() + ":" + a.String()}
}
