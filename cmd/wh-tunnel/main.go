// Command wh-tunnel forwards TCP ports between two machines through a
// magic-wormhole, like ssh -L / -R, compatible with fowl.
//
//	wh-tunnel -L 8080:localhost:80            # prints a code
//	wh-tunnel -R 8080:localhost:80 7-foo-bar  # on the other machine
//	wh-tunnel demo                            # everything on loopback
//
// Run wh-tunnel --help for the whole story.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/wormhole-go/wormhole/tunnel"
)

// Exit codes (also in the help text).
const (
	exitOK          = 0   // session ended normally (Ctrl-C or the peer closed it)
	exitFailure     = 1   // other failure
	exitUsage       = 2   // bad flags or forward specs
	exitWrongCode   = 3   // the code was wrong (or the verifier was rejected)
	exitRefused     = 4   // one of our -R forwards was refused
	exitPeer        = 5   // the peer cannot dilate (too old, or not a Dilation client)
	exitNetwork     = 6   // mailbox server unreachable
	exitInterrupted = 130 // interrupted before the session was established
)

const (
	defaultRelayURL      = "ws://relay.magic-wormhole.io:4000/v1"
	defaultTransitHelper = "tcp:transit.magic-wormhole.io:4001"
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The GC setting is the process's, so it is tuned here and not in run
	// (which tests call in-process).
	gctx, stopGC := context.WithCancel(ctx)
	go tuneGC(gctx, os.Getenv)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stopGC()
	os.Exit(code)
}

const usageText = `wh-tunnel: forward TCP ports between two machines through a magic wormhole.

Usage:
  wh-tunnel [flags]              allocate a code, print it, wait for the peer
  wh-tunnel [flags] CODE         join the peer that printed CODE
  wh-tunnel [flags] -            type the code (read a line from stdin)
  wh-tunnel demo [--size MiB] [--relay-only | --direct-only]
                                 run both peers, a mailbox and a relay on
                                 loopback and move data through a forward

Forwards (repeatable, ssh syntax):
  -L [NAME=][BIND:]PORT:HOST:HOSTPORT
        listen HERE on BIND:PORT (default bind 127.0.0.1, "*" or empty for
        all interfaces, PORT 0 for any free port); every connection is
        carried to the peer, which connects to HOST:HOSTPORT
  -R [NAME=]PORT:HOST:HOSTPORT
        the PEER listens on PORT; every connection there is carried here
        and we connect to HOST:HOSTPORT
  IPv6 literals go in brackets: -L [::1]:8080:[::1]:80

Both sides must name each forward (least authority): the side that
listens chooses its own address and port, the side that connects only
reaches targets named in its own flags. So -L on one side pairs with the
same spec as -R on the other. Ports are cross-checked; a mismatch is
refused with a reason. NAME defaults to PORT:HOST:HOSTPORT; give one
(letters, digits, . - _ ~ +) to pair with fowl, e.g. -L web=8080:localhost:80
with "fowl --remote web:80" on the other side.

Flags:
  --relay-url URL        mailbox server [env WORMHOLE_RELAY_URL]
                         (default ` + defaultRelayURL + `)
  --transit-helper HINT  transit relay for Dilation, "tcp:HOST:PORT", "" for
                         none [env WORMHOLE_TRANSIT_HELPER]
                         (default ` + defaultTransitHelper + `)
  --appid ID             application id (default fowl's, ` + defaultAppID + `)
  --code CODE            use this code instead of allocating one
  --code-length N        words in an allocated code (default 2)
  --no-listen            do not accept direct connections (use the relay or
                         connect out only)
  --listen-addr ADDR     where Dilation accepts direct connections
                         (default all interfaces, a new port each time)
  --verify               show the verifier and ask before forwarding
  --json                 one JSON event per line on stdout, as fowld
                         (kinds: code-allocated, peer-connected, listening,
                         awaiting-connect, incoming-/outgoing-connection,
                         bytes-in, bytes-out, ..., peer-connection, closed)
  --qr                   also show the code as a QR code
  -v                     debug logs on stderr
  --cpuprofile FILE      write a Go CPU profile of the session to FILE
                         (for "go tool pprof"; written when the session
                         ends normally, e.g. on Ctrl-C / SIGTERM)
  -h, --help             this help

Examples:
  # Share a web server on this machine with a friend:
  wh-tunnel -R 8000:localhost:80                   # you (prints a code)
  wh-tunnel -L 8000:localhost:80 7-crossover-clockwork   # friend: opens
                                                   # http://localhost:8000
  # Reach the friend's SSH server from here, on any free local port:
  wh-tunnel -L ssh=0:localhost:22                  # you
  wh-tunnel -R ssh=0:localhost:22 CODE             # friend
  # Several at once, scripted:
  wh-tunnel --json -L 5432:localhost:5432 -R 9090:localhost:9090 CODE
  # See it work without a network:
  wh-tunnel demo

The status line shows the peer connection (direct or via the relay,
reconnecting) and per forward its state, open connections and bytes in
(towards the peer) and out. Ctrl-C ends the session and tells the peer
(a second Ctrl-C does not wait for its answer).

Exit codes: 0 ended normally (Ctrl-C, or the peer closed the session);
1 other error; 2 usage; 3 wrong code or verifier rejected; 4 one of our
-R forwards was refused; 5 the peer cannot dilate;
6 mailbox server unreachable; 130 interrupted before connecting.
`

