package transit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/transit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func relayHint(t *testing.T, loc string) hints.Hint {
	t.Helper()
	r, err := hints.ParseRelayLocation(loc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// deadAddr returns a loopback port nobody listens on.
func deadPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

type side struct {
	tr   *transit.Transit
	conn *transit.Conn
	err  error
}

// connectPair builds a sender and a receiver, exchanges their hints (plus
// extra peer hints) and connects both.
func connectPair(t *testing.T, key []byte, so, ro transit.Options, extraToSender, extraToReceiver []hints.Hint) (s, r side) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	so.IsSender, ro.IsSender = true, false
	so.Key, ro.Key = key, key
	so.Listen.LoopbackOnly, ro.Listen.LoopbackOnly = true, true
	var err error
	if s.tr, err = transit.New(so); err != nil {
		t.Fatal(err)
	}
	if r.tr, err = transit.New(ro); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.tr.Close(); r.tr.Close() })
	sh, err := s.tr.LocalHints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rh, err := r.tr.LocalHints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.tr.AddPeerHints(append(rh, extraToSender...))
	r.tr.AddPeerHints(append(sh, extraToReceiver...))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.conn, s.err = s.tr.Connect(ctx) }()
	go func() { defer wg.Done(); r.conn, r.err = r.tr.Connect(ctx) }()
	wg.Wait()
	for _, x := range []side{s, r} {
		if x.conn != nil {
			t.Cleanup(func() { x.conn.Close() })
		}
	}
	return s, r
}

