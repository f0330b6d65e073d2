package dilate

import (
	"context"

	"github.com/wormhole-go/wormhole/hints"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// connector makes the connection for one generation: it listens (unless
// NoListen) and publishes direct hints, dials its own relays at once, dials
// the peer's direct hints at once and the peer's relay hints after
// RelayDelay. The first connection to complete the handshake (and, for the
// Follower, to carry the Leader's KCM) wins; everything else is closed.
type connector struct {
	d      *Dilation
	gen    int
	leader bool
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	won    bool
	dialed map[string]bool // addresses already tried (direct and relay)
	direct bool            // a direct attempt was made
	ln     net.Listener
}

func (d *Dilation) newConnector(gen int, leader bool) *connector {
	ctx, cancel := context.WithCancel(d.ctx)
	return &connector{d: d, gen: gen, leader: leader, ctx: ctx, cancel: cancel, dialed: map[string]bool{}}
}

// stop cancels every attempt and closes the listener before returning, so
// that the next generation can listen on the same fixed address.
func (c *connector) stop() {
	c.cancel()
	c.mu.Lock()
	ln := c.ln
	c.ln = nil
	c.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// start listens, publishes hints and dials own relays. Runs on the manager
// goroutine; blocking work happens on new goroutines.
func (c *connector) start() {
	d := c.d
	var hs []hints.Hint
	if !d.opts.NoListen {
		ln, err := net.Listen("tcp", d.opts.ListenAddr)
		if err != nil {
			d.log.Warn("dilate: cannot listen", "addr", d.opts.ListenAddr, "err", err)
		} else {
			c.mu.Lock()
			c.ln = ln
			c.mu.Unlock()
			hs = append(hs, d.directHints(ln.Addr().(*net.TCPAddr))...)
			d.wg.Add(1)
			go c.acceptLoop(ln)
		}
	}
	for _, r := range d.relays {
		hs = append(hs, r)
	}
	if len(hs) > 0 {
		d.sendL1(l1Record{Type: l1Hints, Hints: hs})
	}
	for _, r := range d.relays {
		c.dialRelay(r, 0)
	}
}

// directHints lists what to publish for a listener bound to addr.
func (d *Dilation) directHints(addr *net.TCPAddr) []hints.Hint {
	port := addr.Port
	var hs []hints.Hint
	if len(d.opts.AdvertiseAddrs) > 0 {
		for _, a := range d.opts.AdvertiseAddrs {
			host, p, err := net.SplitHostPort(a)
			if err != nil {
				continue
			}
			pn, err := strconv.Atoi(p)
			if err != nil {
				continue
			}
			hs = append(hs, hints.DirectTCPV1{Hostname: host, Port: pn})
		}
		return hs
	}
	if !addr.IP.IsUnspecified() {
		return []hints.Hint{hints.DirectTCPV1{Hostname: addr.IP.String(), Port: port}}
	}
	// Like py:ipaddrs.py: every non-loopback IPv4 address, 127.0.0.1 only
	// if nothing else exists (or IncludeLoopback is set).
	ifaddrs, _ := net.InterfaceAddrs()
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() {
			continue
		}
		hs = append(hs, hints.DirectTCPV1{Hostname: ipn.IP.String(), Port: port})
	}
	if len(hs) == 0 || d.opts.IncludeLoopback {
		hs = append(hs, hints.DirectTCPV1{Hostname: "127.0.0.1", Port: port})
	}
	return hs
}

func (c *connector) acceptLoop(ln net.Listener) {
	defer c.d.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c.d.wg.Add(1)
		go c.attempt(nc, false, "inbound from "+nc.RemoteAddr().String())
	}
}

// addHints handles the peer's connection-hints (manager goroutine).
func (c *connector) addHints(hs []hints.Hint) {
	prio := func(h hints.Hint) float64 {
		if p, ok := h.(hints.Prioritized); ok {
			return p.HintPriority()
		}
		return 0
	}
	hs = append([]hints.Hint(nil), hs...)
	sort.SliceStable(hs, func(i, j int) bool { return prio(hs[i]) > prio(hs[j]) })
	var relays []hints.RelayV1
	for _, h := range hs {
		switch h := h.(type) {
		case hints.DirectTCPV1:
			c.dial(h.Addr(), false, 0, "direct "+h.String())
			c.mu.Lock()
			c.direct = true
			c.mu.Unlock()
		case hints.RelayV1:
			relays = append(relays, h)
		}
	}
	c.mu.Lock()
	delay := time.Duration(0)
	if c.direct && !c.d.opts.NoListen {
		delay = c.d.opts.RelayDelay
	}
	c.mu.Unlock()
	for _, r := range relays {
		c.dialRelay(r, delay)
	}
}

func (c *connector) dialRelay(r hints.RelayV1, delay time.Duration) {
	for _, h := range r.Hints {
		if d, ok := h.(hints.DirectTCPV1); ok {
			c.dial(d.Addr(), true, delay, "relay "+d.String())
		}
	}
}

// dial starts one outbound attempt unless addr was tried this generation.
func (c *connector) dial(addr string, relay bool, delay time.Duration, desc string) {
	key := addr
	if relay {
		key = "relay " + addr
	}
	c.mu.Lock()
	if c.dialed[key] {
		c.mu.Unlock()
		return
	}
	c.dialed[key] = true
	c.mu.Unlock()
	c.d.wg.Add(1)
	go func() {
		defer c.d.wg.Done()
		// Unlike Python, a failed attempt is retried (with backoff) while
		// this generation is still connecting: a blip during the
		// handshake would otherwise leave the generation stuck forever.
		wait := delay
		for try := 0; ; try++ {
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-c.ctx.Done():
					t.Stop()
					return
				}
			}
			if c.ctx.Err() != nil {
				return
			}
			dctx, cancel := context.WithTimeout(c.ctx, c.d.opts.HandshakeTimeout)
			nc, err := c.d.dialer.DialContext(dctx, "tcp", addr)
			cancel()
			if err == nil {
				c.d.wg.Add(1)
				if c.attempt(nc, relay, desc) {
					return
				}
			} else {
				c.d.log.Debug("dilate: dial failed", "gen", c.gen, "addr", addr, "err", err)
			}
			wait = min(c.d.opts.RetryMin<<min(try, 10), c.d.opts.RetryMax)
		}
	}()
}

// attempt runs the handshake on nc and offers the result. It reports false
// if the handshake failed.
func (c *connector) attempt(nc net.Conn, relay bool, desc string) bool {
	defer c.d.wg.Done()
	res, err := handshake(c.ctx, nc, hsParams{
		dk: c.d.key, leader: c.leader, side: c.d.side, relay: relay, timeout: c.d.opts.HandshakeTimeout,
	})
	if err != nil {
		c.d.log.Debug("dilate: handshake failed", "gen", c.gen, "via", desc, "err", err)
		nc.Close()
		return false
	}
	c.mu.Lock()
	first := !c.won && c.ctx.Err() == nil
	c.won = true
	c.mu.Unlock()
	if !first {
		nc.Close()
		return true
	}
	c.stop() // stop listening, abort other attempts
	cn := &conn{
		d: c.d, nc: res.nc, br: res.br, seal: res.seal, open: res.open,
		gen: c.gen, desc: desc, leader: c.leader,
		kickCh: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if !c.d.post(evConnMade{gen: c.gen, c: cn}) {
		nc.Close()
	}
	return true
}
