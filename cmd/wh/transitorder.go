package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/transit"
)

// Why the receiver speaks second on relay connections
//
// wormhole-william (checked: v1.0.6, Debian's, and v1.0.8) as a file
// SENDER has a race in wormhole/file_transport.go: waitForRelayPeer starts
// a goroutine that closes the relay connection when cancelCh is closed, and
// only tells it to stand down by closing okCh when the relay's "ok\n" has
// been read. If the receiver's handshake is already in the socket buffer
// right behind "ok\n", wormhole-william reads it without blocking, wins the
// race and closes cancelCh before that goroutine ever ran; the goroutine's
// select then sees both channels ready, picks one at random and, half of
// the time, closes the winning connection: "write tcp …->…:4001: use of
// closed network connection". Python receivers (and our transit package)
// write their handshake as soon as the relay said "ok", so this happens
// whenever the relay path wins, 1 time in 3 to 5 in our runs.
//
// wormhole-william's own receiver never triggers it: it reads the sender's
// handshake before writing its own, so the sender's read of the receiver's
// handshake parks, and the watcher goroutine runs first. A receiver may do
// the same with every sender (senders always write their handshake
// unprompted: Python's connectionMade, wormhole-william's
// handleIncomingConnection, our transit package), so wh's receiver holds
// its handshake on outbound connections until the sender's has arrived.
// The transit package has no option for this; speakSecondConn does it by
// wrapping the connections our dialer opens.

// speakSecondDialer dials like the transit package's default dialer (TCP,
// no Nagle) and, on each connection, holds our receiver handshake until
// the sender's handshake has been read.
func speakSecondDialer(key []byte) hints.Dialer {
	mine := transit.ReceiverHandshake(key)
	theirs := len(transit.SenderHandshake(key))
	return func(ctx context.Context, c hints.Candidate) (net.Conn, error) {
		h, ok := c.Hint.(hints.DirectTCPV1)
		if !ok {
			return nil, fmt.Errorf("no dialer for %s hints", c.Hint.HintType())
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", h.Addr())
		if err != nil {
			return nil, err
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		prefix := 0
		if c.Relay {
			prefix = len("ok\n")
		}
		return &speakSecondConn{Conn: conn, r: bufio.NewReaderSize(conn, readBuffer), mine: mine, until: prefix + theirs}, nil
	}
}

// readBuffer is the read buffer of the connections wh dials, used during
// the handshake only: once the handshake is over and the buffer drained,
// reads go straight to the connection, since the transit package buffers
// records itself (a second buffer would only copy every byte once more).
const readBuffer = 4 << 10

// speakSecondConn delays one Write of exactly `mine` until `until` bytes
// have been read (the relay's "ok\n" plus the peer's handshake), then
// passes writes through. Reads go through a buffer until the handshake
// is over.
type speakSecondConn struct {
	net.Conn
	r    *bufio.Reader
	done atomic.Bool // handshake phase over: plain pass-through

	mu    sync.Mutex
	mine  []byte
	until int
	read  int
	held  bool
}

func (c *speakSecondConn) Write(p []byte) (int, error) {
	if !c.done.Load() {
		c.mu.Lock()
		if !c.held && c.read < c.until && bytes.Equal(p, c.mine) {
			c.held = true
			c.mu.Unlock()
			return len(p), nil
		}
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

func (c *speakSecondConn) Read(p []byte) (int, error) {
	if c.done.Load() && c.r.Buffered() == 0 {
		return c.Conn.Read(p)
	}
	n, err := c.r.Read(p)
	if c.done.Load() {
		return n, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read += n
	if c.read >= c.until {
		c.done.Store(true)
		if c.held {
			c.held = false
			if _, werr := c.Conn.Write(c.mine); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return n, err
}
