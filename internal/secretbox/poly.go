package secretbox

import (
	"crypto/subtle"
	"encoding/binary"
	"math/bits"

	"golang.org/x/crypto/poly1305" //nolint:staticcheck // deprecated as an API, still x/crypto's maintained code
)

// Poly1305 with the bulk of a long message done 8 blocks at a time with
// AVX-512 (poly_amd64.s) and the rest here, in five 26-bit limbs like the
// vector code. Short messages and other CPUs use x/crypto's poly1305.

// polyVectorMin: messages shorter than this go to x/crypto's code (the
// table of powers costs about as much as 16 blocks).
const polyVectorMin = 512

// polyTable is what polyBlocksAVX512 reads: r^8 (limbs r0..r4, then
// s1..s4 = 5*r1..5*r4) and, for the last multiplication, per-lane powers
// of r in the same layout, one vector of 8 lanes per limb.
type polyTable struct {
	r8    [9]uint64
	_     [7]uint64
	lanes [9][8]uint64
}

type limbs [5]uint64

const limbMask = 1<<26 - 1

func clampedR(key *[32]byte) limbs {
	lo := binary.LittleEndian.Uint64(key[0:]) & 0x0ffffffc0fffffff
	hi := binary.LittleEndian.Uint64(key[8:]) & 0x0ffffffc0ffffffc
	return split(lo, hi, 0)
}

// split is a 128-bit number plus hibit<<104 as limbs.
func split(lo, hi, hibit uint64) limbs {
	return limbs{
		lo & limbMask,
		(lo >> 26) & limbMask,
		(lo>>52 | hi<<12) & limbMask,
		(hi >> 14) & limbMask,
		hi>>40 | hibit,
	}
}

// mul is a*r mod 2^130-5, limbs carried back to 26 bits (limb 1 may be a
// little over). Inputs: limbs below 2^30.
func (a limbs) mul(r limbs) limbs {
	s1, s2, s3, s4 := 5*r[1], 5*r[2], 5*r[3], 5*r[4]
	d0 := a[0]*r[0] + a[1]*s4 + a[2]*s3 + a[3]*s2 + a[4]*s1
	d1 := a[0]*r[1] + a[1]*r[0] + a[2]*s4 + a[3]*s3 + a[4]*s2
	d2 := a[0]*r[2] + a[1]*r[1] + a[2]*r[0] + a[3]*s4 + a[4]*s3
	d3 := a[0]*r[3] + a[1]*r[2] + a[2]*r[1] + a[3]*r[0] + a[4]*s4
	d4 := a[0]*r[4] + a[1]*r[3] + a[2]*r[2] + a[3]*r[1] + a[4]*r[0]
	var h limbs
	d1 += d0 >> 26
	h[0] = d0 & limbMask
	d2 += d1 >> 26
	h[1] = d1 & limbMask
	d3 += d2 >> 26
	h[2] = d2 & limbMask
	d4 += d3 >> 26
	h[3] = d3 & limbMask
	c := d4 >> 26
	h[4] = d4 & limbMask
	h[0] += c * 5
	h[1] += h[0] >> 26
	h[0] &= limbMask
	return h
}

// rs is r's limbs and 5 times limbs 1..4, the layout of polyTable.
func (r limbs) rs() [9]uint64 {
	return [9]uint64{r[0], r[1], r[2], r[3], r[4], 5 * r[1], 5 * r[2], 5 * r[3], 5 * r[4]}
}

// polyBlocks absorbs whole and partial 16-byte blocks of msg into h.
func polyBlocks(h limbs, r limbs, msg []byte) limbs {
	for len(msg) >= 16 {
		m := split(binary.LittleEndian.Uint64(msg), binary.LittleEndian.Uint64(msg[8:]), 1<<24)
		for i := range h {
			h[i] += m[i]
		}
		h = h.mul(r)
		msg = msg[16:]
	}
	if len(msg) > 0 {
		var b [16]byte
		copy(b[:], msg)
		b[len(msg)] = 1
		m := split(binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:]), 0)
		for i := range h {
			h[i] += m[i]
		}
		h = h.mul(r)
	}
	return h
}

