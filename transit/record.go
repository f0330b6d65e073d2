package transit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"golang.org/x/crypto/nacl/secretbox"

	"github.com/wormhole-go/wormhole/hints"
)

// Record layer errors.
var (
	// ErrBadNonce: a record's nonce is not the expected counter value
	// (Python's BadNonce). The connection is unusable afterwards.
	ErrBadNonce = errors.New("transit: record out of order (bad nonce)")
	// ErrDecrypt: a record failed authentication.
	ErrDecrypt = errors.New("transit: record failed to decrypt")
	// ErrRecordTooLarge: a record is longer than the configured maximum.
	ErrRecordTooLarge = errors.New("transit: record too large")
	// ErrRecordTooShort: a record is shorter than nonce plus tag.
	ErrRecordTooShort = errors.New("transit: record too short")
)

const (
	nonceSize = 24
	// RecordOverhead is the per-record wire overhead: 4-byte length,
	// 24-byte nonce, 16-byte Poly1305 tag.
	RecordOverhead = 4 + nonceSize + secretbox.Overhead
	// DefaultRecordSize is the plaintext size Write splits data into; it
	// is what Python's FileSender uses (2**14).
	DefaultRecordSize = 16 << 10
	// DefaultMaxRecordSize bounds the size of a received record's
	// plaintext (memory bound; Python itself accepts up to 4 GiB).
	DefaultMaxRecordSize = 16 << 20
)

// Conn is an established Transit connection: a stream of SecretBox records
// in each direction. It offers a record API (SendRecord / ReceiveRecord) and
// an io.ReadWriteCloser view of the same stream (Write splits data into
// records; Read returns record contents in order). Do not mix ReceiveRecord
// and Read in a way that depends on boundaries: Read may have buffered part
// of a record. SendRecord/Write are safe for one writer goroutine at a time
// concurrent with one reader goroutine.
type Conn struct {
	nc        net.Conn
	candidate hints.Candidate

	wmu       sync.Mutex
	sendKey   [32]byte
	sendNonce uint64
	wbuf      []byte

	rmu        sync.Mutex
	recvKey    [32]byte
	recvNonce  uint64
	rbuf       []byte // ciphertext buffer (reused)
	pending    []byte // decrypted bytes not yet returned by Read
	pendingBuf []byte
	rerr       error

	recordSize    int
	maxRecordSize int
}

// NewConn wraps a negotiated byte stream. sendKey and recvKey are the
// record keys for this side (sender: SenderRecordKey / ReceiverRecordKey;
// receiver: the other way round). Mostly useful for tests and for
// callers that ran the handshake themselves.
func NewConn(nc net.Conn, sendKey, recvKey [32]byte) *Conn {
	return newConn(nc, sendKey, recvKey, DefaultRecordSize, DefaultMaxRecordSize)
}

func newConn(nc net.Conn, sendKey, recvKey [32]byte, recordSize, maxRecord int) *Conn {
	if recordSize <= 0 {
		recordSize = DefaultRecordSize
	}
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecordSize
	}
	return &Conn{nc: nc, sendKey: sendKey, recvKey: recvKey, recordSize: recordSize, maxRecordSize: maxRecord}
}

func putNonce(dst []byte, n uint64) {
	clear(dst[:nonceSize-8])
	binary.BigEndian.PutUint64(dst[nonceSize-8:nonceSize], n)
}

// SendRecord encrypts p as one record and writes it.
func (c *Conn) SendRecord(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendLocked(p)
}

func (c *Conn) sendLocked(p []byte) error {
	buf, err := c.appendRecord(c.wbuf[:0], p)
	if err != nil {
		return err
	}
	c.wbuf = buf[:0]
	if _, err := c.nc.Write(buf); err != nil {
		return fmt.Errorf("transit: send record: %w", err)
	}
	return nil
}

