//go:build !unix

package server

import (
	"net"
	"sync"
)

type readWaiter struct{}

func newReadWaiter(net.Conn, *sync.Pool) *readWaiter { return nil }

// read returns nothing: the caller reads the connection directly.
func (w *readWaiter) read() ([]byte, error) { return nil, nil }

// tryWrite writes nothing: the writer goroutine does it.
func (w *readWaiter) tryWrite([]byte) (int, error) { return 0, nil }
