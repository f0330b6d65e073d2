package main

import (
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// TestTextPeersThroughOurServer: wh ↔ Python wormhole 0.12 and
// wh ↔ wormhole-william, text both ways, through OUR mailbox server (the
// other text tests use Debian's Python server).
func TestTextPeersThroughOurServer(t *testing.T) {
	py := interop.NeedCommand(t, "wormhole")
	ww := interop.NeedCommand(t, "wormhole-william")
	srv := mailboxtest.Start(t)
	url := srv.URL()
	ctx := testCtx(t)

	cases := []struct {
		name, code     string
		send, receive  func(code string) result
		senderConfirms string
	}{
		{"wh-to-python", "21-foo-bar",
			func(c string) result { return runWH(ctx, "", "send", "--relay-url", url, "--code", c, "--text", text) },
			func(c string) result { return runCmd(ctx, "", py, "--relay-url", url, "receive", c) },
			"text message sent"},
		{"python-to-wh", "22-foo-bar",
			func(c string) result {
				return runCmd(ctx, "", py, "--relay-url", url, "send", "--code", c, "--text", text)
			},
			func(c string) result { return runWH(ctx, "", "receive", "--relay-url", url, c) },
			"text message sent"},
		{"wh-to-william", "23-foo-bar",
			func(c string) result { return runWH(ctx, "", "send", "--relay-url", url, "--code", c, "--text", text) },
			func(c string) result { return runCmd(ctx, "", ww, "receive", "--relay-url", url, c) },
			"text message sent"},
		{"william-to-wh", "24-foo-bar",
			func(c string) result {
				return runCmd(ctx, "", ww, "send", "--relay-url", url, "--code", c, "--text", text)
			},
			func(c string) result { return runWH(ctx, "", "receive", "--relay-url", url, c) },
			""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, r := both(func() result { return tc.send(tc.code) }, func() result { return tc.receive(tc.code) })
			if s.code != 0 || r.code != 0 {
				t.Fatalf("send:\n%v\nreceive:\n%v", s, r)
			}
			if r.stdout != text+"\n" {
				t.Fatalf("received %q, want %q", r.stdout, text+"\n")
			}
			if tc.senderConfirms != "" && !strings.Contains(s.stderr, tc.senderConfirms) {
				t.Fatalf("sender did not confirm %q:\n%v", tc.senderConfirms, s)
			}
		})
	}
}
