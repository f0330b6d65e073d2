package tunnel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/tunnel"
	"github.com/wormhole-go/wormhole/tunnel/tunneltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sessionMaker returns a connected Session pair; tests run over each kind.
type sessionMaker struct {
	name string
	make func(t *testing.T) (tunnel.Session, tunnel.Session)
}

func sessionKinds() []sessionMaker {
	return append([]sessionMaker{{"memory", memPair}}, extraSessionKinds...)
}

// extraSessionKinds is filled by dilate_test.go (real Dilation).
var extraSessionKinds []sessionMaker

// forEachSession runs f for every session kind.
func forEachSession(t *testing.T, f func(t *testing.T, mk sessionMaker)) {
	for _, mk := range sessionKinds() {
		t.Run(mk.name, func(t *testing.T) { f(t, mk) })
	}
}

// setupPair configures a forward named "svc" to target port on side B and
// listen on side A: A has -L, B has the mirror -R.
func setupPair(t *testing.T, mk sessionMaker, target int, swap bool) (listener, connector *peer, addr string) {
	t.Helper()
	sa, sb := mk.make(t)
	spec := fmt.Sprintf("svc=0:127.0.0.1:%d", target)
	la := mustParse(t, tunnel.Local, spec)
	rb := mustParse(t, tunnel.Remote, spec)
	var pa, pb *peer
	if swap { // the -R side starts first and is the other session end
		pb = startPeer(t, sa, rb)
		pa = startPeer(t, sb, la)
	} else {
		pa = startPeer(t, sa, la)
		pb = startPeer(t, sb, rb)
	}
	st, err := pa.t.WaitReady(tctx(t), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != tunnel.StateListening || st.Addr == "" {
		t.Fatalf("listener side: %+v", st)
	}
	stb, err := pb.t.WaitReady(tctx(t), "svc")
	if err != nil || stb.State != tunnel.StateReady {
		t.Fatalf("connector side: %+v %v", stb, err)
	}
	return pa, pb, st.Addr
}

func TestHTTP(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		for _, swap := range []bool{false, true} {
			t.Run(fmt.Sprintf("swap=%v", swap), func(t *testing.T) {
				httpPort := startHTTP(t)
				la, rb, addr := setupPair(t, mk, httpPort, swap)
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				defer client.CloseIdleConnections()
				for _, n := range []int64{0, 1, 100_000, 3 << 20} {
					resp, err := client.Get(fmt.Sprintf("http://%s/?n=%d", addr, n))
					if err != nil {
						t.Fatal(err)
					}
					h := sha256.New()
					got, err := io.Copy(h, resp.Body)
					resp.Body.Close()
					if err != nil || got != n || [32]byte(h.Sum(nil)) != hashOf(n) {
						t.Fatalf("n=%d: got %d bytes, err %v, hash match %v", n, got, err, [32]byte(h.Sum(nil)) == hashOf(n))
					}
				}
				waitFor(t, "connections to finish", func() bool {
					return la.t.Stats()[0].Open == 0 && rb.t.Stats()[0].Open == 0
				})
				sa, sb := la.t.Stats()[0], rb.t.Stats()[0]
				if sa.Total != 4 || sb.Total != 4 {
					t.Fatalf("totals %d %d, want 4", sa.Total, sb.Total)
				}
				// The response bytes came out of the tunnel at the listener and
				// went into it at the connector.
				if sa.BytesOut < 100_000+3<<20 || sb.BytesIn != sa.BytesOut || sa.BytesIn != sb.BytesOut {
					t.Fatalf("byte counts: listener in=%d out=%d, connector in=%d out=%d", sa.BytesIn, sa.BytesOut, sb.BytesIn, sb.BytesOut)
				}
				if len(la.events.kinds(tunnel.EvOutgoingDone)) != 4 || len(rb.events.kinds(tunnel.EvIncomingDone)) != 4 {
					t.Fatalf("done events: %d outgoing, %d incoming", len(la.events.kinds(tunnel.EvOutgoingDone)), len(rb.events.kinds(tunnel.EvIncomingDone)))
				}
			})
		}
	})
}

