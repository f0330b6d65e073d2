package fowlinterop

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// TestFowlInterop runs fowld (fowl 25.10, latest magic-wormhole) and our
// wh-tunnel binary against each other, once with fowl allocating the code
// and once with wh-tunnel allocating it. In each session there are four
// forwards, two listening on each side, and one forward only fowl asks
// for (our policy must refuse it):
//
//	fg: fowl listens, wh-tunnel connects to a server that sends the payload
//	fp: fowl listens, wh-tunnel connects to a sink (payload uploaded)
//	wg: wh-tunnel listens, fowl connects to the payload server
//	wp: wh-tunnel listens, fowl connects to the sink
//	nope: fowl asks wh-tunnel to listen; wh-tunnel has no -L for it
//
// Every transfer is WH_FOWL_SIZE bytes (default 32 MiB), checked by SHA-256
// at the far end. Then one side ends the session (fowl with session-close,
// wh-tunnel with SIGINT) and both must exit 0 with a "happy" close.
func TestFowlInterop(t *testing.T) {
	env := Need(t)
	t.Logf("fowl: %s", env.Versions)
	bin := BuildWhTunnel(t)
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
	relay := relaytest.Start(t)
	payload, sum := makePayload(t)
	srv := startServer(t, payload)
	sink := startSink(t)

	for _, inviter := range []string{"fowl", "wh-tunnel"} {
		t.Run("invite="+inviter, func(t *testing.T) {
			whArgs := []string{
				"-R", fmt.Sprintf("fg=0:127.0.0.1:%d", srv),
				"-R", fmt.Sprintf("fp=0:127.0.0.1:%d", sink.port),
				"-L", fmt.Sprintf("wg=0:127.0.0.1:%d", srv),
				"-L", fmt.Sprintf("wp=0:127.0.0.1:%d", sink.port),
			}
			fowlCmds := []map[string]any{
				{"kind": "local", "name": "fg"},
				{"kind": "local", "name": "fp"},
				{"kind": "remote", "name": "wg", "local_connect_port": srv},
				{"kind": "remote", "name": "wp", "local_connect_port": sink.port},
				{"kind": "remote", "name": "nope", "local_connect_port": srv},
			}
			var fowl, wh *Proc
			if inviter == "fowl" {
				fowl = env.StartFowld(t, "fowld", mb.URL(), relay.Hint())
				fowl.Send(map[string]any{"kind": "allocate-code"})
				for _, c := range fowlCmds {
					fowl.Send(c)
				}
				code := fowl.Wait("code-allocated", nil).Str("code")
				wh = StartWhTunnel(t, bin, "wh-tunnel", mb.URL(), relay.Hint(), append(whArgs, code)...)
			} else {
				wh = StartWhTunnel(t, bin, "wh-tunnel", mb.URL(), relay.Hint(), whArgs...)
				code := wh.Wait("code-allocated", nil).Str("code")
				fowl = env.StartFowld(t, "fowld", mb.URL(), relay.Hint())
				for _, c := range fowlCmds {
					fowl.Send(c)
				}
				fowl.Send(map[string]any{"kind": "set-code", "code": code})
			}
			fv := fowl.Wait("peer-connected", nil)
			wv := wh.Wait("peer-connected", nil)
			if fv.Str("verifier") == "" || fv.Str("verifier") != wv.Str("verifier") {
				t.Fatalf("verifiers differ: fowl %q, wh-tunnel %q", fv.Str("verifier"), wv.Str("verifier"))
			}
			if !strings.Contains(fmt.Sprint(wv["versions"]), "core-v1") {
				t.Errorf("wh-tunnel saw fowl's versions %v, want fowl core-v1", wv["versions"])
			}
			t.Logf("Dilation: %s", wh.Wait("peer-connection", func(e Event) bool { return e.Str("state") == "connected" }).Str("hint"))

			ports := map[string]int{}
			for _, n := range []string{"fg", "fp"} {
				ports[n] = fowl.Wait("listening", Named(n)).Int("listening_port")
				wh.Wait("awaiting-connect", Named(n))
			}
			for _, n := range []string{"wg", "wp"} {
				ports[n] = wh.Wait("listening", Named(n)).Int("listening_port")
				fowl.Wait("awaiting-connect", Named(n))
			}
			// Policy: wh-tunnel has no -L nope, so it refuses and fowl says so.
			e := fowl.Wait("error", func(e Event) bool { return strings.Contains(e.Str("message"), "nope") })
			if !strings.Contains(e.Str("message"), "No service permitted for name: nope") {
				t.Errorf("fowl's error for the refused forward: %q", e.Str("message"))
			}
			wh.Wait("error", func(e Event) bool { return strings.Contains(e.Str("message"), "nope") })

			for _, n := range []string{"fg", "wg", "fp", "wp"} {
				start := time.Now()
				var got int64
				if n[1] == 'g' {
					var h [32]byte
					got, h = download(t, ports[n])
					if got != int64(len(payload)) || h != sum {
						t.Errorf("%s: downloaded %d bytes sha256 %x, want %d %x", n, got, h, len(payload), sum)
					}
				} else {
					upload(t, ports[n], payload)
					r := sink.result(t)
					got = r.n
					if r.n != int64(len(payload)) || r.sum != sum {
						t.Errorf("%s: sink got %d bytes sha256 %x, want %d %x", n, r.n, r.sum, len(payload), sum)
					}
				}
				d := time.Since(start)
				t.Logf("%s (%s): %d bytes, sha256 ok, %.1f MB/s", n, what(n), got, float64(got)/d.Seconds()/1e6)
				// wh-tunnel's own accounting of that connection, once it ended:
				// "in" is towards the peer, "out" from it.
				id, in, out := whConnBytes(t, wh, n)
				wantIn, wantOut := int64(len(payload)), int64(0)
				if n == "fp" || n == "wg" {
					wantIn, wantOut = 0, wantIn
				}
				if in != wantIn || out != wantOut {
					t.Errorf("%s: wh-tunnel connection %d reported bytes-in %d, bytes-out %d; want %d, %d", n, id, in, out, wantIn, wantOut)
				}
			}
			// The non-inviting side ends the session, so both ways are exercised.
			if inviter == "fowl" {
				wh.Signal(syscall.SIGINT)
			} else {
				fowl.Send(map[string]any{"kind": "session-close"})
			}
			for _, p := range []*Proc{fowl, wh} {
				if r := p.Wait("closed", nil).Str("result"); r != "happy" {
					t.Errorf("%s closed with %q, want happy", p.Name, r)
				}
				if c := p.ExitCode(); c != 0 {
					t.Errorf("%s exit code %d, want 0", p.Name, c)
				}
			}
		})
	}
}

