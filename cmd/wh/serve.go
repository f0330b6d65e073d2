package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/wormhole-go/wormhole/relay"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

const serveUsage = `Usage: wh serve [options]

Run a mailbox (rendezvous) server and a transit relay, for testing or for a
private deployment. Runs until interrupted.

Options:
  --mailbox ADDR             mailbox server listen address (default 127.0.0.1:4000;
                             "" disables it)
  --relay ADDR               transit relay listen address (default 127.0.0.1:4001;
                             "" disables it)
  --db FILE                  keep mailbox state in this SQLite file (default: memory)
  --motd TEXT                message of the day sent to every client
  --advertise-version V      current_cli_version sent to clients
  --signal-error TEXT        make every client fail with this message
  --disallow-list            refuse to list allocated nameplates
  --hashcash-bits N          require a hashcash stamp with N bits before bind
  --hashcash-resource R      hashcash resource string (default "wormhole")
  --relay-usage-log FILE     append one JSON line per finished relay connection
                             (started, total_time, waiting_time, total_bytes,
                             mood), like the Python relay's --log-fd
  -v, --verbose              log connections to stderr
`

// runServe implements `wh serve`. It returns the process exit code.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mailboxAddr := fs.String("mailbox", "127.0.0.1:4000", "")
	relayAddr := fs.String("relay", "127.0.0.1:4001", "")
	db := fs.String("db", "", "")
	motd := fs.String("motd", "", "")
	advertise := fs.String("advertise-version", "", "")
	signalErr := fs.String("signal-error", "", "")
	disallowList := fs.Bool("disallow-list", false, "")
	hcBits := fs.Int("hashcash-bits", 0, "")
	hcResource := fs.String("hashcash-resource", "wormhole", "")
	relayUsage := fs.String("relay-usage-log", "", "")
	var verbose bool
	fs.BoolVar(&verbose, "verbose", false, "")
	fs.BoolVar(&verbose, "v", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, serveUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "wh serve: %v\n\n%s", err, serveUsage)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wh serve: unexpected argument %q\n\n%s", fs.Arg(0), serveUsage)
		return exitUsage
	}
	if *mailboxAddr == "" && *relayAddr == "" {
		fmt.Fprintf(stderr, "wh serve: nothing to serve (both --mailbox and --relay are empty)\n")
		return exitUsage
	}
	if *hcBits < 0 || *hcBits > 32 {
		fmt.Fprintf(stderr, "wh serve: --hashcash-bits %d out of range 0-32\n", *hcBits)
		return exitUsage
	}
	if strings.Contains(*hcResource, ":") {
		fmt.Fprintf(stderr, "wh serve: --hashcash-resource must not contain ':'\n")
		return exitUsage
	}
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	type service struct {
		name  string
		serve func() error
		close func() error
	}
	var services []service
	var mailboxURL, relayURL string
	cleanup := func() {
		for _, s := range services {
			_ = s.close()
		}
	}

	if *mailboxAddr != "" {
		var store server.Store
		if *db != "" {
			st, err := server.OpenSQLiteStore(*db)
			if err != nil {
				fmt.Fprintf(stderr, "wh serve: %v\n", err)
				return exitFailed
			}
			store = st
		} else {
			store = server.NewMemoryStore()
		}
		opts := server.Options{
			Store:            store,
			Logger:           logger.With("service", "mailbox"),
			MOTD:             *motd,
			Error:            *signalErr,
			AdvertiseVersion: *advertise,
			DisallowList:     *disallowList,
		}
		if *hcBits > 0 {
			opts.Hashcash = &server.HashcashOptions{Bits: *hcBits, Resource: *hcResource}
		}
		srv, err := server.New(opts)
		if err != nil {
			store.Close()
			fmt.Fprintf(stderr, "wh serve: %v\n", err)
			return exitFailed
		}
		l, err := net.Listen("tcp", *mailboxAddr)
		if err != nil {
			srv.Close()
			store.Close()
			fmt.Fprintf(stderr, "wh serve: mailbox: %v\n", err)
			return exitFailed
		}
		services = append(services, service{
			name:  "mailbox",
			serve: func() error { return srv.Serve(l) },
			close: func() error { return errors.Join(srv.Close(), store.Close()) },
		})
		mailboxURL = server.WebSocketURL(l.Addr().String())
		fmt.Fprintf(stdout, "Mailbox server: %s\n", mailboxURL)
	}
	if *relayAddr != "" {
		ropts := relay.Options{Logger: logger.With("service", "relay")}
		var usageFile *os.File
		if *relayUsage != "" {
			f, err := os.OpenFile(*relayUsage, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				cleanup()
				fmt.Fprintf(stderr, "wh serve: relay usage log: %v\n", err)
				return exitFailed
			}
			usageFile, ropts.UsageLog = f, f
		}
		rs := relay.New(ropts)
		closeRelay := func() error {
			err := rs.Close()
			if usageFile != nil {
				err = errors.Join(err, usageFile.Close())
			}
			return err
		}
		l, err := net.Listen("tcp", *relayAddr)
		if err != nil {
			closeRelay()
			cleanup()
			fmt.Fprintf(stderr, "wh serve: relay: %v\n", err)
			return exitFailed
		}
		services = append(services, service{
			name:  "relay",
			serve: func() error { return rs.Serve(l) },
			close: closeRelay,
		})
		relayURL = relayHint(l.Addr().String())
		fmt.Fprintf(stdout, "Transit relay:  %s\n", relayURL)
	}
	hint := "Clients use: wh"
	if mailboxURL != "" {
		hint += " --relay-url " + mailboxURL
	}
	if relayURL != "" {
		hint += " --transit-helper " + relayURL
	}
	fmt.Fprintln(stdout, hint+" send|receive ...")

	errc := make(chan error, len(services))
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.serve(); err != nil && !errors.Is(err, server.ErrServerClosed) && !errors.Is(err, relay.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}
	code := exitOK
	select {
	case <-ctx.Done():
	case err := <-errc:
		fmt.Fprintf(stderr, "wh serve: %v\n", err)
		code = exitFailed
	}
	cleanup()
	wg.Wait()
	return code
}

// relayHint turns a listening address into the tcp:HOST:PORT form clients
// take for --transit-helper (unspecified addresses become loopback).
func relayHint(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "tcp:" + hostport
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "tcp:" + host + ":" + port
}
