package dilate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"crypto/sha256"
	"github.com/flynn/noise"
	"golang.org/x/crypto/hkdf"
)

// Wire constants (py:_dilation/connection.py, _noise.py).
const (
	prologueLeader   = "Magic-Wormhole Dilation Handshake v1 Leader\n\n"
	prologueFollower = "Magic-Wormhole Dilation Handshake v1 Follower\n\n"
	noiseMaxMsg      = 65535            // largest Noise transport message
	noiseMaxPlain    = noiseMaxMsg - 16 // 65519: plaintext per Noise message
	handshakeMsgLen  = 48               // both NNpsk0 handshake messages
	frameHeader      = 4                // be32 length
	maxFrameDefault  = 16 << 20         // receive bound (memory), see Options
	dataHeader       = 9                // tag + scid + seq
	maxDataPayload   = noiseMaxPlain - dataHeader
)

// Errors of the L2 layer.
var (
	ErrBadHandshake = errors.New("dilate: bad handshake")
	ErrFrameTooBig  = errors.New("dilate: frame exceeds limit")
)

func deriveKey(key []byte, purpose string, n int) []byte {
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, key, nil, []byte(purpose)), out); err != nil {
		panic(err) // cannot happen for n <= 255*32
	}
	return out
}

// relayLine is the relay-v1 handshake line for Dilation: the token comes
// from the Dilation key and the side is the Dilation side.
func relayLine(dk []byte, side string) []byte {
	return []byte("please relay " + hex.EncodeToString(deriveKey(dk, "transit_relay_token", 32)) + " for side " + side + "\n")
}

func newNoise(dk []byte, leader bool) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite:           noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s),
		Pattern:               noise.HandshakeNN,
		Initiator:             leader,
		PresharedKey:          dk,
		PresharedKeyPlacement: 0,
	})
}

// expectExact reads len(want) bytes and fails if they differ.
func expectExact(r io.Reader, want string, what string) error {
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrBadHandshake, what, err)
	}
	if !bytes.Equal(got, []byte(want)) {
		return fmt.Errorf("%w: %s: got %q", ErrBadHandshake, what, got)
	}
	return nil
}

// appendFrame appends a length-prefixed frame.
func appendFrame(b, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// readFrame reads one frame into buf (grown as needed) and returns it.
func readFrame(r *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(limit) {
		return nil, fmt.Errorf("%w: %d > %d", ErrFrameTooBig, n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// sealer encrypts L3 records into L2 frames.
type sealer struct{ cs *noise.CipherState }

// appendSealed appends one frame holding the encryption of plaintext, split
// into 65519-byte pieces each encrypted as its own Noise message.
func (s sealer) appendSealed(b, plaintext []byte) ([]byte, error) {
	pieces := max(1, (len(plaintext)+noiseMaxPlain-1)/noiseMaxPlain)
	total := len(plaintext) + 16*pieces
	if int64(total) > 0xffffffff {
		return b, ErrFrameTooBig
	}
	b = binary.BigEndian.AppendUint32(b, uint32(total))
	for first := true; first || len(plaintext) > 0; first = false {
		n := min(len(plaintext), noiseMaxPlain)
		var err error
		b, err = s.cs.Encrypt(b, nil, plaintext[:n])
		if err != nil {
			return b, err
		}
		plaintext = plaintext[n:]
	}
	return b, nil
}

// opener decrypts L2 frames.
type opener struct {
	cs      *noise.CipherState
	scratch []byte // output buffer for multi-message frames
}

var errDecrypt = errors.New("dilate: frame decryption failed")

// open decrypts a frame. A frame of at most 65535 bytes is one Noise message
// and is decrypted in place; a longer one is cut into 65535-byte ciphertext
// chunks decrypted in order into a scratch buffer. The result is valid until
// the next call.
func (o *opener) open(frame []byte) ([]byte, error) {
	if len(frame) <= noiseMaxMsg {
		out, err := o.cs.Decrypt(frame[:0], nil, frame)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errDecrypt, err)
		}
		return out, nil
	}
	out := o.scratch[:0]
	for len(frame) > 0 {
		n := min(len(frame), noiseMaxMsg)
		var err error
		out, err = o.cs.Decrypt(out, nil, frame[:n])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errDecrypt, err)
		}
		frame = frame[n:]
	}
	if cap(out) <= 1<<20 {
		o.scratch = out
	}
	return out, nil
}
