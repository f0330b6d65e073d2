package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func line(tok, side string) string {
	if side == "" {
		return "please relay " + tok + "\n"
	}
	return "please relay " + tok + " for side " + side + "\n"
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second)) // safety net
	t.Cleanup(func() { c.Close() })
	return c
}

// send writes the handshake line.
func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("want %q: %v (got %q)", want, err, buf)
	}
	if string(buf) != want {
		t.Fatalf("got %q want %q", buf, want)
	}
}

func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("want EOF, got %v (read %q)", err, b)
	}
	if len(b) != 0 {
		t.Fatalf("want EOF, got %q", b)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset by peer") || errors.Is(err, net.ErrClosed))
}

func waitStats(t *testing.T, r *relaytest.Relay, cond func(relay.Stats) bool) relay.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached the condition: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPairAndRelay(t *testing.T) {
	var usage bytes.Buffer
	var umu sync.Mutex
	r := relaytest.StartWith(t, relay.Options{UsageLog: lockedWriter{&umu, &usage}})
	a, b := dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 1 })
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, a, "ok\n")
	expect(t, b, "ok\n")
	send(t, a, "hello from a")
	expect(t, b, "hello from a")
	send(t, b, "and from b")
	expect(t, a, "and from b")
	a.Close()
	expectEOF(t, b) // no half-close: b is closed too
	st := waitStats(t, r, func(s relay.Stats) bool { return s.Current == 0 })
	if st.Moods[relay.MoodHappy] != 1 || st.Paired != 1 || st.Bytes != 22 {
		t.Fatalf("stats %+v", st)
	}
	for i := 0; ; i++ { // the record is written just after the counters
		umu.Lock()
		n := usage.Len()
		umu.Unlock()
		if n > 0 || i > 1000 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	umu.Lock()
	defer umu.Unlock()
	lines := strings.Split(strings.TrimSpace(usage.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("usage lines %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["mood"] != "happy" || rec["total_bytes"] != float64(22) || rec["waiting_time"] == nil {
		t.Fatalf("usage %v", rec)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSameSideNeverPairsRedundantDropped(t *testing.T) {
	r := relaytest.Start(t)
	a1, a2 := dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a1, line(token, "aaaaaaaaaaaaaaaa"))
	send(t, a2, line(token, "aaaaaaaaaaaaaaaa"))
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 2 && s.Pairs == 0 })
	b := dial(t, r.Addr())
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, b, "ok\n")
	// One of a1/a2 is paired, the spare is dropped as redundant.
	res := make(chan string, 2)
	for _, a := range []net.Conn{a1, a2} {
		go func() {
			buf := make([]byte, 3)
			n, _ := io.ReadFull(a, buf)
			res <- string(buf[:n])
		}()
	}
	if got := []string{<-res, <-res}; !(got[0] == "ok\n" && got[1] == "") && !(got[1] == "ok\n" && got[0] == "") {
		t.Fatalf("same-side waiters got %q", got)
	}
	st := waitStats(t, r, func(s relay.Stats) bool { return s.Moods[relay.MoodRedundant] == 1 })
	if st.Waiting != 0 || st.Pairs != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A different token never pairs with this one.
	c := dial(t, r.Addr())
	send(t, c, line(strings.Repeat("f", 64), "bbbbbbbbbbbbbbbb"))
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 1 })
}

func TestLegacyHandshake(t *testing.T) {
	r := relaytest.Start(t)
	a, b := dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a, line(token, ""))
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, a, "ok\n")
	expect(t, b, "ok\n")
	// Two legacy clients pair with each other as well.
	c, d := dial(t, r.Addr()), dial(t, r.Addr())
	tok2 := strings.Repeat("A_", 32)
	send(t, c, line(tok2, ""))
	send(t, d, line(tok2, ""))
	expect(t, c, "ok\n")
	expect(t, d, "ok\n")
}

func TestParseHandshake(t *testing.T) {
	for _, tc := range []struct {
		in          string
		token, side string
		ok          bool
	}{
		{"please relay " + token, token, "", true},
		{"please relay " + token + " for side 0123456789abcdef", token, "0123456789abcdef", true},
		{"please relay " + token + " for side 0123456789abcde", "", "", false},
		{"please relay " + token + " for side 0123456789abcdef0", "", "", false},
		{"please relay " + token + " for side 0123456789abcde-", "", "", false},
		{"please relay " + token + "0", "", "", false},
		{"please relay " + token[:63], "", "", false},
		{"please relay " + token + "\r", "", "", false},
		{"please  relay " + token, "", "", false},
		{"", "", "", false},
	} {
		tok, side, ok := relay.ParseHandshake([]byte(tc.in))
		if ok != tc.ok || tok != tc.token || side != tc.side {
			t.Errorf("%q: got %q %q %v", tc.in, tok, side, ok)
		}
	}
}

