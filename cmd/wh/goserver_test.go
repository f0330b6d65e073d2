package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// TestWithGoServer: wh ↔ wh (text and a file) through our own `wh serve`
// (mailbox and transit relay, in-process), whose --motd and
// --advertise-version the clients show on stderr.
func TestWithGoServer(t *testing.T) {
	ctx := testCtx(t)
	mport, rport := interop.FreePort(t), interop.FreePort(t)
	sctx, stop := context.WithCancel(context.Background())
	var sout, serr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runServe(sctx, []string{
			"--mailbox", fmt.Sprintf("127.0.0.1:%d", mport), "--relay", fmt.Sprintf("127.0.0.1:%d", rport),
			"--motd", "Hello from wh serve", "--advertise-version", "99.1",
		}, &sout, &serr)
	}()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // safety net
			t.Error("wh serve did not stop")
		}
	}()
	for _, p := range []int{mport, rport} {
		if err := interop.WaitTCP(fmt.Sprintf("127.0.0.1:%d", p), 30*time.Second); err != nil {
			t.Fatalf("%v\n%s%s", err, sout.String(), serr.String())
		}
	}
	url := fmt.Sprintf("ws://127.0.0.1:%d/v1", mport)
	relay := fmt.Sprintf("tcp:127.0.0.1:%d", rport)

	ws, wr := both(
		func() result {
			return runWH(ctx, "", "send", "--relay-url", url, "--code", "91-foo-bar", "--text", "hi")
		},
		func() result { return runWH(ctx, "", "receive", "--relay-url", url, "91-foo-bar") },
	)
	for _, r := range []result{ws, wr} {
		if r.code != 0 || !strings.Contains(r.stderr, "Server (at "+url+") says:\n Hello from wh serve\n") ||
			!strings.Contains(r.stderr, "Server claims 99.1 is current, but ours is "+cliVersion) {
			t.Errorf("text via wh serve: %v", r)
		}
	}
	if wr.stdout != "hi\n" {
		t.Fatalf("received %q", wr.stdout)
	}

	dst := chdirTemp(t)
	p := filepath.Join(t.TempDir(), "blob")
	data := bytes.Repeat([]byte("0123456789abcdef"), 40_000)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	wh := func(cmd string, args ...string) []string {
		return append([]string{cmd, "--relay-url", url, "--transit-helper", relay, "--no-listen", "--hide-progress"}, args...)
	}
	ws, wr = both(
		func() result { return runWH(ctx, "", wh("send", "--code", "92-foo-bar", p)...) },
		func() result { return runWH(ctx, "", wh("receive", "--accept-file", "92-foo-bar")...) },
	)
	if ws.code != 0 || wr.code != 0 {
		t.Fatalf("file via wh serve:\nsend %v\nreceive %v", ws, wr)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "blob")); !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, want %d", len(got), len(data))
	}
}
