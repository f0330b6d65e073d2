// Command relayserver runs our transit relay (relay.Server, TCP flavour) on
// a loopback port in its own process, for benchmarks that compare it with
// Debian's Python relay (also a separate process) and raw loopback TCP. It
// prints "READY host:port" and serves until its stdin is closed.
//
//	relayserver -listen 127.0.0.1:0 [-notsent-lowat N]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wormhole-go/wormhole/relay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relayserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "TCP address to listen on")
	lowat := fs.Int("notsent-lowat", 0, "relay.Options.NotSentLowat (0: the relay's default, negative: the system's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "relayserver:", err)
		return 1
	}
	srv := relay.New(relay.Options{NotSentLowat: *lowat})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "READY %s\n", ln.Addr())
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	srv.Close()
	if err := <-served; err != nil && !errors.Is(err, relay.ErrServerClosed) {
		fmt.Fprintln(stderr, "relayserver:", err)
		return 1
	}
	return 0
}
