//go:build unix

package server

import (
	"net"
	"syscall"
)

// readWaiter parks a goroutine until a socket is readable, without a read
// buffer and with a shallow stack: an idle connection's goroutine is parked
// here, so its stack can shrink to the minimum at the next GCs.
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
