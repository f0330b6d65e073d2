//go:build amd64 && !purego

package secretbox

import "golang.org/x/sys/cpu"

//go:generate python3 gen.py

// xorBlocks16AVX512 XORs chunks*1024 bytes of in with the Salsa20
// keystream for state (16 blocks per chunk) into out. The low counter
// word state[8] must not wrap within the call.
//
//go:noescape
func xorBlocks16AVX512(out, in *byte, chunks int, state *[16]uint32)

// bestImpl is the fastest keystream implementation this CPU (and OS)
// supports.
func bestImpl() impl {
	if cpu.X86.HasAVX512F {
		return implAVX512
	}
	return implGeneric
}
