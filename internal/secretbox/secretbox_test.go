package secretbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	xbox "golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/salsa20/salsa"
)

// impls are the implementations this machine can run; the generic one is
// always there, so the fallback path is tested everywhere.
func impls() []impl { return supportedImpls() }

func (im impl) String() string {
	switch im {
	case implGeneric:
		return "generic"
	case implAVX512:
		return "avx512"
	case implAVX2:
		return "avx2"
	}
	return fmt.Sprintf("impl(%d)", uint8(im))
}

func TestBestImpl(t *testing.T) {
	t.Logf("best implementation here: %v", bestImpl())
}

// lengths: every length up to a few chunks (covers the first block, the
// 32-byte first-block split, every tail length of a 16-block chunk), then
// the boundaries of Transit's record sizes.
func lengths() []int {
	var ls []int
	for n := 0; n <= 3*chunkSize+70; n++ {
		ls = append(ls, n)
	}
	for _, b := range []int{16 << 10, 64 << 10, 256 << 10} {
		for d := -70; d <= 70; d++ {
			ls = append(ls, b+d)
		}
	}
	return ls
}

func randBytes(r *rand.ChaCha8, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func TestSealOpenDifferential(t *testing.T) {
	r := rand.NewChaCha8([32]byte{1})
	rr := rand.New(r)
	for _, im := range impls() {
		t.Run(im.String(), func(t *testing.T) {
			for _, n := range lengths() {
				var key [32]byte
				var nonce [24]byte
				r.Read(key[:])
				r.Read(nonce[:])
				msg := randBytes(r, n)
				prefix := randBytes(r, n%7)

				want := xbox.Seal(bytes.Clone(prefix), msg, &nonce, &key)
				got := seal(im, bytes.Clone(prefix), msg, &nonce, &key)
				if !bytes.Equal(got, want) {
					t.Fatalf("len %d: Seal differs from x/crypto", n)
				}

				// In place: the message already sits after room for the tag.
				buf := make([]byte, Overhead+n)
				copy(buf[Overhead:], msg)
				inPlace := seal(im, buf[:0], buf[Overhead:], &nonce, &key)
				if !bytes.Equal(inPlace, want[len(prefix):]) || &inPlace[0] != &buf[0] {
					t.Fatalf("len %d: in-place Seal differs", n)
				}

				box := want[len(prefix):]
				pt, ok := open(im, bytes.Clone(prefix), box, &nonce, &key)
				if !ok || !bytes.Equal(pt, append(bytes.Clone(prefix), msg...)) {
					t.Fatalf("len %d: Open failed or differs (ok=%v)", n, ok)
				}
				if xpt, xok := xbox.Open(nil, box, &nonce, &key); !xok || !bytes.Equal(xpt, msg) {
					t.Fatalf("len %d: x/crypto cannot open its own box", n)
				}

				// In place: the plaintext replaces the ciphertext.
				b2 := bytes.Clone(box)
				pt, ok = open(im, b2[Overhead:Overhead], b2, &nonce, &key)
				if !ok || !bytes.Equal(pt, msg) {
					t.Fatalf("len %d: in-place Open failed or differs", n)
				}

				// Any flipped bit is rejected, and nothing is written.
				bad := bytes.Clone(box)
				bad[rr.IntN(len(bad))] ^= 1 << rr.IntN(8)
				dst := make([]byte, 0, n+1)
				if p, ok := open(im, dst, bad, &nonce, &key); ok || p != nil {
					t.Fatalf("len %d: tampered box opened", n)
				}
				if bytes.ContainsFunc(dst[:cap(dst)], func(r rune) bool { return r != 0 }) {
					t.Fatalf("len %d: failed Open wrote to out", n)
				}
				wrongNonce := nonce
				wrongNonce[23] ^= 1
				if _, ok := open(im, nil, box, &wrongNonce, &key); ok {
					t.Fatalf("len %d: opened with the wrong nonce", n)
				}
			}
		})
	}
}

func TestOpenShort(t *testing.T) {
	var key [32]byte
	var nonce [24]byte
	for _, im := range impls() {
		for n := range Overhead {
			if _, ok := open(im, nil, make([]byte, n), &nonce, &key); ok {
				t.Fatalf("%v: %d-byte box opened", im, n)
			}
		}
	}
	// The exported API agrees with x/crypto on an empty message.
	box := Seal(nil, nil, &nonce, &key)
	if !bytes.Equal(box, xbox.Seal(nil, nil, &nonce, &key)) {
		t.Fatal("empty message: Seal differs")
	}
	if p, ok := Open(nil, box, &nonce, &key); !ok || len(p) != 0 {
		t.Fatal("empty message: Open failed")
	}
}

// TestKeystreamCounters checks the raw keystream against x/crypto's salsa20
// at block counters where the assembly's low counter word wraps (it must
// hand those chunks to the generic code) and where the 64-bit counter
// wraps, for lengths that cover whole chunks, tails and both at once.
func TestKeystreamCounters(t *testing.T) {
	r := rand.NewChaCha8([32]byte{2})
	ctrs := []uint64{0, 1, 15, 16, 17, 1<<32 - 1, 1<<32 - 15, 1<<32 - 16, 1<<32 - 17, 1<<32 - 33, 1 << 32, 1<<32 + 1,
		1<<33 - 20, 1<<64 - 1, 1<<64 - 16, 1<<64 - 17, 1<<64 - 40, 0xffffffff00000000, 0x12345678fffffff0}
	for i := range 20 {
		ctrs = append(ctrs, 1<<32-uint64(i), r.Uint64())
	}
	for _, im := range impls() {
		for _, ctr := range ctrs {
			for _, n := range []int{1, 63, 64, 65, chunkSize - 1, chunkSize, chunkSize + 1, 2*chunkSize + 100, 5 * chunkSize} {
				var c cipher
				r.Read(c.key[:])
				r.Read(c.nonce[:])
				in := randBytes(r, n)
				var cb [16]byte
				copy(cb[:8], c.nonce[:])
				binary.LittleEndian.PutUint64(cb[8:], ctr)
				want := make([]byte, n)
				salsa.XORKeyStream(want, in, &cb, &c.key)
				got := make([]byte, n)
				c.xor(im, got, in, ctr)
				if !bytes.Equal(got, want) {
					t.Fatalf("%v: counter %#x, %d bytes: keystream differs", im, ctr, n)
				}
				c.xor(im, in, in, ctr) // in place
				if !bytes.Equal(in, want) {
					t.Fatalf("%v: counter %#x, %d bytes: in-place keystream differs", im, ctr, n)
				}
			}
		}
	}
}

// TestNaClVector is the crypto_secretbox test from NaCl (tests/secretbox.c),
// as in x/crypto's tests.
func TestNaClVector(t *testing.T) {
	key := [32]byte{
		0x1b, 0x27, 0x55, 0x64, 0x73, 0xe9, 0x85, 0xd4, 0x62, 0xcd, 0x51, 0x19, 0x7a, 0x9a, 0x46, 0xc7,
		0x60, 0x09, 0x54, 0x9e, 0xac, 0x64, 0x74, 0xf2, 0x06, 0xc4, 0xee, 0x08, 0x44, 0xf6, 0x83, 0x89}
	nonce := [24]byte{
		0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8, 0x75, 0xfc, 0x73, 0xd6,
		0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37}
	msg := []byte{
		0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5, 0xcf, 0x14, 0x13, 0x16, 0xeb, 0xeb, 0x0c, 0x7b,
		0x52, 0x28, 0xc5, 0x2a, 0x4c, 0x62, 0xcb, 0xd4, 0x4b, 0x66, 0x84, 0x9b, 0x64, 0x24, 0x4f, 0xfc,
		0xe5, 0xec, 0xba, 0xaf, 0x33, 0xbd, 0x75, 0x1a, 0x1a, 0xc7, 0x28, 0xd4, 0x5e, 0x6c, 0x61, 0x29,
		0x6c, 0xdc, 0x3c, 0x01, 0x23, 0x35, 0x61, 0xf4, 0x1d, 0xb6, 0x6c, 0xce, 0x31, 0x4a, 0xdb, 0x31,
		0x0e, 0x3b, 0xe8, 0x25, 0x0c, 0x46, 0xf0, 0x6d, 0xce, 0xea, 0x3a, 0x7f, 0xa1, 0x34, 0x80, 0x57,
		0xe2, 0xf6, 0x55, 0x6a, 0xd6, 0xb1, 0x31, 0x8a, 0x02, 0x4a, 0x83, 0x8f, 0x21, 0xaf, 0x1f, 0xde,
		0x04, 0x89, 0x77, 0xeb, 0x48, 0xf5, 0x9f, 0xfd, 0x49, 0x24, 0xca, 0x1c, 0x60, 0x90, 0x2e, 0x52,
		0xf0, 0xa0, 0x89, 0xbc, 0x76, 0x89, 0x70, 0x40, 0xe0, 0x82, 0xf9, 0x37, 0x76, 0x38, 0x48, 0x64,
		0x5e, 0x07, 0x05}
	want := []byte{
		0xf3, 0xff, 0xc7, 0x70, 0x3f, 0x94, 0x00, 0xe5, 0x2a, 0x7d, 0xfb, 0x4b, 0x3d, 0x33, 0x05, 0xd9,
		0x8e, 0x99, 0x3b, 0x9f, 0x48, 0x68, 0x12, 0x73, 0xc2, 0x96, 0x50, 0xba, 0x32, 0xfc, 0x76, 0xce,
		0x48, 0x33, 0x2e, 0xa7, 0x16, 0x4d, 0x96, 0xa4, 0x47, 0x6f, 0xb8, 0xc5, 0x31, 0xa1, 0x18, 0x6a,
		0xc0, 0xdf, 0xc1, 0x7c, 0x98, 0xdc, 0xe8, 0x7b, 0x4d, 0xa7, 0xf0, 0x11, 0xec, 0x48, 0xc9, 0x72,
		0x71, 0xd2, 0xc2, 0x0f, 0x9b, 0x92, 0x8f, 0xe2, 0x27, 0x0d, 0x6f, 0xb8, 0x63, 0xd5, 0x17, 0x38,
		0xb4, 0x8e, 0xee, 0xe3, 0x14, 0xa7, 0xcc, 0x8a, 0xb9, 0x32, 0x16, 0x45, 0x48, 0xe5, 0x26, 0xae,
		0x90, 0x22, 0x43, 0x68, 0x51, 0x7a, 0xcf, 0xea, 0xbd, 0x6b, 0xb3, 0x73, 0x2b, 0xc0, 0xe9, 0xda,
		0x99, 0x83, 0x2b, 0x61, 0xca, 0x01, 0xb6, 0xde, 0x56, 0x24, 0x4a, 0x9e, 0x88, 0xd5, 0xf9, 0xb3,
		0x79, 0x73, 0xf6, 0x22, 0xa4, 0x3d, 0x14, 0xa6, 0x59, 0x9b, 0x1f, 0x65, 0x4c, 0xb4, 0x5a, 0x74,
		0xe3, 0x55, 0xa5}
	for _, im := range impls() {
		if got := seal(im, nil, msg, &nonce, &key); !bytes.Equal(got, want) {
			t.Fatalf("%v: NaCl vector: got %x", im, got)
		}
	}
}

func TestOverlapPanics(t *testing.T) {
	var key [32]byte
	var nonce [24]byte
	for _, im := range impls() {
		buf := make([]byte, 4096)
		mustPanic(t, func() { seal(im, buf[:0], buf[8:3000], &nonce, &key) })
		box := seal(im, nil, make([]byte, 3000), &nonce, &key)
		b := make([]byte, 8192)
		copy(b[100:], box)
		mustPanic(t, func() { open(im, b[:0], b[100:100+len(box)], &nonce, &key) })
	}
}

func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on an inexact overlap")
		}
	}()
	f()
}

