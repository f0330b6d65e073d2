// Package load is the client side of the mailbox load tool: idle WebSocket
// clients that bind and then stay open (answering pings), complete pairings
// with latency percentiles, and process memory figures. It talks to any
// mailbox server (ours or the Python reference) over loopback.
package load

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// RaiseFileLimit raises this process's RLIMIT_NOFILE soft limit to the
// hard limit and returns the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// Mem is one process's memory figures.
type Mem struct {
	Sys        uint64 `json:"sys"`         // runtime.MemStats.Sys (Go only)
	HeapInuse  uint64 `json:"heap_inuse"`  // runtime.MemStats.HeapInuse (Go only)
	StackInuse uint64 `json:"stack_inuse"` // runtime.MemStats.StackInuse (Go only)
	VmRSS      uint64 `json:"vmrss"`       // /proc/PID/status VmRSS
	Goroutines int    `json:"goroutines"`  // Go only
	Conns      int    `json:"conns"`       // server's open WebSocket count (Go only, -1 unknown)
}

// SelfMem collects garbage, returns freed memory to the OS and reports this
// process's figures.
func SelfMem() Mem {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss, _ := ProcRSS(0)
	return Mem{Sys: m.Sys, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, VmRSS: rss,
		Goroutines: runtime.NumGoroutine(), Conns: -1}
}

// ProcRSS reads VmRSS in bytes from /proc/PID/status (pid 0: this process).
func ProcRSS(pid int) (uint64, error) {
	p := "/proc/self/status"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("load: no VmRSS in " + p)
}

// Idle is a set of idle clients. Each has sent bind (appid) after the
// welcome and got its ack; a goroutine per client answers pings.
type Idle struct {
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	lost  atomic.Int64
}

// Len is the number of clients opened.
func (s *Idle) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Lost is the number of clients whose connection ended before Close.
func (s *Idle) Lost() int64 { return s.lost.Load() }

// Close closes every client and waits for their goroutines.
func (s *Idle) Close() {
	s.mu.Lock()
	cs := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	s.wg.Wait()
}

// OpenIdle opens n idle clients to the mailbox server at wsURL (ws://),
// concurrency at a time. Connections come from local addresses
// 127.0.0.1..127.0.0.8 in turn so that the ephemeral port range is not a
// limit. On error the clients opened so far stay in the returned set (close
// it).
func OpenIdle(ctx context.Context, wsURL string, n, concurrency int, appID string) (*Idle, error) {
	u, err := url.Parse(wsURL)
	if err != nil || u.Scheme != "ws" {
		return nil, fmt.Errorf("load: need a ws:// URL, got %q", wsURL)
	}
	s := &Idle{}
	var next atomic.Int64
	var firstErr error
	var emu sync.Mutex
	var wg sync.WaitGroup
	for range max(1, concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				c, br, err := openIdle(ctx, u, int(i), appID)
				if err != nil {
					emu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d: %w", i, err)
					}
					emu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
				s.mu.Lock()
				s.conns = append(s.conns, c)
				s.wg.Add(1)
				s.mu.Unlock()
				go s.serve(c, br)
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return s, firstErr
}

// serve answers pings until the connection ends.
func (s *Idle) serve(c net.Conn, br *bufio.Reader) {
	defer s.wg.Done()
	for {
		op, p, err := readFrame(br)
		if err != nil {
			s.mu.Lock()
			open := s.conns != nil
			s.mu.Unlock()
			if open {
				s.lost.Add(1)
			}
			return
		}
		switch op {
		case 0x9:
			if _, err := c.Write(clientFrame(0xA, p)); err != nil {
				return
			}
		case 0x8:
			c.Close()
		}
	}
}

func openIdle(ctx context.Context, u *url.URL, i int, appID string) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%8))}}
	if h, _, _ := net.SplitHostPort(u.Host); h != "127.0.0.1" {
		d.LocalAddr = nil
	}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var key [16]byte
	rand.Read(key[:])
	path := u.RequestURI()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, u.Host, base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, nil, fmt.Errorf("upgrade: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return nil, nil, fmt.Errorf("upgrade refused: %q", strings.TrimSpace(status))
	}
	for range 100 {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("upgrade headers: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	if err := expectType(br, "welcome"); err != nil {
		return nil, nil, err
	}
	bind := fmt.Sprintf(`{"type":"bind","appid":%q,"side":"%08x","client_version":["go","mailboxload"],"id":"b%d"}`, appID, i, i)
	if _, err := c.Write(clientFrame(0x1, []byte(bind))); err != nil {
		return nil, nil, err
	}
	if err := expectType(br, "ack"); err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Time{})
	ok = true
	return c, br, nil
}

