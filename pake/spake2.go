package pake

import (
	"bytes"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// MessageSize is the length of a SPAKE2 symmetric message: the side byte
// 'S' followed by a 32-byte Ed25519 element.
const MessageSize = 33

// sideSymmetric is python-spake2's SideSymmetric; 'A' and 'B' are the
// asymmetric sides, which a symmetric peer rejects (OffSides).
const (
	sideSymmetric = 'S'
	sideA         = 'A'
	sideB         = 'B'
)

var (
	errIdentity = errors.New("element is the identity")
	errSubgroup = errors.New("element is not in the prime-order subgroup")
)

// SPAKE2 is one side of a symmetric SPAKE2 exchange
// (python-spake2's SPAKE2_Symmetric with the default Ed25519 parameters).
type SPAKE2 struct {
	pw       []byte
	idS      []byte
	wS       *edwards25519.Point  // w*S, the password blinding
	x        *edwards25519.Scalar // our secret scalar
	msg      [MessageSize]byte    // 'S' || element
	finished bool
}

// NewSymmetric starts a SPAKE2 exchange. password is the full wormhole code
// and idSymmetric the appid, both NFC-normalised UTF-8 (see NFC). It reads
// 64 bytes from rand (crypto/rand when nil); the big-endian integer they
// form, reduced mod L, is the secret scalar, exactly as python-spake2 uses
// entropy_f(64), so deterministic readers reproduce Python's messages.
func NewSymmetric(password, idSymmetric []byte, rand io.Reader) (*SPAKE2, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	var entropy [64]byte
	if _, err := io.ReadFull(rand, entropy[:]); err != nil {
		return nil, fmt.Errorf("pake: reading randomness: %w", err)
	}
	s := &SPAKE2{
		pw:  bytes.Clone(password),
		idS: bytes.Clone(idSymmetric),
		x:   scalarFromBigEndian(entropy[:]),
	}
	// X* = x*B + w*S
	s.wS = new(edwards25519.Point).ScalarMult(passwordScalar(password), symmetricS())
	xs := new(edwards25519.Point).ScalarBaseMult(s.x)
	xs.Add(xs, s.wS)
	s.msg[0] = sideSymmetric
	copy(s.msg[1:], xs.Bytes())
	return s, nil
}

// Message returns our 33-byte message for the peer: 'S' || element.
// It returns a fresh copy on every call.
func (s *SPAKE2) Message() []byte {
	m := s.msg
	return m[:]
}

// Finish processes the peer's message and returns the 32-byte shared key.
// Errors wrap ErrBadMessage or ErrReflection (use errors.Is); a second call
// returns ErrFinished. Finish may be called only once, even after an error,
// as in python-spake2.
func (s *SPAKE2) Finish(peerMsg []byte) ([]byte, error) {
	if s.finished {
		return nil, ErrFinished
	}
	s.finished = true
	if len(peerMsg) != MessageSize {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrBadMessage, len(peerMsg), MessageSize)
	}
	switch peerMsg[0] {
	case sideSymmetric:
	case sideA, sideB:
		return nil, fmt.Errorf("%w: symmetric side got a message from side %q", ErrBadMessage, peerMsg[0])
	default:
		return nil, fmt.Errorf("%w: unknown side byte 0x%02x", ErrBadMessage, peerMsg[0])
	}
	inbound := peerMsg[1:]
	y, err := decodeElement(inbound)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	own := s.msg[1:]
	// Python compares the re-encoded (canonical) element with ours.
	if bytes.Equal(y.Bytes(), own) {
		return nil, ErrReflection
	}
	// K = x * (Y + (-w)*S) = x * (Y - w*S)
	k := new(edwards25519.Point).Subtract(y, s.wS)
	k.ScalarMult(s.x, k)

	// Transcript: the raw inbound bytes (as Python keeps them) and ours,
	// sorted lexicographically.
	first, second := inbound, own
	if bytes.Compare(first, second) > 0 {
		first, second = second, first
	}
	pwHash := sha256.Sum256(s.pw)
	idHash := sha256.Sum256(s.idS)
	h := sha256.New()
	h.Write(pwHash[:])
	h.Write(idHash[:])
	h.Write(first)
	h.Write(second)
	h.Write(k.Bytes())
	return h.Sum(nil), nil
}
