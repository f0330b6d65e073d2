//go:build amd64 && !purego

#include "textflag.h"

// Poly1305 over groups of 8 blocks, 8 lanes of 64-bit words per ZMM
// register, the accumulator in five 26-bit limbs per lane (VPMULUDQ
// multiplies the low 32 bits of each word). Lane p accumulates the blocks
// 8k+b(p), b = [0 4 1 5 2 6 3 7] (the order VPUNPCKL/HQDQ leave them in):
// H = H*r^8 + m each group; at the end lane p is multiplied by
// r^(8-b(p)) so that the sum of the lanes is the Poly1305 accumulator
// of all the blocks (see poly.go).

// limb mask and the 2^128 bit of a block, in limb 4
DATA polyMask<>+0(SB)/8, $0x3ffffff
GLOBL polyMask<>(SB), RODATA|NOPTR, $8
DATA polyHibit<>+0(SB)/8, $0x1000000
GLOBL polyHibit<>(SB), RODATA|NOPTR, $8

// Message limbs of 8 blocks at SI into Z25..Z29 (m0..m4).
#define LOAD_MSG \
	VMOVDQU64 0(SI), Z21; \
	VMOVDQU64 64(SI), Z22; \
	VPUNPCKLQDQ Z22, Z21, Z23; \
	VPUNPCKHQDQ Z22, Z21, Z24; \
	VPANDQ Z14, Z23, Z25; \
	VPSRLQ $26, Z23, Z26; \
	VPANDQ Z14, Z26, Z26; \
	VPSRLQ $52, Z23, Z27; \
	VPSLLQ $12, Z24, Z30; \
	VPORQ Z30, Z27, Z27; \
	VPANDQ Z14, Z27, Z27; \
	VPSRLQ $14, Z24, Z28; \
	VPANDQ Z14, Z28, Z28; \
	VPSRLQ $40, Z24, Z29; \
	VPORQ Z15, Z29, Z29

// D (Z16..Z20) = H (Z0..Z4) * R, R given as r0..r4, s1..s4 (s = 5r) operands.
#define MUL(r0, r1, r2, r3, r4, s1, s2, s3, s4) \
	VPMULUDQ r0, Z0, Z16; \
	VPMULUDQ r1, Z0, Z17; \
	VPMULUDQ r2, Z0, Z18; \
	VPMULUDQ r3, Z0, Z19; \
	VPMULUDQ r4, Z0, Z20; \
	VPMULUDQ s4, Z1, Z30; \
	VPADDQ Z30, Z16, Z16; \
	VPMULUDQ r0, Z1, Z30; \
	VPADDQ Z30, Z17, Z17; \
	VPMULUDQ r1, Z1, Z30; \
	VPADDQ Z30, Z18, Z18; \
	VPMULUDQ r2, Z1, Z30; \
	VPADDQ Z30, Z19, Z19; \
	VPMULUDQ r3, Z1, Z30; \
	VPADDQ Z30, Z20, Z20; \
	VPMULUDQ s3, Z2, Z31; \
	VPADDQ Z31, Z16, Z16; \
	VPMULUDQ s4, Z2, Z31; \
	VPADDQ Z31, Z17, Z17; \
	VPMULUDQ r0, Z2, Z31; \
	VPADDQ Z31, Z18, Z18; \
	VPMULUDQ r1, Z2, Z31; \
	VPADDQ Z31, Z19, Z19; \
	VPMULUDQ r2, Z2, Z31; \
	VPADDQ Z31, Z20, Z20; \
	VPMULUDQ s2, Z3, Z30; \
	VPADDQ Z30, Z16, Z16; \
	VPMULUDQ s3, Z3, Z30; \
	VPADDQ Z30, Z17, Z17; \
	VPMULUDQ s4, Z3, Z30; \
	VPADDQ Z30, Z18, Z18; \
	VPMULUDQ r0, Z3, Z30; \
	VPADDQ Z30, Z19, Z19; \
	VPMULUDQ r1, Z3, Z30; \
	VPADDQ Z30, Z20, Z20; \
	VPMULUDQ s1, Z4, Z31; \
	VPADDQ Z31, Z16, Z16; \
	VPMULUDQ s2, Z4, Z31; \
	VPADDQ Z31, Z17, Z17; \
	VPMULUDQ s3, Z4, Z31; \
	VPADDQ Z31, Z18, Z18; \
	VPMULUDQ s4, Z4, Z31; \
	VPADDQ Z31, Z19, Z19; \
	VPMULUDQ r0, Z4, Z31; \
	VPADDQ Z31, Z20, Z20

