//go:build !purego

#include "textflag.h"

// AVX2+FMA kernels of the selective scan over the lane layout (see scan_kern.go: vectors of 8
// channels; states (nv, N, 8)). Each mirrors the Go function of the same name without "AVX2".
//
// Exponentials are 2^t with t clamped to [−126, 127] (so results stay normal: no denormals, no Inf):
// t = k + f (k = round(t), |f| ≤ 1/2), 2^f by a degree-5 polynomial fitted at Chebyshev nodes
// (relative error < 3e-7), 2^k added into the exponent bits. NaN stays NaN.

// Scalar constants, broadcast where used.
DATA scanc<>+0(SB)/4, $0xc2fc0000  // −126
DATA scanc<>+4(SB)/4, $0x42fe0000  // 127
DATA scanc<>+8(SB)/4, $0x3f800000  // c0 = 1
DATA scanc<>+12(SB)/4, $0x3f317218 // c1
DATA scanc<>+16(SB)/4, $0x3e75fc83 // c2
DATA scanc<>+20(SB)/4, $0x3d6357b6 // c3
DATA scanc<>+24(SB)/4, $0x3c1e8838 // c4
DATA scanc<>+28(SB)/4, $0x3aaf8448 // c5
DATA scanc<>+32(SB)/4, $0xbfb8aa3b // −log2(e)
DATA scanc<>+36(SB)/4, $0x3fb8aa3b // log2(e)
DATA scanc<>+40(SB)/4, $0x3f800000 // 1
DATA scanc<>+44(SB)/4, $0x40000000 // 2
DATA scanc<>+48(SB)/4, $0x41a00000 // 20
DATA scanc<>+52(SB)/4, $0x7fffffff // |x| mask
DATA scanc<>+56(SB)/4, $0x3eaaaaab // 1/3
DATA scanc<>+60(SB)/4, $0x3e4ccccd // 1/5
DATA scanc<>+64(SB)/4, $0x3e124925 // 1/7
DATA scanc<>+68(SB)/4, $0x3de38e39 // 1/9
DATA scanc<>+72(SB)/4, $0x3dba2e8c // 1/11
DATA scanc<>+76(SB)/4, $0x3d9d89d9 // 1/13
DATA scanc<>+80(SB)/4, $0x3f317218 // ln2
GLOBL scanc<>(SB), RODATA|NOPTR, $84

// LOADC broadcasts the exponential's constants: Y8..Y12 = c5..c1, Y13 = 1, Y14 = 127, Y15 = −126.
#define LOADC \
	VBROADCASTSS scanc<>+28(SB), Y8; \
	VBROADCASTSS scanc<>+24(SB), Y9; \
	VBROADCASTSS scanc<>+20(SB), Y10; \
	VBROADCASTSS scanc<>+16(SB), Y11; \
	VBROADCASTSS scanc<>+12(SB), Y12; \
	VBROADCASTSS scanc<>+8(SB), Y13; \
	VBROADCASTSS scanc<>+4(SB), Y14; \
	VBROADCASTSS scanc<>+0(SB), Y15

// EXP2 sets P = 2^T (T and K are clobbered); needs LOADC's registers.
#define EXP2(T, K, P) \
	VMAXPS T, Y15, T; \
	VMINPS T, Y14, T; \
	VROUNDPS $0, T, K; \
	VSUBPS K, T, T; \
	VMOVAPS Y9, P; \
	VFMADD231PS Y8, T, P; \
	VFMADD213PS Y10, T, P; \
	VFMADD213PS Y11, T, P; \
	VFMADD213PS Y12, T, P; \
	VFMADD213PS Y13, T, P; \
	VCVTPS2DQ K, K; \
	VPSLLD $23, K, K; \
	VPADDD K, P, P

