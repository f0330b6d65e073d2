package dilate

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/netx"
)

func testKey() []byte {
	k := sha256.Sum256([]byte("dilation test key"))
	return k[:]
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WH_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// pairOpts returns loopback-only options for the two sides. Side "b..." >
// "a..." so the first is the Follower and the second the Leader.
func pairOpts(t testing.TB) (Options, Options) { return pairOptsMode(t, "ged") }

// pairOptsMode is pairOpts in mode "ged", "yamux" (YamuxVersion: both
// sides offer GoVersions() and set NoCredit) or "credit" (CreditVersion:
// both offer GoVersions()).
func pairOptsMode(t testing.TB, mode string) (Options, Options) {
	a := Options{Logger: testLogger(t), ListenAddr: "127.0.0.1:0", Side: "aaaaaaaaaaaaaaaa"}
	b := Options{Logger: testLogger(t), ListenAddr: "127.0.0.1:0", Side: "bbbbbbbbbbbbbbbb"}
	switch mode {
	case "yamux":
		a.PeerVersions, b.PeerVersions = GoVersions(), GoVersions()
		a.NoCredit, b.NoCredit = true, true
	case "credit":
		a.PeerVersions, b.PeerVersions = GoVersions(), GoVersions()
	case "ged":
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	return a, b
}

// modes are the Dilation modes forModes runs.
func modes() []string { return []string{"ged", "yamux", "credit"} }

// forModes runs f once per Dilation mode.
func forModes(t *testing.T, f func(t *testing.T, mode string)) {
	for _, m := range modes() {
		t.Run(m, func(t *testing.T) { f(t, m) })
	}
}

type pair struct {
	a, b     *Dilation // a = Follower, b = Leader with pairOpts
	sa, sb   *dilatetest.Signaling
	statusMu sync.Mutex
	statuses [2][]Status
}

func (p *pair) onStatus(i int) func(Status) {
	return func(s Status) {
		p.statusMu.Lock()
		p.statuses[i] = append(p.statuses[i], s)
		p.statusMu.Unlock()
	}
}

func (p *pair) status(i int) []Status {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	return append([]Status(nil), p.statuses[i]...)
}

func newPair(t testing.TB, oa, ob Options) *pair {
	t.Helper()
	p := &pair{}
	p.sa, p.sb = dilatetest.Pair()
	if oa.OnStatus == nil {
		oa.OnStatus = p.onStatus(0)
	}
	if ob.OnStatus == nil {
		ob.OnStatus = p.onStatus(1)
	}
	ctx := context.Background()
	var err error
	if p.a, err = New(ctx, testKey(), p.sa, oa); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(ctx, testKey(), p.sb, ob); err != nil {
		p.a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
	})
	return p
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// subPair opens a subchannel from `from` and accepts it on `to`.
func subPair(t testing.TB, from, to *Dilation, name string) (net.Conn, net.Conn) {
	t.Helper()
	l, err := to.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c1, err := from.Dial(ctxT(t, 30*time.Second), name)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return c1, r.c
	case <-time.After(30 * time.Second):
		t.Fatal("accept timed out")
	}
	return nil, nil
}

// sendPattern writes n pattern bytes then CloseWrite.
func sendPattern(c net.Conn, seed uint64, n int64) error {
	if _, err := io.Copy(c, netx.NewPatternReader(seed, n)); err != nil {
		return err
	}
	return c.(interface{ CloseWrite() error }).CloseWrite()
}

// recvAll reads to EOF and returns count and hash.
func recvAll(c net.Conn) (int64, [32]byte, error) {
	w := netx.NewHashWriter()
	_, err := io.CopyBuffer(w, c, make([]byte, 64<<10))
	return w.N, w.Sum(), err
}
