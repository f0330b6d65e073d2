package transit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
)

var vecKey, _ = hex.DecodeString("de3c0dbc93378f17f3f6e253e1f2e43513ee43e78918f4abfd908dd092121a72")

// A record's exact bytes: length, 24-byte big-endian counter nonce,
// secretbox(tag || ciphertext).
func TestRecordWireFormat(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sk := SenderRecordKey(vecKey)
	c := NewConn(a, sk, ReceiverRecordKey(vecKey))
	go func() {
		c.SendRecord([]byte("abc"))
		c.SendRecord(nil)
	}()
	for i := uint64(0); i < 2; i++ {
		var hdr [4]byte
		io.ReadFull(b, hdr[:])
		n := binary.BigEndian.Uint32(hdr[:])
		body := make([]byte, n)
		io.ReadFull(b, body)
		var nonce [24]byte
		binary.BigEndian.PutUint64(nonce[16:], i)
		if !bytes.Equal(body[:24], nonce[:]) {
			t.Fatalf("record %d nonce %x", i, body[:24])
		}
		pt, ok := secretbox.Open(nil, body[24:], &nonce, &sk)
		want := []string{"abc", ""}[i]
		if !ok || string(pt) != want || int(n) != 24+16+len(want) {
			t.Fatalf("record %d: %q %v len %d", i, pt, ok, n)
		}
	}
}

func pipePair(t *testing.T) (*Conn, *Conn, net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	s := NewConn(a, SenderRecordKey(vecKey), ReceiverRecordKey(vecKey))
	r := NewConn(b, ReceiverRecordKey(vecKey), SenderRecordKey(vecKey))
	return s, r, a, b
}

// frame builds a raw record with an arbitrary nonce.
func frame(key [32]byte, nonce uint64, pt []byte) []byte {
	var n [24]byte
	binary.BigEndian.PutUint64(n[16:], nonce)
	body := secretbox.Seal(n[:], pt, &n, &key)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(out, body...)
}

func TestRecordErrors(t *testing.T) {
	sk := SenderRecordKey(vecKey)
	recv := func(stream []byte, max int) ([]byte, error) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() { a.Write(stream); a.Close() }()
		c := newConn(b, ReceiverRecordKey(vecKey), sk, 0, max)
		var last []byte
		for {
			p, err := c.ReceiveRecord()
			if err != nil {
				return last, err
			}
			last = p
		}
	}
	good := append(frame(sk, 0, []byte("one")), frame(sk, 1, []byte("two"))...)
	if p, err := recv(good, 0); err != io.EOF || string(p) != "two" {
		t.Fatalf("good stream: %q %v", p, err)
	}
	// Skipped nonce.
	if _, err := recv(append(frame(sk, 0, nil), frame(sk, 2, nil)...), 0); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("skipped nonce: %v", err)
	}
	// Replayed nonce.
	if _, err := recv(append(frame(sk, 0, nil), frame(sk, 0, nil)...), 0); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("replayed nonce: %v", err)
	}
	// Tampered ciphertext.
	bad := frame(sk, 0, []byte("hello"))
	bad[len(bad)-1] ^= 1
	if _, err := recv(bad, 0); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered: %v", err)
	}
	// Wrong key (the receiver key instead of the sender key).
	if _, err := recv(frame(ReceiverRecordKey(vecKey), 0, []byte("x")), 0); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	// Too short for nonce + tag.
	if _, err := recv([]byte{0, 0, 0, 39}, 0); !errors.Is(err, ErrRecordTooShort) {
		t.Fatalf("short: %v", err)
	}
	// Huge length: refused before allocating.
	if _, err := recv([]byte{0xff, 0xff, 0xff, 0xff}, 1024); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("huge: %v", err)
	}
	if _, err := recv(frame(sk, 0, make([]byte, 1025)), 1024); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("over limit: %v", err)
	}
	// Truncated in the middle of a record.
	if _, err := recv(good[:len(good)-3], 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestReadWriteStream(t *testing.T) {
	s, r, _, _ := pipePair(t)
	s.recordSize = 5
	go func() { s.Write([]byte("hello, world")); s.Close() }()
	// Record boundaries are invisible to Read.
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("%q %v", got, err)
	}
	// 12 bytes in 5-byte records = 3 records.
	if r.rr.nonce != 3 {
		t.Fatalf("records %d", r.rr.nonce)
	}
	// After a bad record the connection stays broken.
	s2, r2, a, _ := pipePair(t)
	_ = s2
	go a.Write(frame(SenderRecordKey(vecKey), 5, nil))
	if _, err := r2.ReceiveRecord(); !errors.Is(err, ErrBadNonce) {
		t.Fatal(err)
	}
	if _, err := r2.Read(make([]byte, 1)); !errors.Is(err, ErrBadNonce) {
		t.Fatal(err)
	}
}

func TestReceiveRecordAfterPartialRead(t *testing.T) {
	s, r, _, _ := pipePair(t)
	go func() { s.SendRecord([]byte("abcdef")); s.SendRecord([]byte("gh")) }()
	buf := make([]byte, 2)
	if n, _ := r.Read(buf); string(buf[:n]) != "ab" {
		t.Fatalf("%q", buf[:n])
	}
	if p, _ := r.ReceiveRecord(); string(p) != "cdef" {
		t.Fatalf("%q", p)
	}
	if p, _ := r.ReceiveRecord(); string(p) != "gh" {
		t.Fatalf("%q", p)
	}
}

