package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wormhole-go/wormhole/tunnel"
)

// redrawEvery limits the live status to a few redraws a second.
const redrawEvery = 250 * time.Millisecond

// ui writes JSON events (--json), or human lines on stderr with a live
// status block redrawn in place when stderr is a terminal.
type ui struct {
	stdout, stderr io.Writer
	json, live     bool

	mu       sync.Mutex
	s        *session
	drawn    int // status lines currently on screen
	last     []string
	prev     map[string][2]int64
	prevAt   time.Time
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

func newUI(stdout, stderr io.Writer, jsonOut, live bool) *ui {
	u := &ui{stdout: stdout, stderr: stderr, json: jsonOut, live: live,
		stopCh: make(chan struct{}), done: make(chan struct{}), prev: map[string][2]int64{}}
	if live {
		go u.loop()
	} else {
		close(u.done)
	}
	return u
}

func (u *ui) loop() {
	defer close(u.done)
	t := time.NewTicker(redrawEvery)
	defer t.Stop()
	for {
		select {
		case <-u.stopCh:
			u.mu.Lock()
			u.clearLocked()
			if u.s != nil {
				u.drawLocked(true) // leave the final status on screen
			}
			u.mu.Unlock()
			return
		case <-t.C:
			u.mu.Lock()
			if u.s != nil {
				u.redrawLocked()
			}
			u.mu.Unlock()
		}
	}
}

func (u *ui) stop() {
	u.stopOnce.Do(func() { close(u.stopCh) })
	<-u.done
}

func (u *ui) attach(s *session) {
	u.mu.Lock()
	u.s = s
	u.mu.Unlock()
}

// printf prints a human line (stderr), above the live status.
func (u *ui) printf(format string, a ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.clearLocked()
	fmt.Fprintf(u.stderr, format, a...)
}

func (u *ui) fail(err error) int {
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	u.event(tunnel.Event{Kind: tunnel.EvError, Message: err.Error()})
	if !u.json {
		u.printf("wh-tunnel: %v\n", err)
	}
	return code
}

// event handles one status event.
func (u *ui) event(e tunnel.Event) {
	if u.json {
		b, err := json.Marshal(e)
		if err != nil {
			return
		}
		u.mu.Lock()
		u.stdout.Write(append(b, '\n'))
		u.mu.Unlock()
		return
	}
	if line := describe(e); line != "" {
		u.printf("%s\n", line)
	}
}

// describe turns the events a human wants to see into a line.
func describe(e tunnel.Event) string {
	switch e.Kind {
	case tunnel.EvListening:
		return fmt.Sprintf("Listening for %q on port %d (the peer connects to %s)", e.Name, e.Port, e.Target)
	case tunnel.EvAwaitingConnect:
		return fmt.Sprintf("Peer listens for %q; its connections come to %s", e.Name, e.Target)
	case tunnel.EvListeningFailed:
		return fmt.Sprintf("Forward %q failed: %s", e.Name, e.Reason)
	case tunnel.EvRemoteConnectFail:
		return fmt.Sprintf("Connection %d: the peer could not connect: %s", e.ID, e.Reason)
	case tunnel.EvIncomingLost:
		if strings.Contains(e.Reason, "policy") {
			return fmt.Sprintf("Refused connection %d from the peer: %s", e.ID, e.Reason)
		}
	case tunnel.EvPeerConnection:
		switch e.State {
		case "connected":
			return "Peer connection: " + e.Hint
		case "reconnecting":
			return "Peer connection lost, reconnecting..." + paren(e.Reason)
		}
	case tunnel.EvError:
		return "Error: " + e.Message
	}
	return ""
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// clearLocked erases the status block.
func (u *ui) clearLocked() {
	if !u.live || u.drawn == 0 {
		return
	}
	fmt.Fprintf(u.stderr, "\x1b[%dA\x1b[J", u.drawn)
	u.drawn = 0
}

// redrawLocked redraws the status block if its text changed.
func (u *ui) redrawLocked() {
	lines := u.statusLines(time.Now())
	if u.drawn > 0 && slices.Equal(lines, u.last) {
		return
	}
	u.clearLocked()
	u.writeLocked(lines, false)
}

func (u *ui) drawLocked(final bool) {
	u.writeLocked(u.statusLines(time.Now()), final)
}

func (u *ui) writeLocked(lines []string, final bool) {
	if !u.live {
		return
	}
	u.last = lines
	if final {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		fmt.Fprintln(u.stderr, l)
	}
	if !final {
		u.drawn = len(lines)
	}
}

func (u *ui) statusLines(now time.Time) []string {
	s := u.s
	st, via := s.peer()
	peer := "peer: " + st.String()
	if st.String() == "connected" {
		peer += " via " + via
	}
	lines := []string{peer}
	dt := now.Sub(u.prevAt).Seconds()
	for _, f := range s.tun.Stats() {
		var where string
		if f.Forward.Dir == tunnel.Local {
			addr := f.Addr
			if addr == "" {
				addr = f.Forward.ListenAddr()
			}
			where = fmt.Sprintf("-L %s -> peer %s", addr, f.Forward.Target())
		} else {
			where = fmt.Sprintf("-R peer :%s -> %s", portOrAny(f.Forward.ListenPort), f.Forward.Target())
		}
		p := u.prev[f.Forward.Name]
		rate := ""
		if dt > 0 && !u.prevAt.IsZero() {
			rate = fmt.Sprintf(" (%s/s, %s/s)", size(float64(f.BytesIn-p[0])/dt), size(float64(f.BytesOut-p[1])/dt))
		}
		u.prev[f.Forward.Name] = [2]int64{f.BytesIn, f.BytesOut}
		state := f.State
		if f.Reason != "" && f.State == tunnel.StateRefused {
			state += ": " + f.Reason
		}
		lines = append(lines, fmt.Sprintf("  %-44s %-10s conns %d open/%d  in %s out %s%s",
			where, state, f.Open, f.Total, size(float64(f.BytesIn)), size(float64(f.BytesOut)), rate))
	}
	u.prevAt = now
	return append(lines, "Ctrl-C to stop")
}

func portOrAny(p int) string {
	if p == 0 {
		return "(any)"
	}
	return fmt.Sprint(p)
}

func size(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
