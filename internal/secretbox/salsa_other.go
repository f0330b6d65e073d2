//go:build !amd64 || purego

package secretbox

func bestImpl() impl { return implGeneric }

func supportedImpls() []impl { return []impl{implGeneric} }

func xorBlocks8AVX2(out, in *byte, chunks int, state *[16]uint32) {
	panic("secretbox: AVX2 code on a build without it")
}

func xorBlocks16AVX512(out, in *byte, chunks int, state *[16]uint32) {
	panic("secretbox: AVX-512 code on a build without it")
}

func polyBlocksAVX512(msg *byte, groups int, t *polyTable, out *[5][8]uint64) {
	panic("secretbox: AVX-512 code on a build without it")
}
