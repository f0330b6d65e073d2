package hints

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// AddrOptions select local addresses.
type AddrOptions struct {
	// IncludeLoopback adds 127.0.0.1 and ::1 even when other addresses
	// exist (tests). Without it loopback is used only when nothing else is
	// found, like Python.
	IncludeLoopback bool
	// NoIPv6 / NoIPv4 drop a family. Python only ever advertises IPv4.
	NoIPv6, NoIPv4 bool
	// Interfaces overrides net.Interfaces (tests, or to restrict the set).
	Interfaces func() ([]net.Interface, error)
	// InterfaceAddrs overrides (*net.Interface).Addrs.
	InterfaceAddrs func(net.Interface) ([]net.Addr, error)
}

// LocalAddresses lists this host's addresses usable in direct hints: IPv4
// and IPv6 unicast addresses of up interfaces, without link-local ones
// (their zone is meaningless to the peer) and multicast. Loopback
// addresses are returned only if nothing else exists or IncludeLoopback is
// set. IPv4 addresses come first.
func LocalAddresses(o AddrOptions) ([]netip.Addr, error) {
	ifaces := o.Interfaces
	if ifaces == nil {
		ifaces = net.Interfaces
	}
	addrsOf := o.InterfaceAddrs
	if addrsOf == nil {
		addrsOf = func(i net.Interface) ([]net.Addr, error) { return i.Addrs() }
	}
	list, err := ifaces()
	if err != nil {
		return nil, fmt.Errorf("hints: list interfaces: %w", err)
	}
	var found, loop []netip.Addr
	for _, ifc := range list {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		as, err := addrsOf(ifc)
		if err != nil {
			continue
		}
		for _, a := range as {
			var ip net.IP
			switch a := a.(type) {
			case *net.IPNet:
				ip = a.IP
			case *net.IPAddr:
				ip = a.IP
			default:
				continue
			}
			addr, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			addr = addr.Unmap()
			if (addr.Is4() && o.NoIPv4) || (addr.Is6() && o.NoIPv6) {
				continue
			}
			switch {
			case addr.IsLoopback():
				loop = append(loop, addr)
			case addr.IsLinkLocalUnicast(), addr.IsMulticast(), addr.IsUnspecified():
			default:
				found = append(found, addr)
			}
		}
	}
	if len(found) == 0 || o.IncludeLoopback {
		found = append(found, loop...)
	}
	slices.SortStableFunc(found, func(a, b netip.Addr) int {
		switch {
		case a.Is4() && !b.Is4():
			return -1
		case !a.Is4() && b.Is4():
			return 1
		}
		return 0
	})
	return slices.Compact(found), nil
}

// ListenOptions configure Listen.
type ListenOptions struct {
	// LoopbackOnly binds 127.0.0.1 and ::1 instead of all interfaces and
	// advertises only those (tests).
	LoopbackOnly bool
	// Port to use; 0 picks a free one (the same on both families).
	Port int
	// Addrs chooses the addresses to advertise (all families are bound
	// regardless). Default: LocalAddresses with these options.
	Addrs AddrOptions
	// Priority of the advertised direct hints.
	Priority float64
}

// Listener accepts TCP connections on IPv4 and IPv6 on one port.
type Listener struct {
	ls    []net.Listener
	hints []Hint
	port  int
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("hints: listener closed")

// Listen opens a listener on both address families (one port; if IPv6 is
// unavailable, IPv4 only) and computes the direct hints to advertise.
func Listen(ctx context.Context, o ListenOptions) (*Listener, error) {
	host4, host6 := "0.0.0.0", "::"
	if o.LoopbackOnly {
		host4, host6 = "127.0.0.1", "::1"
	}
	var lc net.ListenConfig
	var ls []net.Listener
	var err error
	for try := 0; try < 8; try++ {
		var l4, l6 net.Listener
		l4, err = lc.Listen(ctx, "tcp4", net.JoinHostPort(host4, strconv.Itoa(o.Port)))
		if err != nil {
			break
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l6, err6 := lc.Listen(ctx, "tcp6", net.JoinHostPort(host6, strconv.Itoa(port)))
		if err6 == nil {
			ls = []net.Listener{l4, l6}
			break
		}
		if o.Port == 0 && isAddrInUse(err6) {
			l4.Close() // port taken on v6: pick another
			continue
		}
		ls = []net.Listener{l4} // no IPv6 here
		break
	}
	if err != nil {
		return nil, fmt.Errorf("hints: listen: %w", err)
	}
	if ls == nil {
		return nil, fmt.Errorf("hints: listen: no port free on both families")
	}
	l := &Listener{ls: ls, port: ls[0].Addr().(*net.TCPAddr).Port, conns: make(chan net.Conn), done: make(chan struct{})}
	var addrs []netip.Addr
	if o.LoopbackOnly {
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		if len(ls) > 1 {
			addrs = append(addrs, netip.MustParseAddr("::1"))
		}
	} else {
		addrs, err = LocalAddresses(o.Addrs)
		if err != nil {
			l.closeListeners()
			return nil, err
		}
		if len(ls) == 1 {
			addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool { return a.Is6() })
		}
	}
	for _, a := range addrs {
		l.hints = append(l.hints, DirectTCPV1{Hostname: a.String(), Port: l.port, Priority: o.Priority})
	}
	for _, nl := range ls {
		l.wg.Add(1)
		go l.acceptLoop(nl)
	}
	return l, nil
}

func (l *Listener) acceptLoop(nl net.Listener) {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := nl.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (EMFILE...): back off, then keep going.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

// Port is the listening port (the same for both families).
func (l *Listener) Port() int { return l.port }

// Hints are the direct-tcp-v1 hints to advertise.
func (l *Listener) Hints() []Hint { return slices.Clone(l.hints) }

// Addrs are the bound addresses.
func (l *Listener) Addrs() []net.Addr {
	out := make([]net.Addr, len(l.ls))
	for i, nl := range l.ls {
		out[i] = nl.Addr()
	}
	return out
}

// Conns delivers accepted connections (for RaceOptions.Inbound). It is
// never closed; select on Done as well.
func (l *Listener) Conns() <-chan net.Conn { return l.conns }

// Done is closed by Close.
func (l *Listener) Done() <-chan struct{} { return l.done }

// Accept waits for the next connection on either family.
func (l *Listener) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Listener) closeListeners() {
	for _, nl := range l.ls {
		nl.Close()
	}
}

// Close stops listening and waits for the accept goroutines. Connections
// already handed out are not closed.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.closeListeners()
		l.wg.Wait()
	})
	return nil
}
