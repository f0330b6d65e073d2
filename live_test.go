package wormhole

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// These tests run two Go wormholes through our own mailbox server
// (rendezvous/server via mailboxtest) over real WebSockets on loopback.

func TestGoGoExchange(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	oa := liveOpts(srv.URL())
	oa.AppVersions = map[string]any{"me": "a"}
	a := mustNew(t, ctx, oa)
	b := mustNew(t, ctx, liveOpts(srv.URL()))
	if _, err := a.Welcome(ctx); err != nil {
		t.Fatal(err)
	}
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetCode(code); err != nil {
		t.Fatal(err)
	}
	checkExchange(t, ctx, a, b, 10)
	if v, _ := b.PeerVersions(ctx); v["me"] != "a" {
		t.Fatalf("versions %v", v)
	}
	// Restart our server mid-exchange, too.
	srv.Restart()
	checkExchange(t, ctx, a, b, 3)
	for _, w := range []*Wormhole{a, b} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The timing trace covers the protocol steps and encodes as JSON.
	names := map[string]bool{}
	for _, e := range a.Timing() {
		names[e.Name] = true
		if _, err := e.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"open", "welcome", "allocate", "claim", "code", "pake1", "pake2", "verified", "release", "close", "close mailbox", "closed"} {
		if !names[n] {
			t.Errorf("timing lacks %q: %v", n, names)
		}
	}
}

func TestGoGoWrongCode(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	a := mustNew(t, ctx, liveOpts(srv.URL()))
	b := mustNew(t, ctx, liveOpts(srv.URL()))
	if err := a.SetCode("77-one-thing"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetCode("77-another-thing"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*Wormhole{a, b} {
		go func() { _ = w.Send(ctx, []byte("never")) }()
	}
	for _, w := range []*Wormhole{a, b} {
		if m, err := w.Receive(ctx); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("receive %q %v", m, err)
		}
		if err := w.Close(ctx); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("close %v", err)
		}
		if w.State() != StateClosed {
			t.Fatal(w.State())
		}
	}
}

