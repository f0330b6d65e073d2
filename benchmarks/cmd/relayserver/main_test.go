package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRun starts the relay, pairs two clients through it, relays bytes
// both ways, and stops it by closing stdin.
func TestRun(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), nil, inR, outW, io.Discard) }()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		t.Fatalf("first line %q %v", line, err)
	}
	go io.Copy(io.Discard, outR)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "READY "))
	token := strings.Repeat("ab", 32)
	var cs [2]net.Conn
	for i, side := range []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "please relay %s for side %s\n", token, side)
		cs[i] = c
	}
	for _, c := range cs {
		ok := make([]byte, 3)
		if _, err := io.ReadFull(c, ok); err != nil || string(ok) != "ok\n" {
			t.Fatalf("relay said %q %v", ok, err)
		}
	}
	for i, msg := range []string{"from a", "from b"} {
		cs[i].Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(cs[1-i], got); err != nil || string(got) != msg {
			t.Fatalf("got %q %v", got, err)
		}
	}
	inW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("relayserver did not stop when stdin closed")
	}
}