func TestConcurrentConnections(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		echo := startEcho(t)
		la, rb, addr := setupPair(t, mk, echo, false)
		const conns = 100
		size := 256 << 10
		if testing.Short() {
			size = 32 << 10
		}
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- echoOnce(addr, i, size)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "connections to close", func() bool {
			return la.t.Stats()[0].Open == 0 && rb.t.Stats()[0].Open == 0
		})
		if got := la.t.Stats()[0].BytesIn; got != int64(conns*size) {
			t.Fatalf("listener bytes in %d, want %d", got, conns*size)
		}
	})
}

func echoOnce(addr string, i, size int) error {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	rand.Read(data)
	data[0] = byte(i)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("conn %d: read: %w", i, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("conn %d: write: %w", i, err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("conn %d: echo differs (%d of %d bytes)", i, len(got), len(data))
	}
	return nil
}

func TestHalfClose(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		const reply = 1 << 20
		srv := startHashServer(t, reply)
		_, _, addr := setupPair(t, mk, srv, false)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		const sent = 300_000
		if _, err := io.Copy(c, io.LimitReader(strings.NewReader(strings.Repeat("half-close ", sent/11+1)), sent)); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte(strings.Repeat("half-close ", sent/11+1)[:sent]))
		if len(got) != 32+reply || !bytes.Equal(got[:32], want[:]) {
			t.Fatalf("reply: %d bytes, hash ok %v", len(got), len(got) >= 32 && bytes.Equal(got[:32], want[:]))
		}
		if h := sha256.Sum256(got[32:]); h != hashOf(reply) {
			t.Fatal("reply body corrupted")
		}
	})
}

// The connecting side of a half-closed connection: the server closes its
// write side first and the client can still send.
func TestHalfCloseServerFirst(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		got := make(chan []byte, 1)
		srv := startServer(t, func(c net.Conn) {
			c.Write([]byte("banner\n"))
			c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			got <- b
		})
		_, _, addr := setupPair(t, mk, srv, false)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		banner, err := io.ReadAll(c) // EOF arrives while our side is open
		if err != nil || string(banner) != "banner\n" {
			t.Fatalf("banner %q %v", banner, err)
		}
		if _, err := c.Write([]byte("after EOF")); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		select {
		case b := <-got:
			if string(b) != "after EOF" {
				t.Fatalf("server got %q", b)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("server never got the client's data")
		}
	})
}

// A peer asking us to listen for a name we did not allow is refused, and
// nothing listens.
func TestPolicyRefusesUnknownListen(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		sa, sb := mk.make(t)
		a := startPeer(t, sa, mustParse(t, tunnel.Local, "web=0:127.0.0.1:80"))
		b := startPeer(t, sb, mustParse(t, tunnel.Remote, "ssh=0:127.0.0.1:22"))
		_, err := b.t.WaitReady(tctx(t), "ssh")
		if !isRefused(err) || !strings.Contains(err.Error(), "No service permitted for name: ssh") {
			t.Fatalf("want refusal, got %v", err)
		}
		if st := a.t.Stats()[0]; st.State != tunnel.StateWaiting {
			t.Fatalf("A's -L changed state: %+v", st)
		}
		if len(b.events.kinds(tunnel.EvListeningFailed)) != 1 {
			t.Fatal("no listening-failed event")
		}
	})
}

// A peer that opens a forwarding subchannel naming a service we never
// allowed gets {"connected": false} and we dial nothing.
func TestPolicyRefusesUnknownConnect(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		sa, sb := mk.make(t)
		echo := startEcho(t)
		b := startPeer(t, sb, mustParse(t, tunnel.Remote, fmt.Sprintf("ok=0:127.0.0.1:%d", echo)))
		// A is a hand-written hostile peer: it accepts B's request, then
		// asks for other names.
		lc, err := sa.Listen(tunnel.SubprotocolCommands)
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		cmd, err := lc.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer cmd.Close()
		if _, err := tunnel.ReadMessage(cmd); err != nil {
			t.Fatal(err)
		}
		if err := tunnel.WriteMessage(cmd, tunnel.Message{"kind": "listener-response", "unique-name": "ok", "listening": true}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.t.WaitReady(tctx(t), "ok"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"127.0.0.1:22", "0:127.0.0.1:22", "", "OK"} {
			sc, err := sa.Dial(tctx(t), tunnel.SubprotocolForward)
			if err != nil {
				t.Fatal(err)
			}
			if err := tunnel.WriteMessage(sc, tunnel.Message{"unique-name": name, "listen-port": 22}); err != nil {
				t.Fatal(err)
			}
			m, err := tunnel.ReadMessage(sc)
			if err != nil {
				t.Fatal(err)
			}
			if m.Bool("connected") {
				t.Fatalf("name %q: connected", name)
			}
			if r, _ := m.String("reason"); r != "Against local policy" {
				t.Fatalf("reason %q", r)
			}
			sc.Close()
		}
		if n := b.dials.Load(); n != 0 {
			t.Fatalf("B dialled %d times", n)
		}
		// The allowed name works and reaches only B's own target.
		sc, err := sa.Dial(tctx(t), tunnel.SubprotocolForward)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		tunnel.WriteMessage(sc, tunnel.Message{"unique-name": "ok"})
		if m, err := tunnel.ReadMessage(sc); err != nil || !m.Bool("connected") {
			t.Fatalf("allowed name: %v %v", m, err)
		}
		sc.Write([]byte("ping"))
		sc.(interface{ CloseWrite() error }).CloseWrite()
		got, _ := io.ReadAll(sc)
		if string(got) != "ping" || b.dials.Load() != 1 {
			t.Fatalf("echo %q, dials %d", got, b.dials.Load())
		}
	})
}

