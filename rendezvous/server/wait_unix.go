//go:build unix

package server

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// readWaiter parks a goroutine until a socket is readable, without a read
// buffer and with a shallow stack: an idle connection's goroutine is parked
// here, so its stack can shrink to the minimum at the next GCs. It also
// writes without blocking (tryWrite).
type readWaiter struct {
	rc   syscall.RawConn
	bufs *sync.Pool // *[]byte scratch buffers, held only during a read
	fn   func(fd uintptr) bool
	got  []byte
	err  error
}

func newReadWaiter(nc net.Conn, bufs *sync.Pool) *readWaiter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &readWaiter{rc: rc, bufs: bufs}
	w.fn = func(fd uintptr) bool {
		bp := w.bufs.Get().(*[]byte)
		defer w.bufs.Put(bp)
		for {
			n, err := syscall.Read(int(fd), *bp)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
				return false // park until readable (no buffer held)
			case err != nil:
				w.err = err
			case n == 0:
				w.err = io.EOF
			default:
				w.got = append([]byte(nil), (*bp)[:n]...)
			}
			return true
		}
	}
	return w
}

// read waits until the socket is readable and returns what one read got
// (a copy), or the error (EOF, the read deadline passed, ...). A nil
// readWaiter returns nothing: the caller reads the connection directly.
func (w *readWaiter) read() ([]byte, error) {
	if w == nil {
		return nil, nil
	}
	w.got, w.err = nil, nil
	if err := w.rc.Read(w.fn); err != nil && w.err == nil {
		w.err = err
	}
	got, err := w.got, w.err
	w.got, w.err = nil, nil
	return got, err
}

// tryWrite writes as much of b as the socket takes now, without waiting
// (Go's sockets are non-blocking). It returns the bytes written; err is
// nil when the socket was full (the caller queues the rest).
func (w *readWaiter) tryWrite(b []byte) (n int, err error) {
	if w == nil {
		return 0, nil
	}
	var werr error
	cerr := w.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
				return true
			case err != nil:
				werr = err
				return true
			case m <= 0:
				return true
			}
			n += m
		}
		return true
	})
	if werr == nil {
		werr = cerr
	}
	return n, werr
}
