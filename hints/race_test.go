package hints

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var errRefused = errors.New("connection refused (fake)")

// fakeNet is a dialer whose behaviour is chosen per host name:
//
//	"ok*":     answers the handshake at once
//	"slow*":   answers after 1 s
//	"hang*":   dial blocks until ctx is done
//	"refuse*": dial fails
//	"bad*":    answers with the wrong handshake
type fakeNet struct {
	mu     sync.Mutex
	dialed []string
	peers  sync.WaitGroup
}

func (f *fakeNet) dial(ctx context.Context, c Candidate) (net.Conn, error) {
	host := c.Hint.(DirectTCPV1).Hostname
	f.mu.Lock()
	f.dialed = append(f.dialed, c.String())
	f.mu.Unlock()
	switch {
	case strings.HasPrefix(host, "hang"):
		<-ctx.Done()
		return nil, ctx.Err()
	case strings.HasPrefix(host, "refuse"):
		return nil, errRefused
	}
	a, b := net.Pipe()
	f.peers.Add(1)
	go func() {
		defer f.peers.Done()
		defer b.Close()
		if strings.HasPrefix(host, "slow") {
			time.Sleep(time.Second)
		}
		msg := "hello\n"
		if strings.HasPrefix(host, "bad") {
			msg = "HELLO\n"
		}
		b.Write([]byte(msg))
		io.Copy(io.Discard, b) // until closed
	}()
	return a, nil
}

func (f *fakeNet) wasDialed(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.dialed {
		if d == s {
			return true
		}
	}
	return false
}

var errBadHandshake = errors.New("bad handshake (fake)")

func readHello(ctx context.Context, a *Attempt, c net.Conn) error {
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "hello\n" {
		return errBadHandshake
	}
	return nil
}

func TestRaceDirectBeatsRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		plan := MakePlan([]Hint{d("ok", 1, 0), d("hang", 1, 0), relay(d("ok-relay", 1, 0))}, PlanOptions{})
		w, err := Race(t.Context(), plan, f.dial, readHello, RaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w.Candidate.Hint != d("ok", 1, 0) || w.Candidate.Relay {
			t.Fatalf("winner %v", w.Candidate)
		}
		if f.wasDialed("->relay:tcp:ok-relay:1") {
			t.Fatal("relay dialed although the direct path won before the relay delay")
		}
		// The winner is still usable after Race returned.
		if _, err := w.Conn.Write([]byte("x")); err != nil {
			t.Fatalf("winner closed: %v", err)
		}
		w.Conn.Close()
		f.peers.Wait()
	})
}

func TestRaceRelayAfterDelayWhenDirectHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		plan := MakePlan([]Hint{d("hang", 1, 0), relay(d("ok-relay", 1, 0))}, PlanOptions{RelayDelay: 3 * time.Second})
		start := time.Now()
		w, err := Race(t.Context(), plan, f.dial, readHello, RaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !w.Candidate.Relay {
			t.Fatalf("winner %v", w.Candidate)
		}
		// Fake clock: exactly the relay delay.
		if el := time.Since(start); el != 3*time.Second {
			t.Fatalf("relay started after %v", el)
		}
		w.Conn.Close()
		f.peers.Wait()
	})
}

func TestRaceSlowDirectStillWinsIfFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		// Direct handshake takes 1 s, relay starts after 5 s: direct wins.
		plan := MakePlan([]Hint{d("slow", 1, 0), relay(d("ok-relay", 1, 0))}, PlanOptions{RelayDelay: 5 * time.Second})
		w, err := Race(t.Context(), plan, f.dial, readHello, RaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w.Candidate.Relay {
			t.Fatalf("winner %v", w.Candidate)
		}
		w.Conn.Close()
		f.peers.Wait()
	})
}

func TestRaceAllFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		plan := MakePlan([]Hint{d("refuse", 1, 0), d("bad", 2, 0), relay(d("refuse-relay", 3, 0))}, PlanOptions{})
		_, err := Race(t.Context(), plan, f.dial, readHello, RaceOptions{})
		var re *RaceError
		if !errors.As(err, &re) {
			t.Fatalf("err %T %v", err, err)
		}
		if len(re.Attempts) != 3 {
			t.Fatalf("attempts %v", re.Attempts)
		}
		if !errors.Is(err, errRefused) || !errors.Is(err, errBadHandshake) {
			t.Fatalf("causes not reachable through errors.Is: %v", err)
		}
		for _, want := range []string{"->tcp:refuse:1", "->tcp:bad:2", "->relay:tcp:refuse-relay:3"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %s: %v", want, err)
			}
		}
		f.peers.Wait()
	})
}

func TestRaceEmpty(t *testing.T) {
	_, err := Race(context.Background(), nil, nil, nil, RaceOptions{})
	if !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("err %v", err)
	}
}

func TestRaceCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		plan := MakePlan([]Hint{d("hang", 1, 0), relay(d("hang-relay", 1, 0))}, PlanOptions{RelayDelay: time.Minute})
		_, err := Race(ctx, plan, f.dial, readHello, RaceOptions{})
		var re *RaceError
		if !errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		if len(re.Attempts) != 2 || !strings.Contains(err.Error(), "not started") {
			t.Fatalf("attempts %v", err)
		}
	})
}

// A sender-style accepter claims itself and tells the loser "nevermind".
func TestRaceClaimInAccepter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		var mu sync.Mutex
		decisions := map[string]bool{}
		release := make(chan struct{})
		accept := func(ctx context.Context, a *Attempt, c net.Conn) error {
			if err := readHello(ctx, a, c); err != nil {
				return err
			}
			if a.Candidate.Hint.(DirectTCPV1).Port == 2 {
				<-release // port 2 finishes second
			}
			won := a.Claim()
			mu.Lock()
			decisions[a.Candidate.String()] = won
			mu.Unlock()
			if a.Candidate.Hint.(DirectTCPV1).Port == 1 {
				close(release)
			}
			if !won {
				return ErrLostRace
			}
			return nil
		}
		plan := MakePlan([]Hint{d("ok", 1, 0), d("ok", 2, 0)}, PlanOptions{})
		w, err := Race(t.Context(), plan, f.dial, accept, RaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if w.Candidate.Hint.(DirectTCPV1).Port != 1 {
			t.Fatalf("winner %v", w.Candidate)
		}
		w.Conn.Close()
		f.peers.Wait()
		if !decisions["->tcp:ok:1"] || decisions["->tcp:ok:2"] {
			t.Fatalf("decisions %v", decisions)
		}
	})
}

func TestRaceInbound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		in := make(chan net.Conn)
		go func() {
			time.Sleep(time.Second)
			a, b := net.Pipe()
			go func() { b.Write([]byte("hello\n")); io.Copy(io.Discard, b); b.Close() }()
			in <- a
		}()
		plan := MakePlan([]Hint{d("hang", 1, 0), d("refuse", 2, 0)}, PlanOptions{})
		w, err := Race(t.Context(), plan, f.dial, readHello, RaceOptions{Inbound: in})
		if err != nil {
			t.Fatal(err)
		}
		if !w.Candidate.Inbound {
			t.Fatalf("winner %v", w.Candidate)
		}
		w.Conn.Close()
	})
}

// With a listener, total outbound failure does not end the race until the
// context does.
func TestRaceInboundKeepsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{}
		in := make(chan net.Conn)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start := time.Now()
		_, err := Race(ctx, MakePlan([]Hint{d("refuse", 1, 0)}, PlanOptions{}), f.dial, readHello, RaceOptions{Inbound: in})
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errRefused) {
			t.Fatalf("err %v", err)
		}
		if time.Since(start) != time.Minute {
			t.Fatalf("gave up after %v", time.Since(start))
		}
	})
}
