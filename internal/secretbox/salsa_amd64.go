//go:build amd64 && !purego

package secretbox

import "golang.org/x/sys/cpu"

//go:generate python3 gen.py
//go:generate python3 gen_avx2.py

// xorBlocks16AVX512 XORs chunks*1024 bytes of in with the Salsa20
// keystream for state (16 blocks per chunk) into out. The low counter
// word state[8] must not wrap within the call.
//
//go:noescape
func xorBlocks16AVX512(out, in *byte, chunks int, state *[16]uint32)

// xorBlocks8AVX2 is the same with 8 blocks (512 bytes) per chunk.
//
//go:noescape
func xorBlocks8AVX2(out, in *byte, chunks int, state *[16]uint32)

// supportedImpls are the implementations this CPU (and OS) can run,
// fastest first (tests run them all).
func supportedImpls() []impl {
	var out []impl
	if cpu.X86.HasAVX512F {
		out = append(out, implAVX512)
	}
	if cpu.X86.HasAVX2 {
		out = append(out, implAVX2)
	}
	return append(out, implGeneric)
}

// bestImpl is the fastest keystream implementation this CPU (and OS)
// supports.
func bestImpl() impl {
	switch {
	case cpu.X86.HasAVX512F:
		return implAVX512
	case cpu.X86.HasAVX2:
		return implAVX2
	}
	return implGeneric
}

// polyBlocksAVX512 runs Poly1305 over groups (>= 1) groups of 8 blocks
// of msg in 8 lanes and leaves each lane's accumulator, times its power
// of r, in out (see poly.go).
//
//go:noescape
func polyBlocksAVX512(msg *byte, groups int, t *polyTable, out *[5][8]uint64)
