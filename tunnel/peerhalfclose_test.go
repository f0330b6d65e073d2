package tunnel_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/tunnel"
)

// With a peer that cannot half-close (fowl: its CLOSE means the connection
// is gone), a CLOSE from the peer closes our local connection at once
// instead of leaving it half-open; with half-close (the default), a reply
// written after the client's EOF still arrives.
func TestPeerHalfCloseOption(t *testing.T) {
	for _, halfClose := range []bool{true, false} {
		t.Run(fmt.Sprintf("halfclose=%v", halfClose), func(t *testing.T) {
			srvErr := make(chan error, 1)
			srv := startServer(t, func(c net.Conn) {
				if _, err := io.ReadAll(c); err != nil { // until the client's EOF
					srvErr <- err
					return
				}
				_, err := c.Write([]byte("late reply"))
				srvErr <- err
			})
			sa, sb := memPair(t)
			spec := fmt.Sprintf("svc=0:127.0.0.1:%d", srv)
			peerHC := func() bool { return halfClose }
			pa := startPeerWith(t, sa, tunnel.Options{Forwards: []tunnel.Forward{mustParse(t, tunnel.Local, spec)}, PeerHalfClose: peerHC})
			pb := startPeerWith(t, sb, tunnel.Options{Forwards: []tunnel.Forward{mustParse(t, tunnel.Remote, spec)}, PeerHalfClose: peerHC})
			st, err := pa.t.WaitReady(tctx(t), "svc")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pb.t.WaitReady(tctx(t), "svc"); err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", st.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second)) // safety net
			if _, err := c.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if halfClose {
				if err != nil || string(got) != "late reply" {
					t.Fatalf("half-close: got %q, %v; want the late reply", got, err)
				}
				if err := <-srvErr; err != nil {
					t.Fatalf("server: %v", err)
				}
				return
			}
			if string(got) == "late reply" {
				t.Fatal("no half-close: the late reply still arrived, so the connection stayed half-open")
			}
		})
	}
}