// func scanFwdTokAVX2(nv, n int, at, hin, hout, ab, dl, u, dsk, bm, cm, y *float32)
// Per vector v of 8 channels: δ, x = dl, u rows; for each state n: e = 2^(δ·at),
// hout = e·hin + δ·x·bm[n] (ab ← e when ab ≠ nil), acc += hout·cm[n]; y = acc + dsk·x.
TEXT ·scanFwdTokAVX2(SB), NOSPLIT, $0-96
	LOADC
	MOVQ at+16(FP), R8
	MOVQ hin+24(FP), R9
	MOVQ hout+32(FP), R10
	MOVQ ab+40(FP), R11
	MOVQ n+8(FP), CX
	SHLQ $2, CX
	MOVQ bm+72(FP), DX
	ADDQ CX, DX
	MOVQ cm+80(FP), R12
	ADDQ CX, R12
	NEGQ CX
	XORQ DI, DI
	XORQ BX, BX

fwdv:
	MOVQ dl+48(FP), AX
	VMOVUPS (AX)(BX*1), Y0
	MOVQ u+56(FP), AX
	VMOVUPS (AX)(BX*1), Y1
	MOVQ dsk+64(FP), AX
	VMULPS (AX)(BX*1), Y1, Y2
	VMULPS Y0, Y1, Y1
	MOVQ CX, SI

fwdn:
	VMULPS (R8)(DI*1), Y0, Y3
	EXP2(Y3, Y4, Y5)
	TESTQ R11, R11
	JZ fwdnoab
	VMOVUPS Y5, (R11)(DI*1)

fwdnoab:
	VBROADCASTSS (DX)(SI*1), Y6
	VMULPS Y6, Y1, Y6
	VFMADD231PS (R9)(DI*1), Y5, Y6
	VMOVUPS Y6, (R10)(DI*1)
	VBROADCASTSS (R12)(SI*1), Y7
	VFMADD231PS Y7, Y6, Y2
	ADDQ $32, DI
	ADDQ $4, SI
	JNZ fwdn

	MOVQ y+88(FP), AX
	VMOVUPS Y2, (AX)(BX*1)
	ADDQ $32, BX
	MOVQ nv+0(FP), AX
	SHLQ $5, AX
	CMPQ BX, AX
	JLT fwdv
	VZEROUPPER
	RET

// func scanBwdTokAVX2(nv, n int, at, hp, h, ab, carry, dA, dl, u, dy, dsp, dsk, bm, cm, dbc, du, dr, dD, dBias *float32)
// Per vector v: for each state n: dh = carry + dy·cm[n]; dbc[n][1] += dy·h; carry = ab·dh;
// q = carry·hp; dA += δ·q; sA += at·q; dbc[n][0] += dh·δ·x; sB += dh·bm[n]. Then per lane
// du = dy·dsk + δ·sB, dr = (ln2·sA + x·sB)·dsp, dBias += dr, dD += dy·x.
TEXT ·scanBwdTokAVX2(SB), NOSPLIT, $0-160
	VBROADCASTSS scanc<>+80(SB), Y15
	MOVQ at+16(FP), R8
	MOVQ hp+24(FP), R9
	MOVQ h+32(FP), R10
	MOVQ ab+40(FP), R11
	MOVQ carry+48(FP), R12
	MOVQ dA+56(FP), R13
	MOVQ n+8(FP), SI
	SHLQ $2, SI
	MOVQ bm+104(FP), DX
	ADDQ SI, DX
	MOVQ cm+112(FP), R14
	ADDQ SI, R14
	XORQ DI, DI
	XORQ BX, BX

bwdv:
	MOVQ dl+64(FP), AX
	VMOVUPS (AX)(BX*1), Y0
	MOVQ u+72(FP), AX
	VMOVUPS (AX)(BX*1), Y13
	VMULPS Y13, Y0, Y1
	MOVQ dy+80(FP), AX
	VMOVUPS (AX)(BX*1), Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	MOVQ dbc+120(FP), CX
	MOVQ n+8(FP), SI
	SHLQ $2, SI
	NEGQ SI

