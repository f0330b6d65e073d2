//go:build unix

package server

import (
	"net"
	"syscall"
)

// readWaiter parks a goroutine until a socket is readable, without a read
// buffer and with a shallow stack: an idle connection's goroutine is parked
// here, so its stack can shrink to the minimum at the next GCs. It also
// writes without blocking (tryWrite).
type readWaiter struct {
	rc   syscall.RawConn
	peek [1]byte
	fn   func(fd uintptr) bool
}

func newReadWaiter(nc net.Conn) *readWaiter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &readWaiter{rc: rc}
	w.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), w.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Data, EOF or an error: let the real read see it.
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	}
	return w
}

// wait returns when the socket has data (or EOF, an error, or the read
// deadline passed: the following Read reports those).
func (w *readWaiter) wait() {
	if w != nil {
		_ = w.rc.Read(w.fn)
	}
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
