//go:build linux

package relay

import (
	"net"

	"golang.org/x/sys/unix"
)

// setNotSentLowat sets TCP_NOTSENT_LOWAT on tc: the socket then takes (and
// reports writable for) at most n bytes that TCP has not yet sent, on top
// of the data in flight. See Options.NotSentLowat.
func setNotSentLowat(tc *net.TCPConn, n int) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}
