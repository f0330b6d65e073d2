package tunnel_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/tunnel"
	"github.com/wormhole-go/wormhole/tunnel/tunneltest"
)

// peer is one running Tunnel.
type peer struct {
	t      *tunnel.Tunnel
	events *eventLog
	done   chan error
	cancel context.CancelFunc
	dials  *atomic.Int64
}

type eventLog struct {
	mu sync.Mutex
	ev []tunnel.Event
}

func (l *eventLog) add(e tunnel.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) kinds(kind string) []tunnel.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []tunnel.Event
	for _, e := range l.ev {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

type countingDialer struct{ n *atomic.Int64 }

func (d countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// startPeer runs a Tunnel with forwards over s until the test ends.
func startPeer(t *testing.T, s tunnel.Session, fwds ...tunnel.Forward) *peer {
	t.Helper()
	return startPeerWith(t, s, tunnel.Options{Forwards: fwds})
}

// startPeerWith runs a tunnel with opts plus the test's event log, counting
// dialer and a short bytes interval.
func startPeerWith(t *testing.T, s tunnel.Session, opts tunnel.Options) *peer {
	t.Helper()
	p := &peer{events: &eventLog{}, done: make(chan error, 1), dials: &atomic.Int64{}}
	opts.OnEvent, opts.Dialer, opts.BytesInterval = p.events.add, countingDialer{p.dials}, 20*time.Millisecond
	tu, err := tunnel.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.t = tu
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- tu.Run(ctx, s) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return p
}

func mustParse(t *testing.T, dir tunnel.Direction, spec string) tunnel.Forward {
	t.Helper()
	f, err := tunnel.ParseForward(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// memPair returns an in-memory session pair closed at the end of the test.
func memPair(t *testing.T) (tunnel.Session, tunnel.Session) {
	a, b := tunneltest.Pair()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// startEcho serves "echo everything until EOF, then close" on loopback.
func startEcho(t testing.TB) int {
	t.Helper()
	return startServer(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// startHashServer reads until EOF, then writes the sha256 of what it read
// followed by reply bytes, then closes: only correct half-close lets a
// client get its answer.
func startHashServer(t testing.TB, reply int) int {
	return startServer(t, func(c net.Conn) {
		h := sha256.New()
		io.Copy(h, c)
		c.Write(h.Sum(nil))
		io.Copy(c, io.LimitReader(&pattern{}, int64(reply)))
	})
}

func startServer(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(netx.Serve(ln, handle))
	return ln.Addr().(*net.TCPAddr).Port
}

func startHTTP(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		io.Copy(w, io.LimitReader(&pattern{}, int64(n)))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// pattern is an endless deterministic byte stream.
type pattern struct{ off int64 }

func (r *pattern) Read(p []byte) (int, error) {
	for i := range p {
		o := r.off + int64(i)
		p[i] = byte(o*7 + o>>8)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func hashOf(n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, io.LimitReader(&pattern{}, n))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// waitFor polls cond (bounded) for things reported asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 6000 { // a safety net of about a minute
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func isRefused(err error) bool {
	var re *tunnel.RefusedError
	return errors.As(err, &re) && errors.Is(err, tunnel.ErrRefused)
}
