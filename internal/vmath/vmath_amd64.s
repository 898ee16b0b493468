//go:build !purego

#include "textflag.h"

// AVX2+FMA kernels over nv vectors of 8 float32 (the Go wrappers in vmath.go handle lengths and
// tails). Each mirrors the Go function of the same name in vmath.go; the algorithms are identical
// except for fused multiply-adds, so results agree to an ulp or two.
//
// e^x: x clamped to [−104, 89] (NaN passes: VMAXPS/VMINPS return their second source when either
// is NaN), k = round(x·log2e), r = x − k·ln2 in two FMA steps (Cody–Waite), e^r by Cephes' expf
// polynomial, then scaled by 2^⌊k/2⌋ and 2^(k−⌊k/2⌋): two normal factors, so underflow rounds to
// denormals and zero and overflow gives +Inf, as IEEE multiplication does.

#define VEC(name, bits) \
	DATA name+0(SB)/4, bits; DATA name+4(SB)/4, bits; DATA name+8(SB)/4, bits; DATA name+12(SB)/4, bits; \
	DATA name+16(SB)/4, bits; DATA name+20(SB)/4, bits; DATA name+24(SB)/4, bits; DATA name+28(SB)/4, bits; \
	GLOBL name(SB), RODATA|NOPTR, $32

VEC(vlo<>, $0xc2d00000)      // −104
VEC(vhi<>, $0x42b20000)      // 89
VEC(vone<>, $0x3f800000)     // 1
VEC(vlog2e<>, $0x3fb8aa3b)   // log2(e)
VEC(vln2hi<>, $0x3f317200)   // ln2 high part (15 bits)
VEC(vln2lo<>, $0x35bfbe8e)   // ln2 − ln2hi
VEC(vp6<>, $0x39506967)      // 1.9875691500e-4
VEC(vp5<>, $0x3ab743ce)      // 1.3981999507e-3
VEC(vp4<>, $0x3c088908)      // 8.3334519073e-3
VEC(vp3<>, $0x3d2aa9c1)      // 4.1665795894e-2
VEC(vp2<>, $0x3e2aaaaa)      // 1.6666665459e-1
VEC(vp1<>, $0x3f000000)      // 5.0000001201e-1
VEC(vbias<>, $0x0000007f)    // 127 (int32)
VEC(vsign<>, $0x80000000)    // sign bit
VEC(vsqrt2m1<>, $0x3ed413cd) // √2 − 1
VEC(vtwo<>, $0x40000000)     // 2
VEC(vln2<>, $0x3f317218)     // ln2
VEC(vq9<>, $0x3de38e39)      // 1/9
VEC(vq7<>, $0x3e124925)      // 1/7
VEC(vq5<>, $0x3e4ccccd)      // 1/5
VEC(vq3<>, $0x3eaaaaab)      // 1/3
VEC(vtwenty<>, $0x41a00000)  // 20

// LOADC: Y15 = −104, Y14 = 89, Y13 = 1.
#define LOADC \
	VMOVUPS vlo<>(SB), Y15; \
	VMOVUPS vhi<>(SB), Y14; \
	VMOVUPS vone<>(SB), Y13

// EXP sets P = e^X; X, K and T are clobbered.
#define EXP(X, K, T, P) \
	VMAXPS X, Y15, X; \
	VMINPS X, Y14, X; \
	VMULPS vlog2e<>(SB), X, K; \
	VROUNDPS $0, K, K; \
	VFNMADD231PS vln2hi<>(SB), K, X; \
	VFNMADD231PS vln2lo<>(SB), K, X; \
	VMOVUPS vp6<>(SB), P; \
	VFMADD213PS vp5<>(SB), X, P; \
	VFMADD213PS vp4<>(SB), X, P; \
	VFMADD213PS vp3<>(SB), X, P; \
	VFMADD213PS vp2<>(SB), X, P; \
	VFMADD213PS vp1<>(SB), X, P; \
	VMULPS X, X, T; \
	VFMADD213PS X, T, P; \
	VADDPS Y13, P, P; \
	VCVTPS2DQ K, K; \
	VPSRAD $1, K, T; \
	VPSUBD T, K, K; \
	VPADDD vbias<>(SB), T, T; \
	VPSLLD $23, T, T; \
	VPADDD vbias<>(SB), K, K; \
	VPSLLD $23, K, K; \
	VMULPS T, P, P; \
	VMULPS K, P, P

// SIGMOID sets Y5 = σ(Y0) (Y0 kept; Y1, Y2 clobbered): e = e^−|x|, σ = 1/(1+e) for x ≥ 0 and
// e/(1+e) for x < 0 (selected by the sign bit), so neither side cancels or overflows. It leaves
// Y3 = 1/(1+e) and Y4 = e/(1+e), so 1 − σ(x) = σ(−x) is available without cancellation (ONEMS).
#define SIGMOID \
	VORPS vsign<>(SB), Y0, Y1; \
	EXP(Y1, Y2, Y3, Y4); \
	VADDPS Y13, Y4, Y3; \
	VDIVPS Y3, Y13, Y3; \
	VMULPS Y3, Y4, Y4; \
	VBLENDVPS Y0, Y4, Y3, Y5

// ONEMS sets Y6 = 1 − σ(Y0) after SIGMOID.
#define ONEMS VBLENDVPS Y0, Y3, Y4, Y6

// func expAVX2(nv int, dst, x *float32)
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ x+16(FP), SI

