// Command mailboxload drives complete two-client pairings against a mailbox
// server (ours or the Python reference) and reports pairings per second and
// latency percentiles.
//
//	mailboxload -url ws://127.0.0.1:4000/v1 -n 2000 -c 16
//	mailboxload -inprocess -db /tmp/mbx.sqlite -n 2000 -c 16
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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mailboxload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "mailbox server WebSocket URL")
	inproc := fs.Bool("inprocess", false, "start our server in this process on a loopback port")
	db := fs.String("db", "", "with -inprocess: SQLite file (default: memory store)")
	n := fs.Int("n", 1000, "number of pairings")
	c := fs.Int("c", 8, "concurrent pairings")
	app := fs.String("app", "mailboxload", "appid")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout per pairing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*url == "") == !*inproc || *n < 1 || *c < 1 {
		fmt.Fprintln(stderr, "mailboxload: need exactly one of -url or -inprocess, and -n, -c >= 1")
		return 2
	}
	if *inproc {
		u, closeFn, err := startInProcess(*db)
		if err != nil {
			fmt.Fprintf(stderr, "mailboxload: %v\n", err)
			return 1
		}
		defer closeFn()
		*url = u
	}
	lat := make([]time.Duration, 0, *n)
	var mu sync.Mutex
	var next, failed atomic.Int64
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(*n) && ctx.Err() == nil {
				pctx, cancel := context.WithTimeout(ctx, *timeout)
				t0 := time.Now()
				err := mailboxtest.Pair(pctx, *url, *app)
				d := time.Since(t0)
				cancel()
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Fprintf(stdout, "url %s  concurrency %d\n", *url, *c)
	fmt.Fprintf(stdout, "pairings %d ok, %d failed in %v: %.1f pairings/s\n", len(lat), failed.Load(), el.Round(time.Millisecond), float64(len(lat))/el.Seconds())
	fmt.Fprintf(stdout, "latency p50 %v  p90 %v  p99 %v  max %v\n", pct(0.5), pct(0.9), pct(0.99), pct(1))
	if firstErr != nil {
		fmt.Fprintf(stderr, "first error: %v\n", firstErr)
		return 1
	}
	return 0
}

func startInProcess(db string) (string, func(), error) {
	var store server.Store = server.NewMemoryStore()
	if db != "" {
		st, err := server.OpenSQLiteStore(db)
		if err != nil {
			return "", nil, err
		}
		store = st
	}
	srv, err := server.New(server.Options{Store: store})
	if err != nil {
		store.Close()
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		store.Close()
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	return server.WebSocketURL(l.Addr().String()), func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, server.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "serve:", err)
		}
		store.Close()
	}, nil
}
