// Package secretbox is NaCl's crypto_secretbox (XSalsa20 + Poly1305) with
// the semantics of golang.org/x/crypto/nacl/secretbox, the record cipher
// of magic-wormhole's Transit. On amd64 with AVX-512 the XSalsa20
// keystream is computed 16 blocks at a time in assembly (one block per
// 32-bit lane of a ZMM register) and Poly1305 8 blocks at a time
// (26-bit limbs, one block per 64-bit lane); with AVX2 only, the
// keystream 8 blocks at a time. The implementation is chosen at run time
// (golang.org/x/sys/cpu). Elsewhere (other CPUs, other GOARCH, the
// purego build tag) and for short messages, both are x/crypto's code.
//
// Unlike x/crypto's package, Seal and Open may work in place: with
// message = buf[Overhead:], Seal(buf[:0], message, ...) writes the box
// over buf; Open(box[Overhead:Overhead], box, ...) writes the plaintext
// over the ciphertext. Any other overlap of input and output panics.
package secretbox

import (
	"crypto/subtle"
	"encoding/binary"
	"unsafe"

	"golang.org/x/crypto/salsa20/salsa"
)

// Overhead is the number of bytes Seal adds to a message (the Poly1305
// tag).
const Overhead = 16

// impl selects the keystream implementation. Tests run every one the CPU
// supports, whichever Seal and Open pick.
type impl uint8

const (
	implGeneric impl = iota // x/crypto's salsa20 (SSE2 assembly on amd64)
	implAVX512              // 16 blocks per step, salsa_amd64.s
	implAVX2                // 8 blocks per step, salsa_avx2_amd64.s
)

// Seal appends an encrypted and authenticated copy of message to out,
// which must not overlap message except exactly at the ciphertext
// position. The key and nonce pair must be unique for each distinct
// message; the output is len(message)+Overhead bytes.
func Seal(out, message []byte, nonce *[24]byte, key *[32]byte) []byte {
	return seal(bestImpl(), out, message, nonce, key)
}

// Open authenticates and decrypts a box produced by Seal and appends the
// message to out, which must not overlap box except exactly at the
// plaintext position (box[Overhead:]). It reports whether the box was
// authentic; if not, out is not written.
func Open(out, box []byte, nonce *[24]byte, key *[32]byte) ([]byte, bool) {
	return open(bestImpl(), out, box, nonce, key)
}

// smallMessage: below this many bytes the vector paths would compute
// mostly unused keystream (8 or 16 blocks at a time); the generic code is
// as fast.
const smallMessage = 256

func seal(im impl, out, message []byte, nonce *[24]byte, key *[32]byte) []byte {
	ret, dst := sliceForAppend(out, len(message)+Overhead)
	ct := dst[Overhead:]
	if inexactOverlap(ct, message) {
		panic("secretbox: invalid buffer overlap")
	}
	if len(message) < smallMessage {
		im = implGeneric
	}
	var c cipher
	c.init(nonce, key)
	var ks [chunkSize]byte
	first := c.firstKeystream(im, &ks)
	polyKey := [32]byte(ks[:32])
	n := min(len(message), first-32)
	subtle.XORBytes(ct[:n], message[:n], ks[32:32+n])
	c.xor(im, ct[n:], message[n:], uint64(first/blockSize))
	var tag [Overhead]byte
	polySum(im, &tag, ct, &polyKey)
	copy(dst, tag[:])
	return ret
}

func open(im impl, out, box []byte, nonce *[24]byte, key *[32]byte) ([]byte, bool) {
	if len(box) < Overhead {
		return nil, false
	}
	ct := box[Overhead:]
	if len(ct) < smallMessage {
		im = implGeneric
	}
	var c cipher
	c.init(nonce, key)
	var ks [chunkSize]byte
	first := c.firstKeystream(im, &ks)
	polyKey := [32]byte(ks[:32])
	tag := [Overhead]byte(box)
	if !polyVerify(im, &tag, ct, &polyKey) {
		return nil, false
	}
	ret, pt := sliceForAppend(out, len(ct))
	if inexactOverlap(pt, ct) {
		panic("secretbox: invalid buffer overlap")
	}
	n := min(len(ct), first-32)
	subtle.XORBytes(pt[:n], ct[:n], ks[32:32+n])
	c.xor(im, pt[n:], ct[n:], uint64(first/blockSize))
	return ret, true
}

