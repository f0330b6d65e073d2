package dilate

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/dilate/dilatetest"
)

// TestOpenBeforeListen: an OPEN (and its DATA and CLOSE) for a name nobody
// listens on yet is kept until Listen.
func TestOpenBeforeListen(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		oa, ob := pairOptsMode(t, mode)
		p := newPair(t, oa, ob)
		c, err := p.a.Dial(ctxT(t, 10*time.Second), "later")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("sent before the listener existed")); err != nil {
			t.Fatal(err)
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		// Let the OPEN and DATA arrive and be parked.
		for range 1000 {
			p.b.mu.Lock()
			n := len(p.b.pending["later"])
			p.b.mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		l, err := p.b.Listen("later")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "sent before the listener existed" {
			t.Fatalf("got %q, %v", got, err)
		}
		if _, err := p.b.Listen("later"); !errors.Is(err, ErrListening) {
			t.Fatalf("second Listen: %v", err)
		}
		s.Close()
		c.Close()
	})
}

// TestHalfClose: CloseWrite gives the peer EOF while the other direction
// keeps working; the peer's CloseWrite then gives us EOF.
func TestHalfClose(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		yamux := mode == "yamux"
		oa, ob := pairOptsMode(t, mode)
		p := newPair(t, oa, ob)
		c1, c2 := subPair(t, p.a, p.b, "half")
		type cw interface{ CloseWrite() error }
		c1.Write([]byte("request"))
		if err := c1.(cw).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.Write([]byte("x")); err == nil {
			t.Fatal("Write after CloseWrite succeeded")
		}
		req, err := io.ReadAll(c2)
		if err != nil || string(req) != "request" {
			t.Fatalf("request %q %v", req, err)
		}
		if _, err := c2.Write([]byte("response")); err != nil {
			t.Fatalf("writing after the peer's CloseWrite: %v", err)
		}
		c2.(cw).CloseWrite()
		resp, err := io.ReadAll(c1)
		if err != nil || string(resp) != "response" {
			t.Fatalf("response %q %v", resp, err)
		}
		c1.Close()
		c2.Close()
		if !yamux {
			// Both CLOSEs seen on both sides: the ids are forgotten.
			for _, d := range []*Dilation{p.a, p.b} {
				for range 1000 {
					d.mu.Lock()
					n := len(d.subchannels)
					d.mu.Unlock()
					if n == 0 {
						break
					}
					time.Sleep(2 * time.Millisecond)
				}
				d.mu.Lock()
				n := len(d.subchannels)
				d.mu.Unlock()
				if n != 0 {
					t.Fatalf("%d subchannels still registered after both closes", n)
				}
			}
		}
	})
}

// TestCloseSemantics: after Close, our Read/Write fail with net.ErrClosed
// and the peer sees EOF.
func TestCloseSemantics(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		yamux := mode == "yamux"
		oa, ob := pairOptsMode(t, mode)
		p := newPair(t, oa, ob)
		c1, c2 := subPair(t, p.a, p.b, "close")
		c1.Write([]byte("last words"))
		c1.Close()
		if _, err := c1.Write([]byte("x")); err == nil {
			t.Fatal("Write after Close succeeded")
		}
		if _, err := c1.Read(make([]byte, 1)); err == nil {
			t.Fatal("Read after Close succeeded")
		}
		if !yamux {
			if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read after Close: %v", err)
			}
			if err := c1.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
		}
		got, err := io.ReadAll(c2)
		if err != nil || string(got) != "last words" {
			t.Fatalf("peer read %q %v", got, err)
		}
		c2.Close()
	})
}

// TestDeadlineErrors: deadlines give net.Error with Timeout() true.
func TestDeadlineErrors(t *testing.T) {
	oa, ob := pairOpts(t)
	p := newPair(t, oa, ob)
	c1, _ := subPair(t, p.a, p.b, "dl")
	c1.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c1.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read deadline: %v", err)
	}
}

func TestPeerCannotDilate(t *testing.T) {
	sa, sb := dilatetest.Pair()
	defer sa.Close()
	_, err := New(context.Background(), testKey(), sa, Options{PeerVersions: []string{"1"}})
	if !errors.Is(err, ErrPeerCannotDilate) {
		t.Fatalf("New: %v", err)
	}
	// Python still sends a please, without use-version.
	rec, err := sb.Receive(ctxT(t, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseL1(rec)
	if err != nil || r.Type != l1Please || r.UseVersion != "" {
		t.Fatalf("sent %s (%v)", rec, err)
	}
	if _, err := New(context.Background(), []byte("short"), sa, Options{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := New(context.Background(), testKey(), sa, Options{Side: "no spaces allowed"}); !errors.Is(err, ErrBadSide) {
		t.Fatalf("bad side: %v", err)
	}
}

// TestStatusEvents: the status stream shows the roles, the connection and
// how it was made.
func TestStatusEvents(t *testing.T) {
	oa, ob := pairOpts(t)
	p := newPair(t, oa, ob)
	subPair(t, p.a, p.b, "s")
	for i, want := range []Role{Follower, Leader} {
		s := waitStatus(t, p, i, func(s Status) bool { return s.Peer == PeerConnected })
		if s.Role != want || s.Via == "" || s.Generation != 0 {
			t.Fatalf("side %d status %+v", i, s)
		}
		if first := p.status(i)[0]; first.Peer != PeerNone {
			t.Fatalf("first status %+v", first)
		}
	}
	p.a.Close()
	waitStatus(t, p, 0, func(s Status) bool { return s.Peer == PeerStopped })
}

// TestReflection: a please with our own side is refused (no connection).
func TestReflection(t *testing.T) {
	sa, sb := dilatetest.Pair()
	d, err := New(context.Background(), testKey(), sa, Options{Side: "0123456789abcdef", NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sb.Send(context.Background(), marshalL1(l1Record{Type: l1Please, Side: "0123456789abcdef", UseVersion: Version}))
	for range 1000 {
		d.mu.Lock()
		f := d.fatal
		d.mu.Unlock()
		if f != nil {
			if !errors.Is(f, ErrReflection) {
				t.Fatal(f)
			}
			if d.Role() != RoleUnknown {
				t.Fatal("role chosen despite reflection")
			}
			if _, err := d.Dial(ctxT(t, 10*time.Second), "x"); !errors.Is(err, ErrReflection) {
				t.Fatalf("Dial after reflection: %v", err)
			}
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("reflection not detected")
}
