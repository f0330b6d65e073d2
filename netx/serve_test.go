package netx

import (
	"io"
	"net"
	"runtime"
	"testing"
)

// TestServe: every connection gets its own handler, the connection is
// closed when the handler returns, and stop waits for handlers still
// running before returning.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	stop := Serve(ln, func(c net.Conn) {
		io.WriteString(c, "hi")
		select {
		case started <- struct{}{}:
		default: // a connection dialled while stop was starting
		}
		<-release
	})
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q, %v", buf, err)
		}
		conns = append(conns, c)
	}
	<-started
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// Once the listener refuses connections, stop is waiting for the two
	// handlers, which are blocked: it must not have returned.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if i == 10000 {
			t.Fatal("listener still accepting after stop was called")
		}
		runtime.Gosched()
	}
	select {
	case <-stopped:
		t.Fatal("stop returned while handlers were still running")
	default:
	}
	close(release)
	<-stopped
	for _, c := range conns {
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("connection not closed after its handler returned: %d, %v", n, err)
		}
	}
	stop() // idempotent
}
