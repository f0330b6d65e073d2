package tunnel_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/dilate/soak"
	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/tunnel"
)

// Issue 6's acceptance point "a 1 GiB transfer through a forward while the
// proxy cuts the link repeatedly, intact", as a test: one TCP connection
// through a forward (-L on one peer, -R on the other) over real Dilation
// whose only L2 path goes through a netx.Proxy, and the proxy cuts that
// path again and again while the data moves both ways. At the default
// (CI) size it moves 32 MiB each way with at least 5 cuts; WH_LONG=1 moves
// 1 GiB each way with at least 50 cuts (docs/soak.md records such runs).

// soakSize: 32 MiB each way in CI, 1 GiB with WH_LONG=1 (soak.Size).
func soakSize() (size int64, minCuts int, steps int64) { return soak.Size(32 << 20) }

// TestForwardSoakThroughCuts: the service behind the -R side reads exactly
// size bytes (the upload), meanwhile streams size bytes of its own (the
// download), then sends the upload's SHA-256 and closes. The client of the
// -L side uploads and downloads at once. Asserted: every byte both ways
// (length and SHA-256; the download is followed by exactly the upload's
// hash and EOF), no error seen by the client or the service, exactly one
// TCP connection reached the service and the tunnel reported it done, not
// lost, on both peers, the tunnel's byte counts match, both peers agreed
// on the mode under test, and at least minCuts cuts severed a live
// connection during the transfer.
func TestForwardSoakThroughCuts(t *testing.T) {
	for _, m := range soak.Modes() {
		t.Run(m.Name, func(t *testing.T) { testForwardSoak(t, m) })
	}
}