// appendRecord appends one framed, encrypted record to buf.
func (c *Conn) appendRecord(buf, p []byte) ([]byte, error) {
	if uint64(len(p)) > 1<<32-1-nonceSize-secretbox.Overhead {
		return nil, ErrRecordTooLarge
	}
	if c.sendNonce == ^uint64(0) {
		return nil, errors.New("transit: nonce space exhausted")
	}
	n := RecordOverhead + len(p)
	buf = slices.Grow(buf, n)
	start := len(buf)
	buf = buf[:start+4+nonceSize]
	binary.BigEndian.PutUint32(buf[start:], uint32(n-4))
	putNonce(buf[start+4:], c.sendNonce)
	nonce := [nonceSize]byte(buf[start+4:])
	buf = secretbox.Seal(buf, p, &nonce, &c.sendKey)
	c.sendNonce++
	return buf, nil
}

// ReceiveRecord reads and decrypts the next record. The returned slice is
// the caller's.
func (c *Conn) ReceiveRecord() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.pending) > 0 {
		// Rest of a record partially consumed by Read.
		p := append([]byte(nil), c.pending...)
		c.pending = nil
		return p, nil
	}
	return c.receiveLocked(nil)
}

// receiveLocked decrypts the next record, appending to dst.
func (c *Conn) receiveLocked(dst []byte) ([]byte, error) {
	if c.rerr != nil {
		return nil, c.rerr
	}
	p, err := readRecord(c.nc, &c.rbuf, dst, &c.recvKey, &c.recvNonce, c.maxRecordSize)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.rerr = err
		}
		return nil, err
	}
	return p, nil
}

// readRecord reads one frame from r into *buf (reused), checks the nonce
// and opens it, appending the plaintext to dst.
func readRecord(r io.Reader, buf *[]byte, dst []byte, key *[32]byte, expect *uint64, maxPlain int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("transit: truncated record length: %w", err)
		}
		return nil, err // io.EOF: clean end between records
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < nonceSize+secretbox.Overhead {
		return nil, fmt.Errorf("%w: %d bytes", ErrRecordTooShort, n)
	}
	if uint64(n) > uint64(maxPlain)+nonceSize+secretbox.Overhead {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrRecordTooLarge, n, maxPlain)
	}
	if cap(*buf) < int(n) {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("transit: truncated record: %w", err)
	}
	var want [nonceSize]byte
	putNonce(want[:], *expect)
	if [nonceSize]byte(b[:nonceSize]) != want {
		return nil, fmt.Errorf("%w: expected %d", ErrBadNonce, *expect)
	}
	out, ok := secretbox.Open(dst, b[nonceSize:], &want, key)
	if !ok {
		return nil, ErrDecrypt
	}
	*expect++
	return out, nil
}

// Read reads decrypted bytes (io.Reader). It returns io.EOF when the peer
// closed the connection at a record boundary.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if len(p) == 0 {
			return 0, nil
		}
		rec, err := c.receiveLocked(c.pendingBuf[:0])
		if err != nil {
			return 0, err
		}
		c.pendingBuf = rec[:0]
		c.pending = rec
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// writeBatch bounds how much Write encrypts before one write syscall.
const writeBatch = 256 << 10

// Write encrypts p as one or more records of at most the record size
// (io.Writer). Consecutive records are written with one syscall per
// writeBatch bytes.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		buf := c.wbuf[:0]
		batched := 0
		for len(p) > 0 && (batched == 0 || len(buf) < writeBatch) {
			chunk := p[:min(len(p), c.recordSize)]
			var err error
			if buf, err = c.appendRecord(buf, chunk); err != nil {
				return written, err
			}
			batched += len(chunk)
			p = p[len(chunk):]
		}
		c.wbuf = buf[:0]
		if _, err := c.nc.Write(buf); err != nil {
			return written, fmt.Errorf("transit: send record: %w", err)
		}
		written += batched
	}
	return written, nil
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// NetConn is the underlying byte stream (for deadlines and addresses).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Candidate tells how the connection was made: the hint, whether through
// a relay, whether inbound.
func (c *Conn) Candidate() hints.Candidate { return c.candidate }

// Relayed reports whether the connection goes through a transit relay.
func (c *Conn) Relayed() bool { return c.candidate.Relay }