func what(name string) string {
	return map[string]string{
		"fg": "download, fowl listens, wh-tunnel dials the server",
		"fp": "upload, fowl listens, wh-tunnel dials the sink",
		"wg": "download, wh-tunnel listens, fowl dials the server",
		"wp": "upload, wh-tunnel listens, fowl dials the sink",
	}[name]
}

// whConnBytes waits until wh-tunnel's connection for forward name ended
// and returns its id and the bytes it reported in and out.
func whConnBytes(t *testing.T, wh *Proc, name string) (id int, in, out int64) {
	t.Helper()
	kind := "incoming" // the peer listens: fowl opened the subchannel
	if name[0] == 'w' {
		kind = "outgoing"
	}
	id = wh.Wait(kind+"-connection", func(e Event) bool { return e.Str("service_name") == name }).Int("id")
	wh.Wait(kind+"-done", func(e Event) bool { return e.Int("id") == id })
	return id, wh.Bytes("bytes-in")[id], wh.Bytes("bytes-out")[id]
}

// makePayload is WH_FOWL_SIZE (default 32 MiB) pseudo-random bytes.
func makePayload(t testing.TB) ([]byte, [32]byte) {
	t.Helper()
	size := 32 << 20
	if s := os.Getenv("WH_FOWL_SIZE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 1<<30 {
			t.Fatalf("bad WH_FOWL_SIZE %q (1 .. 1 GiB)", s)
		}
		size = n
	}
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{'f', 'o', 'w', 'l'}).Read(b)
	return b, sha256.Sum256(b)
}