type specList struct {
	dir tunnel.Direction
	fs  *[]tunnel.Forward
}

func (l specList) String() string { return "" }
func (l specList) Set(s string) error {
	f, err := tunnel.ParseForward(l.dir, s)
	if err != nil {
		return err
	}
	*l.fs = append(*l.fs, f)
	return nil
}

type cliConfig struct {
	peerConfig
	json, qr, verify, verbose bool
	readCode                  bool
	cpuProfile                string
}

func parseArgs(args []string, getenv func(string) string) (*cliConfig, error) {
	c := &cliConfig{}
	c.appID = defaultAppID
	c.relayURL = defaultRelayURL
	c.transit = defaultTransitHelper
	if v := getenv("WORMHOLE_RELAY_URL"); v != "" {
		c.relayURL = v
	}
	if v, ok := lookup(getenv, "WORMHOLE_TRANSIT_HELPER"); ok {
		c.transit = v
	}
	fs := flag.NewFlagSet("wh-tunnel", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(specList{tunnel.Local, &c.forwards}, "L", "")
	fs.Var(specList{tunnel.Remote, &c.forwards}, "R", "")
	fs.StringVar(&c.relayURL, "relay-url", c.relayURL, "")
	fs.StringVar(&c.transit, "transit-helper", c.transit, "")
	fs.StringVar(&c.appID, "appid", c.appID, "")
	fs.StringVar(&c.code, "code", "", "")
	fs.IntVar(&c.codeLength, "code-length", 2, "")
	fs.BoolVar(&c.noListen, "no-listen", false, "")
	fs.StringVar(&c.listenAddr, "listen-addr", "", "")
	fs.BoolVar(&c.verify, "verify", false, "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.BoolVar(&c.qr, "qr", false, "")
	fs.BoolVar(&c.verbose, "v", false, "")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch rest := fs.Args(); {
	case len(rest) > 1:
		return nil, fmt.Errorf("too many arguments: %q (flags go before the code)", rest)
	case len(rest) == 1 && rest[0] == "-":
		if c.code != "" {
			return nil, errors.New("both --code and - given")
		}
		c.readCode = true
	case len(rest) == 1:
		if c.code != "" && c.code != rest[0] {
			return nil, errors.New("both --code and a CODE argument given")
		}
		c.code = rest[0]
	}
	if c.codeLength < 1 || c.codeLength > 16 {
		return nil, fmt.Errorf("--code-length %d: must be 1 to 16", c.codeLength)
	}
	if c.transit != "" && !strings.HasPrefix(c.transit, "tcp:") {
		return nil, fmt.Errorf("--transit-helper %q: want tcp:HOST:PORT", c.transit)
	}
	if len(c.forwards) == 0 {
		return nil, errors.New("no forwards: give at least one -L or -R (see --help)")
	}
	if _, err := tunnel.New(tunnel.Options{Forwards: c.forwards}); err != nil {
		return nil, err
	}
	return c, nil
}

func lookup(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return v, v != ""
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "demo" {
		return runDemo(ctx, args[1:], getenv, stdout, stderr)
	}
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
	}
	cfg, err := parseArgs(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "wh-tunnel: %v\n(wh-tunnel --help for usage)\n", err)
		return exitUsage
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "wh-tunnel: --cpuprofile: %v\n", err)
			return exitUsage
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			fmt.Fprintf(stderr, "wh-tunnel: --cpuprofile: %v\n", err)
			return exitFailure
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintf(stderr, "wh-tunnel: --cpuprofile: %v\n", err)
			}
		}()
	}
	return runPeer(ctx, cfg, stdin, stdout, stderr)
}

