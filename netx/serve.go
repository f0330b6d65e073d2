package netx

import (
	"net"
	"sync"
)

// Serve accepts connections on l until l is closed and runs handle for each
// one in its own goroutine, closing the connection when handle returns. The
// returned stop closes l and waits until the accept loop and every handler
// have returned, so a test can call it from Cleanup and leak nothing.
func Serve(l net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { l.Close() })
		wg.Wait()
	}
}