// startServer sends payload on every connection, then closes it.
func startServer(t testing.TB, payload []byte) int {
	t.Helper()
	return serve(t, func(c net.Conn) { c.Write(payload) })
}

type sinkResult struct {
	n   int64
	sum [32]byte
}

type sinkServer struct {
	port    int
	results chan sinkResult
}

// startSink hashes each connection's bytes up to EOF.
func startSink(t testing.TB) *sinkServer {
	t.Helper()
	s := &sinkServer{results: make(chan sinkResult, 16)}
	s.port = serve(t, func(c net.Conn) {
		h := sha256.New()
		n, _ := io.Copy(h, c)
		var r sinkResult
		r.n = n
		copy(r.sum[:], h.Sum(nil))
		select {
		case s.results <- r:
		default:
		}
	})
	return s
}

func (s *sinkServer) result(t testing.TB) sinkResult {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(WaitTimeout):
		t.Fatal("the sink saw no complete connection")
		return sinkResult{}
	}
}

// serve runs handle for every connection to a loopback listener until
// the test ends.
func serve(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(netx.Serve(ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(WaitTimeout))
		handle(c)
	}))
	return ln.Addr().(*net.TCPAddr).Port
}

func download(t testing.TB, port int) (int64, [32]byte) {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(WaitTimeout))
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Errorf("download from %d: %v", port, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum
}

func upload(t testing.TB, port int, payload []byte) {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(WaitTimeout))
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("upload to %d: %v", port, err)
	}
}

