package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wormhole-go/wormhole/internal/interop"
)

const text = "hello from the other side: <&> \u00e9\u00e8 \U0001F600"

// TestTextWithPython: wh send → Python wormhole receive, and Python wormhole
// send → wh receive, through Debian's Python mailbox server.
func TestTextWithPython(t *testing.T) {
	wormholePy := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)

	t.Run("wh-to-python", func(t *testing.T) {
		ws, pr := both(
			func() result {
				return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "7-foo-bar", "--text", text)
			},
			func() result { return runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "receive", "7-foo-bar") },
		)
		if ws.code != 0 || pr.code != 0 {
			t.Fatalf("wh send:\n%v\npython receive:\n%v", ws, pr)
		}
		if pr.stdout != text+"\n" {
			t.Fatalf("python received %q", pr.stdout)
		}
		for _, want := range []string{"Sending text message (", "Wormhole code is: 7-foo-bar", "On the other computer, please run:\n\nwormhole receive 7-foo-bar\n\n", "text message sent"} {
			if !strings.Contains(ws.stderr, want) {
				t.Errorf("wh send stderr lacks %q:\n%s", want, ws.stderr)
			}
		}
	})

	t.Run("python-to-wh", func(t *testing.T) {
		ps, wr := both(
			func() result {
				return runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "send", "--code", "8-foo-bar", "--text", text)
			},
			func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "8-foo-bar") },
		)
		if ps.code != 0 || wr.code != 0 {
			t.Fatalf("python send:\n%v\nwh receive:\n%v", ps, wr)
		}
		if wr.stdout != text+"\n" {
			t.Fatalf("wh received %q", wr.stdout)
		}
		if !strings.Contains(ps.stderr, "text message sent") {
			t.Fatalf("python send did not confirm:\n%v", ps)
		}
	})

	t.Run("allocated-code-and-verify", func(t *testing.T) {
		// wh allocates the code; Python reads it from our stderr.
		pr, ws := allocatedExchange(t, ctx, mb.URL(), func(code string) result {
			return runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "receive", "--verify", code)
		})
		if ws.code != 0 || pr.code != 0 || pr.stdout != "hi\n" {
			t.Fatalf("wh send:\n%v\npython receive:\n%v", ws, pr)
		}
		// both sides show the same verifier
		wv := between(ws.stdout, "Verifier ", ". ok?")
		pv := between(pr.stderr, "Verifier ", ".")
		if len(wv) != 64 || wv != pv {
			t.Fatalf("verifiers differ: wh %q python %q\n%v\n%v", wv, pv, ws, pr)
		}
	})
}

// allocatedExchange runs `wh send --verify --text hi` (answering "yes"),
// waits for the code on its stderr and starts the receiver with it.
func allocatedExchange(t *testing.T, ctx context.Context, url string, recv func(code string) result) (result, result) {
	t.Helper()
	var out syncBuffer
	errb := &syncBuffer{}
	pr, pw, _ := os.Pipe()
	defer pr.Close()
	e := &env{stdin: pr, stdout: &out, stderr: errb, getenv: safeGetenv, stdinFd: -1, slowNotice: time.Second}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"send", "--relay-url", url, "--verify", "--text", "hi"}) }()
	var code string
	for i := 0; i < 600 && code == ""; i++ { // bounded poll, ~60 s
		if c := between(errb.String(), "Wormhole code is: ", "\n"); c != "" {
			code = c
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code == "" {
		pw.Close()
		t.Fatalf("no code printed:\n%s", errb.String())
	}
	rc := make(chan result, 1)
	go func() { rc <- recv(code) }()
	for i := 0; i < 600 && !strings.Contains(out.String(), "ok? (yes/no)"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(pw, "yes")
	pw.Close()
	exit := <-done
	return <-rc, result{out.String(), errb.String(), exit}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, ok := strings.Cut(rest, b)
	if !ok {
		return ""
	}
	return v
}

// TestTextWithWormholeWilliam: wh ↔ wormhole-william, text both ways.
func TestTextWithWormholeWilliam(t *testing.T) {
	ww := interop.NeedCommand(t, "wormhole-william")
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)

	t.Run("wh-to-william", func(t *testing.T) {
		ws, wr := both(
			func() result {
				return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "11-foo-bar", "--text", text)
			},
			func() result { return runCmd(ctx, "", ww, "receive", "--relay-url", mb.URL(), "11-foo-bar") },
		)
		if ws.code != 0 || wr.code != 0 || wr.stdout != text+"\n" {
			t.Fatalf("wh send:\n%v\nwormhole-william receive:\n%v", ws, wr)
		}
	})
	t.Run("william-to-wh", func(t *testing.T) {
		wsend, wr := both(
			func() result {
				return runCmd(ctx, "", ww, "send", "--relay-url", mb.URL(), "--code", "12-foo-bar", "--text", text)
			},
			func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "12-foo-bar") },
		)
		if wsend.code != 0 || wr.code != 0 || wr.stdout != text+"\n" {
			t.Fatalf("wormhole-william send:\n%v\nwh receive:\n%v", wsend, wr)
		}
	})
}