// rw is a fake connection: reads come from in, writes go to out.
type rw struct {
	in  io.Reader
	out bytes.Buffer
}

func (x *rw) Read(p []byte) (int, error)  { return x.in.Read(p) }
func (x *rw) Write(p []byte) (int, error) { return x.out.Write(p) }

func TestNegotiation(t *testing.T) {
	relayHS, _ := RelayHandshake(vecKey, "0123456789abcdef")
	sender := newNegotiation(vecKey, true, nil)
	recv := newNegotiation(vecKey, false, nil)
	relayed := newNegotiation(vecKey, false, relayHS)
	yes := func() bool { return true }
	no := func() bool { return false }
	for _, tc := range []struct {
		name  string
		n     negotiation
		in    string
		claim func() bool
		want  error
		out   string
	}{
		{"sender wins", sender, string(ReceiverHandshake(vecKey)), yes, nil, string(SenderHandshake(vecKey)) + "go\n"},
		{"sender loses", sender, string(ReceiverHandshake(vecKey)), no, ErrNotChosen, string(SenderHandshake(vecKey)) + "nevermind\n"},
		{"receiver go", recv, string(SenderHandshake(vecKey)) + "go\n", yes, nil, string(ReceiverHandshake(vecKey))},
		{"receiver nevermind", recv, string(SenderHandshake(vecKey)) + "nevermind\n", yes, ErrNevermind, string(ReceiverHandshake(vecKey))},
		{"receiver junk", recv, string(SenderHandshake(vecKey)) + "xx", yes, ErrBadHandshake, string(ReceiverHandshake(vecKey))},
		{"receiver gx", recv, string(SenderHandshake(vecKey)) + "gx\n", yes, ErrBadHandshake, string(ReceiverHandshake(vecKey))},
		{"wrong peer handshake", recv, string(ReceiverHandshake(vecKey)), yes, ErrBadHandshake, string(ReceiverHandshake(vecKey))},
		{"eof", recv, "transit sender", yes, ErrBadHandshake, string(ReceiverHandshake(vecKey))},
		{"relay ok", relayed, "ok\n" + string(SenderHandshake(vecKey)) + "go\n", yes, nil, string(relayHS) + string(ReceiverHandshake(vecKey))},
		// The receiver must not send its handshake before the relay's ok.
		{"relay impatient", relayed, "impatient\n", yes, ErrBadHandshake, string(relayHS)},
		{"relay bad", relayed, "bad handshake\n", yes, ErrBadHandshake, string(relayHS)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &rw{in: bytes.NewReader([]byte(tc.in))}
			err := tc.n.run(x, tc.claim)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if x.out.String() != tc.out {
				t.Fatalf("wrote %q\nwant  %q", x.out.String(), tc.out)
			}
		})
	}
}

// The negotiation hangs up on the first wrong byte, without waiting for
// the rest of the expected handshake.
func TestNegotiationFailsFast(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		io.ReadFull(a, make([]byte, len(ReceiverHandshake(vecKey))))
		a.Write([]byte("X")) // then silence
	}()
	b.SetDeadline(time.Now().Add(10 * time.Second)) // safety net only
	err := newNegotiation(vecKey, false, nil).run(b, func() bool { return true })
	if !errors.Is(err, ErrBadHandshake) {
		t.Fatal(err)
	}
}

func FuzzNegotiation(f *testing.F) {
	relayHS, _ := RelayHandshake(vecKey, "0123456789abcdef")
	f.Add([]byte(string(SenderHandshake(vecKey))+"go\n"), uint8(0))
	f.Add([]byte("ok\n"+string(SenderHandshake(vecKey))+"go\n"), uint8(2))
	f.Add([]byte(string(ReceiverHandshake(vecKey))), uint8(1))
	f.Add([]byte("impatient\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		var n negotiation
		switch mode % 3 {
		case 0:
			n = newNegotiation(vecKey, false, nil)
		case 1:
			n = newNegotiation(vecKey, true, nil)
		case 2:
			n = newNegotiation(vecKey, false, relayHS)
		}
		x := &rw{in: bytes.NewReader(in)}
		err := n.run(x, func() bool { return true })
		var want []byte
		if n.relayHS != nil {
			want = append(want, relayOK...)
		}
		want = append(want, n.theirs...)
		if !n.sender {
			want = append(want, goMsg...)
		}
		if (err == nil) != bytes.HasPrefix(in, want) {
			t.Fatalf("input %q: err %v", in, err)
		}
	})
}

func FuzzReceiveRecord(f *testing.F) {
	sk := SenderRecordKey(vecKey)
	f.Add(append(frame(sk, 0, []byte("one")), frame(sk, 1, []byte("two"))...))
	f.Add(frame(sk, 1, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 0, 40})
	f.Fuzz(func(t *testing.T, stream []byte) {
		rr := recordReader{r: iotest.OneByteReader(bytes.NewReader(stream)), key: sk, maxPlain: 1 << 16}
		if len(stream)%2 == 0 {
			rr.r = bytes.NewReader(stream)
		}
		for i := 0; i < 1000; i++ {
			p, err := rr.next(nil)
			if err != nil {
				return
			}
			if len(p) > 1<<16 {
				t.Fatalf("record of %d bytes over the limit", len(p))
			}
		}
	})
}

// next reads, checks and opens the next record, appending to dst (what
// Conn does in two steps, frameLocked and openLocked).
func (rr *recordReader) next(dst []byte) ([]byte, error) {
	body, err := rr.frame()
	if err != nil {
		return nil, err
	}
	return rr.open(dst, body)
}