func FuzzParseHandshake(f *testing.F) {
	f.Add([]byte("please relay " + token + " for side 0123456789abcdef"))
	f.Add([]byte("please relay " + token))
	f.Add([]byte("please relay x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, side, ok := relay.ParseHandshake(b)
		if !ok {
			return
		}
		re := "please relay " + tok
		if side != "" {
			re += " for side " + side
		}
		if re != string(b) || len(tok) != 64 || (side != "" && len(side) != 16) {
			t.Fatalf("%q parsed as %q %q", b, tok, side)
		}
	})
}

// hostile runs the hostile-input scenarios against a relay at addr and
// returns what each one got back.
func hostile(t *testing.T, addr string) map[string]string {
	got := map[string]string{}
	read := func(c net.Conn) string {
		b, _ := io.ReadAll(c)
		return string(b)
	}
	// Bad handshake.
	c := dial(t, addr)
	send(t, c, "please relay nonsense\n")
	got["bad"] = read(c)
	// Impatient: data in the same write as the handshake.
	c = dial(t, addr)
	send(t, c, line(strings.Repeat("1", 64), "aaaaaaaaaaaaaaaa")+"early")
	got["impatient-same-write"] = read(c)
	// Impatient: data later, while waiting.
	c = dial(t, addr)
	send(t, c, line(strings.Repeat("2", 64), "aaaaaaaaaaaaaaaa"))
	time.Sleep(50 * time.Millisecond) // let the line arrive on its own (not a timing assertion)
	send(t, c, "x")
	got["impatient-later"] = read(c)
	return got
}

func TestHostileInput(t *testing.T) {
	r := relaytest.Start(t)
	got := hostile(t, r.Addr())
	want := map[string]string{"bad": "bad handshake\n", "impatient-same-write": "impatient\n", "impatient-later": "impatient\n"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q want %q", k, got[k], v)
		}
	}
	// Over-long line: disconnected without an answer.
	c := dial(t, r.Addr())
	go io.WriteString(c, strings.Repeat("p", 5000))
	expectEOF(t, c)
	// An exactly 1024-byte bad line still gets an answer.
	c = dial(t, r.Addr())
	send(t, c, strings.Repeat("q", relay.MaxLineLength)+"\n")
	expect(t, c, "bad handshake\n")
	// Nothing at all.
	c = dial(t, r.Addr())
	c.Close()
	waitStats(t, r, func(s relay.Stats) bool {
		return s.Current == 0 && s.Moods[relay.MoodErrory] == 3 && s.Moods[relay.MoodImpatient] == 2 && s.Moods[relay.MoodEmpty] == 1
	})
	// The server still works.
	a, b := dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, a, "ok\n")
	expect(t, b, "ok\n")
}

// The same hostile inputs get the same answers from Debian's Python relay.
func TestHostileInputMatchesPythonRelay(t *testing.T) {
	py := interop.StartPythonRelay(t)
	ours := relaytest.Start(t)
	gotPy, gotGo := hostile(t, py.Addr()), hostile(t, ours.Addr())
	for k, v := range gotPy {
		if gotGo[k] != v {
			t.Errorf("%s: python %q, ours %q", k, v, gotGo[k])
		}
	}
	if len(gotPy) != 3 {
		t.Fatalf("python results %v", gotPy)
	}
}

func TestHalfOpenFlood(t *testing.T) {
	r := relaytest.StartWith(t, relay.Options{MaxConns: 20, HandshakeTimeout: 300 * time.Millisecond})
	var flood []net.Conn
	for i := 0; i < 40; i++ {
		c := dial(t, r.Addr())
		io.WriteString(c, "please relay 0123") // partial line, then silence
		flood = append(flood, c)
	}
	// Every one of them ends: the 20 over the limit at once, the rest when
	// the handshake timeout evicts them.
	for _, c := range flood {
		expectEOF(t, c)
	}
	waitStats(t, r, func(s relay.Stats) bool {
		return s.Current == 0 && s.Moods[relay.MoodRejected] == 20 && s.Moods[relay.MoodEmpty] == 20
	})
	a, b := dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, a, "ok\n")
	expect(t, b, "ok\n")
}

func TestPairTimeout(t *testing.T) {
	r := relaytest.StartWith(t, relay.Options{PairTimeout: 100 * time.Millisecond})
	a := dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	expectEOF(t, a)
	st := waitStats(t, r, func(s relay.Stats) bool { return s.Current == 0 })
	if st.Moods[relay.MoodLonely] != 1 || st.Waiting != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDefaultWaitsForever(t *testing.T) {
	r := relaytest.Start(t)
	a := dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 1 })
	a.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("waiting connection got %v", err)
	}
	a.Close()
	st := waitStats(t, r, func(s relay.Stats) bool { return s.Current == 0 })
	if st.Moods[relay.MoodLonely] != 1 {
		t.Fatalf("moods %v", st.Moods)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A large transfer in both directions at once arrives intact.
func TestBulkBothDirections(t *testing.T) {
	r := relaytest.Start(t)
	a, b := dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, a, "ok\n")
	expect(t, b, "ok\n")
	const n = 8 << 20
	pa, pb := make([]byte, n), make([]byte, n)
	rand.Read(pa)
	rand.Read(pb)
	var wg sync.WaitGroup
	var gotA, gotB [32]byte
	wg.Add(4)
	go func() { defer wg.Done(); a.Write(pa) }()
	go func() { defer wg.Done(); b.Write(pb) }()
	go func() { defer wg.Done(); h := sha256.New(); io.CopyN(h, b, n); copy(gotB[:], h.Sum(nil)) }()
	go func() { defer wg.Done(); h := sha256.New(); io.CopyN(h, a, n); copy(gotA[:], h.Sum(nil)) }()
	wg.Wait()
	if gotB != sha256.Sum256(pa) || gotA != sha256.Sum256(pb) {
		t.Fatal("data corrupted through the relay")
	}
	a.Close()
	expectEOF(t, b)
	st := waitStats(t, r, func(s relay.Stats) bool { return s.Current == 0 })
	if st.Bytes != 2*n {
		t.Fatalf("bytes %d", st.Bytes)
	}
}

