package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wormhole-go/wormhole/relay"
	"github.com/wormhole-go/wormhole/rendezvous/server"
	"github.com/wormhole-go/wormhole/tunnel"
)

// demoResult is what a demo run measured.
type demoResult struct {
	code, mailbox, relay, path string
	mode                       string // Dilation mode agreed: "wormhole-go-credit-1" between two wh-tunnels, "ged" with fowl
	setup                      time.Duration
	down, up                   time.Duration // GET (peer->us) and POST (us->peer)
	bytes                      int64
}

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wh-tunnel demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sizeMiB := fs.Int("size", 64, "")
	relayOnly := fs.Bool("relay-only", false, "")
	directOnly := fs.Bool("direct-only", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *sizeMiB < 0 || *sizeMiB > 1<<14 || (*relayOnly && *directOnly) {
		fmt.Fprintf(stderr, "wh-tunnel demo: usage: wh-tunnel demo [--size MiB] [--relay-only | --direct-only] (%v)\n", err)
		return exitUsage
	}
	mode := pathAny
	switch {
	case *relayOnly:
		mode = pathRelay
	case *directOnly:
		mode = pathDirect
	}
	_ = getenv
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }
	say("wh-tunnel demo: a mailbox server, a transit relay, an HTTP service and two\n" +
		"peers, all in this process on 127.0.0.1; no other network is used.\n")
	res, err := demo(ctx, int64(*sizeMiB)<<20, mode, say)
	if err != nil {
		fmt.Fprintf(stderr, "wh-tunnel demo: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitFailure
	}
	mbps := func(d time.Duration) float64 { return float64(res.bytes) / (1 << 20) / d.Seconds() }
	say("\n  code            %s\n", res.code)
	say("  mailbox         %s\n", res.mailbox)
	say("  transit relay   %s\n", res.relay)
	say("  Dilation        real: L1 records as dilate-N mailbox phases, L2 Noise over TCP, mode %s\n", res.mode)
	say("  path            %s\n", res.path)
	say("  setup           %v (code to forward ready)\n", res.setup.Round(time.Millisecond))
	say("  peer -> here    %d MiB in %v: %.1f MiB/s, sha256 ok\n", res.bytes>>20, res.down.Round(time.Millisecond), mbps(res.down))
	say("  here -> peer    %d MiB in %v: %.1f MiB/s, sha256 ok\n", res.bytes>>20, res.up.Round(time.Millisecond), mbps(res.up))
	return exitOK
}

// Which Dilation paths the demo offers.
const (
	pathAny    = iota // direct hints and the relay; the first to connect wins
	pathRelay         // no listeners: only the relay
	pathDirect        // no relay
)