const (
	blockSize = 64
	chunkSize = 16 * blockSize // blocks per AVX-512 step
)

// cipher is Salsa20 keyed with the XSalsa20 subkey and the nonce's last
// 8 bytes.
type cipher struct {
	key   [32]byte
	nonce [8]byte
}

func (c *cipher) init(nonce *[24]byte, key *[32]byte) {
	hNonce := [16]byte(nonce[:16])
	var sub [32]byte
	salsa.HSalsa20(&sub, &hNonce, key, &salsa.Sigma)
	c.key = sub
	c.nonce = [8]byte(nonce[16:])
}

// firstKeystream writes the keystream from block 0 into ks: one block
// (generic) or one chunk (AVX-512), and returns how many bytes it wrote.
func (c *cipher) firstKeystream(im impl, ks *[chunkSize]byte) int {
	n := blockSize
	switch im {
	case implAVX512:
		n = chunkSize
	case implAVX2:
		n = chunkSize / 2
	}
	c.xor(im, ks[:n], ks[:n], 0) // ks is zero
	return n
}

// xor XORs in with the keystream from block ctr on into out (len(out) >=
// len(in); exact overlap allowed).
func (c *cipher) xor(im impl, out, in []byte, ctr uint64) {
	if len(in) == 0 {
		return
	}
	switch im {
	case implAVX512:
		c.xorWide(out, in, ctr, 16)
	case implAVX2:
		c.xorWide(out, in, ctr, 8)
	default:
		xorGeneric(c.key, c.nonce, out, in, ctr)
	}
}

// xorGeneric takes the key by value: x/crypto's salsa.XORKeyStream lets
// its arguments escape, and a copy here keeps the cipher (and the
// AVX-512 path) free of heap allocations.
func xorGeneric(key [32]byte, nonce [8]byte, out, in []byte, ctr uint64) {
	var b [16]byte
	copy(b[:8], nonce[:])
	binary.LittleEndian.PutUint64(b[8:], ctr)
	salsa.XORKeyStream(out, in, &b, &key)
}

// state is the Salsa20 input matrix for block ctr.
func (c *cipher) state(ctr uint64) [16]uint32 {
	return [16]uint32{
		0x61707865, le32(c.key[0:]), le32(c.key[4:]), le32(c.key[8:]),
		le32(c.key[12:]), 0x3320646e, le32(c.nonce[0:]), le32(c.nonce[4:]),
		uint32(ctr), uint32(ctr >> 32), 0x79622d32, le32(c.key[16:]),
		le32(c.key[20:]), le32(c.key[24:]), le32(c.key[28:]), 0x6b206574,
	}
}

// kernel runs the assembly that does lanes (16: AVX-512, 8: AVX2) blocks
// per chunk. (A direct call: a func value would let the buffers escape.)
func kernel(lanes int, out, in *byte, chunks int, state *[16]uint32) {
	if lanes == 16 {
		xorBlocks16AVX512(out, in, chunks, state)
	} else {
		xorBlocks8AVX2(out, in, chunks, state)
	}
}

// xorWide XORs with the keystream through kernel, lanes blocks per chunk.
func (c *cipher) xorWide(out, in []byte, ctr uint64, lanes int) {
	_ = out[len(in)-1]
	chunk := lanes * blockSize
	for len(in) > 0 {
		// The assembly adds lane numbers to the counter's low word only:
		// a chunk that would carry into the high word goes to the
		// generic code.
		room := (1<<32 - uint64(uint32(ctr))) / uint64(lanes) // chunks before the low word wraps
		var n int
		switch {
		case room == 0:
			n = min(len(in), chunk)
			xorGeneric(c.key, c.nonce, out[:n], in[:n], ctr)
		case len(in) >= chunk:
			chunks := min(uint64(len(in)/chunk), room)
			st := c.state(ctr)
			kernel(lanes, &out[0], &in[0], int(chunks), &st)
			n = int(chunks) * chunk
		default:
			var ks [chunkSize]byte
			st := c.state(ctr)
			kernel(lanes, &ks[0], &ks[0], 1, &st)
			n = subtle.XORBytes(out, in, ks[:len(in)])
		}
		ctr += uint64(n+blockSize-1) / blockSize
		in, out = in[n:], out[n:]
	}
}

func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

// inexactOverlap reports whether x and y share memory at different
// offsets (in-place use is fine, a shifted overlap is not).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