// polyFinish reduces h mod 2^130-5 and adds s (key[16:32]) mod 2^128.
func polyFinish(h limbs, key *[32]byte) [16]byte {
	// h as a 192-bit number w0 + w1<<64 + w2<<128 (limbs may exceed 26
	// bits: add, don't or)
	var w0, w1, w2, c uint64
	addAt := func(lo, hi uint64) { // (lo + hi<<64) into w
		w0, c = bits.Add64(w0, lo, 0)
		w1, c = bits.Add64(w1, hi, c)
		w2 += c
	}
	addAt(h[0], 0)
	addAt(h[1]<<26, h[1]>>38)
	addAt(h[2]<<52, h[2]>>12)
	addAt(0, h[3]<<14)
	w2 += h[3] >> 50
	addAt(0, h[4]<<40)
	w2 += h[4] >> 24
	// w mod 2^130-5, twice: afterwards w < 2^130
	for range 2 {
		c5 := (w2 >> 2) * 5
		w2 &= 3
		addAt(c5, 0)
	}
	// subtract p if w >= p, in constant time
	t0, b := bits.Sub64(w0, 0xfffffffffffffffb, 0)
	t1, b := bits.Sub64(w1, 0xffffffffffffffff, b)
	_, b = bits.Sub64(w2, 3, b)
	m := b - 1 // all ones when there was no borrow: w >= p
	w0 = w0&^m | t0&m
	w1 = w1&^m | t1&m
	w0, c = bits.Add64(w0, binary.LittleEndian.Uint64(key[16:]), 0)
	w1, _ = bits.Add64(w1, binary.LittleEndian.Uint64(key[24:]), c)
	var tag [16]byte
	binary.LittleEndian.PutUint64(tag[:], w0)
	binary.LittleEndian.PutUint64(tag[8:], w1)
	return tag
}

// polySumLimbs is Poly1305 with the vector kernel for whole groups of 8
// blocks when vector is set, and this file's scalar code for the rest.
func polySumLimbs(msg []byte, key *[32]byte, vector bool) [16]byte {
	r := clampedR(key)
	var h limbs
	if groups := len(msg) / 128; vector && groups > 0 {
		var pw [9]limbs
		pw[1] = r
		for k := 2; k <= 8; k++ {
			pw[k] = pw[k-1].mul(r)
		}
		var t polyTable
		t.r8 = pw[8].rs()
		// Lane p holds blocks 8k+b with b = [0 4 1 5 2 6 3 7][p] and is
		// multiplied by r^(8-b) at the end.
		for p, e := range [8]int{8, 4, 7, 3, 6, 2, 5, 1} {
			for i, v := range pw[e].rs() {
				t.lanes[i][p] = v
			}
		}
		var out [5][8]uint64
		polyBlocksAVX512(&msg[0], groups, &t, &out)
		for i := range h {
			for _, v := range out[i] {
				h[i] += v
			}
		}
		msg = msg[groups*128:]
	}
	return polyFinish(polyBlocks(h, r, msg), key)
}

// polySum is the Poly1305 tag of msg.
func polySum(im impl, out *[16]byte, msg []byte, key *[32]byte) {
	if im == implAVX512 && len(msg) >= polyVectorMin {
		*out = polySumLimbs(msg, key, true)
		return
	}
	poly1305.Sum(out, msg, key)
}

// polyVerify reports, in constant time, whether mac is msg's tag.
func polyVerify(im impl, mac *[16]byte, msg []byte, key *[32]byte) bool {
	var tag [16]byte
	polySum(im, &tag, msg, key)
	return subtle.ConstantTimeCompare(tag[:], mac[:]) == 1
}
