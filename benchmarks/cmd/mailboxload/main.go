// Command mailboxload puts load on a mailbox server (ours or the Python
// reference): complete two-client pairings (pairings per second, latency
// percentiles) and idle clients (memory per connection, measured in the
// server process).
//
// Pairings against any server:
//
//	mailboxload -url ws://127.0.0.1:4000/v1 -n 2000 -c 16
//	mailboxload -inprocess -db /tmp/mbx.sqlite -n 2000 -c 16
//
// Idle clients against any server (add -pid to report its VmRSS):
//
//	mailboxload -url ws://127.0.0.1:4000/v1 -idle 19000 -pid 1234
//
// Side by side, in one run: our server as a child process of this tool and
// Debian's Python server (twistd3 wormhole-mailbox), each first holding
// idle clients, then doing pairings:
//
//	mailboxload -compare -idle 19000 -pyidle 2000 -n 2000 -c 16 -pyn 60 -pyc 8
//
// Both this process and the server child raise RLIMIT_NOFILE to the hard
// limit; the clients and the server are separate processes so each stays
// under a per-process open-file cap.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	rpprof "runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wormhole-go/wormhole/benchmarks/cmd/mailboxload/load"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// childEnv makes the binary run as the server child.
const childEnv = "WH_MAILBOXLOAD_CHILD"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(childEnv) != "" {
		os.Exit(serveChild(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	url, db, app, jsonOut string
	cs, pycs, stores      string
	cpuProfile, srvProf   string
	inproc, compare, keep bool
	lib                   bool
	n, c, pyn, pyc        int
	idle, pyidle, dialC   int
	pid                   int
	hold, timeout         time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mailboxload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf config
	fs.StringVar(&cf.url, "url", "", "mailbox server WebSocket URL")
	fs.BoolVar(&cf.inproc, "inprocess", false, "start our server in this process on a loopback port")
	fs.BoolVar(&cf.compare, "compare", false, "run our server (child process) and Python's side by side")
	fs.StringVar(&cf.db, "db", "", "our server's SQLite file (default: memory store)")
	fs.IntVar(&cf.n, "n", 1000, "number of pairings")
	fs.IntVar(&cf.c, "c", 8, "concurrent pairings")
	fs.IntVar(&cf.pyn, "pyn", 60, "with -compare: pairings against the Python server")
	fs.IntVar(&cf.pyc, "pyc", 8, "with -compare: concurrent pairings against the Python server")
	fs.IntVar(&cf.idle, "idle", 0, "idle clients to hold (0: none; with -url, only idle clients are run)")
	fs.IntVar(&cf.pyidle, "pyidle", 2000, "with -compare: idle clients against the Python server")
	fs.IntVar(&cf.dialC, "dialc", 64, "concurrent connection attempts while opening idle clients")
	fs.IntVar(&cf.pid, "pid", 0, "with -url -idle: server process whose VmRSS to report")
	fs.BoolVar(&cf.keep, "keep", false, "with -compare: after the Go idle measurement, print the child's debug URL and wait for Enter (for pprof)")
	fs.DurationVar(&cf.hold, "hold", 2*time.Second, "how long idle clients are held before measuring")
	fs.StringVar(&cf.app, "app", "mailboxload", "appid")
	fs.DurationVar(&cf.timeout, "timeout", 60*time.Second, "timeout per pairing")
	fs.StringVar(&cf.jsonOut, "json", "", "with -compare: also write the results as JSON to this file")
	fs.StringVar(&cf.cs, "cs", "", "with -compare: comma-separated concurrencies for our server (default: -c)")
	fs.StringVar(&cf.pycs, "pycs", "", "with -compare: comma-separated concurrencies for the Python server (default: -pyc)")
	fs.StringVar(&cf.stores, "stores", "", "with -compare: our stores to run, comma-separated: memory, sqlite (default: sqlite with -db, else memory)")
	fs.BoolVar(&cf.lib, "lib", false, "pairings with mailboxtest.Pair (coder/websocket, JSON decoding) instead of the raw client")
	fs.StringVar(&cf.cpuProfile, "cpuprofile", "", "write this load process's CPU profile of the pairing phases to FILE")
	fs.StringVar(&cf.srvProf, "serverprofile", "", "with -compare: write our server child's CPU profile of its pairing phases to PREFIX-STORE.pprof")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	modes := 0
	for _, b := range []bool{cf.url != "", cf.inproc, cf.compare} {
		if b {
			modes++
		}
	}
	if modes != 1 || cf.n < 1 || cf.c < 1 || cf.idle < 0 {
		fmt.Fprintln(stderr, "mailboxload: need exactly one of -url, -inprocess or -compare, and -n, -c >= 1")
		return 2
	}
	if lim, err := load.RaiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "mailboxload: raise open-file limit: %v\n", err)
	} else if max(cf.idle, cf.pyidle)+64 > int(lim) {
		fmt.Fprintf(stderr, "mailboxload: warning: open-file limit %d is below the idle clients asked for\n", lim)
	}
	switch {
	case cf.compare:
		return runCompare(ctx, cf, stdout, stderr)
	case cf.url != "" && cf.idle > 0:
		r, err := idleRun(ctx, cf.url, cf.idle, cf.dialC, cf.app, cf.hold, nil, cf.pid)
		printIdle(stdout, []idleResult{r})
		if err != nil {
			fmt.Fprintf(stderr, "mailboxload: %v\n", err)
			return 1
		}
		return 0
	}
	if cf.inproc {
		u, closeFn, err := startInProcess(cf.db)
		if err != nil {
			fmt.Fprintf(stderr, "mailboxload: %v\n", err)
			return 1
		}
		defer closeFn()
		cf.url = u
	}
	if cf.cpuProfile != "" {
		f, err := os.Create(cf.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "mailboxload: %v\n", err)
			return 1
		}
		defer f.Close()
		rpprof.StartCPUProfile(f)
		defer rpprof.StopCPUProfile()
	}
	r := load.Pairings(ctx, cf.url, cf.n, cf.c, cf.app, cf.timeout, load.PairOptions{Library: cf.lib, ServerPID: cf.pid})
	fmt.Fprintf(stdout, "url %s  concurrency %d\n", cf.url, cf.c)
	fmt.Fprintf(stdout, "pairings %d ok, %d failed in %v: %.1f pairings/s\n", r.OK, r.Failed, r.Elapsed.Round(time.Millisecond), r.PerSecond)
	fmt.Fprintf(stdout, "cpu: load tool %.2fs (%.0f µs/pairing)", r.ClientCPU, 1e6*r.ClientCPU/float64(max(1, r.OK)))
	if r.ServerCPU > 0 {
		fmt.Fprintf(stdout, ", server %.2fs (%.0f µs/pairing)", r.ServerCPU, 1e6*r.ServerCPU/float64(max(1, r.OK)))
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "latency p50 %v  p90 %v  p99 %v  max %v\n", r.P50, r.P90, r.P99, r.Max)
	if r.FirstErr != nil {
		fmt.Fprintf(stderr, "first error: %v\n", r.FirstErr)
		return 1
	}
	return 0
}