// exchange proves the connection: records both ways, then a stream.
func exchange(t *testing.T, s, r *transit.Conn) {
	t.Helper()
	if err := s.SendRecord([]byte("hello receiver")); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReceiveRecord(); err != nil || string(got) != "hello receiver" {
		t.Fatalf("receiver got %q %v", got, err)
	}
	if err := r.SendRecord([]byte(`{"ack": "ok"}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReceiveRecord(); err != nil || string(got) != `{"ack": "ok"}` {
		t.Fatalf("sender got %q %v", got, err)
	}
	data := make([]byte, 1<<20+7)
	rand.Read(data)
	go func() { s.Write(data); s.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, r) // a close at a record boundary is a clean EOF
	if err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), sha256Of(data)) {
		t.Fatalf("stream: got %d bytes, err %v", n, err)
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestDirectGoGo(t *testing.T) {
	s, r := connectPair(t, testKey(), transit.Options{}, transit.Options{}, nil, nil)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender %v, receiver %v", s.err, r.err)
	}
	if s.conn.Relayed() || r.conn.Relayed() {
		t.Fatal("relayed without relay hints")
	}
	exchange(t, s.conn, r.conn)
}

func TestRelayOnlyGoGoOurRelay(t *testing.T) {
	rl := relaytest.Start(t)
	o := transit.Options{NoListen: true, RelayHints: []hints.Hint{relayHint(t, rl.Hint())}}
	s, r := connectPair(t, testKey(), o, o, nil, nil)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender %v, receiver %v", s.err, r.err)
	}
	if !s.conn.Relayed() || !r.conn.Relayed() {
		t.Fatal("not relayed")
	}
	exchange(t, s.conn, r.conn)
	st := rl.Stats()
	if st.Paired != 1 {
		t.Fatalf("relay stats %+v", st)
	}
}

func TestRelayOnlyGoGoPythonRelay(t *testing.T) {
	py := interop.StartPythonRelay(t)
	// Each side knows the relay only from the other's hints for the
	// receiver (Python merges peer relays into its set as well).
	so := transit.Options{NoListen: true, RelayHints: []hints.Hint{relayHint(t, py.Hint())}}
	ro := transit.Options{NoListen: true}
	s, r := connectPair(t, testKey(), so, ro, nil, nil)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender %v, receiver %v", s.err, r.err)
	}
	if !s.conn.Relayed() || !r.conn.Relayed() {
		t.Fatal("not relayed")
	}
	exchange(t, s.conn, r.conn)
}

// Both paths available, both sides listening: a direct connection wins
// (the relay starts only after the relay delay).
func TestDirectPreferredOverRelay(t *testing.T) {
	rl := relaytest.Start(t)
	o := transit.Options{RelayHints: []hints.Hint{relayHint(t, rl.Hint())}, Plan: hints.PlanOptions{RelayDelay: 10 * time.Second}}
	s, r := connectPair(t, testKey(), o, o, nil, nil)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender %v, receiver %v", s.err, r.err)
	}
	if s.conn.Relayed() || r.conn.Relayed() {
		t.Fatal("relay won although direct was available and the relay delayed")
	}
	exchange(t, s.conn, r.conn)
}

// A dead relay does not stop a transfer that has a direct path.
func TestDeadRelayDirectWorks(t *testing.T) {
	dead := relayHint(t, "tcp:127.0.0.1:"+itoa(deadPort(t)))
	o := transit.Options{RelayHints: []hints.Hint{dead}, Plan: hints.PlanOptions{RelayDelay: -1}} // relay dialed at once, and fails
	s, r := connectPair(t, testKey(), o, o, nil, nil)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender %v, receiver %v", s.err, r.err)
	}
	if s.conn.Relayed() {
		t.Fatal("relayed")
	}
	exchange(t, s.conn, r.conn)
}

// Unreachable direct hints do not stop a transfer through a relay.
func TestDeadDirectRelayWorks(t *testing.T) {
	rl := relaytest.Start(t)
	bogus := []hints.Hint{
		hints.DirectTCPV1{Hostname: "127.0.0.1", Port: deadPort(t)},
		hints.DirectTCPV1{Hostname: "::1", Port: deadPort(t)},
	}
	o := transit.Options{NoListen: true, RelayHints: []hints.Hint{relayHint(t, rl.Hint())}, Plan: hints.PlanOptions{RelayDelay: 50 * time.Millisecond}}
	s, r := connectPair(t, testKey(), o, o, bogus, bogus)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender %v, receiver %v", s.err, r.err)
	}
	if !s.conn.Relayed() || !r.conn.Relayed() {
		t.Fatal("not relayed")
	}
	exchange(t, s.conn, r.conn)
}

// Everything fails: one RaceError naming each attempt.
func TestAllPathsFail(t *testing.T) {
	key := testKey()
	tr, err := transit.New(transit.Options{IsSender: true, Key: key, NoListen: true,
		RelayHints: []hints.Hint{relayHint(t, "tcp:127.0.0.1:"+itoa(deadPort(t)))}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.AddPeerHints([]hints.Hint{hints.DirectTCPV1{Hostname: "127.0.0.1", Port: deadPort(t)}})
	_, err = tr.Connect(context.Background())
	var re *hints.RaceError
	if !errors.As(err, &re) || len(re.Attempts) != 2 {
		t.Fatalf("err %v", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("dial error not reachable: %v", err)
	}
	// Nothing at all to try.
	tr2, _ := transit.New(transit.Options{Key: key, NoListen: true})
	defer tr2.Close()
	if _, err := tr2.Connect(context.Background()); !errors.Is(err, hints.ErrNoCandidates) {
		t.Fatalf("err %v", err)
	}
}

// Different keys: the relay pairs nothing (different tokens), and on a
// direct path the handshake fails.
func TestWrongKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := transit.New(transit.Options{Key: testKey(), Listen: hints.ListenOptions{LoopbackOnly: true}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rh, err := r.LocalHints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := transit.New(transit.Options{IsSender: true, Key: testKey(), NoListen: true})
	defer s.Close()
	s.AddPeerHints(rh)
	var wg sync.WaitGroup
	wg.Add(1)
	var rerr error
	go func() { defer wg.Done(); _, rerr = r.Connect(ctx) }()
	_, serr := s.Connect(ctx)
	wg.Wait()
	if !errors.Is(serr, transit.ErrBadHandshake) {
		t.Fatalf("sender: %v", serr)
	}
	if !errors.Is(rerr, context.DeadlineExceeded) {
		t.Fatalf("receiver: %v", rerr)
	}
}

func TestOptionsValidation(t *testing.T) {
	if _, err := transit.New(transit.Options{Key: []byte("short")}); !errors.Is(err, transit.ErrKey) {
		t.Fatal(err)
	}
	if _, err := transit.New(transit.Options{Key: testKey(), Side: "XYZ"}); err == nil {
		t.Fatal("bad side accepted")
	}
	tr, _ := transit.New(transit.Options{Key: testKey(), NoListen: true, RelayHints: []hints.Hint{relayHint(t, "tcp:example.org:4001")}})
	hs, err := tr.LocalHints(context.Background())
	if err != nil || len(hs) != 1 || hs[0].HintType() != "relay-v1" {
		t.Fatalf("hints %v %v", hs, err)
	}
	tr.Close()
	// A bare TCP hint as relay is a relay at that address.
	tr3, _ := transit.New(transit.Options{Key: testKey(), NoListen: true, RelayHints: []hints.Hint{hints.DirectTCPV1{Hostname: "r", Port: 1}}})
	if p := tr3.Plan(); len(p) != 1 || !p[0].Relay {
		t.Fatalf("plan %v", p)
	}
	tr3.Close()
	if _, err := tr.Connect(context.Background()); !errors.Is(err, transit.ErrClosed) {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// Tor hints are used only with Plan.Tor and a dialer that handles them (a
// stand-in for a SOCKS proxy here maps the onion name to loopback).
func TestPluggableTorDialer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := testKey()
	r, _ := transit.New(transit.Options{Key: key, Listen: hints.ListenOptions{LoopbackOnly: true}})
	defer r.Close()
	rh, err := r.LocalHints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port := rh[0].(hints.DirectTCPV1).Port
	onion := []hints.Hint{hints.TorTCPV1{Hostname: "peerpeerpeer.onion", Port: port}}
	var dialed []string
	torDial := func(ctx context.Context, c hints.Candidate) (net.Conn, error) {
		h, ok := c.Hint.(hints.TorTCPV1)
		if !ok {
			return nil, errors.New("only tor here")
		}
		dialed = append(dialed, h.Hostname)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", itoa(h.Port)))
	}
	// Without Tor the hint is skipped: nothing to try.
	s0, _ := transit.New(transit.Options{IsSender: true, Key: key, NoListen: true, Dial: torDial})
	s0.AddPeerHints(onion)
	if _, err := s0.Connect(ctx); !errors.Is(err, hints.ErrNoCandidates) {
		t.Fatalf("without tor: %v", err)
	}
	s, _ := transit.New(transit.Options{IsSender: true, Key: key, NoListen: true, Dial: torDial, Plan: hints.PlanOptions{Tor: true}})
	s.AddPeerHints(onion)
	var wg sync.WaitGroup
	var rc *transit.Conn
	var rerr error
	wg.Add(1)
	go func() { defer wg.Done(); rc, rerr = r.Connect(ctx) }()
	sc, err := s.Connect(ctx)
	wg.Wait()
	if err != nil || rerr != nil {
		t.Fatalf("sender %v receiver %v", err, rerr)
	}
	defer sc.Close()
	defer rc.Close()
	if _, ok := sc.Candidate().Hint.(hints.TorTCPV1); !ok || len(dialed) != 1 {
		t.Fatalf("candidate %v dialed %v", sc.Candidate(), dialed)
	}
	exchange(t, sc, rc)
}
