//go:build !unix

package server

import "net"

type readWaiter struct{}

func newReadWaiter(net.Conn) *readWaiter { return nil }

func (w *readWaiter) wait() {}

// tryWrite writes nothing: the writer goroutine does it.
func (w *readWaiter) tryWrite([]byte) (int, error) { return 0, nil }