bwdn:
	VBROADCASTSS (DX)(SI*1), Y5
	VBROADCASTSS (R14)(SI*1), Y6
	VMOVUPS (R12)(DI*1), Y7
	VFMADD231PS Y6, Y2, Y7
	VMOVUPS 32(CX), Y8
	VFMADD231PS (R10)(DI*1), Y2, Y8
	VMOVUPS Y8, 32(CX)
	VMULPS (R11)(DI*1), Y7, Y10
	VMOVUPS Y10, (R12)(DI*1)
	VMULPS (R9)(DI*1), Y10, Y11
	VMOVUPS (R13)(DI*1), Y12
	VFMADD231PS Y11, Y0, Y12
	VMOVUPS Y12, (R13)(DI*1)
	VFMADD231PS (R8)(DI*1), Y11, Y3
	VMOVUPS (CX), Y9
	VFMADD231PS Y7, Y1, Y9
	VMOVUPS Y9, (CX)
	VFMADD231PS Y5, Y7, Y4
	ADDQ $32, DI
	ADDQ $64, CX
	ADDQ $4, SI
	JNZ bwdn

	MOVQ dsk+96(FP), AX
	VMULPS (AX)(BX*1), Y2, Y5
	VFMADD231PS Y4, Y0, Y5
	MOVQ du+128(FP), AX
	VMOVUPS Y5, (AX)(BX*1)
	VMULPS Y4, Y13, Y6
	VFMADD231PS Y15, Y3, Y6
	MOVQ dsp+88(FP), AX
	VMULPS (AX)(BX*1), Y6, Y6
	MOVQ dr+136(FP), AX
	VMOVUPS Y6, (AX)(BX*1)
	MOVQ dBias+152(FP), AX
	VADDPS (AX)(BX*1), Y6, Y6
	VMOVUPS Y6, (AX)(BX*1)
	MOVQ dD+144(FP), AX
	VMOVUPS (AX)(BX*1), Y7
	VFMADD231PS Y13, Y2, Y7
	VMOVUPS Y7, (AX)(BX*1)
	ADDQ $32, BX
	MOVQ nv+0(FP), AX
	SHLQ $5, AX
	CMPQ BX, AX
	JLT bwdv
	VZEROUPPER
	RET

// func scanReduceAVX2(n int, dB, dC, dbc *float32)
// dB[i] += Σ lanes dbc[i][0], dC[i] += Σ lanes dbc[i][1]; dbc is cleared.
TEXT ·scanReduceAVX2(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), SI
	MOVQ dB+8(FP), DX
	MOVQ dC+16(FP), R8
	MOVQ dbc+24(FP), CX
	VXORPS Y15, Y15, Y15

redn:
	VMOVUPS (CX), Y0
	VMOVUPS 32(CX), Y1
	VHADDPS Y1, Y0, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPS X3, X2, X2
	VHADDPS X2, X2, X2
	VADDSS (DX), X2, X3
	VMOVSS X3, (DX)
	VMOVSHDUP X2, X4
	VADDSS (R8), X4, X4
	VMOVSS X4, (R8)
	VMOVUPS Y15, (CX)
	VMOVUPS Y15, 32(CX)
	ADDQ $64, CX
	ADDQ $4, DX
	ADDQ $4, R8
	DECQ SI
	JNZ redn
	VZEROUPPER
	RET

// func scanSoftplusAVX2(nv int, dl, dsp, raw, bias *float32)
// r = raw + bias; e = e^−|r|; dl = max(r, 0) + log1p(e) (log1p(e) = 2·atanh(e/(2+e)) as a series),
// or r above 20; dsp = sigmoid(r) = 1/(1+e) for r ≥ 0, e/(1+e) below.
TEXT ·scanSoftplusAVX2(SB), NOSPLIT, $0-40
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dl+8(FP), DI
	MOVQ dsp+16(FP), R8
	MOVQ raw+24(FP), SI
	MOVQ bias+32(FP), DX