// idleResult is one server's idle-client figures.
type idleResult struct {
	Server  string   `json:"server"`
	Clients int      `json:"clients"`
	Lost    int64    `json:"lost"`
	Before  load.Mem `json:"before"`
	After   load.Mem `json:"after"`
	// Per idle client, bytes (after - before) / clients.
	HeapStackPerConn float64 `json:"heap_stack_per_conn"`
	SysPerConn       float64 `json:"sys_per_conn"`
	RSSPerConn       float64 `json:"rss_per_conn"`
	GoroutinesPer    float64 `json:"goroutines_per_conn"`
	Go               bool    `json:"go"`
}

type pairResult struct {
	Server     string  `json:"server"`
	Go         bool    `json:"go"`
	Concurrent int     `json:"concurrency"`
	OK         int     `json:"ok"`
	Failed     int     `json:"failed"`
	PerSecond  float64 `json:"pairings_per_s"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	// CPU per pairing in microseconds: the load tool's and the server's.
	ClientCPUus float64 `json:"client_cpu_us"`
	ServerCPUus float64 `json:"server_cpu_us"`
	Err         string  `json:"error,omitempty"`
}

// idleRun opens n idle clients, waits hold, and measures the server with
// mem (our child's debug endpoint) or, failing that, the VmRSS of pid.
func idleRun(ctx context.Context, wsURL string, n, dialC int, app string, hold time.Duration, mem func() (load.Mem, error), pid int) (idleResult, error) {
	r := idleResult{Server: wsURL, Go: mem != nil}
	measure := func() (load.Mem, error) {
		if mem != nil {
			return mem()
		}
		m := load.Mem{Conns: -1}
		if pid > 0 {
			rss, err := load.ProcRSS(pid)
			if err != nil {
				return m, err
			}
			m.VmRSS = rss
		}
		return m, nil
	}
	var err error
	if r.Before, err = measure(); err != nil {
		return r, err
	}
	idle, err := load.OpenIdle(ctx, wsURL, n, dialC, app)
	defer idle.Close()
	r.Clients = idle.Len()
	if err != nil {
		return r, fmt.Errorf("idle clients (%d opened): %w", r.Clients, err)
	}
	select {
	case <-time.After(hold):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.After, err = measure(); err != nil {
		return r, err
	}
	r.Lost = idle.Lost()
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(r.Clients) }
	r.HeapStackPerConn = per(r.After.HeapInuse+r.After.StackInuse, r.Before.HeapInuse+r.Before.StackInuse)
	r.SysPerConn = per(r.After.Sys, r.Before.Sys)
	r.RSSPerConn = per(r.After.VmRSS, r.Before.VmRSS)
	r.GoroutinesPer = float64(r.After.Goroutines-r.Before.Goroutines) / float64(r.Clients)
	if r.Lost > 0 {
		return r, fmt.Errorf("%d idle clients were disconnected while held", r.Lost)
	}
	if mem != nil && r.After.Conns >= 0 && r.After.Conns < r.Clients {
		return r, fmt.Errorf("server reports %d connections, want %d", r.After.Conns, r.Clients)
	}
	return r, nil
}

func kib(b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f KiB", b/1024)
}

func printIdle(w io.Writer, rs []idleResult) {
	fmt.Fprintln(w, "idle clients (each bound to an appid after the welcome, answering pings), measured in the server process after GC:")
	fmt.Fprintf(w, "  %-34s %8s %16s %14s %14s %14s\n", "server", "clients", "heap+stack/conn", "VmRSS/conn", "Sys/conn", "goroutines/conn")
	for _, r := range rs {
		hs, sys, gor := "-", "-", "-"
		if r.Go {
			hs, sys, gor = kib(r.HeapStackPerConn), kib(r.SysPerConn), fmt.Sprintf("%.2f", r.GoroutinesPer)
		}
		fmt.Fprintf(w, "  %-34s %8d %16s %14s %14s %14s\n", r.Server, r.Clients, hs, kib(r.RSSPerConn), sys, gor)
	}
}

func printPairs(w io.Writer, rs []pairResult) {
	fmt.Fprintln(w, "pairings (2 clients, 13 client messages each); CPU per pairing of the load tool and of the server process:")
	fmt.Fprintf(w, "  %-34s %5s %6s %6s %12s %10s %10s %10s %10s %12s %12s\n", "server", "conc", "ok", "failed", "pairings/s", "p50", "p90", "p99", "max", "tool cpu", "server cpu")
	for _, r := range rs {
		fmt.Fprintf(w, "  %-34s %5d %6d %6d %12.1f %8.2fms %8.2fms %8.2fms %8.2fms %10.0fµs %10.0fµs\n", r.Server, r.Concurrent, r.OK, r.Failed, r.PerSecond,
			r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.ClientCPUus, r.ServerCPUus)
	}
	best := map[bool]pairResult{}
	for _, r := range rs {
		if r.Failed == 0 && r.PerSecond > best[r.Go].PerSecond {
			best[r.Go] = r
		}
	}
	if g, p := best[true], best[false]; g.PerSecond > 0 && p.PerSecond > 0 {
		fmt.Fprintf(w, "best: ours %.1f/s (%s, c=%d) / Python %.1f/s (c=%d) = %.1fx\n", g.PerSecond, g.Server, g.Concurrent, p.PerSecond, p.Concurrent, g.PerSecond/p.PerSecond)
	}
}

func toPair(name string, c int, r load.PairResult) pairResult {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	ok := float64(max(1, r.OK))
	p := pairResult{Server: name, Concurrent: c, OK: r.OK, Failed: r.Failed, PerSecond: r.PerSecond,
		P50ms: ms(r.P50), P90ms: ms(r.P90), P99ms: ms(r.P99), MaxMs: ms(r.Max),
		ClientCPUus: 1e6 * r.ClientCPU / ok, ServerCPUus: 1e6 * r.ServerCPU / ok}
	if r.FirstErr != nil {
		p.Err = r.FirstErr.Error()
	}
	return p
}

// intList parses "1,4,8" (def when empty).
func intList(v string, def int) ([]int, error) {
	if v == "" {
		return []int{def}, nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad concurrency list %q", v)
		}
		out = append(out, n)
	}
	return out, nil
}

// runCompare measures our server (child process, each store asked for)
// and Python's in one run: for each server, idle clients, then pairings at
// each concurrency.
func runCompare(ctx context.Context, cf config, stdout, stderr io.Writer) int {
	var idles []idleResult
	var pairs []pairResult
	failed := false
	fail := func(what string, err error) {
		fmt.Fprintf(stderr, "mailboxload: %s: %v\n", what, err)
		failed = true
	}
	cs, err := intList(cf.cs, cf.c)
	if err != nil {
		fail("-cs", err)
		return 2
	}
	pycs, err := intList(cf.pycs, cf.pyc)
	if err != nil {
		fail("-pycs", err)
		return 2
	}
	stores := cf.stores
	if stores == "" {
		stores = map[bool]string{true: "sqlite", false: "memory"}[cf.db != ""]
	}
	var prof *os.File
	if cf.cpuProfile != "" {
		if prof, err = os.Create(cf.cpuProfile); err != nil {
			fail("cpuprofile", err)
			return 1
		}
		defer prof.Close()
	}
	startProf := func() {
		if prof != nil {
			rpprof.StartCPUProfile(prof)
		}
	}
	stopProf := func() {
		if prof != nil {
			rpprof.StopCPUProfile()
		}
	}
	po := load.PairOptions{Library: cf.lib}

	for _, store := range strings.Split(stores, ",") {
		db := ""
		switch store {
		case "memory":
		case "sqlite":
			db = cf.db
			if db == "" {
				dir, err := os.MkdirTemp("", "mailboxload-")
				if err != nil {
					fail("temp dir", err)
					return 1
				}
				defer os.RemoveAll(dir)
				db = filepath.Join(dir, "mailbox.sqlite")
			}
		default:
			fail("-stores", fmt.Errorf("unknown store %q", store))
			return 2
		}
		child, err := startChild(ctx, db)
		if err != nil {
			fail("start our server", err)
			return 1
		}
		goName := "go (child process, " + store + ")"
		if err := warmUp(ctx, child.url, cf.app); err != nil {
			fail("warm-up pairing (go)", err)
		}
		if cf.idle > 0 {
			mem := child.mem
			if cf.keep {
				mem = func() (load.Mem, error) {
					m, err := child.mem()
					if m.Conns > 0 {
						fmt.Fprintf(stderr, "server debug endpoint %s/debug/pprof/ (%d clients); press Enter to go on\n", child.debug, m.Conns)
						bufio.NewReader(os.Stdin).ReadString('\n')
					}
					return m, err
				}
			}
			r, err := idleRun(ctx, child.url, cf.idle, cf.dialC, cf.app, cf.hold, mem, 0)
			r.Server = goName
			idles = append(idles, r)
			if err != nil {
				fail("idle clients (go)", err)
			}
		}
		if cf.srvProf != "" {
			if err := child.get("/cpuprofile/start?file=" + url.QueryEscape(cf.srvProf+"-"+store+".pprof")); err != nil {
				fail("server profile", err)
			}
		}
		startProf()
		po.ServerPID = child.cmd.Process.Pid
		for _, c := range cs {
			pr := load.Pairings(ctx, child.url, cf.n, c, cf.app, cf.timeout, po)
			p := toPair(goName, c, pr)
			p.Go = true
			pairs = append(pairs, p)
			if pr.FirstErr != nil {
				fail("pairings (go)", pr.FirstErr)
			}
		}
		stopProf()
		if cf.srvProf != "" {
			if err := child.get("/cpuprofile/stop"); err != nil {
				fail("server profile", err)
			}
		}
		child.stop()
	}

	py, err := startPython(ctx)
	if err != nil {
		fail("start the Python server", err)
	} else {
		defer py.stop()
		pyName := "python (twistd3 wormhole-mailbox)"
		if err := warmUp(ctx, py.url, cf.app); err != nil {
			fail("warm-up pairing (python)", err)
		}
		if cf.pyidle > 0 {
			r, err := idleRun(ctx, py.url, cf.pyidle, min(cf.dialC, 16), cf.app, cf.hold, nil, py.pid)
			r.Server = pyName
			idles = append(idles, r)
			if err != nil {
				fail("idle clients (python)", err)
			}
		}
		po.ServerPID = py.pid
		for _, c := range pycs {
			pr := load.Pairings(ctx, py.url, cf.pyn, c, cf.app, cf.timeout, po)
			pairs = append(pairs, toPair(pyName, c, pr))
			if pr.FirstErr != nil {
				fail("pairings (python)", pr.FirstErr)
			}
		}
	}
	if len(idles) > 0 {
		printIdle(stdout, idles)
	}
	printPairs(stdout, pairs)
	if cf.jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"idle": idles, "pairings": pairs}, "", "  ")
		if err := os.WriteFile(cf.jsonOut, append(b, '\n'), 0o644); err != nil {
			fail("write json", err)
		}
	}
	if failed {
		return 1
	}
	return 0
}

func warmUp(ctx context.Context, url, app string) error {
	r := load.Pairings(ctx, url, 2, 1, app, 60*time.Second, load.PairOptions{})
	return r.FirstErr
}

// child is our server running as a child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.Closer
	url   string
	debug string
	done  chan struct{}
}

func startChild(ctx context.Context, db string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var args []string
	if db != "" {
		args = append(args, "-db", db)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: in, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "READY" {
		c.stop()
		return nil, fmt.Errorf("server child said %q: %v", line, err)
	}
	c.url, c.debug = f[1], f[2]
	return c, nil
}

func (c *child) mem() (load.Mem, error) {
	var m load.Mem
	resp, err := http.Get(c.debug + "/mem")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&m)
	return m, err
}

// get requests path on the child's debug endpoint.
func (c *child) get(path string) error {
	resp, err := http.Get(c.debug + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", path, resp.Status, b)
	}
	return nil
}

func (c *child) stop() {
	c.stdin.Close() // the child exits when its stdin closes
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// serveChild runs our server for runCompare: it prints "READY wsURL
// debugURL" and serves until stdin is closed. The debug listener serves
// /mem: this process's memory after GC, and the open connection count.
func serveChild(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mailboxload-child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "SQLite file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := load.RaiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "mailboxload child: raise open-file limit: %v\n", err)
	}
	var store server.Store = server.NewMemoryStore()
	if *db != "" {
		st, err := server.OpenSQLiteStore(*db)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		store = st
	}
	defer store.Close()
	srv, err := server.New(server.Options{Store: store, MaxConnections: -1})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mem", func(w http.ResponseWriter, r *http.Request) {
		m := load.SelfMem()
		m.Conns = srv.Connections()
		json.NewEncoder(w).Encode(m)
	})
	var profMu sync.Mutex
	var profFile *os.File
	mux.HandleFunc("/cpuprofile/start", func(w http.ResponseWriter, r *http.Request) {
		profMu.Lock()
		defer profMu.Unlock()
		if profFile != nil {
			http.Error(w, "already profiling", http.StatusConflict)
			return
		}
		f, err := os.Create(r.URL.Query().Get("file"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		profFile = f
	})
	mux.HandleFunc("/cpuprofile/stop", func(w http.ResponseWriter, r *http.Request) {
		profMu.Lock()
		defer profMu.Unlock()
		if profFile == nil {
			http.Error(w, "not profiling", http.StatusConflict)
			return
		}
		rpprof.StopCPUProfile()
		profFile.Close()
		profFile = nil
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	dsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go dsrv.Serve(dl)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Fprintf(stdout, "READY %s http://%s\n", server.WebSocketURL(l.Addr().String()), dl.Addr())
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	dsrv.Close()
	srv.Close()
	if err := <-served; err != nil && !errors.Is(err, server.ErrServerClosed) {
		fmt.Fprintln(stderr, "serve:", err)
		return 1
	}
	return 0
}

// python is Debian's Python mailbox server started by this tool.
type python struct {
	cmd *exec.Cmd
	dir string
	url string
	pid int
}

func startPython(ctx context.Context) (*python, error) {
	twistd, err := exec.LookPath("twistd3")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "mailboxload-python-")
	if err != nil {
		return nil, err
	}
	// Debian's twistd3 runs /usr/bin/python3 (its shebang), which has the
	// Debian packages.
	cmd := exec.Command(twistd, "-n", "--pidfile=", "--logfile="+filepath.Join(dir, "twistd.log"),
		"wormhole-mailbox", "--port=tcp:"+strconv.Itoa(port)+":interface=127.0.0.1", "--channel-db=relay.sqlite")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &python{cmd: cmd, dir: dir, url: fmt.Sprintf("ws://127.0.0.1:%d/v1", port), pid: cmd.Process.Pid}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if i > 300 || ctx.Err() != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "twistd.log"))
			p.stop()
			return nil, fmt.Errorf("python server did not listen: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *python) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Wait()
	os.RemoveAll(p.dir)
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
