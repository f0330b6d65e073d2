package pake

import (
	cryptorand "crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
)

// NonceSize is the SecretBox nonce length that prefixes every ciphertext.
const NonceSize = 24

// Overhead is the number of bytes Seal adds: nonce plus Poly1305 tag.
const Overhead = NonceSize + secretbox.Overhead

// Seal encrypts plaintext with a 32-byte key as PyNaCl's
// SecretBox.encrypt does: a random 24-byte nonce (from rand, crypto/rand
// when nil) followed by tag || ciphertext.
func Seal(key, plaintext []byte, rand io.Reader) ([]byte, error) {
	var k [KeySize]byte
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w (got %d)", ErrKeySize, len(key))
	}
	copy(k[:], key)
	if rand == nil {
		rand = cryptorand.Reader
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(rand, nonce[:]); err != nil {
		return nil, fmt.Errorf("pake: reading nonce: %w", err)
	}
	out := make([]byte, NonceSize, NonceSize+secretbox.Overhead+len(plaintext))
	copy(out, nonce[:])
	return secretbox.Seal(out, plaintext, &nonce, &k), nil
}

// Open reverses Seal. Input shorter than nonce plus tag, or that fails
// authentication, gives ErrDecrypt; a key that is not 32 bytes ErrKeySize.
func Open(key, data []byte) ([]byte, error) {
	var k [KeySize]byte
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w (got %d)", ErrKeySize, len(key))
	}
	copy(k[:], key)
	if len(data) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", ErrDecrypt, len(data))
	}
	var nonce [NonceSize]byte
	copy(nonce[:], data[:NonceSize])
	pt, ok := secretbox.Open(nil, data[NonceSize:], &nonce, &k)
	if !ok {
		return nil, ErrDecrypt
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