func TestAllocs(t *testing.T) {
	var key [32]byte
	var nonce [24]byte
	msg := make([]byte, 16<<10)
	out := make([]byte, 0, len(msg)+Overhead)
	pt := make([]byte, 0, len(msg))
	box := Seal(nil, msg, &nonce, &key)
	if a := testing.AllocsPerRun(20, func() {
		Seal(out, msg, &nonce, &key)
		Open(pt, box, &nonce, &key)
	}); a != 0 {
		t.Fatalf("%v allocations per Seal+Open with room in out", a)
	}
}

// FuzzSealOpen: differential against x/crypto for every implementation.
func FuzzSealOpen(f *testing.F) {
	f.Add([]byte("hello"), []byte{1}, []byte{2}, uint16(0))
	f.Add(make([]byte, 2000), []byte{}, []byte{}, uint16(5))
	f.Add(make([]byte, 16<<10), []byte("k"), []byte("n"), uint16(1200))
	f.Fuzz(func(t *testing.T, msg, k, n []byte, flip uint16) {
		var key [32]byte
		var nonce [24]byte
		copy(key[:], k)
		copy(nonce[:], n)
		want := xbox.Seal(nil, msg, &nonce, &key)
		bad := bytes.Clone(want)
		bad[int(flip)%len(bad)] ^= 1 << (flip % 8)
		for _, im := range impls() {
			got := seal(im, nil, msg, &nonce, &key)
			if !bytes.Equal(got, want) {
				t.Fatalf("%v: Seal differs from x/crypto", im)
			}
			pt, ok := open(im, nil, want, &nonce, &key)
			if !ok || !bytes.Equal(pt, msg) {
				t.Fatalf("%v: Open failed", im)
			}
			if _, ok := open(im, nil, bad, &nonce, &key); ok {
				t.Fatalf("%v: tampered box opened", im)
			}
			// An arbitrary box: same verdict and plaintext as x/crypto.
			xpt, xok := xbox.Open(nil, msg, &nonce, &key)
			gpt, gok := open(im, nil, msg, &nonce, &key)
			if xok != gok || !bytes.Equal(xpt, gpt) {
				t.Fatalf("%v: Open of arbitrary input disagrees with x/crypto", im)
			}
		}
	})
}
