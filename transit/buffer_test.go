package transit

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"testing/iotest"

	"github.com/wormhole-go/wormhole/internal/secretbox"
)

// readerConn is a net.Conn whose reads come from r (only Read is used by
// the record reader).
type readerConn struct {
	net.Conn
	r     io.Reader
	reads int
}

func (c *readerConn) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

// stream builds n records of random sizes (some empty, some larger than
// the read buffer) and returns the wire bytes and the plaintext.
func testStream(t *testing.T, seed uint64, n, maxSize int) (wire, plain []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	sk := SenderRecordKey(vecKey)
	for i := range n {
		var size int
		switch r.IntN(6) {
		case 0:
			size = 0
		case 1:
			size = maxSize - r.IntN(3)
		default:
			size = r.IntN(40 << 10)
		}
		pt := make([]byte, size)
		for j := range pt {
			pt[j] = byte(r.Uint32())
		}
		wire = append(wire, frame(sk, uint64(i), pt)...)
		plain = append(plain, pt...)
	}
	return wire, plain
}

// Read through the buffer gives back exactly the plaintext whatever the
// underlying reads and the caller's buffer sizes (iotest.TestReader
// mixes small and large reads), records larger than the buffer included.
func TestBufferedRead(t *testing.T) {
	const maxSize = readBufferSize + 5000
	wire, plain := testStream(t, 1, 40, maxSize)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":   func(r io.Reader) io.Reader { return r },
		"half":    iotest.HalfReader,
		"onebyte": iotest.OneByteReader,
		"dataerr": iotest.DataErrReader,
	} {
		t.Run(name, func(t *testing.T) {
			nc := &readerConn{r: wrap(bytes.NewReader(wire))}
			c := newConn(nc, ReceiverRecordKey(vecKey), SenderRecordKey(vecKey), 0, maxSize)
			if err := iotest.TestReader(c, plain); err != nil {
				t.Fatal(err)
			}
			if len(c.rr.buf) > maxSize+4+nonceSize+secretbox.Overhead {
				t.Fatalf("read buffer grew to %d bytes", len(c.rr.buf))
			}
		})
	}
}

// One read system call brings in many small records.
func TestBufferedReadFewReads(t *testing.T) {
	sk := SenderRecordKey(vecKey)
	var wire []byte
	const records = 200
	for i := range records {
		wire = append(wire, frame(sk, uint64(i), make([]byte, 1000))...)
	}
	nc := &readerConn{r: bytes.NewReader(wire)}
	c := NewConn(nc, ReceiverRecordKey(vecKey), sk)
	for i := range records {
		if p, err := c.ReceiveRecord(); err != nil || len(p) != 1000 {
			t.Fatalf("record %d: %d bytes, %v", i, len(p), err)
		}
	}
	if _, err := c.ReceiveRecord(); err != io.EOF {
		t.Fatalf("after the last record: %v", err)
	}
	// 200 records of 1044 bytes = 209 KiB: one read fills the buffer, one
	// more sees EOF.
	if nc.reads > 3 {
		t.Fatalf("%d reads for %d records", nc.reads, records)
	}
}

// A record that fits in the caller's slice is decrypted straight into it:
// nothing is left pending and the pending buffer is never allocated.
func TestReadIntoCallerBuffer(t *testing.T) {
	sk := SenderRecordKey(vecKey)
	wire := append(frame(sk, 0, []byte("first record")), frame(sk, 1, []byte("second"))...)
	c := NewConn(&readerConn{r: bytes.NewReader(wire)}, ReceiverRecordKey(vecKey), sk)
	p := make([]byte, 100)
	if n, err := c.Read(p); err != nil || string(p[:n]) != "first record" {
		t.Fatalf("%q %v", p[:n], err)
	}
	if len(c.pending) != 0 || c.pendingBuf != nil {
		t.Fatal("record went through the pending buffer")
	}
	if n, err := c.Read(p[:3]); err != nil || string(p[:n]) != "sec" {
		t.Fatalf("%q %v", p[:n], err)
	}
	if n, err := c.Read(p); err != nil || string(p[:n]) != "ond" {
		t.Fatalf("%q %v", p[:n], err)
	}
	if _, err := c.Read(p); err != io.EOF {
		t.Fatal(err)
	}
}

// Errors keep their meaning through the buffer: a cut inside the length
// or the body is io.ErrUnexpectedEOF, a cut between records is io.EOF,
// and the connection's own read error is returned as is.
func TestBufferedReadErrors(t *testing.T) {
	sk := SenderRecordKey(vecKey)
	rec := frame(sk, 0, []byte("data"))
	for _, cut := range []int{1, 3, 4, 5, len(rec) - 1} {
		c := NewConn(&readerConn{r: bytes.NewReader(rec[:cut])}, ReceiverRecordKey(vecKey), sk)
		if _, err := c.ReceiveRecord(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	boom := errors.New("boom")
	c := NewConn(&readerConn{r: io.MultiReader(bytes.NewReader(rec), iotest.ErrReader(boom))}, ReceiverRecordKey(vecKey), sk)
	if p, err := c.ReceiveRecord(); err != nil || string(p) != "data" {
		t.Fatalf("%q %v", p, err)
	}
	if _, err := c.ReceiveRecord(); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	// A reader that returns nothing forever is given up on.
	c = NewConn(&readerConn{r: zeroReader{}}, ReceiverRecordKey(vecKey), sk)
	if _, err := c.ReceiveRecord(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatal(err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }
