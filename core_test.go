package wormhole

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/pake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testAppID = "github.com/wormhole-go/test"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // safety net only
	t.Cleanup(cancel)
	return ctx
}

func mustNew(t *testing.T, ctx context.Context, o Options) *Wormhole {
	t.Helper()
	w, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // safety net
		defer cancel()
		_ = w.Close(ctx)
	})
	return w
}

// exchange runs a full conversation between a and b (a's code is set or
// allocated by the caller) and checks everything both sides see.
func checkExchange(t *testing.T, ctx context.Context, a, b *Wormhole, n int) {
	t.Helper()
	errc := make(chan error, 2)
	for i, w := range []*Wormhole{a, b} {
		go func() {
			for j := range n {
				if err := w.Send(ctx, fmt.Appendf(nil, "msg %d from %d", j, i)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for i, w := range []*Wormhole{a, b} {
		for j := range n {
			got, err := w.Receive(ctx)
			if err != nil {
				t.Fatalf("side %d receive %d: %v", i, j, err)
			}
			if want := fmt.Sprintf("msg %d from %d", j, 1-i); string(got) != want {
				t.Fatalf("side %d got %q, want %q", i, got, want)
			}
		}
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	va, err := a.Verifier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Verifier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(va, vb) || len(va) != 32 {
		t.Fatalf("verifiers differ: %x %x", va, vb)
	}
	ka, _ := a.DeriveKey("purpose", 32)
	kb, _ := b.DeriveKey("purpose", 32)
	if !bytes.Equal(ka, kb) {
		t.Fatal("derived keys differ")
	}
	if a.State() != StateHappy || b.State() != StateHappy {
		t.Fatalf("states %v %v", a.State(), b.State())
	}
}

func TestFakeExchange(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	oa := s.opts(testAppID)
	oa.AppVersions = map[string]any{"side": "a"}
	ob := s.opts(testAppID)
	ob.AppVersions = map[string]any{"side": "b", "n": 1}
	a := mustNew(t, ctx, oa)
	b := mustNew(t, ctx, ob)
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(code, "1-") || strings.Count(code, "-") != 2 {
		t.Fatalf("code %q", code)
	}
	if err := b.SetCode(code); err != nil {
		t.Fatal(err)
	}
	checkExchange(t, ctx, a, b, 5)
	va, err := a.PeerVersions(ctx)
	if err != nil || va["side"] != "b" || va["n"] != float64(1) {
		t.Fatalf("a sees %v %v", va, err)
	}
	vb, _ := b.PeerVersions(ctx)
	if vb["side"] != "a" {
		t.Fatalf("b sees %v", vb)
	}
	ka, _ := a.UnverifiedKey(ctx)
	kb, _ := b.UnverifiedKey(ctx)
	if !bytes.Equal(ka, kb) {
		t.Fatal("keys differ")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("a close: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("b close: %v", err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := a.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("receive after close: %v", err)
	}
	if err := a.Send(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	log := s.logged()
	for _, side := range []string{a.Side(), b.Side()} {
		if n := countPrefix(log, side+" release "); n != 1 {
			t.Errorf("%s released %d times: %q", side, n, log)
		}
		if n := countPrefix(log, side+" close mb1 happy"); n != 1 {
			t.Errorf("%s closed happy %d times: %q", side, n, log)
		}
	}
	// Sequencing: each side's pake precedes its version, which precedes "0".
	for _, side := range []string{a.Side(), b.Side()} {
		p := slices.Index(log, side+" add pake")
		v := slices.Index(log, side+" add version")
		z := slices.Index(log, side+" add 0")
		if p < 0 || v < p || z < v {
			t.Errorf("order pake=%d version=%d 0=%d in %q", p, v, z, log)
		}
	}
	// App messages wait for the first decrypted peer message: a side's "0"
	// is stored only after the peer's version (the first thing it can
	// decrypt) was, and its release follows the peer's pake.
	for _, p := range [][2]string{{a.Side(), b.Side()}, {b.Side(), a.Side()}} {
		if slices.Index(log, p[0]+" add 0") < slices.Index(log, p[1]+" add version") {
			t.Errorf("%s sent 0 before %s's version: %q", p[0], p[1], log)
		}
		if slices.Index(log, p[0]+" release 1") < slices.Index(log, p[1]+" add pake") {
			t.Errorf("%s released before any peer message: %q", p[0], log)
		}
	}
	if len(a.Timing()) == 0 {
		t.Error("no timing events")
	}
}

func countPrefix(l []string, p string) int {
	n := 0
	for _, s := range l {
		if strings.HasPrefix(s, p) {
			n++
		}
	}
	return n
}

func TestFakeWrongCode(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	a := mustNew(t, ctx, s.opts(testAppID))
	b := mustNew(t, ctx, s.opts(testAppID))
	if err := a.SetCode("4-purple-sausages"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetCode("4-purple-sausagez"); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- a.Send(ctx, []byte("secret")) }()
	for _, w := range []*Wormhole{a, b} {
		if _, err := w.Receive(ctx); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("receive: %v", err)
		}
		if _, err := w.Verifier(ctx); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("verifier: %v", err)
		}
		if err := w.Close(ctx); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("close: %v", err)
		}
	}
	if err := <-sent; !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("send: %v", err)
	}
	log := s.logged()
	if slices.Contains(log, a.Side()+" add 0") {
		t.Error("an application message was sent under the wrong key")
	}
	for _, side := range []string{a.Side(), b.Side()} {
		if countPrefix(log, side+" close mb4 scary") != 1 {
			t.Errorf("%s did not close scary: %q", side, log)
		}
	}
}

func TestFakeLonely(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	a := mustNew(t, ctx, s.opts(testAppID))
	if err := a.SetCode("7-foo"); err != nil {
		t.Fatal(err)
	}
	// Wait until the mailbox is open, then close.
	if _, err := waitFor(ctx, a, func() (bool, bool) { return true, a.mailboxOpen }); err != nil {
		t.Fatal(err)
	}
	pending := make(chan error, 1)
	go func() { _, err := a.Receive(ctx); pending <- err }()
	err := a.Close(ctx)
	if !errors.Is(err, ErrLonely) {
		t.Fatalf("close: %v", err)
	}
	if err := <-pending; !errors.Is(err, ErrLonely) {
		t.Fatalf("pending receive: %v", err)
	}
	log := s.logged()
	if !slices.Contains(log, a.Side()+" release 7") || !slices.Contains(log, a.Side()+" close mb7 lonely") {
		t.Fatalf("log %q", log)
	}
	// Lonely before any code at all.
	b := mustNew(t, ctx, s.opts(testAppID))
	if err := b.Close(ctx); !errors.Is(err, ErrLonely) {
		t.Fatalf("empty close: %v", err)
	}
	if _, err := b.Code(ctx); !errors.Is(err, ErrLonely) {
		t.Fatalf("code after close: %v", err)
	}
}

// rawPeer drives the protocol by hand against the fake server, to send
// messages in orders a real client would not.
type rawPeer struct {
	c    *fakeClient
	sp   *pake.SPAKE2
	key  []byte
	side string
}

func newRawPeer(t *testing.T, s *fakeServer, code string) *rawPeer {
	sp, err := pake.NewSymmetric(pake.NFC(code), pake.NFC(testAppID), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{c: s.client("ffffffffff"), sp: sp, side: "ffffffffff"}
	t.Cleanup(func() { _ = p.c.Close() })
	np, _, _ := strings.Cut(code, "-")
	ctx := context.Background()
	mb, err := p.c.Claim(ctx, np)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.c.Open(ctx, mb); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *rawPeer) pakeBody() []byte {
	b, _ := json.Marshal(map[string]string{"pake_v1": hex.EncodeToString(p.sp.Message())})
	return b
}

func (p *rawPeer) add(t *testing.T, phase string, pt []byte) {
	t.Helper()
	body := pt
	if phase != "pake" {
		var err error
		body, err = pake.Seal(pake.DerivePhaseKey(p.key, p.side, phase), pt, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.c.Add(context.Background(), phase, body); err != nil {
		t.Fatal(err)
	}
}

func (p *rawPeer) next(t *testing.T, ctx context.Context) inbound {
	t.Helper()
	m, err := p.c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFakeOutOfOrderPeer(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	code := "12-out-of-order"
	p := newRawPeer(t, s, code)
	// The raw peer needs our PAKE to compute the key, so it waits for it
	// before sending its own; but it sends "1", "0", "version" before "pake"
	// reaches the wormhole: those must be queued until the pake.
	w := mustNew(t, ctx, s.opts(testAppID))
	if err := w.SetCode(code); err != nil {
		t.Fatal(err)
	}
	m := p.next(t, ctx)
	if m.Phase != "pake" {
		t.Fatalf("first message %q", m.Phase)
	}
	peerMsg, err := parsePakeBody(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	if p.key, err = p.sp.Finish(peerMsg); err != nil {
		t.Fatal(err)
	}
	// Send in an adversarial order on a mailbox that replays in order:
	// hold delivery by adding to the box directly before the pake.
	p.add(t, "1", []byte("second"))
	p.add(t, "dilate-1", []byte("d1"))
	p.add(t, "0", []byte("first"))
	p.add(t, "dilate-0", []byte("d0"))
	p.add(t, "version", []byte(`{"app_versions": {"x": [1, 2]}, "can-dilate": ["ged"]}`))
	p.add(t, "unknown-phase", []byte("ignored"))
	p.add(t, "pake", p.pakeBody())
	for _, want := range []string{"first", "second"} {
		got, err := w.Receive(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	d := dilationMailbox{w}
	for _, want := range []string{"d0", "d1"} {
		got, err := d.Receive(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("dilate got %q %v, want %q", got, err, want)
		}
	}
	raw, err := w.PeerWormholeVersions(ctx)
	if err != nil || string(raw["can-dilate"]) != `["ged"]` {
		t.Fatalf("raw versions %v %v", raw, err)
	}
	if w.peerVers.canDilate()[0] != "ged" {
		t.Fatal("canDilate")
	}
	// Our version must decrypt with the peer's key and carry app_versions.
	for {
		m := p.next(t, ctx)
		if m.Phase != "version" {
			continue
		}
		pt, err := pake.Open(pake.DerivePhaseKey(p.key, m.Side, m.Phase), m.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(pt) != `{"app_versions":{}}` {
			t.Fatalf("version %s", pt)
		}
		break
	}
	// dilate records from us: own counter, encrypted.
	if err := d.Send(ctx, []byte("rec0")); err != nil {
		t.Fatal(err)
	}
	if err := w.Send(ctx, []byte("app0")); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(ctx, []byte("rec1")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dilate-0": "rec0", "0": "app0", "dilate-1": "rec1"}
	for len(want) > 0 {
		m := p.next(t, ctx)
		pt, err := pake.Open(pake.DerivePhaseKey(p.key, m.Side, m.Phase), m.Body)
		if err != nil {
			t.Fatal(err)
		}
		if want[m.Phase] != string(pt) {
			t.Fatalf("phase %s: %q", m.Phase, pt)
		}
		delete(want, m.Phase)
	}
	k, err := w.dilationKey(ctx)
	if err != nil || !bytes.Equal(k, pake.DeriveKey(p.key, "dilation-v1", 32)) {
		t.Fatal("dilation key")
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFakeBadPake(t *testing.T) {
	ctx := testCtx(t)
	for name, body := range map[string]string{
		"no pake_v1": `{"pake_v2": "00"}`,
		"not json":   `nope`,
		"bad hex":    `{"pake_v1": "zz"}`,
		"bad point":  `{"pake_v1": "53` + strings.Repeat("00", 32) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newFakeServer()
			p := newRawPeer(t, s, "5-x")
			w := mustNew(t, ctx, s.opts(testAppID))
			if err := w.SetCode("5-x"); err != nil {
				t.Fatal(err)
			}
			p.add(t, "pake", []byte(body))
			waitClosing(t, ctx, w)
			err := w.Close(ctx)
			if name == "no pake_v1" {
				if !errors.Is(err, ErrWrongPassword) {
					t.Fatalf("close: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// waitClosing waits until w closed by itself.
func waitClosing(t *testing.T, ctx context.Context, w *Wormhole) {
	t.Helper()
	if _, err := waitFor(ctx, w, func() (bool, bool) { return true, w.state >= StateClosing }); err != nil {
		t.Fatal(err)
	}
}

func TestFakeEvents(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	oa := s.opts(testAppID)
	oa.Events = true
	oa.AppVersions = map[string]any{"v": "a"}
	a := mustNew(t, ctx, oa)
	b := mustNew(t, ctx, s.opts(testAppID))
	if _, err := a.Receive(ctx); !errors.Is(err, ErrEventsMode) {
		t.Fatal(err)
	}
	if err := a.SetCode("3-ev"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetCode("3-ev"); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = b.Send(ctx, []byte("m0"))
		_ = b.Send(ctx, []byte("m1"))
	}()
	var kinds []string
	var msgs []string
	for e := range a.Events() {
		kinds = append(kinds, fmt.Sprintf("%T", e))
		switch e := e.(type) {
		case MessageEvent:
			msgs = append(msgs, string(e.Body))
			if len(msgs) == 2 {
				go func() { _ = a.Close(ctx) }()
			}
		case ClosedEvent:
			if e.Err != nil {
				t.Errorf("closed with %v", e.Err)
			}
		case CodeEvent:
			if e.Code != "3-ev" {
				t.Errorf("code %q", e.Code)
			}
		}
	}
	if !slices.Equal(msgs, []string{"m0", "m1"}) {
		t.Fatalf("messages %q", msgs)
	}
	// Order: Code, then Key, then Verifier before any Versions/Message,
	// Closed last; Welcome somewhere.
	idx := func(k string) int { return slices.Index(kinds, "wormhole."+k) }
	if !(idx("CodeEvent") < idx("KeyEvent") && idx("KeyEvent") < idx("VerifierEvent") &&
		idx("VerifierEvent") < idx("VersionsEvent") && idx("VerifierEvent") < idx("MessageEvent") &&
		idx("WelcomeEvent") >= 0 && idx("ClosedEvent") == len(kinds)-1) {
		t.Fatalf("event order %q", kinds)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFakeCodeErrors(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	w := mustNew(t, ctx, s.opts(testAppID))
	var kfe *KeyFormatError
	for _, bad := range []string{"abc-def", "1 2-x", "", "-x"} {
		if err := w.SetCode(bad); !errors.As(err, &kfe) {
			t.Fatalf("SetCode(%q): %v", bad, err)
		}
	}
	if _, err := w.DeriveKey("x", 32); !errors.Is(err, ErrNoKey) {
		t.Fatal(err)
	}
	if err := w.SetCode("0-"); err != nil { // zero mode
		t.Fatal(err)
	}
	if err := w.SetCode("1-a"); !errors.Is(err, ErrOnlyOneCode) {
		t.Fatal(err)
	}
	if _, err := w.AllocateCode(ctx, 2); !errors.Is(err, ErrOnlyOneCode) {
		t.Fatal(err)
	}
	if _, err := w.InputCode(); !errors.Is(err, ErrOnlyOneCode) {
		t.Fatal(err)
	}
	if err := w.Close(ctx); !errors.Is(err, ErrLonely) {
		t.Fatal(err)
	}
}

func TestFakeServerErrors(t *testing.T) {
	ctx := testCtx(t)
	t.Run("unwelcome", func(t *testing.T) {
		s := newFakeServer()
		s.welcomeErr = "go away"
		w := mustNew(t, ctx, s.opts(testAppID))
		_, err := w.Welcome(ctx)
		var we *WelcomeError
		if !errors.As(err, &we) || we.Message != "go away" {
			t.Fatalf("welcome: %v", err)
		}
		if err := w.Close(ctx); !errors.As(err, &we) {
			t.Fatalf("close: %v", err)
		}
	})
	t.Run("crowded", func(t *testing.T) {
		s := newFakeServer()
		for _, side := range []string{"1111111111", "2222222222"} {
			if _, err := s.client(side).Claim(ctx, "9"); err != nil {
				t.Fatal(err)
			}
		}
		w := mustNew(t, ctx, s.opts(testAppID))
		if err := w.SetCode("9-crowd"); err != nil {
			t.Fatal(err)
		}
		waitClosing(t, ctx, w)
		var se *ServerError
		if err := w.Close(ctx); !errors.As(err, &se) || se.Message != "crowded" {
			t.Fatalf("third close: %v", err)
		}
	})
}

// TestFakeAddFails: the sender stops on a server error with messages still
// queued; closing must not wait for them.
func TestFakeAddFails(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	s.addErr = "no adds today"
	w := mustNew(t, ctx, s.opts(testAppID))
	if err := w.SetCode("8-fail"); err != nil {
		t.Fatal(err)
	}
	waitClosing(t, ctx, w)
	var se *ServerError
	if err := w.Close(context.Background()); !errors.As(err, &se) || se.Message != "no adds today" {
		t.Fatalf("close: %v", err)
	}
}

func TestFakeInput(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	a := mustNew(t, ctx, s.opts(testAppID))
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	b := mustNew(t, ctx, s.opts(testAppID))
	in, err := b.InputCode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.WordCompletions("a"); !errors.Is(err, ErrMustChooseNameplateFirst) {
		t.Fatal(err)
	}
	if err := in.ChooseWords("x-y"); !errors.Is(err, ErrMustChooseNameplateFirst) {
		t.Fatal(err)
	}
	l, err := in.RefreshNameplates(ctx)
	if err != nil || !slices.Contains(l, "1") {
		t.Fatalf("list %v %v", l, err)
	}
	c, err := in.NameplateCompletions("")
	if err != nil || !slices.Equal(c, []string{"1-"}) {
		t.Fatalf("completions %q %v", c, err)
	}
	var kfe *KeyFormatError
	if err := in.ChooseNameplate("x"); !errors.As(err, &kfe) {
		t.Fatal(err)
	}
	if err := in.ChooseNameplate("1"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		in.ChooseNameplate("1"),
		func() error { _, err := in.NameplateCompletions(""); return err }(),
		func() error { _, err := in.RefreshNameplates(ctx); return err }(),
	} {
		if !errors.Is(err, ErrAlreadyChoseNameplate) {
			t.Fatal(err)
		}
	}
	if err := in.WhenWordlistAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	words := strings.SplitN(code, "-", 2)[1]
	first, _, _ := strings.Cut(words, "-")
	comp, err := in.WordCompletions(first[:2])
	if err != nil || !slices.Contains(comp, first+"-") {
		t.Fatalf("word completions of %q: %q %v", first[:2], comp, err)
	}
	if err := in.ChooseWords(words); err != nil {
		t.Fatal(err)
	}
	if err := in.ChooseWords(words); !errors.Is(err, ErrAlreadyChoseWords) {
		t.Fatal(err)
	}
	if _, err := in.WordCompletions(""); !errors.Is(err, ErrAlreadyChoseWords) {
		t.Fatal(err)
	}
	if got, _ := b.Code(ctx); got != code {
		t.Fatalf("code %q want %q", got, code)
	}
	checkExchange(t, ctx, a, b, 1)
	for _, w := range []*Wormhole{a, b} {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFakeTranscribe(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	code, result, err := TranscribeInitiate(ctx, s.opts(testAppID), []byte("from initiator"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, err := TranscribeRespond(ctx, s.opts(testAppID), code, []byte("from responder"))
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	mine, err := result(ctx)
	if err != nil || string(mine) != "from responder" {
		t.Fatalf("initiator got %q %v", mine, err)
	}
	if b := <-got; string(b) != "from initiator" {
		t.Fatalf("responder got %q", b)
	}
	// Wrong code: both fail with ErrWrongPassword.
	code, result, err = TranscribeInitiate(ctx, s.opts(testAppID), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := TranscribeRespond(ctx, s.opts(testAppID), code+"x", []byte("y"))
		errc <- err
	}()
	if _, err := result(ctx); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("initiator: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("responder: %v", err)
	}
}

func TestCloseInterrupted(t *testing.T) {
	ctx := testCtx(t)
	s := newFakeServer()
	w := mustNew(t, ctx, s.opts(testAppID))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := w.Close(cctx)
	if !errors.Is(err, ErrLonely) || !errors.Is(err, context.Canceled) {
		t.Fatalf("close: %v", err)
	}
	if w.State() != StateClosed {
		t.Fatal(w.State())
	}
}

func waitTimeout() <-chan time.Time { return time.After(10 * time.Second) }

func TestTimingJSON(t *testing.T) {
	var tl timingLog
	i := tl.add("pake1", map[string]any{"waiting": "crypto"})
	tl.finish(i, map[string]any{"extra": 1})
	tl.add("rx", nil)
	b, err := json.Marshal(tl.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["name"] != "pake1" || got[1]["stop"] != nil {
		t.Fatalf("%s", b)
	}
	d := got[0]["details"].(map[string]any)
	if d["waiting"] != "crypto" || d["extra"] != float64(1) {
		t.Fatalf("%s", b)
	}
	start, stop := got[0]["start"].(float64), got[0]["stop"].(float64)
	if start < 1e9 || stop < start {
		t.Fatalf("times %v %v", start, stop)
	}
	if _, ok := got[1]["details"].(map[string]any); !ok {
		t.Fatalf("details must be an object: %s", b)
	}
}
