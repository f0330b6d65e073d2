package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

func TestRun(t *testing.T) {
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-url", mb.URL(), "-n", "20", "-c", "4"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "pairings 20 ok, 0 failed") {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"-inprocess", "-db", t.TempDir() + "/x.sqlite", "-n", "5"}, &out, &errb); code != 0 {
		t.Fatalf("inprocess exit %d: %s %s", code, out.String(), errb.String())
	}
	if code := run(context.Background(), []string{"-n", "5"}, &out, &errb); code != 2 {
		t.Fatalf("no url: exit %d", code)
	}
}
