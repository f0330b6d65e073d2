package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

const pyAppID = "lothar.com/wormhole/text-or-file-xfer"

func pyClient(t *testing.T, url string, log *statusLog) *Client {
	t.Helper()
	opts := Options{URL: url, AppID: pyAppID,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
	if log != nil {
		opts.OnStatus = log.add
	}
	c := New(opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

// pair connects two clients through the server: A allocates, both claim
// and open. It returns the clients, the nameplate and the mailbox.
func pair(t *testing.T, url string, la, lb *statusLog) (a, b *Client, nameplate, mailbox string) {
	t.Helper()
	ctx := testCtx(t)
	a = pyClient(t, url, la)
	b = pyClient(t, url, lb)
	nameplate, err := a.Allocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mbA, err := a.Claim(ctx, nameplate)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(ctx, mbA); err != nil {
		t.Fatal(err)
	}
	mbB, err := b.Claim(ctx, nameplate)
	if err != nil {
		t.Fatal(err)
	}
	if mbA != mbB {
		t.Fatalf("mailboxes differ: %q %q", mbA, mbB)
	}
	if err := b.Open(ctx, mbB); err != nil {
		t.Fatal(err)
	}
	return a, b, nameplate, mbA
}

// TestPairPython: two Go clients exchange messages through Debian's Python
// mailbox server, with the full allocate/claim/open/add/release/close cycle.
func TestPairPython(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	a, b, nameplate, mailbox := pair(t, mb.URL(), nil, nil)

	w, err := a.Welcome(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.MOTD != "" || w.Error != "" || w.PermissionRequired != nil {
		t.Errorf("welcome from a plain server: %+v", w)
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(list, nameplate) {
		t.Errorf("List = %v, lacks %q", list, nameplate)
	}

	if err := a.Add(ctx, "pake", []byte("pake from A")); err != nil {
		t.Fatal(err)
	}
	m := nextMsg(t, b)
	if m.Side != a.Side() || m.Phase != "pake" || string(m.Body) != "pake from A" || m.ServerRX == 0 || len(m.ID) != 4 {
		t.Fatalf("B got %+v", m)
	}
	if err := b.Add(ctx, "pake", []byte("pake from B")); err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, a); m.Side != b.Side() || m.Phase != "pake" || string(m.Body) != "pake from B" {
		t.Fatalf("A got %+v", m)
	}
	// Each side releases on the first peer message.
	if err := a.Release(ctx, nameplate); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, nameplate); err != nil {
		t.Fatal(err)
	}
	if list, err := a.List(ctx); err != nil || slices.Contains(list, nameplate) {
		t.Errorf("after both released: List = %v, %v", list, err)
	}
	for i := 0; i < 5; i++ {
		phase := fmt.Sprint(i)
		if err := a.Add(ctx, phase, []byte("A"+phase)); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(ctx, phase, []byte("B"+phase)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		phase := fmt.Sprint(i)
		if m := nextMsg(t, a); m.Phase != phase || string(m.Body) != "B"+phase {
			t.Fatalf("A got %+v, want phase %s", m, phase)
		}
		if m := nextMsg(t, b); m.Phase != phase || string(m.Body) != "A"+phase {
			t.Fatalf("B got %+v, want phase %s", m, phase)
		}
	}
	if err := a.CloseMailbox(ctx, mailbox, "happy"); err != nil {
		t.Fatal(err)
	}
	if err := b.CloseMailbox(ctx, mailbox, "happy"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if c.Err() != nil {
			t.Errorf("Err = %v", c.Err())
		}
		for m := range c.Messages() {
			t.Errorf("extra message %+v", m)
		}
	}
}

// TestRestartPython kills and restarts the Python server (same database)
// between adds; both clients reconnect with the same sides and every
// message arrives exactly once, including adds made while it was down.
func TestRestartPython(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	la, lb := &statusLog{}, &statusLog{}
	a, b, nameplate, mailbox := pair(t, mb.URL(), la, lb)

	const rounds = 4
	got := map[*Client][]string{}
	recv := func(c *Client, want string) {
		t.Helper()
		m := nextMsg(t, c)
		got[c] = append(got[c], m.Phase)
		if m.Phase != want {
			t.Fatalf("got phase %q (%s), want %q; so far %v", m.Phase, m.Body, want, got[c])
		}
	}
	for r := 0; r < rounds; r++ {
		phase := fmt.Sprint(r)
		if err := a.Add(ctx, phase, []byte("A"+phase)); err != nil {
			t.Fatal(err)
		}
		if r%2 == 1 {
			// Let the add reach the server before it dies, so the
			// restarted server replays it from its database.
			recv(b, phase)
		}
		mb.Restart()
		if err := b.Add(ctx, phase, []byte("B"+phase)); err != nil {
			t.Fatal(err)
		}
		if r%2 == 0 {
			recv(b, phase)
		}
		recv(a, phase)
	}
	// Release and close also survive a restart; ask while it is down.
	mb.Stop()
	relA := async(func() error { return a.Release(ctx, nameplate) })
	relB := async(func() error { return b.Release(ctx, nameplate) })
	mb.Restart()
	if err := waitErr(t, relA); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, relB); err != nil {
		t.Fatal(err)
	}
	mb.Stop()
	closeA := async(func() error { return a.CloseMailbox(ctx, mailbox, "happy") })
	mb.Restart()
	if err := waitErr(t, closeA); err != nil {
		t.Fatal(err)
	}
	if err := b.CloseMailbox(ctx, mailbox, "happy"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	for _, c := range []*Client{a, b} {
		for m := range c.Messages() {
			t.Errorf("duplicate or extra message %+v", m)
		}
		if c.Err() != nil {
			t.Errorf("Err = %v", c.Err())
		}
	}
	for _, l := range []*statusLog{la, lb} {
		n := 0
		for _, s := range l.states() {
			if s == Connected {
				n++
			}
		}
		if n < rounds+3 {
			t.Errorf("only %d connections: %v", n, l.states())
		}
	}
}

// TestCrowdedPython: a third side claiming the nameplate gets the server's
// "crowded" error as *ServerError; its client keeps the connection and can
// still release the nameplate (as Python's client does after rx_error); the
// pair is unaffected.
func TestCrowdedPython(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	a, b, nameplate, _ := pair(t, mb.URL(), nil, nil)
	c := pyClient(t, mb.URL(), nil)
	_, err := c.Claim(ctx, nameplate)
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != "crowded" {
		t.Fatalf("third claim: %v", err)
	}
	if !errors.As(c.ServerErr(), &se) || se.Msg != "crowded" {
		t.Fatalf("ServerErr() = %v", c.ServerErr())
	}
	if len(se.Orig) == 0 {
		t.Error("ServerError without orig")
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v: a server error is not fatal", c.Err())
	}
	select {
	case <-c.Done():
		t.Fatal("client stopped after a server error")
	default:
	}
	if err := c.Release(ctx, nameplate); err != nil {
		t.Fatalf("release after crowded: %v", err)
	}
	if err := a.Add(ctx, "pake", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, b); m.Phase != "pake" {
		t.Fatalf("%+v", m)
	}
	if a.Err() != nil || b.Err() != nil {
		t.Fatal(a.Err(), b.Err())
	}
}

// TestReclaimPython: claiming a nameplate again after releasing it (a new
// connection with the same side) is "reclaimed", while another side still
// holds the nameplate.
func TestReclaimPython(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	b := pyClient(t, mb.URL(), nil)
	np, err := b.Allocate(ctx) // b holds np
	if err != nil {
		t.Fatal(err)
	}
	a := pyClient(t, mb.URL(), nil)
	if _, err := a.Claim(ctx, np); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, np); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a2 := New(Options{URL: mb.URL(), AppID: pyAppID, Side: a.Side()})
	defer a2.Close()
	if err := a2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = a2.Claim(ctx, np)
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != "reclaimed" {
		t.Fatalf("reclaim: %v", err)
	}
}

// TestWelcomeErrorPython: `--signal-error` makes the welcome carry an error.
func TestWelcomeErrorPython(t *testing.T) {
	mb := interop.StartPythonMailbox(t, "--signal-error=maintenance, come back later")
	c := New(Options{URL: mb.URL(), AppID: pyAppID})
	defer c.Close()
	err := c.Connect(testCtx(t))
	var we *WelcomeError
	if !errors.As(err, &we) || we.Msg != "maintenance, come back later" {
		t.Fatalf("got %v", err)
	}
}

// TestAdvertiseVersionPython: current_cli_version is surfaced.
func TestAdvertiseVersionPython(t *testing.T) {
	mb := interop.StartPythonMailbox(t, "--advertise-version=9.9.9")
	c := pyClient(t, mb.URL(), nil)
	w, err := c.Welcome(context.Background())
	if err != nil || w.CurrentCLIVersion != "9.9.9" {
		t.Fatalf("%+v %v", w, err)
	}
}