// TestFowlPorts checks the port cross-checks of both protocols' messages
// against real fowl: listen-port in request-listener (fowl --remote
// NAME:PORT:listen=P / our -R P:...) and desired-port in the answer (fowl
// --local NAME::remote-connect=P / our -R ...:HOSTPORT).
func TestFowlPorts(t *testing.T) {
	env := Need(t)
	bin := BuildWhTunnel(t)
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
	relay := relaytest.Start(t)
	payload, sum := makePayload(t)
	srv := startServer(t, payload)
	free := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}

	t.Run("agree", func(t *testing.T) {
		pFixed, pBad, pFowl := free(), free(), free()
		fowl := env.StartFowld(t, "fowld", mb.URL(), relay.Hint())
		fowl.Send(map[string]any{"kind": "allocate-code"})
		// We must listen on exactly pFixed, as fowl asks and our -L says.
		fowl.Send(map[string]any{"kind": "remote", "name": "fixed", "remote_listen_port": pFixed, "local_connect_port": srv})
		// fowl asks for pBad but our -L chooses its own port: refused.
		fowl.Send(map[string]any{"kind": "remote", "name": "badport", "remote_listen_port": pBad, "local_connect_port": srv})
		// fowl names the port we must connect to (desired-port); ours agrees.
		fowl.Send(map[string]any{"kind": "local", "name": "rc", "remote_connect_port": srv})
		// We ask fowl to listen on pFowl, which its own local names too.
		fowl.Send(map[string]any{"kind": "local", "name": "fixedl", "local_listen_port": pFowl})
		code := fowl.Wait("code-allocated", nil).Str("code")
		wh := StartWhTunnel(t, bin, "wh-tunnel", mb.URL(), relay.Hint(),
			"-L", fmt.Sprintf("fixed=%d:127.0.0.1:%d", pFixed, srv),
			"-L", fmt.Sprintf("badport=0:127.0.0.1:%d", srv),
			"-R", fmt.Sprintf("rc=0:127.0.0.1:%d", srv),
			"-R", fmt.Sprintf("fixedl=%d:127.0.0.1:%d", pFowl, srv),
			code)

		if p := wh.Wait("listening", Named("fixed")).Int("listening_port"); p != pFixed {
			t.Errorf("fixed: wh-tunnel listens on %d, want %d", p, pFixed)
		}
		fowl.Wait("awaiting-connect", Named("fixed"))
		if p := fowl.Wait("listening", Named("fixedl")).Int("listening_port"); p != pFowl {
			t.Errorf("fixedl: fowl listens on %d, want %d", p, pFowl)
		}
		wh.Wait("awaiting-connect", Named("fixedl"))
		pRC := fowl.Wait("listening", Named("rc")).Int("listening_port")
		if c := wh.Wait("awaiting-connect", Named("rc")).Int("local_port"); c != srv {
			t.Errorf("rc: wh-tunnel connects to %d, want %d", c, srv)
		}
		r := wh.Wait("listening-failed", Named("badport")).Str("reason")
		if !strings.Contains(r, fmt.Sprint(pBad)) {
			t.Errorf("badport: wh-tunnel's reason %q does not name the port fowl asked for (%d)", r, pBad)
		}
		e := fowl.Wait("error", func(e Event) bool { return strings.Contains(e.Str("message"), "badport") })
		t.Logf("fowl says: %s", e.Str("message"))

		for name, port := range map[string]int{"fixed": pFixed, "fixedl": pFowl, "rc": pRC} {
			n, h := download(t, port)
			if n != int64(len(payload)) || h != sum {
				t.Errorf("%s: downloaded %d bytes sha256 %x, want %d %x", name, n, h, len(payload), sum)
			}
		}
		fowl.Send(map[string]any{"kind": "session-close"})
		for _, p := range []*Proc{fowl, wh} {
			if c := p.ExitCode(); c != 0 {
				t.Errorf("%s exit code %d, want 0", p.Name, c)
			}
		}
	})

	// fowl's --local names a remote-connect port our -R does not connect
	// to: we refuse (closing the commands subchannel, which makes fowl
	// drop its listener) and wh-tunnel exits 4 as documented.
	t.Run("desired-port-mismatch", func(t *testing.T) {
		other := free()
		wh := StartWhTunnel(t, bin, "wh-tunnel", mb.URL(), relay.Hint(), "-R", fmt.Sprintf("rcbad=0:127.0.0.1:%d", srv))
		code := wh.Wait("code-allocated", nil).Str("code")
		fowl := env.StartFowld(t, "fowld", mb.URL(), relay.Hint())
		fowl.Send(map[string]any{"kind": "local", "name": "rcbad", "remote_connect_port": other})
		fowl.Send(map[string]any{"kind": "set-code", "code": code})
		fport := fowl.Wait("listening", Named("rcbad")).Int("listening_port")
		r := wh.Wait("listening-failed", Named("rcbad")).Str("reason")
		if !strings.Contains(r, fmt.Sprint(other)) {
			t.Errorf("rcbad: reason %q does not name fowl's port %d", r, other)
		}
		if c := wh.ExitCode(); c != 4 {
			t.Errorf("wh-tunnel exit code %d, want 4 (a -R forward was refused)", c)
		}
		if r := wh.Wait("closed", nil).Str("result"); r != "refused" {
			t.Errorf("wh-tunnel closed with %q, want refused", r)
		}
		// fowl listened before we refused; its listener must go away
		// (polled: fowl learns of the closed subchannel asynchronously).
		for i := 0; ; i++ {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fport))
			if err != nil {
				break
			}
			c.Close()
			if i == 300 {
				t.Errorf("fowl still listens on %d for the refused forward", fport)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		fowl.Send(map[string]any{"kind": "session-close", "timeout": 10})
		t.Logf("fowld exit code %d after wh-tunnel left; its events:\n%s", fowl.ExitCode(), fowl.History())
	})
}