func expectType(br *bufio.Reader, typ string) error {
	for range 10 {
		op, p, err := readFrame(br)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", typ, err)
		}
		if op != 0x1 && op != 0x2 {
			continue
		}
		var m struct {
			Type  string `json:"type"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("waiting for %s: %w", typ, err)
		}
		if m.Type == typ {
			return nil
		}
		if m.Type == "error" {
			return fmt.Errorf("server error: %s", m.Error)
		}
	}
	return fmt.Errorf("no %s", typ)
}

// readFrame reads one unmasked server frame (no fragmentation expected).
func readFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return 0, nil, err
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(br, h[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("load: server frame too large")
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(br, payload)
	return op, payload, err
}

// clientFrame builds one final masked client frame.
func clientFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range p {
		b = append(b, c^key[i&3])
	}
	return b
}

// PairResult is the outcome of Pairings.
type PairResult struct {
	OK, Failed int
	Elapsed    time.Duration
	PerSecond  float64
	P50, P90   time.Duration
	P99, Max   time.Duration
	FirstErr   error
	// CPU time (user+system) this load process used during the run, in
	// seconds, and the server's when ServerPID was given (0 if unknown).
	ClientCPU, ServerCPU float64
}

// PairOptions are Pairings' options.
type PairOptions struct {
	// Library runs each pairing with mailboxtest.Pair (coder/websocket,
	// JSON decoding of every frame) instead of the raw client (RawPair).
	Library bool
	// ServerPID, when set, is the server process whose CPU time is
	// reported (from /proc/PID/stat).
	ServerPID int
}

// Pairings runs n complete pairings (A: bind, allocate, claim, open, add;
// B: bind, claim, open, add; both: release, close), c at a time, each with
// its own timeout.
func Pairings(ctx context.Context, wsURL string, n, c int, appID string, timeout time.Duration, o PairOptions) PairResult {
	var r PairResult
	u, err := parseWS(wsURL)
	if err != nil {
		r.Failed, r.FirstErr = n, err
		return r
	}
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := SelfCPU()
	scpu0, _ := ProcCPU(o.ServerPID)
	start := time.Now()
	for range max(1, c) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				var err error
				if o.Library {
					pctx, cancel := context.WithTimeout(ctx, timeout)
					err = mailboxtest.Pair(pctx, wsURL, appID)
					cancel()
				} else {
					err = RawPair(ctx, u, appID, int(2*i), t0.Add(timeout))
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					r.Failed++
					if r.FirstErr == nil {
						r.FirstErr = err
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.ClientCPU = SelfCPU() - cpu0
	if o.ServerPID > 0 {
		if scpu1, err := ProcCPU(o.ServerPID); err == nil {
			r.ServerCPU = scpu1 - scpu0
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	r.OK = len(lat)
	r.PerSecond = float64(r.OK) / r.Elapsed.Seconds()
	r.P50, r.P90, r.P99, r.Max = pct(0.5), pct(0.9), pct(0.99), pct(1)
	return r
}

// SelfCPU is this process's user+system CPU time in seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// ProcCPU is the user+system CPU time in seconds of process pid (from
// /proc/PID/stat, clock ticks assumed 100 Hz, the Linux default).
func ProcCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("load: no pid")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which is in parentheses and may
	// contain spaces): state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("load: bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("load: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("load: bad /proc stat times")
	}
	return float64(ut+st) / 100, nil
}
