package dilate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-yamux/v4"
)

// YamuxVersion is a Go-only Dilation mode, ranked after CreditVersion and
// before Version in GoVersions() (Options.NoCredit picks it): the durable L4 stream carries a single internal subchannel
// that runs yamux, and every application subchannel is a yamux stream with
// its own flow-control window. A subchannel nobody reads then stalls only
// itself, never the others (in "ged" mode it pauses the whole connection,
// as in Python). It is used only when both sides' "please" records carry
// use-version = YamuxVersion; Python peers always get "ged".
const YamuxVersion = "wormhole-go-yamux-1"

// yamuxInternal is the subprotocol name of the internal subchannel.
const yamuxInternal = "wormhole-go-yamux-1/session"

// maxStreamName bounds the subprotocol name in a stream header.
const maxStreamName = 1024

var errYamuxHeader = errors.New("dilate: bad yamux stream header")

// durableConn hides deadlines from yamux: the durable subchannel must
// never time out while Dilation reconnects underneath.
type durableConn struct{ *Subchannel }

func (durableConn) SetDeadline(time.Time) error      { return nil }
func (durableConn) SetReadDeadline(time.Time) error  { return nil }
func (durableConn) SetWriteDeadline(time.Time) error { return nil }

func (d *Dilation) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false // Dilation's PING/PONG does liveness
	c.ConnectionWriteTimeout = 24 * time.Hour
	c.LogOutput = yamuxLog{d}
	c.MaxStreamWindowSize = uint32(max(d.opts.MaxSubchannelBuffer, 4<<20)) // 4 MiB: 256 KiB-1 MiB windows halved throughput over the durable stream
	// Streams the peer has open at once, as in the other modes: yamux
	// answers a SYN beyond it with a RST (which yamuxLog counts).
	c.MaxIncomingStreams = uint32(d.opts.MaxSubchannels)
	c.AcceptBacklog = maxPendingOpens
	// One yamux frame (12-byte header + body) per DATA record: with the
	// default 64 KiB, every frame became a full record plus a 38-byte one.
	// The receiver accepts any frame size, so this is local only.
	c.MaxMessageSize = maxDataPayload
	// Read the durable subchannel in large pieces (default 4 KiB: one
	// Subchannel.Read, with its locking, per 4 KiB).
	c.ReadBufSize = 128 << 10
	return c
}

// yamuxLog receives go-yamux's log lines: the streams it resets for
// MaxIncomingStreams or a full backlog are counted as refused subchannels
// (go-yamux has no other hook for them); the rest go to the debug log.
type yamuxLog struct{ d *Dilation }

func (w yamuxLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	switch {
	case strings.Contains(line, "MaxIncomingStreams exceeded"):
		w.d.noteRefused(0, "", "MaxSubchannels reached (yamux stream reset)")
	case strings.Contains(line, "backlog exceeded"):
		w.d.noteRefused(0, "", "yamux accept backlog full (stream reset)")
	default:
		w.d.log.Debug("dilate: yamux", "msg", line)
	}
	return len(p), nil
}

// YamuxStream is an application subchannel in YamuxVersion mode.
type YamuxStream struct {
	*yamux.Stream
	name string
	d    *Dilation
	// go-yamux's Stream.Write is not safe for concurrent use (two writers
	// can both spend the same send window), so Writes are serialized here,
	// honouring the write deadline while waiting.
	wlock chan struct{}
	wdl   *deadline
	// Reads too: concurrent Stream.Reads race in sendWindowUpdate
	// (recvWindow, epochStart; go-yamux v4.0.2 calls it without the lock
	// its comment asks for), seen by the race detector in nettest's
	// RacyRead.
	rlock chan struct{}
	rdl   *deadline
}

func newYamuxStream(st *yamux.Stream, name string, d *Dilation) *YamuxStream {
	return &YamuxStream{
		Stream: st, name: name, d: d,
		wlock: make(chan struct{}, 1), wdl: newDeadline(),
		rlock: make(chan struct{}, 1), rdl: newDeadline(),
	}
}

func (s *YamuxStream) SetDeadline(t time.Time) error {
	s.wdl.set(t)
	s.rdl.set(t)
	return s.Stream.SetDeadline(t)
}

func (s *YamuxStream) SetReadDeadline(t time.Time) error {
	s.rdl.set(t)
	return s.Stream.SetReadDeadline(t)
}

func (s *YamuxStream) SetWriteDeadline(t time.Time) error {
	s.wdl.set(t)
	return s.Stream.SetWriteDeadline(t)
}

