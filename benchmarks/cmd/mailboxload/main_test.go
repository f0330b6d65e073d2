package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// TestMain lets the test binary act as the server child of -compare
// (startChild re-executes os.Executable()).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(serveChild(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

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
	// the library client (mailboxtest.Pair) instead of the raw one
	if code := run(context.Background(), []string{"-url", mb.URL(), "-n", "6", "-c", "2", "-lib"}, &out, &errb); code != 0 {
		t.Fatalf("-lib exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "pairings 6 ok, 0 failed") {
		t.Fatalf("-lib output %q", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"-inprocess", "-db", t.TempDir() + "/x.sqlite", "-n", "5"}, &out, &errb); code != 0 {
		t.Fatalf("inprocess exit %d: %s %s", code, out.String(), errb.String())
	}
	if code := run(context.Background(), []string{"-n", "5"}, &out, &errb); code != 2 {
		t.Fatalf("no url: exit %d", code)
	}
}

// TestIdleURL holds idle clients against an in-process server and checks
// the server sees every one of them.
func TestIdleURL(t *testing.T) {
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore())
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-url", mb.URL(), "-idle", "200", "-hold", "10ms"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), " 200 ") {
		t.Fatalf("output %q", out.String())
	}
}

// TestCompare runs the side-by-side mode at a small scale: our server as
// a child process and the Python server, idle clients and pairings on
// both. The memory bound is generous (the target is 8 KiB per idle client;
// a few hundred clients measure noisily).
func TestCompare(t *testing.T) {
	interop.NeedPython(t)
	interop.NeedCommand(t, "twistd3")
	js := filepath.Join(t.TempDir(), "out.json")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-compare", "-idle", "1000", "-pyidle", "50", "-n", "40", "-c", "4",
		"-pyn", "4", "-pyc", "2", "-hold", "100ms", "-json", js}, &out, &errb)
	t.Logf("\n%s%s", out.String(), errb.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Idle     []idleResult `json:"idle"`
		Pairings []pairResult `json:"pairings"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Idle) != 2 || len(res.Pairings) != 2 {
		t.Fatalf("results %+v", res)
	}
	g := res.Idle[0]
	if !g.Go || g.Clients != 1000 || g.After.Conns != 1000 || g.Lost != 0 {
		t.Fatalf("go idle result %+v", g)
	}
	if g.HeapStackPerConn <= 0 || g.HeapStackPerConn > 32<<10 {
		t.Fatalf("server heap+stack per idle client %.0f B, bound 32 KiB", g.HeapStackPerConn)
	}
	if res.Idle[1].Clients != 50 || res.Idle[1].RSSPerConn == 0 {
		t.Fatalf("python idle result %+v", res.Idle[1])
	}
	for _, p := range res.Pairings {
		if p.Failed != 0 || p.OK == 0 || p.P50ms <= 0 || p.P99ms < p.P50ms {
			t.Fatalf("pairings %+v", p)
		}
	}
}