func TestGoGoInputCompletion(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	a := mustNew(t, ctx, liveOpts(srv.URL()))
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	np, words, _ := strings.Cut(code, "-")
	w1, w2, _ := strings.Cut(words, "-")

	b := mustNew(t, ctx, liveOpts(srv.URL()))
	in, err := b.InputCode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.WordCompletions(""); !errors.Is(err, ErrMustChooseNameplateFirst) {
		t.Fatal(err)
	}
	if _, err := in.RefreshNameplates(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := in.NameplateCompletions(np[:1])
	if err != nil || !slices.Contains(c, np+"-") {
		t.Fatalf("nameplate completions %q %v", c, err)
	}
	if c, _ := in.NameplateCompletions("x"); len(c) != 0 {
		t.Fatalf("completions for x: %q", c)
	}
	if err := in.ChooseNameplate(np); err != nil {
		t.Fatal(err)
	}
	if err := in.WhenWordlistAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = in.WordCompletions(w1[:1])
	if err != nil || !slices.Contains(c, w1+"-") {
		t.Fatalf("first word completions %q %v", c, err)
	}
	c, err = in.WordCompletions(w1 + "-" + w2[:2])
	if err != nil || !slices.Contains(c, w1+"-"+w2) {
		t.Fatalf("second word completions %q %v", c, err)
	}
	if err := in.ChooseWords(w1 + "-" + w2); err != nil {
		t.Fatal(err)
	}
	checkExchange(t, ctx, a, b, 2)
	for _, w := range []*Wormhole{a, b} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var input bool
	for _, e := range b.Timing() {
		if e.Name == "input code" && !e.Stop.IsZero() {
			input = true
		}
	}
	if !input {
		t.Error("no finished 'input code' timing event")
	}
}

func TestGoGoEvents(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	oa := liveOpts(srv.URL())
	oa.Events = true
	ob := oa
	ob.AppVersions = map[string]any{"b": 1.0}
	a := mustNew(t, ctx, oa)
	b := mustNew(t, ctx, ob)
	if _, err := a.AllocateCode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	type result struct {
		kinds []string
		msgs  []string
		err   error
	}
	// Safety net: if the exchange stalls, closing both wormholes ends both
	// event streams so the test fails with what it saw instead of hanging.
	stop := context.AfterFunc(ctx, func() {
		_ = a.Close(context.Background())
		_ = b.Close(context.Background())
	})
	defer stop()
	run := func(w *Wormhole, peerName string, out chan<- result) {
		var r result
		// Close only once our own three messages are sent AND the peer's
		// three arrived: closing earlier would abandon our unsent messages.
		sent := make(chan struct{})
		for e := range w.Events() {
			r.kinds = append(r.kinds, strings.TrimPrefix(fmt.Sprintf("%T", e), "wormhole."))
			switch e := e.(type) {
			case CodeEvent:
				if w == a {
					if err := b.SetCode(e.Code); err != nil {
						r.err = err
					}
				}
			case VerifierEvent:
				go func() {
					defer close(sent)
					for i := range 3 {
						_ = w.Send(ctx, fmt.Appendf(nil, "%d", i))
					}
				}()
			case MessageEvent:
				r.msgs = append(r.msgs, string(e.Body))
				if len(r.msgs) == 3 {
					go func() {
						select {
						case <-sent:
						case <-ctx.Done():
						}
						_ = w.Close(ctx)
					}()
				}
			case ClosedEvent:
				if r.err == nil {
					r.err = e.Err
				}
			}
		}
		out <- r
	}
	ra, rb := make(chan result, 1), make(chan result, 1)
	go run(a, "b", ra)
	go run(b, "a", rb)
	for _, r := range []result{<-ra, <-rb} {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !slices.Equal(r.msgs, []string{"0", "1", "2"}) {
			t.Fatalf("messages %q", r.msgs)
		}
		if r.kinds[len(r.kinds)-1] != "ClosedEvent" || slices.Index(r.kinds, "KeyEvent") > slices.Index(r.kinds, "VerifierEvent") {
			t.Fatalf("kinds %q", r.kinds)
		}
	}
	// Close after the stream ended returns the same (happy) result.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGoGoCloseErrors(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	t.Run("lonely", func(t *testing.T) {
		w := mustNew(t, ctx, liveOpts(srv.URL()))
		if _, err := w.AllocateCode(ctx, 2); err != nil {
			t.Fatal(err)
		}
		err := w.Close(ctx)
		if !errors.Is(err, ErrLonely) {
			t.Fatalf("close: %v", err)
		}
	})
	t.Run("crowded", func(t *testing.T) {
		// Two other sides hold the nameplate; our claim is the third.
		for _, side := range []string{"1111111111", "2222222222"} {
			c := rendezvous.New(rendezvous.Options{URL: srv.URL(), AppID: pyAppID, Side: side})
			t.Cleanup(func() { _ = c.Close() })
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Claim(ctx, "1234"); err != nil {
				t.Fatal(err)
			}
		}
		w := mustNew(t, ctx, liveOpts(srv.URL()))
		if err := w.SetCode("1234-crowd"); err != nil {
			t.Fatal(err)
		}
		_, err := w.Verifier(ctx)
		var se *ServerError
		if !errors.As(err, &se) || se.Message != "crowded" {
			t.Fatalf("verifier: %v", err)
		}
		if err := w.Close(ctx); !errors.As(err, &se) {
			t.Fatalf("close: %v", err)
		}
		var rse *rendezvous.ServerError
		if !errors.As(err, &rse) {
			t.Fatalf("close error does not wrap the client's: %v", err)
		}
	})
	t.Run("connection", func(t *testing.T) {
		_, err := New(ctx, Options{AppID: "x", RendezvousURL: "ws://127.0.0.1:1/v1"})
		if !errors.Is(err, ErrServerConnection) {
			t.Fatalf("New: %v", err)
		}
	})
}

// TestCloseServerGone: the server disappears for good; Close with a
// deadline still returns (lonely, interrupted) and every goroutine ends
// (goleak in TestMain).
func TestCloseServerGone(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	w := mustNew(t, ctx, liveOpts(srv.URL()))
	if err := w.SetCode("31-gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitFor(ctx, w, func() (bool, bool) { return true, w.mailboxOpen }); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	pending := make(chan error, 1)
	go func() { _, err := w.Verifier(ctx); pending <- err }()
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := w.Close(cctx)
	if !errors.Is(err, ErrLonely) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v", err)
	}
	if err := <-pending; !errors.Is(err, ErrLonely) {
		t.Fatalf("pending verifier: %v", err)
	}
}

// TestCloseDuringInput closes while the user is still typing the code.
func TestCloseDuringInput(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	w := mustNew(t, ctx, liveOpts(srv.URL()))
	in, err := w.InputCode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.RefreshNameplates(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); !errors.Is(err, ErrLonely) {
		t.Fatal(err)
	}
	if err := in.ChooseNameplate("5"); !errors.Is(err, ErrLonely) {
		t.Fatalf("choose after close: %v", err)
	}
	if err := in.WhenWordlistAvailable(ctx); !errors.Is(err, ErrLonely) {
		t.Fatalf("wordlist after close: %v", err)
	}
}
