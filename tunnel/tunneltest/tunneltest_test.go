package tunneltest

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func TestPairSemantics(t *testing.T) {
	a, b := Pair()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	// Dial before the peer listens: queued, as a Dilation OPEN is.
	c, err := a.Dial(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Listen("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Listen("x"); err == nil {
		t.Fatal("second Listen accepted")
	}
	d, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// Half-close: d reads EOF after the data, and can still write back.
	c.Write([]byte("hello"))
	c.(*Conn).CloseWrite()
	got, err := io.ReadAll(d)
	if err != nil || string(got) != "hello" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after CloseWrite")
	}
	d.Write([]byte("back"))
	d.Close()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "back" {
		t.Fatalf("%q %v", got, err)
	}
	// Deadlines.
	c2, _ := a.Dial(ctx, "x")
	d2, _ := l.Accept()
	d2.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := d2.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read deadline: %v", err)
	}
	// Writes block when the buffer is full, until the deadline.
	c2.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := c2.Write(make([]byte, BufferSize+10))
	if n != BufferSize || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write %d %v", n, err)
	}
	// Closing a session fails the peer's reads.
	a.Close()
	if _, err := io.ReadAll(d2); err == nil {
		t.Fatal("read after peer session closed")
	}
	if _, err := a.Dial(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("accept after close")
	}
}
