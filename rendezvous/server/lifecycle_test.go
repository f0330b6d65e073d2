package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// TestCloseEndsGoroutines: Close disconnects every kind of client and
// every goroutine the server started ends.
func TestCloseEndsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, kind := range []string{"memory", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			var store server.Store = server.NewMemoryStore()
			if kind == "sqlite" {
				st, err := server.OpenSQLiteStore(t.TempDir() + "/db.sqlite")
				if err != nil {
					t.Fatal(err)
				}
				store = st
			}
			defer store.Close()
			s, err := server.New(server.Options{Store: store, PruneInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(l) }()
			url := server.WebSocketURL(l.Addr().String())
			a := dial(t, url)
			if s.URL() != url { // Serve records its listener before accepting
				t.Fatalf("URL() = %q, want %q", s.URL(), url)
			}
			a.bind("app", "a")
			a.cmd("open", "mailbox", "m")
			a.sync()
			b := dial(t, url)
			b.sync()
			raw, err := net.Dial("tcp", l.Addr().String()) // half-open
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-served; !errors.Is(err, server.ErrServerClosed) {
				t.Fatalf("Serve returned %v, want ErrServerClosed", err)
			}
			for _, c := range []*client{a, b} {
				if _, err := c.recvErr(10 * time.Second); err == nil {
					t.Fatal("client still connected after Close")
				}
				c.c.CloseNow()
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := s.Serve(l); !errors.Is(err, server.ErrServerClosed) {
				t.Fatalf("Serve after Close: %v", err)
			}
			// ServeHTTP after Close refuses WebSocket upgrades
			rec := &statusRecorder{header: http.Header{}}
			req, _ := http.NewRequest("GET", "http://x/v1", nil)
			s.ServeHTTP(rec, req)
			if rec.code != http.StatusServiceUnavailable {
				t.Fatalf("ServeHTTP after Close: %d", rec.code)
			}
		})
	}
}

type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.code = code }

func TestProxyHeaders(t *testing.T) {
	for _, trust := range []bool{false, true} {
		mb := startGo(t, server.Options{TrustProxyHeaders: trust})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, mb.URL(), &websocket.DialOptions{HTTPHeader: http.Header{
			"X-Real-Ip": {"2001:db8::7"}, "X-Real-Port": {"5555"}}})
		if err != nil {
			t.Fatal(err)
		}
		cl := &client{t: t, c: c}
		w := cl.recv()["welcome"].(map[string]any)["your-address"].(map[string]any)
		if trust && (w["ipv6"] != "2001:db8::7" || w["port"] != float64(5555)) {
			t.Fatalf("trusted proxy headers ignored: %v", w)
		}
		if !trust && w["ipv4"] != "127.0.0.1" {
			t.Fatalf("untrusted proxy headers used: %v", w)
		}
		c.CloseNow()
	}
}

func TestWebSocketURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:4000": "ws://127.0.0.1:4000/v1",
		"0.0.0.0:4000":   "ws://127.0.0.1:4000/v1",
		":4000":          "ws://127.0.0.1:4000/v1",
		"[::]:4000":      "ws://[::1]:4000/v1",
		"[::1]:4000":     "ws://[::1]:4000/v1",
		"example.org:80": "ws://example.org:80/v1",
	} {
		if got := server.WebSocketURL(in); got != want {
			t.Errorf("WebSocketURL(%q) = %q, want %q", in, got, want)
		}
	}
}