// Both sides name the ports; a mismatch is refused with a reason, by
// whichever side notices.
func TestPolicyPortMismatch(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		free := freePort(t)
		sa, sb := mk.make(t)
		startPeer(t, sa, mustParse(t, tunnel.Local, fmt.Sprintf("svc=%d:127.0.0.1:80", free)))
		b := startPeer(t, sb, mustParse(t, tunnel.Remote, fmt.Sprintf("svc=%d:127.0.0.1:80", free+1)))
		_, err := b.t.WaitReady(tctx(t), "svc")
		if !isRefused(err) || !strings.Contains(err.Error(), "listen port") {
			t.Fatalf("want listen-port refusal, got %v", err)
		}
		sc, sd := mk.make(t)
		c := startPeer(t, sc, mustParse(t, tunnel.Local, "svc=0:127.0.0.1:80"))
		d := startPeer(t, sd, mustParse(t, tunnel.Remote, "svc=0:127.0.0.1:81"))
		_, err = d.t.WaitReady(tctx(t), "svc")
		if !isRefused(err) || !strings.Contains(err.Error(), "port 80") {
			t.Fatalf("want connect-port refusal, got %v", err)
		}
		// D closed its request, so C stops listening again.
		waitFor(t, "C to stop listening", func() bool { return c.t.Stats()[0].State == tunnel.StateClosed })
	})
}

// When the requesting side goes away, the listener it asked for closes.
func TestListenerFollowsRequest(t *testing.T) {
	sa, sb := tunneltest.Pair()
	defer sa.Close()
	defer sb.Close()
	a := startPeer(t, sa, mustParse(t, tunnel.Local, "svc=0:127.0.0.1:9"))
	b := startPeer(t, sb, mustParse(t, tunnel.Remote, "svc=0:127.0.0.1:9"))
	st, err := a.t.WaitReady(tctx(t), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.t.WaitReady(tctx(t), "svc"); err != nil {
		t.Fatal(err)
	}
	b.cancel()
	<-b.done
	b.done <- nil
	waitFor(t, "listener to close", func() bool { return a.t.Stats()[0].State == tunnel.StateClosed })
	if c, err := net.DialTimeout("tcp", st.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepting")
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The JSON events have fowld's keys.
func TestEventJSON(t *testing.T) {
	cases := []struct {
		e    tunnel.Event
		want string
	}{
		{tunnel.Event{Kind: tunnel.EvListening, Name: "web", Port: 8080}, `{"kind":"listening","listening_port":8080,"name":"web"}`},
		{tunnel.Event{Kind: tunnel.EvBytesIn, ID: 3, Bytes: 10}, `{"bytes":10,"id":3,"kind":"bytes-in"}`},
		{tunnel.Event{Kind: tunnel.EvIncomingLost, ID: 2, Reason: "x"}, `{"id":2,"kind":"incoming-lost","reason":"x"}`},
		{tunnel.Event{Kind: tunnel.EvCodeAllocated, Code: "1-a-b"}, `{"code":"1-a-b","kind":"code-allocated"}`},
		{tunnel.Event{Kind: tunnel.EvPeerConnected, Verifier: "ab"}, `{"kind":"peer-connected","verifier":"ab","versions":{}}`},
		{tunnel.Event{Kind: tunnel.EvError, Message: "m"}, `{"kind":"error","message":"m"}`},
	}
	for _, c := range cases {
		b, err := c.e.MarshalJSON()
		if err != nil || string(b) != c.want {
			t.Errorf("%s: got %s %v, want %s", c.e.Kind, b, err, c.want)
		}
	}
}

// Run ends promptly with open connections and closes them.
func TestShutdownWithOpenConnections(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		echo := startEcho(t)
		la, _, addr := setupPair(t, mk, echo, false)
		var cs []net.Conn
		for range 5 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("x"))
			buf := make([]byte, 1)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		la.cancel()
		select {
		case err := <-la.done:
			la.done <- err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return")
		}
		for _, c := range cs {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("connection still open after shutdown")
			}
		}
		_ = context.Background
	})
}

