// Package relaytest runs a relay.Server on a loopback port for tests.
package relaytest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/relay"
)

// Relay is a running test relay.
type Relay struct {
	*relay.Server
	addr *net.TCPAddr
	ws   *httptest.Server
}

// Start starts a relay on 127.0.0.1 (TCP only) and stops it when the test
// ends.
func Start(t testing.TB) *Relay { return StartWith(t, relay.Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, o relay.Options) *Relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := relay.New(o)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	r := &Relay{Server: s, addr: l.Addr().(*net.TCPAddr)}
	t.Cleanup(func() {
		if r.ws != nil {
			r.ws.Close()
		}
		s.Close()
		<-done
	})
	return r
}

// StartWebSocket also serves the WebSocket flavour on another loopback
// port and returns its ws:// URL.
func (r *Relay) StartWebSocket(t testing.TB) string {
	t.Helper()
	if r.ws == nil {
		r.ws = httptest.NewServer(http.Handler(r.Server))
	}
	return "ws" + strings.TrimPrefix(r.ws.URL, "http")
}

// Addr is "127.0.0.1:PORT".
func (r *Relay) Addr() string { return r.addr.String() }

// Port is the TCP port.
func (r *Relay) Port() int { return r.addr.Port }

// Hint is the CLI form "tcp:127.0.0.1:PORT".
func (r *Relay) Hint() string { return fmt.Sprintf("tcp:127.0.0.1:%d", r.addr.Port) }

// RelayHint is the relay-v1 hint for this relay.
func (r *Relay) RelayHint() hints.RelayV1 {
	return hints.RelayV1{Hints: []hints.Hint{hints.DirectTCPV1{Hostname: "127.0.0.1", Port: r.addr.Port}}}
}