func runPeer(ctx context.Context, cfg *cliConfig, stdin io.Reader, stdout, stderr io.Writer) int {
	isTTY := false
	if f, ok := stderr.(*os.File); ok {
		isTTY = term.IsTerminal(int(f.Fd()))
	}
	ui := newUI(stdout, stderr, cfg.json, isTTY && !cfg.json)
	defer ui.stop()
	cfg.emit = ui.event
	if cfg.verbose {
		cfg.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	in := bufio.NewReader(stdin)
	if cfg.readCode {
		ui.printf("Enter the wormhole code: ")
		line, err := readLine(ctx, in)
		if err != nil {
			ui.printf("wh-tunnel: reading the code: %v\n", err)
			return exitUsage
		}
		cfg.code = strings.TrimSpace(line)
		if cfg.code == "" {
			ui.printf("wh-tunnel: empty code\n")
			return exitUsage
		}
	}
	allocating := cfg.code == ""
	cfg.onCode = func(code string) {
		if !allocating {
			return
		}
		ui.printf("Wormhole code: %s\n", code)
		ui.printf("On the other machine run:\n  wh-tunnel %s %s\n", mirrorFlags(cfg.forwards), code)
		if cfg.qr {
			ui.printf("%s", renderQR(code))
		}
		ui.printf("Waiting for the peer...\n")
	}
	if cfg.verify {
		cfg.confirm = func(ctx context.Context, v string) (bool, error) {
			ui.printf("Verifier %s.\nDoes the peer show the same? (yes/no): ", v)
			line, err := readLine(ctx, in)
			if err != nil {
				return false, err
			}
			return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y"), nil
		}
	}
	s, err := open(ctx, cfg.peerConfig)
	if err != nil {
		return ui.fail(err)
	}
	ui.attach(s)
	ui.printf("Peer connected and verified; Dilation started.\n")
	return serve(ctx, s, ui)
}

// serve runs the tunnel until Ctrl-C, the peer's closing message, a
// refused -R or the wormhole ending.
func serve(ctx context.Context, s *session, ui *ui) int {
	runCtx, stopTun := context.WithCancel(context.Background())
	tunDone := make(chan error, 1)
	go func() { tunDone <- s.tun.Run(runCtx, s.dl) }()
	rctx, stopRecv := context.WithCancel(context.Background())
	recvDone := make(chan struct{})
	go func() { defer close(recvDone); s.receiveLoop(rctx) }()

	refused := make(chan error, 1)
	for _, f := range s.cfg.forwards {
		if f.Dir != tunnel.Remote {
			continue
		}
		go func() {
			if _, err := s.tun.WaitReady(runCtx, f.Name); errors.Is(err, tunnel.ErrRefused) {
				select {
				case refused <- err:
				default:
				}
			}
		}()
	}
	code, result := exitOK, "happy"
	peerFirst := false
	select {
	case <-ctx.Done():
		ui.printf("\nClosing; telling the peer...\n")
	case <-s.closing:
		peerFirst = true
		ui.printf("The peer closed the session.\n")
	case err := <-refused:
		ui.printf("wh-tunnel: %v\n", err)
		code, result = exitRefused, "refused"
	case <-s.stopped:
		// Dilation ended without us closing it: nothing can be forwarded
		// any more, so do not sit there forever.
		why := "the connection to the peer ended"
		if s.stopErr != nil {
			why += ": " + s.stopErr.Error()
		}
		ui.printf("wh-tunnel: %s\n", why)
		code, result = exitFailure, why
	}
	// fowl's orderly close: both sides send {"closing": n}, then close.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.sayClosing(sctx); err == nil && !peerFirst {
		again, stopWatching := second(ctx)
		select {
		case <-s.closing:
		case <-sctx.Done():
			ui.printf("No answer from the peer.\n")
		case <-again:
		}
		stopWatching()
	}
	cancel()
	stopTun()
	<-tunDone
	err := s.close(10 * time.Second)
	stopRecv()
	<-recvDone
	if err != nil && code == exitOK {
		result = err.Error()
	}
	ui.event(tunnel.Event{Kind: tunnel.EvClosed, Result: result})
	return code
}

// second returns a channel closed on a second interrupt (the first one
// already cancelled ctx), and a func that stops watching.
func second(ctx context.Context) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	if ctx.Err() == nil {
		return ch, func() {} // never: we were not interrupted
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(sig)
		select {
		case <-sig:
			close(ch)
		case <-stop:
		}
	}()
	return ch, func() { close(stop); <-done }
}

// mirrorFlags is what the peer must type to pair with our forwards.
func mirrorFlags(fs []tunnel.Forward) string {
	var parts []string
	for _, f := range fs {
		g := f
		g.Bind = ""
		if f.Dir == tunnel.Local {
			g.Dir = tunnel.Remote
			parts = append(parts, "-R "+g.String())
		} else {
			g.Dir = tunnel.Local
			parts = append(parts, "-L "+g.String())
		}
	}
	return strings.Join(parts, " ")
}

func readLine(ctx context.Context, r *bufio.Reader) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		if err == io.EOF && s != "" {
			err = nil
		}
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
