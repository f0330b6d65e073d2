// Package netx holds small networking helpers for tests and benchmarks: a
// fault-injecting TCP proxy and a few io helpers.
package netx

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by Start on a closed Proxy.
var ErrClosed = errors.New("netx: proxy closed")

// Proxy is a TCP forwarder from Listen to Target that can inject faults:
// Cut (close every current connection), Reset (abort them with RST),
// Stall/Resume (stop moving bytes), Delay (per-chunk latency), Bandwidth
// (bytes per second cap) and Refuse (drop new connections at once).
//
// Set the fields, then call Start. Faults may be changed at any time and
// apply to current and future connections.
type Proxy struct {
	Listen string       // listen address; "127.0.0.1:0" if empty
	Target string       // address to forward to
	Logger *slog.Logger // optional

	mu       sync.Mutex
	cond     *sync.Cond
	ln       net.Listener
	conns    map[*pair]struct{}
	stalled  bool
	refuse   bool
	delay    time.Duration
	bps      int64
	closed   bool
	accepted int
	wg       sync.WaitGroup
	done     chan struct{}
}

type pair struct {
	a, b net.Conn
	once sync.Once
}

func (p *pair) close(reset bool) {
	p.once.Do(func() {
		if reset {
			for _, c := range []net.Conn{p.a, p.b} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
		}
		p.a.Close()
		p.b.Close()
	})
}

// Start opens the listener and begins accepting.
func (p *Proxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.ln != nil {
		return errors.New("netx: proxy already started")
	}
	if p.Target == "" {
		return errors.New("netx: proxy has no Target")
	}
	addr := p.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("netx: listen: %w", err)
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	p.cond = sync.NewCond(&p.mu)
	p.ln = ln
	p.conns = make(map[*pair]struct{})
	p.done = make(chan struct{})
	p.wg.Add(1)
	go p.acceptLoop()
	return nil
}

// Addr is the listening address ("host:port"); empty before Start.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Accepted is the number of connections accepted so far (refused ones included).
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Active is the number of connections currently being forwarded.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		if p.refuse || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 10 * time.Second}
	t, err := d.Dial("tcp", p.Target)
	if err != nil {
		p.Logger.Debug("netx: dial target", "err", err)
		c.Close()
		return
	}
	pr := &pair{a: c, b: t}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pr.close(false)
		return
	}
	p.conns[pr] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(pr, t, c) }()
	go func() { defer wg.Done(); p.pump(pr, c, t) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
}

// pump copies src to dst applying the faults; any error ends both directions
// (the proxy does not forward half-closes).
func (p *Proxy) pump(pr *pair, dst, src net.Conn) {
	defer pr.close(false)
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate(pr, n) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate blocks while stalled and applies delay and bandwidth for n bytes.
// It returns false when the pair or the proxy was closed meanwhile.
func (p *Proxy) gate(pr *pair, n int) bool {
	p.mu.Lock()
	for p.stalled && !p.closed && p.isLive(pr) {
		p.cond.Wait()
	}
	live := !p.closed && p.isLive(pr)
	wait := p.delay
	if p.bps > 0 {
		wait += time.Duration(int64(n) * int64(time.Second) / p.bps)
	}
	p.mu.Unlock()
	if !live {
		return false
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.done:
			return false
		}
	}
	return true
}

func (p *Proxy) isLive(pr *pair) bool {
	_, ok := p.conns[pr]
	return ok
}

func (p *Proxy) dropAll(reset bool) int {
	p.mu.Lock()
	var prs []*pair
	for pr := range p.conns {
		prs = append(prs, pr)
		delete(p.conns, pr)
	}
	if p.cond != nil {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
	for _, pr := range prs {
		pr.close(reset)
	}
	return len(prs)
}

// Cut closes every current connection (both halves, FIN). New connections are
// still accepted. It returns how many connections were cut.
func (p *Proxy) Cut() int { return p.dropAll(false) }

// Reset aborts every current connection with a TCP RST (SO_LINGER 0).
func (p *Proxy) Reset() int { return p.dropAll(true) }

// Stall stops moving bytes in both directions on every connection; the
// connections stay open. Bytes already read are held until Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Resume undoes Stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.stalled = false
	if p.cond != nil {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
}

// Delay sets a latency added to every forwarded chunk (0 disables).
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Bandwidth caps each direction of each connection to about bytesPerSecond
// (0 or negative disables).
func (p *Proxy) Bandwidth(bytesPerSecond int64) {
	p.mu.Lock()
	p.bps = max(bytesPerSecond, 0)
	p.mu.Unlock()
}

// Refuse makes the proxy close new connections right after accepting them.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Close stops the listener, closes every connection and waits for all the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ln := p.ln
	if p.done != nil {
		close(p.done)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.dropAll(false)
	p.wg.Wait()
	return nil
}

var _ io.Closer = (*Proxy)(nil)
