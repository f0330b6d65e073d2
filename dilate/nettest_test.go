package dilate

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"
)

func TestNettestConn(t *testing.T) { forModes(t, testNettestConn) }

func testNettestConn(t *testing.T, mode string) {
	for _, dir := range []string{"FollowerDials", "LeaderDials"} {
		t.Run(dir, func(t *testing.T) {
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				oa, ob := pairOptsMode(t, mode)
				// Small buffers so WriteTimeout fills them quickly.
				for _, o := range []*Options{&oa, &ob} {
					o.MaxSubchannelBuffer = 64 << 10
					o.MaxUnacked = 256 << 10
				}
				p := newPair(t, oa, ob)
				from, to := p.a, p.b
				if dir == "LeaderDials" {
					from, to = p.b, p.a
				}
				c1, c2 := subPair(t, from, to, "nettest")
				stop := func() {
					c1.Close()
					c2.Close()
					p.a.Close()
					p.b.Close()
				}
				return c1, c2, stop, nil
			})
		})
	}
}
