package dilate

import (
	"context"
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
}

func (d *Dilation) newConnector(gen int, leader bool) *connector {
	ctx, cancel := context.WithCancel(d.ctx)
	return &connector{d: d, gen: gen, leader: leader, ctx: ctx, cancel: cancel, dialed: map[string]bool{}}
}

func (c *connector) stop() { c.cancel() }

// start listens, publishes hints and dials own relays. Runs on the manager
// goroutine; blocking work happens on new goroutines.
func (c *connector) start() {
	d := c.d
	var hints []Hint
	if !d.opts.NoListen {
		ln, err := net.Listen("tcp", d.opts.ListenAddr)
		if err != nil {
			d.log.Warn("dilate: cannot listen", "addr", d.opts.ListenAddr, "err", err)
		} else {
			context.AfterFunc(c.ctx, func() { ln.Close() })
			hints = append(hints, d.directHints(ln.Addr().(*net.TCPAddr))...)
			d.wg.Add(1)
			go c.acceptLoop(ln)
		}
	}
	for _, r := range d.relays {
		hints = append(hints, r)
	}
	if len(hints) > 0 {
		d.sendL1(l1Record{Type: l1Hints, Hints: hints})
	}
	for _, r := range d.relays {
		c.dialRelay(r, 0)
	}
}

// directHints lists what to publish for a listener bound to addr.
func (d *Dilation) directHints(addr *net.TCPAddr) []Hint {
	port := addr.Port
	var hs []Hint
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
			hs = append(hs, Hint{Type: HintDirectTCP, Hostname: host, Port: pn})
		}
		return hs
	}
	if !addr.IP.IsUnspecified() {
		return []Hint{{Type: HintDirectTCP, Hostname: addr.IP.String(), Port: port}}
	}
	// Like py:ipaddrs.py: every non-loopback IPv4 address, 127.0.0.1 only
	// if nothing else exists (or IncludeLoopback is set).
	ifaddrs, _ := net.InterfaceAddrs()
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() {
			continue
		}
		hs = append(hs, Hint{Type: HintDirectTCP, Hostname: ipn.IP.String(), Port: port})
	}
	if len(hs) == 0 || d.opts.IncludeLoopback {
		hs = append(hs, Hint{Type: HintDirectTCP, Hostname: "127.0.0.1", Port: port})
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
func (c *connector) addHints(hints []Hint) {
	sort.SliceStable(hints, func(i, j int) bool { return hints[i].Priority > hints[j].Priority })
	var relays []Hint
	for _, h := range hints {
		switch h.Type {
		case HintDirectTCP:
			c.dial(h.Addr(), false, 0, "direct tcp:"+h.Addr())
			c.mu.Lock()
			c.direct = true
			c.mu.Unlock()
		case HintRelay:
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

func (c *connector) dialRelay(r Hint, delay time.Duration) {
	for _, h := range r.Hints {
		c.dial(h.Addr(), true, delay, "relay tcp:"+h.Addr())
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
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				c.d.wg.Done()
				return
			}
		}
		dctx, cancel := context.WithTimeout(c.ctx, c.d.opts.HandshakeTimeout)
		nc, err := c.d.dialer.DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			c.d.log.Debug("dilate: dial failed", "gen", c.gen, "addr", addr, "err", err)
			c.d.wg.Done()
			return
		}
		c.attempt(nc, relay, desc) // calls wg.Done
	}()
}

// attempt runs the handshake on nc and offers the result.
func (c *connector) attempt(nc net.Conn, relay bool, desc string) {
	defer c.d.wg.Done()
	res, err := handshake(c.ctx, nc, hsParams{
		dk: c.d.key, leader: c.leader, side: c.d.side, relay: relay, timeout: c.d.opts.HandshakeTimeout,
	})
	if err != nil {
		c.d.log.Debug("dilate: handshake failed", "gen", c.gen, "via", desc, "err", err)
		nc.Close()
		return
	}
	c.mu.Lock()
	first := !c.won && c.ctx.Err() == nil
	c.won = true
	c.mu.Unlock()
	if !first {
		nc.Close()
		return
	}
	c.cancel() // stop listening, abort other attempts
	cn := &conn{
		d: c.d, nc: res.nc, br: res.br, seal: res.seal, open: res.open,
		gen: c.gen, desc: desc, leader: c.leader,
		kickCh: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if !c.d.post(evConnMade{gen: c.gen, c: cn}) {
		nc.Close()
	}
}
