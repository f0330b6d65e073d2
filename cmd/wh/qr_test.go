package main

import (
	"net/url"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wormhole-go/wormhole/internal/interop"
)

func TestWormholeURI(t *testing.T) {
	for _, c := range []struct{ code, relay, want string }{
		{"4-hurricane-equipment", defaultRelayURL, "wormhole-transfer:4-hurricane-equipment"},
		{"4-hurricane-equipment", "", "wormhole-transfer:4-hurricane-equipment"},
		{"7-a b?#%\u00e9", defaultRelayURL, "wormhole-transfer:7-a%20b%3F%23%25%C3%A9"},
		{"4-x-y", "ws://127.0.0.1:4000/v1", "wormhole-transfer:4-x-y?rendezvous=ws%3A%2F%2F127.0.0.1%3A4000"},
	} {
		if got := wormholeURI(c.code, c.relay); got != c.want {
			t.Errorf("wormholeURI(%q, %q) = %q, want %q", c.code, c.relay, got, c.want)
		}
		// a URL parser gets the code back
		u, err := url.Parse(c.want)
		if err != nil || u.Scheme != "wormhole-transfer" {
			t.Fatalf("parse %q: %v", c.want, err)
		}
		if code, err := url.PathUnescape(u.Opaque); err != nil || code != c.code {
			t.Errorf("%q: code %q (%v), want %q", c.want, code, err, c.code)
		}
	}
}

// parseQR turns renderQR's text back into a module bitmap (true = dark).
func parseQR(t *testing.T, s string, n int) [][]bool {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != (n+1)/2 {
		t.Fatalf("%d lines for %d module rows", len(lines), n)
	}
	bm := make([][]bool, 0, len(lines)*2)
	for _, l := range lines {
		r := []rune(l)
		if len(r) != n {
			t.Fatalf("line of %d cells, want %d", len(r), n)
		}
		top, bot := make([]bool, n), make([]bool, n)
		for x, c := range r {
			switch c {
			case ' ':
				top[x], bot[x] = true, true
			case '▄':
				top[x] = true
			case '▀':
				bot[x] = true
			case '█':
			default:
				t.Fatalf("unexpected %q", c)
			}
		}
		bm = append(bm, top, bot)
	}
	return bm[:n]
}

// TestRenderQR: the drawing encodes exactly go-qrcode's bitmap of the URI
// (go-qrcode cannot decode, so the bitmap is the reference).
func TestRenderQR(t *testing.T) {
	for _, content := range []string{"wormhole-transfer:4-hurricane-equipment", wormholeURI("123-guitarist-revenge-trouble", "ws://127.0.0.1:4000/v1")} {
		s, err := renderQR(content)
		if err != nil {
			t.Fatal(err)
		}
		q, err := qrcode.New(content, qrLevel)
		if err != nil {
			t.Fatal(err)
		}
		want := q.Bitmap()
		got := parseQR(t, s, len(want))
		for y := range want {
			for x := range want[y] {
				if got[y][x] != want[y][x] {
					t.Fatalf("%q: module (%d,%d) differs", content, x, y)
				}
			}
		}
		// the quiet zone is light: first line all full blocks
		if strings.Trim(strings.SplitN(s, "\n", 2)[0], "█") != "" {
			t.Fatalf("first line is not quiet zone")
		}
	}
}

// TestSendQR: `wh send --qr` prints the code's wormhole-transfer URI and
// its QR code on stderr, and the transfer still works.
func TestSendQR(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	ws, wr := both(
		func() result {
			return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--qr", "--code", "86-foo-bar", "--text", "qr")
		},
		func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "86-foo-bar") },
	)
	if ws.code != 0 || wr.code != 0 || wr.stdout != "qr\n" {
		t.Fatalf("send %v\nreceive %v", ws, wr)
	}
	uri := wormholeURI("86-foo-bar", mb.URL())
	want, _ := renderQR(uri)
	if !strings.Contains(ws.stderr, "\n"+want+uri+"\n") {
		t.Fatalf("no QR code of %s in:\n%s", uri, ws.stderr)
	}
}
