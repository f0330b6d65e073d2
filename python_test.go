package wormhole

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// These tests talk to Debian's Python magic-wormhole 0.12 library
// (testdata/pypeer.py, Twisted reactor) through Debian's Python mailbox
// server.

const pyAppID = "github.com/wormhole-go/interop"

func liveOpts(url string) Options {
	return Options{AppID: pyAppID, RendezvousURL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 500 * time.Millisecond}
}

func TestPythonExchange(t *testing.T) {
	for _, goAllocates := range []bool{true, false} {
		name := map[bool]string{true: "GoAllocates", false: "PythonAllocates"}[goAllocates]
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			mbx := interop.StartPythonMailbox(t)
			py := startPyPeer(t, mbx.URL(), pyAppID)
			pyVersions := map[string]any{"py": "yes", "n": 7.0, "list": []any{"a", 1.0}}
			py.must(ctx, map[string]any{"cmd": "create", "w": "p", "versions": pyVersions})
			o := liveOpts(mbx.URL())
			o.AppVersions = map[string]any{"go": "yes", "nested": map[string]any{"k": true}}
			w := mustNew(t, ctx, o)

			var code string
			if goAllocates {
				var err error
				if code, err = w.AllocateCode(ctx, 3); err != nil {
					t.Fatal(err)
				}
				py.must(ctx, map[string]any{"cmd": "set_code", "w": "p", "code": code})
			} else {
				code = py.must(ctx, map[string]any{"cmd": "allocate", "w": "p", "length": 2})["code"].(string)
				if err := w.SetCode(code); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("code %s", code)

			// Python sends 3, Go sends 3, concurrently, then both read.
			const n = 3
			for i := range n {
				py.must(ctx, map[string]any{"cmd": "send", "w": "p", "hex": hex.EncodeToString(fmt.Appendf(nil, "py %d", i))})
			}
			for i := range n {
				if err := w.Send(ctx, fmt.Appendf(nil, "go %d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range n {
				got, err := w.Receive(ctx)
				if err != nil || string(got) != fmt.Sprintf("py %d", i) {
					t.Fatalf("go received %q %v", got, err)
				}
				m := py.must(ctx, map[string]any{"cmd": "get_message", "w": "p"})
				if got := string(hexField(t, m)); got != fmt.Sprintf("go %d", i) {
					t.Fatalf("python received %q", got)
				}
			}
			// A large message both ways (records are whole).
			big := bytes.Repeat([]byte("0123456789abcdef"), 16*1024)
			if err := w.Send(ctx, big); err != nil {
				t.Fatal(err)
			}
			if m := py.must(ctx, map[string]any{"cmd": "get_message", "w": "p"}); !bytes.Equal(hexField(t, m), big) {
				t.Fatal("python got a different big message")
			}

			// Versions both ways.
			gotPy, err := w.PeerVersions(ctx)
			if err != nil || !reflect.DeepEqual(gotPy, pyVersions) {
				t.Fatalf("go sees python versions %v %v", gotPy, err)
			}
			pv := py.must(ctx, map[string]any{"cmd": "get_versions", "w": "p"})["versions"]
			if !reflect.DeepEqual(pv, o.AppVersions) {
				t.Fatalf("python sees go versions %v", pv)
			}
			// Key, verifier and derive_key equality.
			key, _ := w.UnverifiedKey(ctx)
			if pk := hexField(t, py.must(ctx, map[string]any{"cmd": "get_unverified_key", "w": "p"})); !bytes.Equal(pk, key) {
				t.Fatal("unverified keys differ")
			}
			v, _ := w.Verifier(ctx)
			if pvf := hexField(t, py.must(ctx, map[string]any{"cmd": "get_verifier", "w": "p"})); !bytes.Equal(pvf, v) {
				t.Fatalf("verifiers differ: go %x python %x", v, pvf)
			}
			for _, purpose := range []string{"some/purpose", "cafe\u0301 (NFC)", "dilation-v1"} {
				for _, l := range []int{32, 16, 64} {
					gk, err := w.DeriveKey(purpose, l)
					if err != nil {
						t.Fatal(err)
					}
					pk := hexField(t, py.must(ctx, map[string]any{"cmd": "derive_key", "w": "p", "purpose": purpose, "length": l}))
					if !bytes.Equal(gk, pk) {
						t.Fatalf("derive_key(%q, %d) differs", purpose, l)
					}
				}
			}
			// Close: both happy.
			pyClose := py.start(map[string]any{"cmd": "close", "w": "p"})
			if err := w.Close(ctx); err != nil {
				t.Fatalf("go close: %v", err)
			}
			if m, err := pyClose(ctx); err != nil || m["result"] != "happy" {
				t.Fatalf("python close: %v %v", m, err)
			}
		})
	}
}

func TestPythonWrongCode(t *testing.T) {
	ctx := testCtx(t)
	mbx := interop.StartPythonMailbox(t)
	py := startPyPeer(t, mbx.URL(), pyAppID)
	py.must(ctx, map[string]any{"cmd": "create", "w": "p"})
	w := mustNew(t, ctx, liveOpts(mbx.URL()))
	if err := w.SetCode("42-right-code"); err != nil {
		t.Fatal(err)
	}
	py.must(ctx, map[string]any{"cmd": "set_code", "w": "p", "code": "42-wrong-code"})
	py.must(ctx, map[string]any{"cmd": "send", "w": "p", "hex": hex.EncodeToString([]byte("secret"))})
	pyMsg := py.start(map[string]any{"cmd": "get_message", "w": "p"})
	pyVer := py.start(map[string]any{"cmd": "get_verifier", "w": "p"})
	goSend := make(chan error, 1)
	go func() { goSend <- w.Send(ctx, []byte("secret too")) }()

	if got, err := w.Receive(ctx); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("go receive: %q %v", got, err)
	}
	if err := w.Close(ctx); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("go close: %v", err)
	}
	if err := <-goSend; !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("go send: %v", err)
	}
	for what, f := range map[string]func(context.Context) (map[string]any, error){"get_message": pyMsg, "get_verifier": pyVer} {
		m, err := f(ctx)
		if err == nil || m["error"] != "WrongPasswordError" {
			t.Fatalf("python %s: %v %v", what, m, err)
		}
	}
	if m, err := py.call(ctx, map[string]any{"cmd": "close", "w": "p"}); err == nil || m["error"] != "WrongPasswordError" {
		t.Fatalf("python close: %v %v", m, err)
	}
}

