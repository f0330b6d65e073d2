package secretbox

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/poly1305" //nolint:staticcheck // the reference
)

// polyModes: the scalar limb code alone (every platform) and, where the
// CPU has it, with the AVX-512 kernel for groups of 8 blocks.
func polyModes() []bool {
	if bestImpl() == implAVX512 {
		return []bool{false, true}
	}
	return []bool{false}
}

func TestPolyDifferential(t *testing.T) {
	r := rand.NewChaCha8([32]byte{3})
	var maxKey [32]byte // every bit clamping allows, and s all ones
	for i := range maxKey {
		maxKey[i] = 0xff
	}
	ones := bytes.Repeat([]byte{0xff}, 4096)
	for _, vector := range polyModes() {
		for n := 0; n <= 2200; n++ {
			var key [32]byte
			r.Read(key[:])
			msg := randBytes(r, n)
			for _, tc := range []struct {
				key *[32]byte
				msg []byte
			}{{&key, msg}, {&maxKey, ones[:n]}, {&key, ones[:n]}, {&maxKey, msg}} {
				var want [16]byte
				poly1305.Sum(&want, tc.msg, tc.key)
				if got := polySumLimbs(tc.msg, tc.key, vector); got != want {
					t.Fatalf("vector=%v len %d: tag %x, want %x", vector, n, got, want)
				}
			}
		}
	}
}

// Long messages: many loop iterations of the kernel with extreme limbs.
func TestPolyLong(t *testing.T) {
	r := rand.NewChaCha8([32]byte{4})
	var maxKey [32]byte
	for i := range maxKey {
		maxKey[i] = 0xff
	}
	for _, vector := range polyModes() {
		for _, n := range []int{16 << 10, 16<<10 + 1, 64<<10 - 1, 64 << 10, 1<<20 + 77} {
			for _, ff := range []bool{false, true} {
				msg := randBytes(r, n)
				key := maxKey
				if !ff {
					r.Read(key[:])
				} else {
					for i := range msg {
						msg[i] = 0xff
					}
				}
				var want [16]byte
				poly1305.Sum(&want, msg, &key)
				if got := polySumLimbs(msg, &key, vector); got != want {
					t.Fatalf("vector=%v len %d ff=%v: tag differs", vector, n, ff)
				}
			}
		}
	}
}

func FuzzPoly(f *testing.F) {
	f.Add([]byte("abc"), []byte{1, 2, 3})
	f.Add(bytes.Repeat([]byte{0xff}, 1000), bytes.Repeat([]byte{0xff}, 32))
	f.Fuzz(func(t *testing.T, msg, k []byte) {
		var key [32]byte
		copy(key[:], k)
		var want [16]byte
		poly1305.Sum(&want, msg, &key)
		for _, vector := range polyModes() {
			if got := polySumLimbs(msg, &key, vector); got != want {
				t.Fatalf("vector=%v: tag differs", vector)
			}
		}
	})
}