spv:
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VBROADCASTSS scanc<>+52(SB), Y1
	VANDPS Y1, Y0, Y1
	VBROADCASTSS scanc<>+32(SB), Y2
	VMULPS Y2, Y1, Y3
	EXP2(Y3, Y4, Y5)
	VBROADCASTSS scanc<>+44(SB), Y6
	VADDPS Y6, Y5, Y6
	VDIVPS Y6, Y5, Y6
	VMULPS Y6, Y6, Y7
	VBROADCASTSS scanc<>+76(SB), Y1
	VBROADCASTSS scanc<>+72(SB), Y2
	VFMADD213PS Y2, Y7, Y1
	VBROADCASTSS scanc<>+68(SB), Y2
	VFMADD213PS Y2, Y7, Y1
	VBROADCASTSS scanc<>+64(SB), Y2
	VFMADD213PS Y2, Y7, Y1
	VBROADCASTSS scanc<>+60(SB), Y2
	VFMADD213PS Y2, Y7, Y1
	VBROADCASTSS scanc<>+56(SB), Y2
	VFMADD213PS Y2, Y7, Y1
	VFMADD213PS Y13, Y7, Y1
	VADDPS Y6, Y6, Y6
	VMULPS Y6, Y1, Y1
	VXORPS Y2, Y2, Y2
	VMAXPS Y0, Y2, Y2
	VADDPS Y2, Y1, Y1
	VBROADCASTSS scanc<>+48(SB), Y2
	VCMPPS $0x1e, Y2, Y0, Y3
	VBLENDVPS Y3, Y0, Y1, Y1
	VMOVUPS Y1, (DI)
	VADDPS Y13, Y5, Y6
	VDIVPS Y6, Y13, Y6
	VMULPS Y5, Y6, Y7
	VBLENDVPS Y0, Y7, Y6, Y6
	VMOVUPS Y6, (R8)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNZ spv
	VZEROUPPER
	RET

// SIGMOID sets S = 1/(1 + e^−Z) (clobbers Y3, Y4, Y6); needs LOADC's registers.
#define SIGMOID(Z, S) \
	VBROADCASTSS scanc<>+32(SB), Y6; \
	VMULPS Y6, Z, Y3; \
	EXP2(Y3, Y4, S); \
	VADDPS Y13, S, S; \
	VDIVPS S, Y13, S

// func scanGateAVX2(nv int, out, y, z *float32)
// out = y·z·sigmoid(z).
TEXT ·scanGateAVX2(SB), NOSPLIT, $0-32
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ out+8(FP), DI
	MOVQ y+16(FP), SI
	MOVQ z+24(FP), DX

gatev:
	VMOVUPS (DX), Y0
	SIGMOID(Y0, Y5)
	VMULPS Y0, Y5, Y5
	VMULPS (SI), Y5, Y5
	VMOVUPS Y5, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNZ gatev
	VZEROUPPER
	RET

// func scanGateBwdAVX2(nv int, dy, dz, dout, ys, z *float32)
// s = sigmoid(z): dy = dout·z·s, dz = dout·ys·s·(1 + z·(1 − s)).
TEXT ·scanGateBwdAVX2(SB), NOSPLIT, $0-48
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dy+8(FP), DI
	MOVQ dz+16(FP), R8
	MOVQ dout+24(FP), SI
	MOVQ ys+32(FP), R9
	MOVQ z+40(FP), DX

gbv:
	VMOVUPS (DX), Y0
	SIGMOID(Y0, Y5)
	VMOVUPS (SI), Y6
	VMULPS Y0, Y5, Y7
	VMULPS Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	VSUBPS Y5, Y13, Y1
	VFMADD213PS Y13, Y0, Y1
	VMULPS Y5, Y1, Y1
	VMULPS (R9), Y1, Y1
	VMULPS Y6, Y1, Y1
	VMOVUPS Y1, (R8)
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, DX
	DECQ CX
	JNZ gbv
	VZEROUPPER
	RET


// func scanPrefetchAVX2(p *float32, n int)
// Prefetches the cache lines holding p[0:n] (n ≥ 1) into all cache levels.
TEXT ·scanPrefetchAVX2(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), CX
	LEAQ (AX)(CX*4), CX
	ANDQ $-64, AX

pfl:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	CMPQ AX, CX
	JLT pfl
	RET
