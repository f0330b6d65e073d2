package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRelayUsageLog: --relay-usage-log FILE gets one JSON line per
// finished pairing with the bytes the relay carried (both directions) and
// the mood, as the Python relay's --log-fd does.
func TestServeRelayUsageLog(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "usage.jsonl")
	r := startServe(t, "--mailbox", "", "--relay", "127.0.0.1:0", "--relay-usage-log", logPath)
	addr := strings.TrimPrefix(r.relay, "tcp:")
	if addr == "" {
		t.Fatalf("no relay URL in %q", r.out.String())
	}
	token := strings.Repeat("ab", 32)
	dial := func(side string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second)) // safety net
		if _, err := io.WriteString(c, "please relay "+token+" for side "+side+"\n"); err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	a, ar := dial("aaaaaaaaaaaaaaaa")
	b, br := dial("bbbbbbbbbbbbbbbb")
	for _, rd := range []*bufio.Reader{ar, br} {
		if line, err := rd.ReadString('\n'); err != nil || line != "ok\n" {
			t.Fatalf("relay answered %q, %v", line, err)
		}
	}
	up := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes a -> b
	down := []byte("thanks")                      // 6 bytes b -> a
	if _, err := a.Write(up); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(up))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("b read %d bytes, %v", len(got), err)
	}
	if _, err := b.Write(down); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len(down))
	if _, err := io.ReadFull(ar, got); err != nil || !bytes.Equal(got, down) {
		t.Fatalf("a read %q, %v", got, err)
	}
	a.Close()
	b.Close()
	// The record is written when the pairing ends; stop the server so the
	// file is closed, then read it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if bytes.Contains(data, []byte("\n")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := r.stop(t); code != 0 {
		t.Fatalf("wh serve exited %d: %s", code, r.errb)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("usage log has %d lines, want 1 (one per pair): %q", len(lines), data)
	}
	var rec struct {
		Started     float64  `json:"started"`
		TotalBytes  int64    `json:"total_bytes"`
		Mood        string   `json:"mood"`
		WaitingTime *float64 `json:"waiting_time"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("usage line %q: %v", lines[0], err)
	}
	if rec.TotalBytes != int64(len(up)+len(down)) || rec.Mood != "happy" || rec.Started <= 0 || rec.WaitingTime == nil {
		t.Fatalf("usage record %+v (line %q), want total_bytes %d, mood happy, started and waiting_time set", rec, lines[0], len(up)+len(down))
	}
}