// closedErr maps errors after Dilation.Close to ones wrapping net.ErrClosed.
func (s *YamuxStream) closedErr(op string, err error) error {
	if err != nil && err != io.EOF && isClosed(s.d.done) {
		return &net.OpError{Op: op, Net: "dilation", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: errDilationClosed}
	}
	return err
}

func (s *YamuxStream) Read(p []byte) (int, error) {
	select {
	case s.rlock <- struct{}{}:
	case <-s.rdl.wait():
		return 0, os.ErrDeadlineExceeded
	case <-s.d.done:
		return 0, s.closedErr("read", errDilationClosed)
	}
	defer func() { <-s.rlock }()
	n, err := s.Stream.Read(p)
	return n, s.closedErr("read", err)
}

func (s *YamuxStream) Write(p []byte) (int, error) {
	select {
	case s.wlock <- struct{}{}:
	case <-s.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	case <-s.d.done:
		return 0, s.closedErr("write", errDilationClosed)
	}
	defer func() { <-s.wlock }()
	n, err := s.Stream.Write(p)
	return n, s.closedErr("write", err)
}

// Subprotocol is the name the opener asked for.
func (s *YamuxStream) Subprotocol() string { return s.name }

// startYamux runs once the mode is yamux and the first connection exists:
// the Leader opens the internal subchannel, the Follower accepts it.
func (d *Dilation) startYamux(role Role, internal *Listener) {
	defer d.wg.Done()
	var (
		sess *yamux.Session
		err  error
	)
	if role == Leader {
		sc := d.openSubchannel(yamuxInternal)
		sess, err = yamux.Client(durableConn{sc}, d.yamuxConfig(), nil)
	} else {
		var c net.Conn
		c, err = internal.Accept()
		if err == nil {
			sess, err = yamux.Server(durableConn{c.(*Subchannel)}, d.yamuxConfig(), nil)
		}
	}
	d.mu.Lock()
	d.ysess, d.yerr = sess, err
	closed := isClosed(d.done)
	close(d.yready)
	d.mu.Unlock()
	if err != nil {
		d.log.Warn("dilate: yamux session failed", "err", err)
		return
	}
	if closed {
		sess.Close()
		return
	}
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		d.wg.Add(1)
		go d.routeStream(st)
	}
}

// routeStream reads the stream header (be16 length + subprotocol name) and
// hands the stream to its listener, or keeps it until Listen.
func (d *Dilation) routeStream(st *yamux.Stream) {
	defer d.wg.Done()
	st.SetReadDeadline(time.Now().Add(d.opts.HandshakeTimeout))
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		st.Reset()
		return
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > maxStreamName {
		st.Reset()
		return
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(st, name); err != nil {
		st.Reset()
		return
	}
	st.SetReadDeadline(time.Time{})
	d.deliverInbound(newYamuxStream(st, string(name), d), string(name))
}

// deliverInbound queues an inbound subchannel for its listener.
func (d *Dilation) deliverInbound(c net.Conn, name string) {
	d.mu.Lock()
	if isClosed(d.done) {
		d.mu.Unlock()
		c.Close()
		return
	}
	l := d.listeners[name]
	if l == nil {
		if len(d.pending[name]) >= maxPendingOpens {
			d.mu.Unlock()
			d.noteRefused(connID(c), name, "too many unaccepted subchannels for a subprotocol nobody listens on")
			c.Close()
			return
		}
		d.pending[name] = append(d.pending[name], c)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	if !l.push(c) {
		d.noteRefused(connID(c), name, "listener closed or its accept queue full")
		c.Close()
	}
}

// connID is a subchannel's id for logging (0 for a yamux stream).
func connID(c net.Conn) uint32 {
	if s, ok := c.(*Subchannel); ok {
		return s.id
	}
	return 0
}

// dialYamux opens a yamux stream and writes its header.
func (d *Dilation) dialYamux(ctx context.Context, name string) (net.Conn, error) {
	if len(name) > maxStreamName {
		return nil, fmt.Errorf("dilate: subprotocol name longer than %d bytes", maxStreamName)
	}
	select {
	case <-d.yready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, errDilationClosed
	}
	d.mu.Lock()
	sess, err := d.ysess, d.yerr
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("dilate: yamux session: %w", err)
	}
	st, err := sess.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	hdr := binary.BigEndian.AppendUint16(nil, uint16(len(name)))
	if _, err := st.Write(append(hdr, name...)); err != nil {
		st.Reset()
		return nil, err
	}
	return newYamuxStream(st, name, d), nil
}