// TestPythonMailboxRestart restarts the Python mailbox server in the middle
// of an exchange; both the Go wormhole and Python's reconnect and finish.
func TestPythonMailboxRestart(t *testing.T) {
	ctx := testCtx(t)
	mbx := interop.StartPythonMailbox(t)
	py := startPyPeer(t, mbx.URL(), pyAppID)
	py.must(ctx, map[string]any{"cmd": "create", "w": "p"})
	w := mustNew(t, ctx, liveOpts(mbx.URL()))
	code, err := w.AllocateCode(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	py.must(ctx, map[string]any{"cmd": "set_code", "w": "p", "code": code})
	exchange := func(i int) {
		t.Helper()
		py.must(ctx, map[string]any{"cmd": "send", "w": "p", "hex": hex.EncodeToString(fmt.Appendf(nil, "py %d", i))})
		if err := w.Send(ctx, fmt.Appendf(nil, "go %d", i)); err != nil {
			t.Fatal(err)
		}
		if got, err := w.Receive(ctx); err != nil || string(got) != fmt.Sprintf("py %d", i) {
			t.Fatalf("go received %q %v", got, err)
		}
		if got := hexField(t, py.must(ctx, map[string]any{"cmd": "get_message", "w": "p"})); string(got) != fmt.Sprintf("go %d", i) {
			t.Fatalf("python received %q", got)
		}
	}
	exchange(0)
	mbx.Restart()
	exchange(1)
	// Restart with messages in flight: queue both ways, then restart.
	py.must(ctx, map[string]any{"cmd": "send", "w": "p", "hex": hex.EncodeToString([]byte("py in flight"))})
	if err := w.Send(ctx, []byte("go in flight")); err != nil {
		t.Fatal(err)
	}
	mbx.Restart()
	if got, err := w.Receive(ctx); err != nil || string(got) != "py in flight" {
		t.Fatalf("go received %q %v", got, err)
	}
	if got := hexField(t, py.must(ctx, map[string]any{"cmd": "get_message", "w": "p"})); string(got) != "go in flight" {
		t.Fatalf("python received %q", got)
	}
	exchange(2)
	pyClose := py.start(map[string]any{"cmd": "close", "w": "p"})
	if err := w.Close(ctx); err != nil {
		t.Fatalf("go close: %v", err)
	}
	if m, err := pyClose(ctx); err != nil || m["result"] != "happy" {
		t.Fatalf("python close: %v %v", m, err)
	}
}

// TestPythonInputHelper: Python allocates; Go types the code with the
// input helper, completing the nameplate from the Python server's list and
// the words from the word list.
func TestPythonInputHelper(t *testing.T) {
	ctx := testCtx(t)
	mbx := interop.StartPythonMailbox(t)
	py := startPyPeer(t, mbx.URL(), pyAppID)
	py.must(ctx, map[string]any{"cmd": "create", "w": "p"})
	code := py.must(ctx, map[string]any{"cmd": "allocate", "w": "p", "length": 2})["code"].(string)
	np, words, _ := strings.Cut(code, "-")
	w1, w2, _ := strings.Cut(words, "-")

	w := mustNew(t, ctx, liveOpts(mbx.URL()))
	in, err := w.InputCode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.RefreshNameplates(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := in.NameplateCompletions(""); err != nil || !slices.Contains(c, np+"-") {
		t.Fatalf("nameplate completions %q %v", c, err)
	}
	if err := in.ChooseNameplate(np); err != nil {
		t.Fatal(err)
	}
	if err := in.WhenWordlistAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := in.WordCompletions(w1[:2]); err != nil || !slices.Contains(c, w1+"-") {
		t.Fatalf("word completions %q %v", c, err)
	}
	if c, err := in.WordCompletions(w1 + "-" + w2[:2]); err != nil || !slices.Contains(c, w1+"-"+w2) {
		t.Fatalf("word completions %q %v", c, err)
	}
	if err := in.ChooseWords(w1 + "-" + w2); err != nil {
		t.Fatal(err)
	}
	py.must(ctx, map[string]any{"cmd": "send", "w": "p", "hex": hex.EncodeToString([]byte("typed"))})
	if got, err := w.Receive(ctx); err != nil || string(got) != "typed" {
		t.Fatalf("received %q %v", got, err)
	}
	pyClose := py.start(map[string]any{"cmd": "close", "w": "p"})
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := pyClose(ctx); err != nil || m["result"] != "happy" {
		t.Fatalf("python close %v %v", m, err)
	}
}
