package transit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/internal/secretbox"
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
	rr         recordReader
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
	return &Conn{
		nc: nc, sendKey: sendKey, recordSize: recordSize, maxRecordSize: maxRecord,
		rr: recordReader{r: nc, key: recvKey, maxPlain: maxRecord},
	}
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
	body, err := c.frameLocked()
	if err != nil {
		return nil, err
	}
	return c.openLocked(dst, body)
}

// frameLocked returns the next record's body (nonce, tag, ciphertext),
// valid until the next read. Errors other than a clean io.EOF stick.
func (c *Conn) frameLocked() ([]byte, error) {
	if c.rerr != nil {
		return nil, c.rerr
	}
	body, err := c.rr.frame()
	if err != nil && !errors.Is(err, io.EOF) {
		c.rerr = err
	}
	return body, err
}

func (c *Conn) openLocked(dst, body []byte) ([]byte, error) {
	p, err := c.rr.open(dst, body)
	if err != nil {
		c.rerr = err
	}
	return p, err
}

// readBufferSize is the read buffer of every Conn: one read system call
// brings in up to this much, many 16 KiB records at once. A record
// larger than the buffer grows it, up to the maximum record size.
const readBufferSize = 256 << 10

// recordReader reads records through a buffer. Bodies are opened straight
// from the buffer; Read decrypts into the caller's slice when it has room
// for the whole record, so the plaintext is written once.
type recordReader struct {
	r        io.Reader
	buf      []byte // len(buf) is the buffer's size
	pos, end int    // unread bytes: buf[pos:end]
	key      [32]byte
	nonce    uint64 // expected nonce of the next record
	maxPlain int
}

// fill makes k unread bytes available (k is at most one frame), reading
// as much as fits with each call.
func (rr *recordReader) fill(k int) error {
	for empty := 0; rr.end-rr.pos < k; {
		if len(rr.buf)-rr.pos < k {
			// Not enough room after the unread bytes: move them to the
			// front, into a bigger buffer if k needs one.
			unread := rr.buf[rr.pos:rr.end]
			if size := max(k, readBufferSize); size > len(rr.buf) {
				nb := make([]byte, size)
				copy(nb, unread)
				rr.buf = nb
			} else {
				copy(rr.buf, unread)
			}
			rr.pos, rr.end = 0, len(unread)
		}
		n, err := rr.r.Read(rr.buf[rr.end:])
		rr.end += n
		if rr.end-rr.pos >= k {
			return nil // an error comes back with the next read
		}
		if err != nil {
			return err
		}
		if n == 0 {
			if empty++; empty >= 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// frame returns the next record's body (nonce, tag, ciphertext), which
// stays valid until the next call. io.EOF: clean end between records.
func (rr *recordReader) frame() ([]byte, error) {
	if err := rr.fill(4); err != nil {
		if err == io.EOF {
			if rr.end == rr.pos {
				return nil, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("transit: truncated record length: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(rr.buf[rr.pos:])
	if n < nonceSize+secretbox.Overhead {
		return nil, fmt.Errorf("%w: %d bytes", ErrRecordTooShort, n)
	}
	if uint64(n) > uint64(rr.maxPlain)+nonceSize+secretbox.Overhead {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrRecordTooLarge, n, rr.maxPlain)
	}
	if err := rr.fill(4 + int(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("transit: truncated record: %w", err)
	}
	body := rr.buf[rr.pos+4 : rr.pos+4+int(n)]
	rr.pos += 4 + int(n)
	return body, nil
}

// open checks body's nonce and opens it, appending the plaintext to dst.
func (rr *recordReader) open(dst, body []byte) ([]byte, error) {
	var want [nonceSize]byte
	putNonce(want[:], rr.nonce)
	if [nonceSize]byte(body[:nonceSize]) != want {
		return nil, fmt.Errorf("%w: expected %d", ErrBadNonce, rr.nonce)
	}
	out, ok := secretbox.Open(dst, body[nonceSize:], &want, &rr.key)
	if !ok {
		return nil, ErrDecrypt
	}
	rr.nonce++
	return out, nil
}

// Read reads decrypted bytes (io.Reader). It returns io.EOF when the peer
// closed the connection at a record boundary. A record that fits in p is
// decrypted straight into p.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if len(p) == 0 {
			return 0, nil
		}
		body, err := c.frameLocked()
		if err != nil {
			return 0, err
		}
		if len(p) >= len(body)-nonceSize-secretbox.Overhead {
			out, err := c.openLocked(p[:0], body)
			if err != nil {
				return 0, err
			}
			if len(out) > 0 {
				return len(out), nil
			}
			continue // empty record
		}
		rec, err := c.openLocked(c.pendingBuf[:0], body)
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
