//go:build !linux

package relay

import "net"

// setNotSentLowat is Linux-only for now (the relay's throughput work and
// measurements are Linux-only); elsewhere the system default applies.
func setNotSentLowat(*net.TCPConn, int) error { return nil }
