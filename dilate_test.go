package wormhole

import (
	"errors"
	"io"
	"testing"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

func dilationOpts(url string) Options {
	o := liveOpts(url)
	ab := []map[string]any{}
	for _, a := range dilate.Abilities() {
		m := map[string]any{}
		for k, v := range a {
			m[k] = v
		}
		ab = append(ab, m)
	}
	o.Dilation = &DilationVersion{CanDilate: dilate.Versions(), Abilities: ab}
	return o
}

// TestGoGoDilate dilates two Go wormholes through our mailbox server (L1
// records as dilate-N phases) and moves bytes over a subchannel.
func TestGoGoDilate(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	a := mustNew(t, ctx, dilationOpts(srv.URL()))
	b := mustNew(t, ctx, dilationOpts(srv.URL()))
	code, err := a.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetCode(code); err != nil {
		t.Fatal(err)
	}
	raw, err := a.PeerWormholeVersions(ctx)
	if err != nil || string(raw["can-dilate"]) != `["`+dilate.Version+`"]` {
		t.Fatalf("peer versions %s %v", raw["can-dilate"], err)
	}
	dopts := dilate.Options{ListenAddr: "127.0.0.1:0", NoListen: false}
	type res struct {
		d   *dilate.Dilation
		err error
	}
	rb := make(chan res, 1)
	go func() { d, err := b.Dilate(ctx, dopts); rb <- res{d, err} }()
	da, err := a.Dilate(ctx, dopts)
	if err != nil {
		t.Fatal(err)
	}
	r := <-rb
	if r.err != nil {
		t.Fatal(r.err)
	}
	db := r.d
	if again, err := a.Dilate(ctx, dopts); err != nil || again != da {
		t.Fatal("second Dilate did not return the same Dilation")
	}
	l, err := db.Listen("echo")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := da.Dial(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("through a dilated wormhole")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo %q %v", got, err)
	}
	_ = c.Close()
	// Close stops the Dilations too (goleak checks the goroutines).
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDilateRefused(t *testing.T) {
	ctx := testCtx(t)
	srv := mailboxtest.Start(t)
	t.Run("not enabled", func(t *testing.T) {
		w := mustNew(t, ctx, liveOpts(srv.URL()))
		if _, err := w.Dilate(ctx, dilate.Options{}); !errors.Is(err, ErrDilationDisabled) {
			t.Fatal(err)
		}
	})
	t.Run("go peer without dilation", func(t *testing.T) {
		a := mustNew(t, ctx, dilationOpts(srv.URL()))
		b := mustNew(t, ctx, liveOpts(srv.URL()))
		code, err := a.AllocateCode(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetCode(code); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Dilate(ctx, dilate.Options{NoListen: true}); !errors.Is(err, dilate.ErrPeerCannotDilate) {
			t.Fatalf("dilate: %v", err)
		}
		if _, err := b.Verifier(ctx); err != nil { // b is happy too before closing
			t.Fatal(err)
		}
		for _, w := range []*Wormhole{a, b} {
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("python 0.12 peer", func(t *testing.T) {
		// Debian's Python library (0.12) does not advertise "ged".
		mbx := interop.StartPythonMailbox(t)
		py := startPyPeer(t, mbx.URL(), pyAppID)
		py.must(ctx, map[string]any{"cmd": "create", "w": "p"})
		w := mustNew(t, ctx, dilationOpts(mbx.URL()))
		code, err := w.AllocateCode(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		py.must(ctx, map[string]any{"cmd": "set_code", "w": "p", "code": code})
		if _, err := w.Dilate(ctx, dilate.Options{NoListen: true}); !errors.Is(err, dilate.ErrPeerCannotDilate) {
			t.Fatalf("dilate: %v", err)
		}
		// Python ignores our version's dilation keys and our "please"
		// (dilate-0) and the wormhole still works.
		pv := py.must(ctx, map[string]any{"cmd": "get_versions", "w": "p"})
		if v, ok := pv["versions"].(map[string]any); !ok || len(v) != 0 {
			t.Fatalf("python versions %v", pv)
		}
		pyClose := py.start(map[string]any{"cmd": "close", "w": "p"})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if m, err := pyClose(ctx); err != nil || m["result"] != "happy" {
			t.Fatalf("python close %v %v", m, err)
		}
	})
}