loop:
	VMOVUPS (SI), Y0
	EXP(Y0, Y1, Y2, Y3)
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func sigmoidAVX2(nv int, dst, x *float32)
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ x+16(FP), SI

loop:
	VMOVUPS (SI), Y0
	SIGMOID
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func siluAVX2(nv int, dst, x *float32)
// dst = x·σ(x).
TEXT ·siluAVX2(SB), NOSPLIT, $0-24
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ x+16(FP), SI

loop:
	VMOVUPS (SI), Y0
	SIGMOID
	VMULPS Y0, Y5, Y5
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func siluBwdAVX2(nv int, dx, dout, x *float32)
// dx = dout·σ(x)·(1 + x·(1 − σ(x))).
TEXT ·siluBwdAVX2(SB), NOSPLIT, $0-32
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dx+8(FP), DI
	MOVQ dout+16(FP), DX
	MOVQ x+24(FP), SI

loop:
	VMOVUPS (SI), Y0
	SIGMOID
	ONEMS
	VFMADD213PS Y13, Y0, Y6
	VMULPS Y5, Y6, Y6
	VMULPS (DX), Y6, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func swigluAVX2(nv int, out, a, b *float32)
// out = a·σ(a)·b.
TEXT ·swigluAVX2(SB), NOSPLIT, $0-32
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ out+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX

loop:
	VMOVUPS (SI), Y0
	SIGMOID
	VMULPS Y0, Y5, Y5
	VMULPS (DX), Y5, Y5
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func swigluBwdAVX2(nv int, da, db, dout, a, b *float32)
// s = σ(a): da = dout·b·s·(1 + a·(1 − s)), db = dout·a·s. All inputs of a vector are loaded
// before its outputs are stored, so outputs may alias inputs.
TEXT ·swigluBwdAVX2(SB), NOSPLIT, $0-48
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ da+8(FP), DI
	MOVQ db+16(FP), R8
	MOVQ dout+24(FP), DX
	MOVQ a+32(FP), SI
	MOVQ b+40(FP), R9

loop:
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y7
	VMOVUPS (R9), Y8
	SIGMOID
	VMULPS Y7, Y8, Y8
	VMULPS Y5, Y8, Y8
	ONEMS
	VFMADD213PS Y13, Y0, Y6
	VMULPS Y8, Y6, Y6
	VMULPS Y7, Y0, Y9
	VMULPS Y5, Y9, Y9
	VMOVUPS Y6, (DI)
	VMOVUPS Y9, (R8)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R9
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func softplusAVX2(nv int, dst, x *float32)
// dst = max(x, 0) + log1p(e^−|x|), and x above 20. log1p(t), 0 ≤ t ≤ 1: 2·atanh(s) with
// s = t/(t+2), or ln2 + 2·atanh(s) with s = (t−1)/(t+3) for t > √2−1, so |s| ≤ 0.172 and
// 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9) to 1e-9.
TEXT ·softplusAVX2(SB), NOSPLIT, $0-24
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ x+16(FP), SI
	VXORPS Y12, Y12, Y12

loop:
	VMOVUPS (SI), Y0
	VORPS vsign<>(SB), Y0, Y1
	EXP(Y1, Y2, Y3, Y4)
	VCMPPS $0x0e, vsqrt2m1<>(SB), Y4, Y5
	VANDPS Y13, Y5, Y6
	VSUBPS Y6, Y4, Y7
	VADDPS vtwo<>(SB), Y4, Y8
	VADDPS Y6, Y8, Y8
	VDIVPS Y8, Y7, Y7
	VMULPS Y7, Y7, Y8
	VMOVUPS vq9<>(SB), Y9
	VFMADD213PS vq7<>(SB), Y8, Y9
	VFMADD213PS vq5<>(SB), Y8, Y9
	VFMADD213PS vq3<>(SB), Y8, Y9
	VMULPS Y7, Y8, Y8
	VFMADD213PS Y7, Y8, Y9
	VADDPS Y9, Y9, Y9
	VANDPS vln2<>(SB), Y5, Y6
	VADDPS Y6, Y9, Y9
	VMAXPS Y0, Y12, Y10
	VADDPS Y9, Y10, Y10
	VCMPPS $0x0e, vtwenty<>(SB), Y0, Y5
	VBLENDVPS Y5, Y0, Y10, Y10
	VMOVUPS Y10, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func softplusBwdAVX2(nv int, dx, dout, x *float32)
// dx = dout·σ(x), and dout for x above 20.
TEXT ·softplusBwdAVX2(SB), NOSPLIT, $0-32
	LOADC
	MOVQ nv+0(FP), CX
	MOVQ dx+8(FP), DI
	MOVQ dout+16(FP), DX
	MOVQ x+24(FP), SI

loop:
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y7
	SIGMOID
	VMULPS Y7, Y5, Y5
	VCMPPS $0x0e, vtwenty<>(SB), Y0, Y6
	VBLENDVPS Y6, Y7, Y5, Y5
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func mulAddAVX2(nv int, dst, a, b *float32)
// dst += a·b (one rounding: fused multiply-add).
TEXT ·mulAddAVX2(SB), NOSPLIT, $0-32
	MOVQ nv+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX

loop:
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	VFMADD213PS (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-4
	MOVL $0, CX
	BYTE $0x0f; BYTE $0x01; BYTE $0xd0 // XGETBV
	MOVL AX, eax+0(FP)
	RET
