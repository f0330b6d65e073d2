package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/transit"
)

// TestSpeakSecond: through a relay, wh's receiver writes nothing after the
// relay handshake until the sender's handshake has arrived (see
// transitorder.go), then completes the negotiation and carries records.
func TestSpeakSecond(t *testing.T) {
	key := bytes.Repeat([]byte{7}, transit.KeySize)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	tr, err := transit.New(transit.Options{
		Key:        key,
		RelayHints: []hints.Hint{hints.DirectTCPV1{Hostname: "127.0.0.1", Port: port}},
		NoListen:   true,
		Dial:       speakSecondDialer(key),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // safety net
	defer cancel()
	type res struct {
		c   *transit.Conn
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := tr.Connect(ctx)
		done <- res{c, err}
	}()

	// a fake relay + sender on the other end
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !bytes.HasPrefix([]byte(line), []byte("please relay ")) {
		t.Fatalf("relay handshake %q: %v", line, err)
	}
	if _, err := conn.Write([]byte("ok\n")); err != nil {
		t.Fatal(err)
	}
	// The receiver must stay silent now. (A wrong implementation writes
	// its handshake at once; 300 ms is ample on loopback for that to show.)
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("receiver spoke before the sender: n=%d err=%v", n, err)
	}
	conn.SetReadDeadline(time.Time{})
	// now the sender's handshake, in two pieces
	shs := transit.SenderHandshake(key)
	conn.Write(shs[:10])
	conn.Write(shs[10:])
	rhs := transit.ReceiverHandshake(key)
	got := make([]byte, len(rhs))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, rhs) {
		t.Fatalf("receiver handshake %q: %v", got, err)
	}
	conn.Write([]byte("go\n"))
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	// records both ways through the wrapper
	sender := transit.NewConn(&bufConn{Conn: conn, r: br}, transit.SenderRecordKey(key), transit.ReceiverRecordKey(key))
	if err := sender.SendRecord([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if rec, err := r.c.ReceiveRecord(); err != nil || string(rec) != "data" {
		t.Fatalf("record %q: %v", rec, err)
	}
	if err := r.c.SendRecord([]byte("ack")); err != nil {
		t.Fatal(err)
	}
	if rec, err := sender.ReceiveRecord(); err != nil || string(rec) != "ack" {
		t.Fatalf("record %q: %v", rec, err)
	}
}

// bufConn reads through a bufio.Reader that may hold bytes already.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
