package tunnel_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/netx"
	"github.com/wormhole-go/wormhole/relay/relaytest"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/tunnel"
)

// Every session-parameterised test also runs over real Dilation: two
// dilate.Dilations on loopback TCP (Noise, L3 records, L4 acks, L5
// subchannels), with the L1 mailbox records carried by dilatetest's
// in-memory pair.
func init() {
	extraSessionKinds = append(extraSessionKinds, sessionMaker{"dilate", dilatePair})
}

func dilatePair(t *testing.T) (tunnel.Session, tunnel.Session) {
	t.Helper()
	sa, sb := dilatetest.Pair()
	key := sha256.Sum256([]byte("tunnel test dilation key"))
	ctx := context.Background()
	a, err := dilate.New(ctx, key[:], sa, dilate.Options{ListenAddr: "127.0.0.1:0", Side: "aaaaaaaaaaaaaaaa"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dilate.New(ctx, key[:], sb, dilate.Options{ListenAddr: "127.0.0.1:0", Side: "bbbbbbbbbbbbbbbb"})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
		sa.Close()
		sb.Close()
	})
	return a, b
}

// A forwarded TCP connection survives the loss of the Dilation connection
// under it: the relay path is cut mid-transfer, Dilation reconnects, L4
// retransmits, and every byte arrives (checked by hash, both ways).
func TestSurvivesDilationReconnect(t *testing.T) {
	r := relaytest.Start(t)
	px := &netx.Proxy{Target: r.Addr()}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	relays := []string{"tcp:" + px.Addr()}
	sa, sb := dilatetest.Pair()
	key := sha256.Sum256([]byte("reconnect test key"))
	opts := func(side string) dilate.Options {
		return dilate.Options{NoListen: true, Relays: relays, Side: side, RelayDelay: time.Millisecond}
	}
	da, err := dilate.New(context.Background(), key[:], sa, opts("aaaaaaaaaaaaaaaa"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := dilate.New(context.Background(), key[:], sb, opts("bbbbbbbbbbbbbbbb"))
	if err != nil {
		da.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { da.Close(); db.Close(); sa.Close(); sb.Close() })

	const reply = 2 << 20
	srv := startHashServer(t, reply)
	mk := sessionMaker{"relay-cut", func(*testing.T) (tunnel.Session, tunnel.Session) { return da, db }}
	_, _, addr := setupPair(t, mk, srv, false)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(&pattern{}, 6<<20), h)
	buf := make([]byte, 64<<10)
	for sent := 0; ; sent += len(buf) {
		n, _ := io.ReadFull(src, buf)
		if n == 0 {
			break
		}
		if _, err := c.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if sent == 2<<20 {
			if px.Cut() == 0 {
				t.Fatal("nothing to cut")
			}
		}
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 32+reply || !bytes.Equal(got[:32], h.Sum(nil)) || sha256.Sum256(got[32:]) != hashOf(reply) {
		t.Fatalf("after reconnect: %d bytes, upload hash ok %v", len(got), len(got) >= 32 && bytes.Equal(got[:32], h.Sum(nil)))
	}
	if px.Accepted() < 4 {
		t.Fatalf("proxy accepted %d connections: no reconnect happened", px.Accepted())
	}
}

func init() {
	extraSessionKinds = append(extraSessionKinds, sessionMaker{"wormhole", wormholePair})
}

// wormholePair is the real thing between two Go peers: our mailbox
// server, a code, SPAKE2, then Dilation with its L1 records as dilate-N
// mailbox phases, L2 on loopback.
func wormholePair(t *testing.T) (tunnel.Session, tunnel.Session) {
	t.Helper()
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := wormhole.Options{
		AppID: "meejah.ca/wormhole/forward", RendezvousURL: mb.URL(),
		Dilation: &wormhole.DilationVersion{CanDilate: dilate.Versions(), Abilities: []map[string]any{{"type": "direct-tcp-v1"}}},
	}
	wa, err := wormhole.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	wb, err := wormhole.New(ctx, opts)
	if err != nil {
		wa.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		wa.Close(cctx)
		wb.Close(cctx)
	})
	code, err := wa.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := wb.SetCode(code); err != nil {
		t.Fatal(err)
	}
	type res struct {
		d   *dilate.Dilation
		err error
	}
	ch := make(chan res, 2)
	for _, w := range []*wormhole.Wormhole{wa, wb} {
		go func() {
			d, err := w.Dilate(ctx, dilate.Options{ListenAddr: "127.0.0.1:0"})
			ch <- res{d, err}
		}()
	}
	var ds []*dilate.Dilation
	for range 2 {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		ds = append(ds, r.d)
		t.Cleanup(func() { r.d.Close() })
	}
	return ds[0], ds[1]
}