// H = D with carries (limbs back to 26 bits, h1 a little more).
#define CARRY \
	VPSRLQ $26, Z16, Z30; \
	VPANDQ Z14, Z16, Z0; \
	VPADDQ Z30, Z17, Z17; \
	VPSRLQ $26, Z17, Z30; \
	VPANDQ Z14, Z17, Z1; \
	VPADDQ Z30, Z18, Z18; \
	VPSRLQ $26, Z18, Z30; \
	VPANDQ Z14, Z18, Z2; \
	VPADDQ Z30, Z19, Z19; \
	VPSRLQ $26, Z19, Z30; \
	VPANDQ Z14, Z19, Z3; \
	VPADDQ Z30, Z20, Z20; \
	VPSRLQ $26, Z20, Z30; \
	VPANDQ Z14, Z20, Z4; \
	VPSLLQ $2, Z30, Z31; \
	VPADDQ Z31, Z30, Z30; \
	VPADDQ Z30, Z0, Z0; \
	VPSRLQ $26, Z0, Z30; \
	VPANDQ Z14, Z0, Z0; \
	VPADDQ Z30, Z1, Z1

// func polyBlocksAVX512(msg *byte, groups int, t *polyTable, out *[5][8]uint64)
// groups >= 1 groups of 8 blocks (128 bytes).
TEXT ·polyBlocksAVX512(SB), NOSPLIT, $0-32
	MOVQ msg+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVQ t+16(FP), DX
	MOVQ out+24(FP), DI
	VPBROADCASTQ polyMask<>(SB), Z14
	VPBROADCASTQ polyHibit<>(SB), Z15
	// r^8 in every lane
	VPBROADCASTQ 0(DX), Z5
	VPBROADCASTQ 8(DX), Z6
	VPBROADCASTQ 16(DX), Z7
	VPBROADCASTQ 24(DX), Z8
	VPBROADCASTQ 32(DX), Z9
	VPBROADCASTQ 40(DX), Z10
	VPBROADCASTQ 48(DX), Z11
	VPBROADCASTQ 56(DX), Z12
	VPBROADCASTQ 64(DX), Z13
	// H = first group
	LOAD_MSG
	VMOVDQA64 Z25, Z0
	VMOVDQA64 Z26, Z1
	VMOVDQA64 Z27, Z2
	VMOVDQA64 Z28, Z3
	VMOVDQA64 Z29, Z4
	ADDQ $128, SI
	DECQ CX
	JZ last

loop:
	LOAD_MSG
	MUL(Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13)
	CARRY
	VPADDQ Z25, Z0, Z0
	VPADDQ Z26, Z1, Z1
	VPADDQ Z27, Z2, Z2
	VPADDQ Z28, Z3, Z3
	VPADDQ Z29, Z4, Z4
	ADDQ $128, SI
	DECQ CX
	JNZ loop

last:
	// each lane times its own power of r (table rows at 128(DX)...)
	VMOVDQU64 128(DX), Z5
	VMOVDQU64 192(DX), Z6
	VMOVDQU64 256(DX), Z7
	VMOVDQU64 320(DX), Z8
	VMOVDQU64 384(DX), Z9
	VMOVDQU64 448(DX), Z10
	VMOVDQU64 512(DX), Z11
	VMOVDQU64 576(DX), Z12
	VMOVDQU64 640(DX), Z13
	MUL(Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13)
	CARRY
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	VMOVDQU64 Z4, 256(DI)
	VZEROUPPER
	RET
