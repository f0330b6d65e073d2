package pake

import "errors"

var (
	// ErrBadMessage reports a peer SPAKE2 message that is malformed: wrong
	// length, wrong side byte, not a curve point, the identity, or not in
	// the prime-order subgroup. Python raises OffSides or ValueError here.
	ErrBadMessage = errors.New("pake: bad SPAKE2 message")
	// ErrReflection reports that the peer's message is our own message
	// sent back (python-spake2's ReflectionThwarted).
	ErrReflection = errors.New("pake: SPAKE2 message reflected back to us")
	// ErrFinished reports a second call to Finish (python-spake2's
	// OnlyCallFinishOnce).
	ErrFinished = errors.New("pake: Finish may only be called once")
	// ErrDecrypt reports ciphertext that is too short or fails
	// authentication (PyNaCl's CryptoError).
	ErrDecrypt = errors.New("pake: decryption failed")
	// ErrKeySize reports a SecretBox key that is not 32 bytes.
	ErrKeySize = errors.New("pake: secretbox key must be 32 bytes")
)