func testForwardSoak(t *testing.T, m soak.Mode) {
	size, minCuts, steps := soakSize()
	safety := 10 * time.Minute // safety net only
	if soak.Long() {
		safety = time.Hour
	}

	// L2 path: b listens on a fixed loopback port and advertises only the
	// proxy in front of it; a never listens.
	target := "127.0.0.1:" + strconv.Itoa(freePort(t))
	px := &netx.Proxy{Target: target}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	lk := &soak.Link{}
	oa := dilate.Options{NoListen: true, Side: "aaaaaaaaaaaaaaaa", OnStatus: lk.OnStatus(0)}
	ob := dilate.Options{ListenAddr: target, AdvertiseAddrs: []string{px.Addr()}, Side: "bbbbbbbbbbbbbbbb", OnStatus: lk.OnStatus(1)}
	m.Tweak(&oa)
	m.Tweak(&ob)
	sa, sb := dilatetest.Pair()
	key := sha256.Sum256([]byte("tunnel soak key " + m.Name))
	da, err := dilate.New(context.Background(), key[:], sa, oa)
	if err != nil {
		t.Fatal(err)
	}
	db, err := dilate.New(context.Background(), key[:], sb, ob)
	if err != nil {
		da.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { da.Close(); db.Close(); sa.Close(); sb.Close() })

	// The service.
	var accepted atomic.Int64
	upload := soak.NewCounter()
	svcErr := make(chan error, 1)
	port := startServer(t, func(c net.Conn) {
		if accepted.Add(1) != 1 {
			return // counted and asserted below
		}
		c.SetDeadline(time.Now().Add(safety))
		rd := make(chan error, 1)
		go func() {
			_, err := io.CopyN(upload, c, size)
			rd <- err
		}()
		_, werr := io.CopyBuffer(c, netx.NewPatternReader(2, size), make([]byte, 256<<10))
		rerr := <-rd
		if werr == nil && rerr == nil {
			sum := upload.H.Sum()
			_, werr = c.Write(sum[:])
		}
		svcErr <- errors.Join(werr, rerr)
	})

	// The forward, configured as wh-tunnel does it: the peer carries
	// half-close only in a flow-controlled mode.
	spec := fmt.Sprintf("soak=0:127.0.0.1:%d", port)
	pa := startPeerWith(t, da, tunnel.Options{Forwards: []tunnel.Forward{mustParse(t, tunnel.Local, spec)}, PeerHalfClose: da.FlowControlled})
	pb := startPeerWith(t, db, tunnel.Options{Forwards: []tunnel.Forward{mustParse(t, tunnel.Remote, spec)}, PeerHalfClose: db.FlowControlled})
	st, err := pa.t.WaitReady(tctx(t), "soak")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.t.WaitReady(tctx(t), "soak"); err != nil {
		t.Fatal(err)
	}
	if ma, mb := da.Mode(), db.Mode(); ma != m.Want || mb != m.Want {
		t.Fatalf("agreed modes %q / %q, want %q", ma, mb, m.Want)
	}

	// The client.
	c, err := net.Dial("tcp", st.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(safety))
	start := time.Now()
	upErr := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(c, netx.NewPatternReader(1, size), make([]byte, 256<<10))
		upErr <- err
	}()
	download := soak.NewCounter()
	var tail [32]byte
	var downErr error
	var extra int
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, downErr = io.CopyN(download, c, size); downErr != nil {
			return
		}
		if _, downErr = io.ReadFull(c, tail[:]); downErr != nil {
			return
		}
		var more [1]byte
		n, err := c.Read(more[:]) // must be EOF: nothing duplicated at the end
		extra = n
		if err != io.EOF {
			downErr = fmt.Errorf("after the upload's hash: %d more bytes, %v", n, err)
		}
	}()
	cutter := &soak.Cutter{
		Link: lk, Total: 2 * size, Steps: steps, Interval: 200 * time.Millisecond,
		Progress: func() int64 { return upload.N.Load() + download.N.Load() },
	}
	cuts := cutter.Run(done, px.Cut)
	if err := <-upErr; err != nil {
		t.Fatalf("client upload: application saw %v", err)
	}
	if downErr != nil {
		t.Fatalf("client download: application saw %v", downErr)
	}
	elapsed := time.Since(start)
	select {
	case err := <-svcErr:
		if err != nil {
			t.Fatalf("service: application saw %v", err)
		}
	case <-time.After(time.Minute): // safety net: it answered already
		t.Fatal("service never finished")
	}
	if n := download.H.N; n != size || extra != 0 {
		t.Fatalf("download: %d bytes (+%d after the hash), want %d", n, extra, size)
	}
	if download.H.Sum() != netx.PatternSum(2, size) {
		t.Fatalf("download: SHA-256 mismatch over %d bytes (lost, duplicated or reordered)", size)
	}
	if n := upload.H.N; n != size {
		t.Fatalf("upload: service received %d bytes, want %d", n, size)
	}
	if tail != netx.PatternSum(1, size) {
		t.Fatalf("upload: SHA-256 mismatch over %d bytes (lost, duplicated or reordered)", size)
	}
	c.Close()

	// The tunnel's own view: one connection each side, ended cleanly, with
	// byte counts that match what moved.
	ended := func(p *peer, doneKind, lostKind string) func() bool {
		return func() bool { return len(p.events.kinds(doneKind))+len(p.events.kinds(lostKind)) > 0 }
	}
	waitFor(t, "the forwarded connection to end on the -L side", ended(pa, tunnel.EvOutgoingDone, tunnel.EvOutgoingLost))
	waitFor(t, "the forwarded connection to end on the -R side", ended(pb, tunnel.EvIncomingDone, tunnel.EvIncomingLost))
	if n := accepted.Load(); n != 1 {
		t.Fatalf("the service accepted %d connections, want 1", n)
	}
	for _, chk := range []struct {
		p          *peer
		kind, lost string
	}{{pa, tunnel.EvOutgoingConnection, tunnel.EvOutgoingLost}, {pb, tunnel.EvIncomingConnection, tunnel.EvIncomingLost}} {
		if n := len(chk.p.events.kinds(chk.kind)); n != 1 {
			t.Fatalf("%d %s events, want 1", n, chk.kind)
		}
		if l := chk.p.events.kinds(chk.lost); len(l) != 0 {
			t.Fatalf("the tunnel lost the connection: %+v", l[0])
		}
	}
	sum := func(p *peer, kind string) (n int64) {
		for _, e := range p.events.kinds(kind) {
			n += e.Bytes
		}
		return n
	}
	if in, out := sum(pa, tunnel.EvBytesIn), sum(pa, tunnel.EvBytesOut); in != size || out != size+32 {
		t.Fatalf("-L side counted %d bytes in, %d out; want %d and %d", in, out, size, size+32)
	}
	if in, out := sum(pb, tunnel.EvBytesIn), sum(pb, tunnel.EvBytesOut); in != size+32 || out != size {
		t.Fatalf("-R side counted %d bytes in, %d out; want %d and %d", in, out, size+32, size)
	}
	gen, _ := lk.Up()
	t.Logf("%s: %d MiB each way through the forward in %v, length and SHA-256 equal both ways, no application error; %d cuts, generation %d, proxy accepted %d",
		m.Name, size>>20, elapsed.Round(time.Millisecond), cuts, gen, px.Accepted())
	if cuts < minCuts {
		t.Fatalf("only %d cuts during the transfer, want >= %d", cuts, minCuts)
	}
}