func TestWebSocketPairsWithTCP(t *testing.T) {
	r := relaytest.Start(t)
	url := r.StartWebSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// ws_client.py sends the handshake without a newline.
	if err := ws.Write(ctx, websocket.MessageBinary, []byte(strings.TrimSuffix(line(token, "aaaaaaaaaaaaaaaa"), "\n"))); err != nil {
		t.Fatal(err)
	}
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 1 })
	tc := dial(t, r.Addr())
	send(t, tc, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, tc, "ok\n")
	typ, msg, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || string(msg) != "ok\n" {
		t.Fatalf("ws got %v %q %v", typ, msg, err)
	}
	ws.Write(ctx, websocket.MessageBinary, []byte("to tcp"))
	expect(t, tc, "to tcp")
	send(t, tc, "to ws")
	var got []byte
	for len(got) < 5 {
		_, m, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m...)
	}
	if string(got) != "to ws" {
		t.Fatalf("ws got %q", got)
	}
	tc.Close()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("ws close: %v", err)
	}
	waitStats(t, r, func(s relay.Stats) bool { return s.Current == 0 && s.Moods[relay.MoodHappy] == 1 })

	// Two WebSocket clients, handshake with a trailing newline.
	w1, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.CloseNow()
	w2, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.CloseNow()
	w1.Write(ctx, websocket.MessageBinary, []byte(line(token, "aaaaaaaaaaaaaaaa")))
	w2.Write(ctx, websocket.MessageBinary, []byte(line(token, "bbbbbbbbbbbbbbbb")))
	for _, w := range []*websocket.Conn{w1, w2} {
		if _, m, err := w.Read(ctx); err != nil || string(m) != "ok\n" {
			t.Fatalf("%q %v", m, err)
		}
	}
	w1.Write(ctx, websocket.MessageBinary, []byte("ping"))
	if _, m, err := w2.Read(ctx); err != nil || string(m) != "ping" {
		t.Fatalf("%q %v", m, err)
	}
	w1.Close(websocket.StatusNormalClosure, "")
	w2.Read(ctx)

	// A text message is a protocol error.
	w3, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w3.CloseNow()
	w3.Write(ctx, websocket.MessageText, []byte(line(token, "aaaaaaaaaaaaaaaa")))
	if _, _, err := w3.Read(ctx); err == nil {
		t.Fatal("text handshake accepted")
	}
	waitStats(t, r, func(s relay.Stats) bool {
		return s.Current == 0 && s.Moods[relay.MoodErrory] == 1 && s.Moods[relay.MoodHappy] == 2
	})
}

func TestCloseEndsEverything(t *testing.T) {
	r := relaytest.Start(t)
	a, b, c := dial(t, r.Addr()), dial(t, r.Addr()), dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	send(t, b, line(token, "bbbbbbbbbbbbbbbb"))
	expect(t, a, "ok\n")
	send(t, c, line(strings.Repeat("9", 64), "aaaaaaaaaaaaaaaa"))
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 1 })
	r.Close()
	for _, x := range []net.Conn{b, c} {
		bufio.NewReader(x).ReadString('\x00') // until closed
	}
	if _, err := net.DialTimeout("tcp", r.Addr(), time.Second); err == nil {
		t.Fatal("listener still open")
	}
	st := r.Stats()
	if st.Current != 0 || st.Moods[relay.MoodShutdown] != 1 {
		t.Fatalf("stats %+v", st)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Serve(l); !errors.Is(err, relay.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestWebSocketConnectionLimit(t *testing.T) {
	r := relaytest.StartWith(t, relay.Options{MaxConns: 1})
	url := r.StartWebSocket(t)
	a := dial(t, r.Addr())
	send(t, a, line(token, "aaaaaaaaaaaaaaaa"))
	waitStats(t, r, func(s relay.Stats) bool { return s.Waiting == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Fatalf("over-limit websocket: %v", err)
	}
	if st := r.Stats(); st.Moods[relay.MoodRejected] != 1 {
		t.Fatalf("moods %v", st.Moods)
	}
}
