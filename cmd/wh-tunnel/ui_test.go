package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/tunnel"
)

func TestUIJSON(t *testing.T) {
	var out, errb bytes.Buffer
	u := newUI(&out, &errb, true, false)
	u.event(tunnel.Event{Kind: tunnel.EvListening, Name: "web", Port: 8080})
	u.event(tunnel.Event{Kind: tunnel.EvBytesOut, ID: 1, Bytes: 5})
	u.printf("human text goes to stderr\n")
	u.stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout %q", out.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["kind"] == nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	if !strings.Contains(errb.String(), "human text") {
		t.Fatal("printf not on stderr")
	}
}

func TestUILiveStatus(t *testing.T) {
	fl, _ := tunnel.ParseForward(tunnel.Local, "web=8080:localhost:80")
	fr, _ := tunnel.ParseForward(tunnel.Remote, "0:localhost:22")
	tun, err := tunnel.New(tunnel.Options{Forwards: []tunnel.Forward{fl, fr}})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{tun: tun}
	s.onStatus(dilate.Status{Peer: dilate.PeerConnected, Via: "relay tcp:127.0.0.1:4001"})
	var out, errb bytes.Buffer
	u := newUI(&out, &errb, false, true)
	u.attach(s)
	u.mu.Lock()
	u.drawLocked(false)
	u.mu.Unlock()
	u.printf("an event line\n") // clears the status block first
	u.stop()
	got := errb.String()
	for _, want := range []string{
		"peer: connected via relay tcp:127.0.0.1:4001",
		"-L 127.0.0.1:8080 -> peer localhost:80",
		"-R peer :(any) -> localhost:22",
		"waiting", "conns 0 open/0", "Ctrl-C to stop",
		"\x1b[4A\x1b[J", // status (4 lines) erased before the event line
		"an event line",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if out.Len() != 0 {
		t.Fatalf("stdout used: %q", out.String())
	}
}

func TestDescribe(t *testing.T) {
	if describe(tunnel.Event{Kind: tunnel.EvBytesIn}) != "" {
		t.Fatal("bytes events are not lines")
	}
	if l := describe(tunnel.Event{Kind: tunnel.EvPeerConnection, State: "reconnecting", Reason: "EOF"}); !strings.Contains(l, "reconnecting") || !strings.Contains(l, "EOF") {
		t.Fatal(l)
	}
}