// IPv6 on both ends: listen on [::1], connect to a service on [::1].
func TestIPv6Forward(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	defer netx.Serve(ln, func(c net.Conn) { io.Copy(c, c) })()
	port := ln.Addr().(*net.TCPAddr).Port
	sa, sb := memPair(t)
	a := startPeer(t, sa, mustParse(t, tunnel.Local, fmt.Sprintf("[::1]:0:[::1]:%d", port)))
	b := startPeer(t, sb, mustParse(t, tunnel.Remote, fmt.Sprintf("0:[::1]:%d", port)))
	name := fmt.Sprintf("0:[::1]:%d", port)
	st, err := a.t.WaitReady(tctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Addr, "[::1]:") {
		t.Fatalf("listening on %s", st.Addr)
	}
	if _, err := b.t.WaitReady(tctx(t), name); err != nil {
		t.Fatal(err)
	}
	if err := echoOnce(st.Addr, 7, 10000); err != nil {
		t.Fatal(err)
	}
}

// Several forwards at once, in both directions: A has -L web and -R echo,
// B the mirrors. HTTP goes through A's listener, echo through B's.
func TestSeveralForwardsBothWays(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		httpPort, echoPort := startHTTP(t), startEcho(t)
		web := fmt.Sprintf("web=0:127.0.0.1:%d", httpPort)
		echo := fmt.Sprintf("echo=0:127.0.0.1:%d", echoPort)
		sa, sb := mk.make(t)
		a := startPeer(t, sa, mustParse(t, tunnel.Local, web), mustParse(t, tunnel.Remote, echo))
		b := startPeer(t, sb, mustParse(t, tunnel.Remote, web), mustParse(t, tunnel.Local, echo))
		wst, err := a.t.WaitReady(tctx(t), "web")
		if err != nil {
			t.Fatal(err)
		}
		est, err := b.t.WaitReady(tctx(t), "echo")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 10 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- echoOnce(est.Addr, i, 50_000)
			}()
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				resp, err := client.Get(fmt.Sprintf("http://%s/?n=%d", wst.Addr, 70_000+i))
				if err != nil {
					errs <- err
					return
				}
				h := sha256.New()
				io.Copy(h, resp.Body)
				resp.Body.Close()
				if [32]byte(h.Sum(nil)) != hashOf(int64(70_000+i)) {
					errs <- fmt.Errorf("http %d: body differs", i)
					return
				}
				errs <- nil
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []*peer{a, b} {
			for _, st := range p.t.Stats() {
				if st.Total != 10 {
					t.Errorf("%s %s: %d connections, want 10", st.Forward.Dir, st.Forward.Name, st.Total)
				}
			}
		}
	})
}

// MaxConnections bounds concurrently forwarded connections.
func TestMaxConnections(t *testing.T) {
	echo := startEcho(t)
	sa, sb := memPair(t)
	spec := fmt.Sprintf("m=0:127.0.0.1:%d", echo)
	ta, err := tunnel.New(tunnel.Options{Forwards: []tunnel.Forward{mustParse(t, tunnel.Local, spec)}, MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	pb := startPeer(t, sb, mustParse(t, tunnel.Remote, spec))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ta.Run(ctx, sa) }()
	defer func() { cancel(); <-done }()
	st, err := ta.WaitReady(tctx(t), "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.t.WaitReady(tctx(t), "m"); err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", st.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "x")
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", st.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "x")
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("third connection got %d bytes", n)
	}
	held[0].Close()
	waitFor(t, "a slot to free", func() bool { return ta.Stats()[0].Open < 2 })
	if err := echoOnce(st.Addr, 1, 1000); err != nil {
		t.Fatal(err)
	}
}