// TestFowlListenerHalfOpen is a known-bad cell (opt-in: WH_FOWL_KNOWN_BAD=1).
//
// fowl listens (fowl local "ho"), our -R connects to a server that, like
// many, keeps its end open after reading EOF. A client of fowl's listener
// sends a little and closes: fowl closes the subchannel; we carry that as
// a half-close (CloseWrite towards the server) and keep our side of the
// subchannel open until the server closes. Meanwhile fowl's
// LocalServerFarSide stays registered as the subchannel's producer with a
// closed TCP transport. The next time fowl's Dilation Outbound pauses and
// resumes (any bulk transfer, here an upload through a second forward),
// it resumes that producer, fowl calls reactor.addReader on fd -1,
// ValueError escapes doWrite and Twisted drops the Dilation connection;
// every reconnection repeats it (use_connection resumes all producers)
// until the mailbox is full and the session dies.
func TestFowlListenerHalfOpen(t *testing.T) {
	env := Need(t)
	if os.Getenv("WH_FOWL_KNOWN_BAD") == "" {
		t.Skip("known bad (fowl keeps a dead producer registered while our side of a subchannel stays half-open; see docs/fowl-interop.md): set WH_FOWL_KNOWN_BAD=1 to run")
	}
	bin := BuildWhTunnel(t)
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
	relay := relaytest.Start(t)
	payload, sum := makePayload(t)
	sink := startSink(t)
	gotEOF := make(chan struct{}, 1)
	holdRelease := make(chan struct{})
	hold := serve(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		select {
		case gotEOF <- struct{}{}:
		default:
		}
		<-holdRelease // keep our end open, as a server may
	})
	t.Cleanup(func() { close(holdRelease) }) // runs before serve's cleanup

	fowl := env.StartFowld(t, "fowld", mb.URL(), relay.Hint())
	fowl.Send(map[string]any{"kind": "allocate-code"})
	fowl.Send(map[string]any{"kind": "local", "name": "ho"})
	fowl.Send(map[string]any{"kind": "local", "name": "fp"})
	code := fowl.Wait("code-allocated", nil).Str("code")
	wh := StartWhTunnel(t, bin, "wh-tunnel", mb.URL(), relay.Hint(),
		"-R", fmt.Sprintf("ho=0:127.0.0.1:%d", hold),
		"-R", fmt.Sprintf("fp=0:127.0.0.1:%d", sink.port), code)
	pHO := fowl.Wait("listening", Named("ho")).Int("listening_port")
	pFP := fowl.Wait("listening", Named("fp")).Int("listening_port")
	wh.Wait("awaiting-connect", Named("ho"))
	wh.Wait("awaiting-connect", Named("fp"))

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pHO))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.Close()
	select {
	case <-gotEOF: // fowl's CLOSE reached us and became CloseWrite
	case <-time.After(WaitTimeout):
		t.Fatal("the held-open server never saw EOF")
	}

	upload(t, pFP, payload)
	select {
	case r := <-sink.results:
		if r.n != int64(len(payload)) || r.sum != sum {
			t.Errorf("sink got %d bytes sha256 %x, want %d %x", r.n, r.sum, len(payload), sum)
		}
	case <-time.After(WaitTimeout):
		t.Errorf("upload through fowl's listener never completed")
	}
	n := 0
	for _, e := range wh.Events() {
		if e.Kind() == "peer-connection" && e.Str("state") == "reconnecting" {
			n++
		}
	}
	if n > 0 {
		t.Errorf("the Dilation connection was lost %d times (fowl dropped it; see its stderr)", n)
	}
	// An orderly close must still work; if the session died, wh-tunnel
	// must not linger.
	fowl.in.Write([]byte(`{"kind": "session-close"}` + "\n")) // fowld may be gone already
	for _, p := range []*Proc{fowl, wh} {
		if c := p.ExitCode(); c != 0 {
			t.Errorf("%s exit code %d, want 0", p.Name, c)
		}
	}
}
