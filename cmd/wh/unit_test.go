package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/internal/interop"
)

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		v    bool
		code string
	}{
		{[]string{"7-a-b", "--verify"}, []string{"7-a-b"}, true, ""},
		{[]string{"-v", "x", "--code", "1-a", "y"}, []string{"x", "y"}, true, "1-a"},
		{[]string{"--code=2-b", "--", "-v"}, []string{"-v"}, false, "2-b"},
		{nil, nil, false, ""},
	} {
		fs := newFlagSet("t")
		var v bool
		var code string
		fs.BoolVar(&v, "v", false, "")
		fs.BoolVar(&v, "verify", false, "")
		fs.StringVar(&code, "code", "", "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || !reflect.DeepEqual(pos, tc.pos) || v != tc.v || code != tc.code {
			t.Errorf("%v: pos %v v %v code %q err %v", tc.args, pos, v, code, err)
		}
	}
}

func TestShowWelcome(t *testing.T) {
	var b bytes.Buffer
	showWelcome(&b, wormhole.Welcome{MOTD: "one\ntwo\n", CurrentCLIVersion: "0.0.1"}, "ws://x/v1", "0.1.0")
	if got := b.String(); got != "Server (at ws://x/v1) says:\n one\n two\n" {
		t.Fatalf("got %q", got)
	}
	b.Reset()
	showWelcome(&b, wormhole.Welcome{CurrentCLIVersion: "0.2.0"}, "ws://x/v1", "0.1.0")
	if got := b.String(); got != "Warning: errors may occur unless both sides are running the same version\nServer claims 0.2.0 is current, but ours is 0.1.0\n" {
		t.Fatalf("got %q", got)
	}
}

func TestEnvAndGlobals(t *testing.T) {
	g := defaultGlobals(func(k string) string {
		return map[string]string{"WORMHOLE_RELAY_URL": "ws://env/v1", "WORMHOLE_TRANSIT_HELPER": "tcp:h:1"}[k]
	})
	if g.relayURL != "ws://env/v1" || g.transitHelper != "tcp:h:1" || g.appIDOrDefault() != defaultAppID {
		t.Fatalf("%+v", g)
	}
	fs := newFlagSet("t")
	g.register(fs)
	if err := fs.Parse([]string{"--relay-url", "ws://flag/v1", "--appid", "x"}); err != nil {
		t.Fatal(err)
	}
	if g.relayURL != "ws://flag/v1" || g.appIDOrDefault() != "x" {
		t.Fatalf("%+v", g)
	}
}

func TestHelpAndVersion(t *testing.T) {
	ctx := testCtx(t)
	r := runWH(ctx, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wh "+cliVersion) {
		t.Fatalf("--version: %v", r)
	}
	r = runWH(ctx, "", "--help")
	for _, want := range []string{"Examples:", "wh send --text", "receive (rx, recv, recieve)", "Exit codes:", "WORMHOLE_RELAY_URL"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q: %v", want, r)
		}
	}
	for _, args := range [][]string{{"send", "--help"}, {"help", "send"}, {"tx", "-h"}} {
		r = runWH(ctx, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: wh send") || !strings.Contains(r.stdout, "--code-length") {
			t.Errorf("%v: %v", args, r)
		}
	}
	r = runWH(ctx, "", "serve", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: wh serve") {
		t.Errorf("serve --help: %v", r)
	}
	r = runWH(ctx, "", "receive", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "<Tab> completes") {
		t.Errorf("receive --help: %v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: wh"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"send", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"send", "--code-length", "x", "--text", "a"}, `"x" is not a number`},
		{[]string{"send", "-0", "--code", "1-a", "--text", "a"}, "-0 and --code"},
		{[]string{"send", "--text", "a", "b", "c"}, "at most one"},
		{[]string{"receive", "1-a-b", "2-c-d"}, "pass either no code or just one code; you passed 2: 1-a-b, 2-c-d"},
		{[]string{"send", "/nonexistent/file"}, ""},
	} {
		r := runWH(ctx, "", tc.args...)
		wantCode := exitUsage
		if tc.want == "" { // missing file is a transfer error, as in Python
			wantCode = exitFailed
			tc.want = "TransferError: Cannot send: no file/directory named '/nonexistent/file'"
		}
		if r.code != wantCode || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: want exit %d and %q, got %v", tc.args, wantCode, tc.want, r)
		}
	}
}

func TestReportMessages(t *testing.T) {
	// Our re-filled docstrings must equal Python's textwrap.fill output.
	py := interop.NeedPython(t, "wormhole")
	out, err := exec.Command(py, "-c", `
import textwrap
from wormhole import errors
for e in (errors.WrongPasswordError, errors.KeyFormatError, errors.WelcomeError, errors.ServerConnectionError, errors.UnsendableFileError):
    print(textwrap.fill("ERROR: " + textwrap.dedent(e.__doc__)))
    print("--")
`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, d := range []string{docWrongPassword, docKeyFormat, docWelcome, docServerConn, docUnsendable} {
		fmt.Fprintf(&got, "%s\n--\n", fill("ERROR: "+d, 70))
	}
	if got.String() != string(out) {
		t.Fatalf("messages differ from Python's:\n%s\nwant\n%s", got.String(), out)
	}
}

func TestNaturalSizeAndVersions(t *testing.T) {
	for n, want := range map[int64]string{0: "0 Bytes", 1: "1 Byte", 999: "999 Bytes", 1000: "1.0 kB", 1234567: "1.2 MB"} {
		if got := naturalSize(n); got != want {
			t.Errorf("naturalSize(%d) = %q, want %q", n, got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"0.12.0", "0.1.0", true}, {"0.1.0", "0.1.0", false}, {"0.0.9", "0.1.0", false}, {"1.0", "0.9.9", true}, {"x", "0.1.0", false}, {"9.0", "0.1.0+dev", false}} {
		if got := newerVersion(tc.a, tc.b); got != tc.want {
			t.Errorf("newerVersion(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
