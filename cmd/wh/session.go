package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/cmd/wh/internal/codeinput"
)

// session is one run of send or receive: the wormhole plus the CLI's own
// timing events.
type session struct {
	e      *env
	g      globals
	w      *wormhole.Wormhole
	cli    []wormhole.TimingEvent
	closed bool
}

// openSession connects to the mailbox server.
func openSession(ctx context.Context, e *env, g globals) (*session, error) {
	s := &session{e: e, g: g}
	s.mark("command dispatch")
	w, err := wormhole.New(ctx, wormhole.Options{
		AppID:         g.appIDOrDefault(),
		RendezvousURL: g.relayURL,
	})
	if err != nil {
		return nil, err
	}
	s.w = w
	return s, nil
}

func (s *session) mark(name string) {
	s.cli = append(s.cli, wormhole.TimingEvent{Name: name, Start: time.Now()})
}

// welcome waits for the server's welcome and shows its MOTD and version
// advice on stderr, as Python's handle_welcome does.
func (s *session) welcome(ctx context.Context) error {
	wel, err := s.w.Welcome(ctx)
	if err != nil {
		return err
	}
	showWelcome(s.e.stderr, wel, s.g.relayURL, cliVersion)
	return nil
}

func showWelcome(w io.Writer, wel wormhole.Welcome, relayURL, ours string) {
	if wel.MOTD != "" {
		lines := strings.Split(strings.TrimRight(wel.MOTD, "\n"), "\n")
		fmt.Fprintf(w, "Server (at %s) says:\n %s\n", relayURL, strings.Join(lines, "\n "))
	}
	if wel.CurrentCLIVersion != "" && newerVersion(wel.CurrentCLIVersion, ours) {
		fmt.Fprintln(w, "Warning: errors may occur unless both sides are running the same version")
		fmt.Fprintf(w, "Server claims %s is current, but ours is %s\n", wel.CurrentCLIVersion, ours)
	}
}

// newerVersion reports whether version a is newer than b (dotted numeric
// release versions; anything else is never "newer", and a local build such
// as "0.1.0+dev" never warns, like Python).
func newerVersion(a, b string) bool {
	if strings.Contains(b, "+") {
		return false
	}
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	if !oka || !okb {
		return false
	}
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			return x > y
		}
	}
	return false
}

func parseVersion(v string) ([]int, bool) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) > 8 {
		return nil, false
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// waitNotice runs f; if it takes longer than e.slowNotice, msg is printed
// on stderr once (Python's "Waiting for sender..." timers).
func waitNotice[T any](ctx context.Context, e *env, msg string, f func(context.Context) (T, error)) (T, error) {
	t := time.AfterFunc(e.slowNotice, func() { fmt.Fprintln(e.stderr, msg) })
	defer t.Stop()
	return f(ctx)
}

// verifierHex is the verifier as Python shows it.
func verifierHex(v []byte) string { return hex.EncodeToString(v) }

// close closes the wormhole (with a fresh bounded context if ctx is done,
// so the server still hears our mood), and writes the timing file.
func (s *session) close(ctx context.Context, primary error) error {
	if s.closed {
		return primary
	}
	s.closed = true
	cctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
	}
	err := s.w.Close(cctx)
	s.mark("exit")
	if s.g.dumpTiming != "" {
		if werr := s.writeTiming(); werr != nil {
			fmt.Fprintf(s.e.stderr, "cannot write timing data: %v\n", werr)
		}
	}
	if primary != nil {
		return primary
	}
	// A happy run closes with nil. Lonely after success cannot happen; any
	// other close error is worth reporting.
	if err != nil && !errors.Is(err, wormhole.ErrLonely) {
		return err
	}
	return nil
}

func (s *session) writeTiming() error {
	events := append([]wormhole.TimingEvent{s.cli[0]}, s.w.Timing()...)
	events = append(events, s.cli[1:]...)
	b, err := json.MarshalIndent(events, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.g.dumpTiming, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(s.e.stderr, "Timing data written to %s\n", s.g.dumpTiming)
	return nil
}

// inputHelper adapts *wormhole.CodeInput to codeinput.Helper.
type inputHelper struct{ ci *wormhole.CodeInput }

func (h inputHelper) RefreshNameplates(ctx context.Context) error {
	_, err := h.ci.RefreshNameplates(ctx)
	return err
}
func (h inputHelper) NameplateCompletions(p string) ([]string, error) {
	return h.ci.NameplateCompletions(p)
}
func (h inputHelper) ChooseNameplate(_ context.Context, n string) error {
	return h.ci.ChooseNameplate(n)
}
func (h inputHelper) WhenWordlistAvailable(ctx context.Context) error {
	return h.ci.WhenWordlistAvailable(ctx)
}
func (h inputHelper) WordCompletions(p string) ([]string, error) { return h.ci.WordCompletions(p) }
func (h inputHelper) ChooseWords(_ context.Context, w string) error {
	return h.ci.ChooseWords(w)
}

var _ codeinput.Helper = inputHelper{}
