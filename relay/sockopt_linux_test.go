//go:build linux

package relay

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serverNotSentLowat reads TCP_NOTSENT_LOWAT from the server's side of every
// connection it holds.
func serverNotSentLowat(t *testing.T, s *Server) []int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for c := range s.conns {
		out = append(out, notSentLowat(t, c.nc))
	}
	return out
}

func notSentLowat(t *testing.T, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestNotSentLowatOnAcceptedConns(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		opt, want int
	}{
		{0, DefaultNotSentLowat},
		{64 << 10, 64 << 10},
		{-1, -1}, // left alone: as on any accepted socket (see acceptedDefault)
	} {
		t.Run(fmt.Sprint(tc.opt), func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(Options{NotSentLowat: tc.opt})
			done := make(chan struct{})
			go func() { defer close(done); s.Serve(l) }()
			defer func() { s.Close(); <-done }()
			var cs []net.Conn
			for _, side := range []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "please relay %s for side %s\n", tok, side)
				cs = append(cs, c)
			}
			for _, c := range cs {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				ok := make([]byte, 3)
				if _, err := io.ReadFull(c, ok); err != nil || string(ok) != "ok\n" {
					t.Fatalf("relay said %q, %v", ok, err)
				}
			}
			got := serverNotSentLowat(t, s)
			if tc.opt < 0 {
				tc.want = acceptedDefault(t)
			}
			if len(got) != 2 || got[0] != tc.want || got[1] != tc.want {
				t.Fatalf("TCP_NOTSENT_LOWAT on the relay's sockets = %v, want %d", got, tc.want)
			}
			// Relaying still works with the option set, both ways and in bulk.
			payload := make([]byte, 4<<20)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			errc := make(chan error, 1)
			go func() { _, err := cs[0].Write(payload); errc <- err }()
			cs[1].SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, len(payload))
			if _, err := io.ReadFull(cs[1], buf); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if string(buf) != string(payload) {
				t.Fatal("payload corrupted through the relay")
			}
		})
	}
}

// acceptedDefault is TCP_NOTSENT_LOWAT as read on a socket accepted by a
// plain listener (unset: the kernel reports its sysctl default).
func acceptedDefault(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	v := notSentLowat(t, a)
	if v == DefaultNotSentLowat {
		t.Skipf("this host's default TCP_NOTSENT_LOWAT equals DefaultNotSentLowat (%d): the test cannot tell them apart", v)
	}
	return v
}
