package netx

import (
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
)

// PatternReader yields n deterministic pseudo-random bytes derived from seed.
// Two readers with the same seed produce the same stream.
type PatternReader struct {
	rng  *rand.ChaCha8
	left int64
}

// NewPatternReader returns a reader of n bytes seeded by seed.
func NewPatternReader(seed uint64, n int64) *PatternReader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &PatternReader{rng: rand.NewChaCha8(s), left: n}
}

func (r *PatternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.rng.Read(p)
	r.left -= int64(n)
	return n, nil
}

// HashWriter counts and hashes (SHA-256) everything written to it.
type HashWriter struct {
	h hash.Hash
	N int64
}

// NewHashWriter returns an empty HashWriter.
func NewHashWriter() *HashWriter { return &HashWriter{h: sha256.New()} }

func (w *HashWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.N += int64(len(p))
	return len(p), nil
}

// Sum is the SHA-256 of everything written so far.
func (w *HashWriter) Sum() [32]byte {
	var out [32]byte
	copy(out[:], w.h.Sum(nil))
	return out
}

// PatternSum is the SHA-256 of NewPatternReader(seed, n)'s stream.
func PatternSum(seed uint64, n int64) [32]byte {
	w := NewHashWriter()
	_, _ = io.Copy(w, NewPatternReader(seed, n))
	return w.Sum()
}