// demo runs the whole thing and checks every byte.
func demo(ctx context.Context, size int64, mode int, say func(string, ...any)) (*demoResult, error) {
	res := &demoResult{bytes: size}
	// Mailbox server.
	mbl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mb, err := server.New(server.Options{})
	if err != nil {
		mbl.Close()
		return nil, err
	}
	var bg sync.WaitGroup
	defer bg.Wait()
	bg.Add(1)
	go func() { defer bg.Done(); mb.Serve(mbl) }()
	defer mb.Close()
	res.mailbox = server.WebSocketURL(mbl.Addr().String())

	// Transit relay.
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rs := relay.New(relay.Options{})
	bg.Add(1)
	go func() { defer bg.Done(); rs.Serve(rl) }()
	defer rs.Close()
	res.relay = "tcp:" + rl.Addr().String()

	// The service behind the forward: GET /data?n=N streams N bytes,
	// POST /sha256 answers the hash of the body.
	svcl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	svc := &http.Server{Handler: demoHandler()}
	bg.Add(1)
	go func() { defer bg.Done(); svc.Serve(svcl) }()
	defer svc.Close()
	svcPort := svcl.Addr().(*net.TCPAddr).Port
	say("service on %s, mailbox %s, relay %s\n", svcl.Addr(), res.mailbox, res.relay)

	spec := fmt.Sprintf("demo=0:127.0.0.1:%d", svcPort)
	fa, _ := tunnel.ParseForward(tunnel.Local, spec)
	fb, _ := tunnel.ParseForward(tunnel.Remote, spec)
	base := peerConfig{
		appID: defaultAppID, relayURL: res.mailbox, transit: res.relay, codeLength: 2,
		noListen: mode == pathRelay, listenAddr: "127.0.0.1:0",
	}
	if mode == pathDirect {
		base.transit = ""
		res.relay += " (running, not offered: --direct-only)"
	}
	ca, cb := base, base
	ca.forwards = []tunnel.Forward{fa}
	cb.forwards = []tunnel.Forward{fb}
	codeCh := make(chan string, 1)
	ca.onCode = func(c string) { codeCh <- c }

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	type opened struct {
		s   *session
		err error
	}
	aCh := make(chan opened, 1)
	go func() {
		s, err := open(ctx, ca)
		aCh <- opened{s, err}
	}()
	select {
	case res.code = <-codeCh:
	case o := <-aCh:
		return nil, fmt.Errorf("peer A: %w", o.err)
	}
	say("peer A allocated the code %s; peer B joins with it\n", res.code)
	cb.code = res.code
	sb, errB := open(ctx, cb)
	oa := <-aCh
	sa := oa.s
	if errB != nil || oa.err != nil {
		for _, s := range []*session{sa, sb} {
			if s != nil {
				s.close(5 * time.Second)
			}
		}
		return nil, errors.Join(oa.err, errB)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	for _, s := range []*session{sa, sb} {
		runs.Add(1)
		go func() { defer runs.Done(); s.tun.Run(runCtx, s.dl) }()
	}
	defer func() {
		stopRun()
		runs.Wait()
		sa.close(5 * time.Second)
		sb.close(5 * time.Second)
	}()
	st, err := sa.tun.WaitReady(ctx, "demo")
	if err != nil {
		return nil, err
	}
	if _, err := sb.tun.WaitReady(ctx, "demo"); err != nil {
		return nil, err
	}
	res.setup = time.Since(start)
	res.path = paths(sa, sb)
	res.mode = sa.dl.Mode()
	say("forward ready: peer A listens on %s, peer B connects to 127.0.0.1:%d; Dilation path: %s\n", st.Addr, svcPort, res.path)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	wantHash := patternHash(size)
	// peer -> here
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/data?n=%d", st.Addr, size), nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		return nil, fmt.Errorf("download: %d of %d bytes: %v", n, size, err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), wantHash; got != want {
		return nil, fmt.Errorf("download: sha256 %s, want %s", got, want)
	}
	res.down = time.Since(t0)
	// here -> peer
	t0 = time.Now()
	req, _ = http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("http://%s/sha256", st.Addr), io.LimitReader(&pattern{}, size))
	req.ContentLength = size
	resp, err = client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if got, want := strings.TrimSpace(string(body)), wantHash; got != want {
		return nil, fmt.Errorf("upload: the service saw sha256 %s, want %s", got, want)
	}
	res.up = time.Since(t0)
	if now := paths(sa, sb); now != res.path {
		res.path += " (now " + now + ")"
	}
	return res, nil
}

func paths(a, b *session) string {
	_, va := a.peer()
	_, vb := b.peer()
	return fmt.Sprintf("A: %s; B: %s", va, vb)
}

func demoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, io.LimitReader(&pattern{}, n))
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		fmt.Fprintf(w, "%x\n", h.Sum(nil))
	})
	return mux
}

// pattern is a deterministic endless byte stream: a fixed block of a
// prime length, repeated (cheap to produce at GB/s).
type pattern struct{ off int }

var patternBlock = func() []byte {
	b := make([]byte, 65521)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], patternBlock[p.off:])
		n += c
		p.off = (p.off + c) % len(patternBlock)
	}
	return n, nil
}

func patternHash(n int64) string {
	h := sha256.New()
	io.Copy(h, io.LimitReader(&pattern{}, n))
	return hex.EncodeToString(h.Sum(nil))
}