func TestWhToWhAndStdin(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	timing := filepath.Join(t.TempDir(), "timing.json")
	ws, wr := both(
		func() result {
			return runWH(ctx, "line one\nline two\n", "--dump-timing", timing, "send", "--relay-url", mb.URL(), "--code", "21-foo-bar", "--text", "-")
		},
		func() result { return runWH(ctx, "21-foo-bar\n", "receive", "--relay-url", mb.URL()) },
	)
	if ws.code != 0 || wr.code != 0 {
		t.Fatalf("send:\n%v\nreceive:\n%v", ws, wr)
	}
	// Python sends stdin verbatim (trailing newline included) and prints it
	// with one more newline.
	if !strings.HasSuffix(wr.stdout, "line one\nline two\n\n") || !strings.Contains(wr.stdout, "Enter receive wormhole code: ") {
		t.Fatalf("received %q", wr.stdout)
	}
	if !strings.Contains(wr.stderr, "(note: you can use <Tab> to complete words)") {
		t.Errorf("no Tab note:\n%s", wr.stderr)
	}
	if !strings.Contains(ws.stderr, "Reading text message from stdin..") || !strings.Contains(ws.stderr, "Timing data written to "+timing) {
		t.Errorf("send stderr:\n%s", ws.stderr)
	}
	b, err := os.ReadFile(timing)
	if err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Name  string         `json:"name"`
		Start float64        `json:"start"`
		Stop  *float64       `json:"stop"`
		Det   map[string]any `json:"details"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatalf("timing file: %v\n%s", err, b)
	}
	names := map[string]bool{}
	for _, ev := range events {
		names[ev.Name] = true
		if ev.Start <= 0 {
			t.Errorf("event %q has no start", ev.Name)
		}
	}
	for _, n := range []string{"command dispatch", "open", "exit"} {
		if !names[n] {
			t.Errorf("timing lacks %q: %s", n, b)
		}
	}

	// "Text to send: " prompt when neither --text nor a file is given
	ws, wr = both(
		func() result {
			return runWH(ctx, "typed text\n", "send", "--relay-url", mb.URL(), "--code", "22-foo-bar")
		},
		func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "22-foo-bar") },
	)
	if ws.code != 0 || wr.code != 0 || wr.stdout != "typed text\n" || !strings.Contains(ws.stdout, "Text to send: ") {
		t.Fatalf("prompted send:\n%v\nreceive:\n%v", ws, wr)
	}
}

// TestWrongCode: both sides fail with exit 3 and Python's explanation; also
// against a Python receiver.
func TestWrongCode(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	want := "ERROR:  Key confirmation failed. Either you or your correspondent\ntyped the code wrong"
	ws, wr := both(
		func() result {
			return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "31-foo-bar", "--text", "x")
		},
		func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "31-foo-baz") },
	)
	for _, r := range []result{ws, wr} {
		if r.code != exitWrongCode || !strings.Contains(r.stderr, want) {
			t.Errorf("want exit 3 and %q, got %v", want, r)
		}
	}
	if wr.stdout != "" {
		t.Errorf("wrong-code receiver printed %q", wr.stdout)
	}

	wormholePy := interop.NeedCommand(t, "wormhole")
	ws, pr := both(
		func() result {
			return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "32-foo-bar", "--text", "x")
		},
		func() result { return runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "receive", "32-foo-baz") },
	)
	if ws.code != exitWrongCode || !strings.Contains(ws.stderr, want) {
		t.Errorf("wh send vs python: %v", ws)
	}
	if pr.code != 1 || !strings.Contains(pr.stderr, want) {
		t.Errorf("python receive: %v", pr)
	}

	// a malformed code is a usage error, explained
	r := runWH(ctx, "", "receive", "--relay-url", mb.URL(), "abc-def")
	if r.code != exitUsage || !strings.Contains(r.stderr, "ERROR:  The key you entered contains spaces") || !strings.Contains(r.stderr, "Nameplate 'abc' must be numeric") {
		t.Errorf("malformed code: %v", r)
	}
}

// TestRejections: a file offer from Python is declined (no answer to
// "ok? (Y/n)": stdin is empty) and both sides exit 1;
// and a sender that rejects the verifier makes the receiver fail.
func TestRejections(t *testing.T) {
	wormholePy := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	relay := interop.StartPythonRelay(t)
	ctx := testCtx(t)
	f := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(f, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, wr := both(
		func() result {
			return runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "send", "--no-listen", "--code", "41-foo-bar", f)
		},
		func() result {
			return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "--no-listen", "41-foo-bar")
		},
	)
	if wr.code != exitFailed || !strings.Contains(wr.stderr, "TransferError: transfer rejected") {
		t.Errorf("wh receive of a file: %v", wr)
	}
	if ps.code != 1 || !strings.Contains(ps.stderr, "TransferError: remote error, transfer abandoned: transfer rejected") {
		t.Errorf("python send of a file: %v", ps)
	}

	// wh send --verify, answered "no": the receiver sees the error
	ws, pr := both(
		func() result {
			return runWH(ctx, "no\n", "send", "--relay-url", mb.URL(), "--verify", "--code", "42-foo-bar", "--text", "x")
		},
		func() result { return runCmd(ctx, "", wormholePy, "--relay-url", mb.URL(), "receive", "42-foo-bar") },
	)
	if ws.code != exitFailed || !strings.Contains(ws.stderr, "TransferError: sender rejected verification check, abandoned transfer") {
		t.Errorf("wh send rejecting: %v", ws)
	}
	if pr.code != 1 || !strings.Contains(pr.stderr, "TransferError: sender rejected verification check") || pr.stdout != "" {
		t.Errorf("python receive after rejection: %v", pr)
	}
}

// TestServerProblems: unreachable server (exit 4), a server that signals an
// error (WelcomeError, exit 4), a server advertising a newer CLI version.
func TestServerProblems(t *testing.T) {
	ctx := testCtx(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/v1", interop.FreePort(t))
	r := runWH(ctx, "", "send", "--relay-url", url, "--text", "x")
	if r.code != exitServer || !strings.Contains(r.stderr, "ERROR: We had a problem connecting to the relay server:\n(relay URL was "+url+")") {
		t.Errorf("unreachable: %v", r)
	}

	mb := interop.StartPythonMailbox(t, "--signal-error=go away, we are closed")
	r = runWH(ctx, "", "receive", "--relay-url", mb.URL(), "1-a-b")
	if r.code != exitServer || !strings.Contains(r.stderr, "ERROR:  The relay server told us to signal an error") || !strings.Contains(r.stderr, "go away, we are closed") {
		t.Errorf("signal-error: %v", r)
	}

	mb = interop.StartPythonMailbox(t, "--advertise-version=99.0.0")
	ws, wr := both(
		func() result {
			return runWH(ctx, "", "send", "--relay-url", mb.URL(), "--code", "5-a-b", "--text", "x")
		},
		func() result { return runWH(ctx, "", "receive", "--relay-url", mb.URL(), "5-a-b") },
	)
	for _, r := range []result{ws, wr} {
		if r.code != 0 || !strings.Contains(r.stderr, "Warning: errors may occur unless both sides are running the same version\nServer claims 99.0.0 is current, but ours is "+cliVersion) {
			t.Errorf("advertise-version: %v", r)
		}
	}
}

// TestMOTD: Debian's Python mailbox server (0.4.1) has no MOTD option, so a
// loopback WebSocket proxy adds "motd" to its welcome message.
func TestMOTD(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	ctx := testCtx(t)
	proxy := httptest.NewServer(motdProxy(t, mb.URL(), "Scheduled maintenance\nat noon"))
	defer proxy.Close()
	url := "ws" + strings.TrimPrefix(proxy.URL, "http") + "/v1"
	ws, wr := both(
		func() result { return runWH(ctx, "", "send", "--relay-url", url, "--code", "6-a-b", "--text", "x") },
		func() result { return runWH(ctx, "", "receive", "--relay-url", url, "6-a-b") },
	)
	want := "Server (at " + url + ") says:\n Scheduled maintenance\n at noon\n"
	for _, r := range []result{ws, wr} {
		if r.code != 0 || !strings.Contains(r.stderr, want) || strings.Contains(r.stdout, "maintenance") {
			t.Errorf("want MOTD %q on stderr: %v", want, r)
		}
	}
}

// motdProxy forwards WebSocket messages both ways, adding motd to welcome.
func motdProxy(t *testing.T, upstream, motd string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer down.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		up, _, err := websocket.Dial(ctx, upstream, nil)
		if err != nil {
			t.Logf("proxy dial: %v", err)
			return
		}
		defer up.CloseNow()
		go func() {
			defer cancel()
			for {
				typ, b, err := down.Read(ctx)
				if err != nil || up.Write(ctx, typ, b) != nil {
					return
				}
			}
		}()
		for {
			typ, b, err := up.Read(ctx)
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil && m["type"] == "welcome" {
				if wel, ok := m["welcome"].(map[string]any); ok {
					wel["motd"] = motd
					b, _ = json.Marshal(m)
				}
			}
			if down.Write(ctx, typ, b) != nil {
				return
			}
		}
	})
}
