package selectivescan

// Mamba-2 state-space dual (SSD): the chunked, GEMM-based scan.
//
// Glossary: B batch, L length, H heads, P head dim, G groups of heads sharing B and C
// (head h reads group h/(H/G)), N state size, Q chunk length (d.Chunk; L need not be a
// multiple), nC = ⌈L/Q⌉ chunks.
//
// Math per batch b and head h, token t (Δ = softplus(Dt + DtBias), softplus(x) = x above 20):
//
//	S_t = exp(Δ_t·A_h)·S_{t−1} + Δ_t·x_t⊗B_t    (S is P×N, S_{−1} = H0)
//	y_t = S_t·C_t + Dskip_h·x_t
//
// Chunked algorithm, per (b, group, chunk), with acum_i = Σ_{k≤i} Δ_k·A_h inside the chunk,
// e_i = exp(acum_i), E = exp(acum_last), T = tril(C·Bᵀ) (q×q, shared by the heads of a group):
//
//	Y_i    = e_i·(C_i·S_prevᵀ + Σ_{j≤i} T_ij·exp(−acum_j)·Δ_j·x_j) + D·x_i
//	S_end  = E·S_prev + Σ_j exp(acum_last − acum_j)·Δ_j·x_j⊗B_j
//
// The products are batched over all heads of the task (K = heads·P columns): the state is kept
// transposed as Sᵀ (N×K) and stacked over Xg = exp(−acum)·Δ·X (q×K) into W ((N+q)×K), so that
// the intra-chunk output (step 1) and the inter-chunk output (step 4) are ONE GEMM
// [C | T]·W, and the chunk state (step 2) is one GEMM Bᵀ·Xg. The factorisation
// exp(acum_i − acum_j) = e_i·exp(−acum_j) is used only when every |acum| in the chunk is at
// most ssdFactorMax, so no factor leaves float32 range; a head whose chunk decays more is
// handled "directly": its masked matrix M_ij = T_ij·exp(acum_i − acum_j)·Δ_j (exponent ≤ 0)
// is formed and multiplied per head, and its chunk state uses exp(acum_last − acum_j) ≤ 1.
//
// Saved for the backward pass: only the state at the start of every chunk, laid out
// (B, nC, H, N, P) (each head's state transposed); SSDSavedLen gives the length. The backward
// pass walks chunks in reverse per (b, group), recomputing Δ, the cumulative sums, C·Bᵀ and the
// chunk output from the saved state, and passes dS backwards.

import (
	"fmt"
	"math"
	"sync"

	"github.com/hybridlab/hybrid/internal/fmath"
	"github.com/hybridlab/hybrid/internal/par"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// SSDDims are the sizes of an SSD call. Chunk is the chunk length Q (any value ≥ 1).
type SSDDims struct{ B, L, H, P, G, N, Chunk int }

// SSDInputs are the SSD inputs; DtBias, Dskip and H0 may be nil (zero).
type SSDInputs struct {
	X      []float32 // (B, L, H, P)
	Dt     []float32 // (B, L, H) raw step sizes, before softplus
	DtBias []float32 // (H) or nil
	A      []float32 // (H) per-head decay, negative (the caller passes −exp(A_log))
	Bm, Cm []float32 // (B, L, G, N)
	Dskip  []float32 // (H) or nil
	H0     []float32 // (B, H, P, N) initial state or nil
}

// SSDGrads receives gradients; a nil field is not computed. DDtBias, DA and DDskip are
// parameter gradients and ACCUMULATE; DX, DDt, DBm, DCm and DH0 are ASSIGNED.
type SSDGrads struct {
	DX      []float32 // (B, L, H, P)
	DDt     []float32 // (B, L, H) gradient w.r.t. the raw Dt
	DDtBias []float32 // (H)
	DA      []float32 // (H)
	DBm     []float32 // (B, L, G, N)
	DCm     []float32 // (B, L, G, N)
	DDskip  []float32 // (H)
	DH0     []float32 // (B, H, P, N)
}

// ssdFactorMax bounds |acum| for the factored path: e^±40 stays far from float32 overflow
// (3.4e38) and from denormals, leaving ~1e21 of headroom for the values themselves.
const ssdFactorMax = 40

// SSDSavedLen is the length of the saved buffer: the chunk-start states, B·nC·H·N·P.
func SSDSavedLen(d SSDDims) int {
	if d.Chunk < 1 || d.L < 1 {
		return 0
	}
	return d.B * ssdChunks(d) * d.H * d.N * d.P
}

func ssdChunks(d SSDDims) int { return (d.L + d.Chunk - 1) / d.Chunk }

func ssdDimsErr(op string, d SSDDims, step bool) error {
	if d.B < 1 || d.H < 1 || d.P < 1 || d.G < 1 || d.N < 1 || (!step && (d.L < 1 || d.Chunk < 1)) {
		return fmt.Errorf("%s: sizes must be positive (B=%d L=%d H=%d P=%d G=%d N=%d Chunk=%d)", op, d.B, d.L, d.H, d.P, d.G, d.N, d.Chunk)
	}
	if d.H%d.G != 0 {
		return fmt.Errorf("%s: heads H=%d not divisible by groups G=%d", op, d.H, d.G)
	}
	return nil
}

// ssdArg describes one slice argument for validation.
type ssdArg struct {
	name     string
	n        int
	isNil    bool
	want     int
	formula  string
	optional bool
}

func ssdA[T float32 | float64](name string, s []T, want int, formula string, optional bool) ssdArg {
	return ssdArg{name, len(s), s == nil, want, formula, optional}
}

func ssdCheckArgs(op string, d SSDDims, args []ssdArg) error {
	for _, a := range args {
		if a.isNil && a.optional {
			continue
		}
		if a.n != a.want {
			return fmt.Errorf("%s: %s has length %d, want %s = %d (B=%d L=%d H=%d P=%d G=%d N=%d)",
				op, a.name, a.n, a.formula, a.want, d.B, d.L, d.H, d.P, d.G, d.N)
		}
	}
	return nil
}

func ssdInputArgs(in SSDInputs, d SSDDims) []ssdArg {
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	return []ssdArg{
		ssdA("X", in.X, B*L*H*P, "B·L·H·P", false),
		ssdA("Dt", in.Dt, B*L*H, "B·L·H", false),
		ssdA("DtBias", in.DtBias, H, "H", true),
		ssdA("A", in.A, H, "H", false),
		ssdA("Bm", in.Bm, B*L*G*N, "B·L·G·N", false),
		ssdA("Cm", in.Cm, B*L*G*N, "B·L·G·N", false),
		ssdA("Dskip", in.Dskip, H, "H", true),
		ssdA("H0", in.H0, B*H*P*N, "B·H·P·N", true),
	}
}

// ssdScratch is one worker's scratch; pooled across calls.
type ssdScratch struct {
	dt, acum, dacum, ddt []float32 // (heads, Q)
	direct               []bool    // (heads)
	cext, dcext          []float32 // (Q, N+Q): [C | tril(C·Bᵀ)] and its gradient
	w, dw                []float32 // (N+Q, K): [Sᵀ ; Xg] and its gradient
	m, dm                []float32 // (Q, Q) masked matrix of a direct head
	yp, dye, bd, xs      []float32 // (Q, K)
	dse                  []float32 // (N, K) dS_end transposed
	dbc                  []float32 // (Q, N)
	tdiag                []float32 // (Q) diagonal of C·Bᵀ
}

var ssdPool sync.Pool

func ssdGrow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func ssdGetScratch(d SSDDims, nh int, bwd bool) *ssdScratch {
	sc, _ := ssdPool.Get().(*ssdScratch)
	if sc == nil {
		sc = new(ssdScratch)
	}
	Q, N, K := d.Chunk, d.N, nh*d.P
	sc.dt, sc.acum = ssdGrow(sc.dt, nh*Q), ssdGrow(sc.acum, nh*Q)
	if cap(sc.direct) < nh {
		sc.direct = make([]bool, nh)
	}
	sc.direct = sc.direct[:nh]
	sc.cext = ssdGrow(sc.cext, Q*(N+Q))
	sc.w = ssdGrow(sc.w, (N+Q)*K)
	sc.m = ssdGrow(sc.m, Q*Q)
	sc.xs = ssdGrow(sc.xs, Q*K)
	sc.tdiag = ssdGrow(sc.tdiag, Q)
	if bwd {
		sc.dacum, sc.ddt = ssdGrow(sc.dacum, nh*Q), ssdGrow(sc.ddt, nh*Q)
		sc.dcext = ssdGrow(sc.dcext, Q*(N+Q))
		sc.dw = ssdGrow(sc.dw, (N+Q)*K)
		sc.dm = ssdGrow(sc.dm, Q*Q)
		sc.yp, sc.dye, sc.bd = ssdGrow(sc.yp, Q*K), ssdGrow(sc.dye, Q*K), ssdGrow(sc.bd, Q*K)
		sc.dse = ssdGrow(sc.dse, N*K)
		sc.dbc = ssdGrow(sc.dbc, Q*N)
	}
	return sc
}

// ssdSplit picks how many tasks share a group's heads: 1 unless there are fewer (b, group)
// pairs than workers. Task i covers batch b, group g and heads [h0, h1).
func ssdSplit(d SSDDims) int {
	hpg := d.H / d.G
	w := par.Workers()
	if d.B*d.G >= w {
		return 1
	}
	return min(hpg, (w+d.B*d.G-1)/(d.B*d.G))
}

func ssdTask(d SSDDims, nsplit, i int) (b, g, h0, h1 int) {
	hpg := d.H / d.G
	s := i % nsplit
	g = (i / nsplit) % d.G
	b = i / (nsplit * d.G)
	return b, g, g*hpg + s*hpg/nsplit, g*hpg + (s+1)*hpg/nsplit
}

// ssdChunkPrep computes Δ and the cumulative sums of Δ·A for heads [h0, h1) of chunk [t0, t0+q),
// marks heads whose decay is too large for the factored path, and fills cext = [C | tril(C·Bᵀ)]
// and the Xg rows of w (zero for direct heads).
func ssdChunkPrep(sc *ssdScratch, in SSDInputs, d SSDDims, b, g, h0, h1, t0, q int) {
	H, P, G, N, Q := d.H, d.P, d.G, d.N, d.Chunk
	K := (h1 - h0) * P
	for hh := range h1 - h0 {
		h := h0 + hh
		a, bias := in.A[h], float32(0)
		if in.DtBias != nil {
			bias = in.DtBias[h]
		}
		dt, acum := sc.dt[hh*Q:hh*Q+q], sc.acum[hh*Q:hh*Q+q]
		s, mx := float32(0), float32(0)
		for i := range q {
			v := fmath.Softplus(in.Dt[(b*d.L+t0+i)*H+h] + bias)
			dt[i] = v
			s += v * a
			acum[i] = s
			mx = max(mx, ssdAbs(s))
		}
		sc.direct[hh] = !(mx <= ssdFactorMax) // NaN goes the direct way too
	}
	ldbc, ldc := G*N, N+Q
	off := ((b*d.L+t0)*G + g) * N
	cm, bm := in.Cm[off:], in.Bm[off:]
	for i := range q {
		copy(sc.cext[i*ldc:i*ldc+N], cm[i*ldbc:i*ldbc+N])
	}
	blas32.Implementation().Sgemm(blas.NoTrans, blas.Trans, q, q, N, 1, cm, ldbc, bm, ldbc, 0, sc.cext[N:], ldc)
	for i := range q - 1 {
		clear(sc.cext[i*ldc+N+i+1 : i*ldc+N+q])
	}
	// Xg = exp(−acum_j)·Δ_j·x_j (|acum| ≤ ssdFactorMax here).
	ldx := H * P
	xb := in.X[(b*d.L+t0)*ldx+h0*P:]
	xg := sc.w[N*K:]
	for hh := range h1 - h0 {
		for i := range q {
			row := xg[i*K+hh*P : i*K+hh*P+P]
			if sc.direct[hh] {
				clear(row)
				continue
			}
			f := fmath.Exp(-sc.acum[hh*Q+i]) * sc.dt[hh*Q+i]
			xr := xb[i*ldx+hh*P : i*ldx+hh*P+P]
			for p, v := range xr {
				row[p] = f * v
			}
		}
	}
}

// ssdMask fills m (q×q, ld Q) with M_ij = T_ij·exp(acum_i − acum_j)·Δ_j for j ≤ i, else 0,
// reading T's diagonal from tdiag (the backward pass zeroes it in cext).
func ssdMask(m, cext, tdiag []float32, acum, dt []float32, q, N, Q int) {
	ldc := N + Q
	for i := range q {
		row := m[i*Q : i*Q+q]
		t := cext[i*ldc+N : i*ldc+N+q]
		ai := acum[i]
		for j := 0; j < i; j++ {
			row[j] = t[j] * fmath.Exp(ai-acum[j]) * dt[j]
		}
		row[i] = tdiag[i] * dt[i]
		clear(row[i+1:])
	}
}

func ssdAbs(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// SSDForward computes y (B, L, H, P) and, when hLast is non-nil, the final state (B, H, P, N).
// saved (length SSDSavedLen(d)) receives the chunk-start states for SSDBackward; pass nil for
// inference.
func SSDForward(y, hLast, saved []float32, in SSDInputs, d SSDDims) error {
	const op = "selectivescan.SSDForward"
	if err := ssdDimsErr(op, d, false); err != nil {
		return err
	}
	args := append(ssdInputArgs(in, d),
		ssdA("y", y, d.B*d.L*d.H*d.P, "B·L·H·P", false),
		ssdA("hLast", hLast, d.B*d.H*d.P*d.N, "B·H·P·N", true),
		ssdA("saved", saved, SSDSavedLen(d), "B·⌈L/Chunk⌉·H·N·P", true))
	if err := ssdCheckArgs(op, d, args); err != nil {
		return err
	}
	nsplit := ssdSplit(d)
	nhMax := (d.H/d.G + nsplit - 1) / nsplit
	scr := make([]*ssdScratch, par.Workers())
	par.Each(d.B*d.G*nsplit, func(wk, i int) {
		if scr[wk] == nil {
			scr[wk] = ssdGetScratch(d, nhMax, false)
		}
		b, g, h0, h1 := ssdTask(d, nsplit, i)
		ssdForwardTask(scr[wk], y, hLast, saved, in, d, b, g, h0, h1)
	})
	for _, sc := range scr {
		if sc != nil {
			ssdPool.Put(sc)
		}
	}
	return nil
}

func ssdForwardTask(sc *ssdScratch, y, hLast, saved []float32, in SSDInputs, d SSDDims, b, g, h0, h1 int) {
	L, H, P, G, N, Q := d.L, d.H, d.P, d.G, d.N, d.Chunk
	nh, nC := h1-h0, ssdChunks(d)
	K, ldx, ldbc, ldc := nh*P, H*P, G*N, N+Q
	impl := blas32.Implementation()
	st := sc.w[:N*K] // Sᵀ, (N, K)
	for hh := range nh {
		for n := range N {
			row := st[n*K+hh*P : n*K+hh*P+P]
			if in.H0 == nil {
				clear(row)
				continue
			}
			h0s := in.H0[(b*H+h0+hh)*P*N:]
			for p := range row {
				row[p] = h0s[p*N+n]
			}
		}
	}
	for c := range nC {
		t0 := c * Q
		q := min(Q, L-t0)
		if saved != nil {
			for hh := range nh {
				dst := saved[((b*nC+c)*H+h0+hh)*N*P:]
				for n := range N {
					copy(dst[n*P:n*P+P], st[n*K+hh*P:])
				}
			}
		}
		ssdChunkPrep(sc, in, d, b, g, h0, h1, t0, q)
		xb := in.X[(b*L+t0)*ldx+h0*P:]
		yb := y[(b*L+t0)*ldx+h0*P:]
		bm := in.Bm[((b*L+t0)*G+g)*N:]
		// Steps 1 and 4 at once: Y = [C | T]·[Sᵀ ; Xg], then row scaling by e_i and the skip.
		impl.Sgemm(blas.NoTrans, blas.NoTrans, q, K, N+q, 1, sc.cext, ldc, sc.w, K, 0, yb, ldx)
		for hh := range nh {
			acum := sc.acum[hh*Q:]
			var dsk float32
			if in.Dskip != nil {
				dsk = in.Dskip[h0+hh]
			}
			for i := range q {
				e := fmath.Exp(acum[i])
				yr := yb[i*ldx+hh*P : i*ldx+hh*P+P]
				xr := xb[i*ldx+hh*P : i*ldx+hh*P+P]
				for p := range yr {
					yr[p] = e*yr[p] + dsk*xr[p]
				}
			}
			if sc.direct[hh] {
				for i := range q {
					sc.tdiag[i] = sc.cext[i*ldc+N+i]
				}
				ssdMask(sc.m, sc.cext, sc.tdiag, acum, sc.dt[hh*Q:], q, N, Q)
				impl.Sgemm(blas.NoTrans, blas.NoTrans, q, P, q, 1, sc.m, Q, xb[hh*P:], ldx, 1, yb[hh*P:], ldx)
			}
		}
		// Step 2 and 3: Sᵀ ← E·(Sᵀ + Bᵀ·Xg) for factored heads, E·Sᵀ + Bᵀ·Xs for direct ones.
		impl.Sgemm(blas.Trans, blas.NoTrans, N, K, q, 1, bm, ldbc, sc.w[N*K:], K, 1, st, K)
		for hh := range nh {
			acum := sc.acum[hh*Q:]
			E := fmath.Exp(acum[q-1])
			for n := range N {
				row := st[n*K+hh*P : n*K+hh*P+P]
				for p := range row {
					row[p] *= E
				}
			}
			if sc.direct[hh] {
				dt := sc.dt[hh*Q:]
				for i := range q {
					wgt := fmath.Exp(acum[q-1]-acum[i]) * dt[i]
					xr := xb[i*ldx+hh*P : i*ldx+hh*P+P]
					xs := sc.xs[i*P : i*P+P]
					for p, v := range xr {
						xs[p] = wgt * v
					}
				}
				impl.Sgemm(blas.Trans, blas.NoTrans, N, P, q, 1, bm, ldbc, sc.xs, P, 1, st[hh*P:], K)
			}
		}
	}
	if hLast != nil {
		for hh := range nh {
			dst := hLast[(b*H+h0+hh)*P*N:]
			for n := range N {
				for p := range P {
					dst[p*N+n] = st[n*K+hh*P+p]
				}
			}
		}
	}
}

// SSDBackward computes the gradients of SSDForward given dy (B, L, H, P) and, optionally, the
// gradient of the final state dhLast (B, H, P, N). saved is what SSDForward wrote.
func SSDBackward(gr SSDGrads, dy, dhLast []float32, in SSDInputs, saved []float32, d SSDDims) error {
	const op = "selectivescan.SSDBackward"
	if err := ssdDimsErr(op, d, false); err != nil {
		return err
	}
	B, L, H, P, G, N := d.B, d.L, d.H, d.P, d.G, d.N
	args := append(ssdInputArgs(in, d),
		ssdA("dy", dy, B*L*H*P, "B·L·H·P", false),
		ssdA("dhLast", dhLast, B*H*P*N, "B·H·P·N", true),
		ssdA("saved", saved, SSDSavedLen(d), "B·⌈L/Chunk⌉·H·N·P", false),
		ssdA("DX", gr.DX, B*L*H*P, "B·L·H·P", true),
		ssdA("DDt", gr.DDt, B*L*H, "B·L·H", true),
		ssdA("DDtBias", gr.DDtBias, H, "H", true),
		ssdA("DA", gr.DA, H, "H", true),
		ssdA("DBm", gr.DBm, B*L*G*N, "B·L·G·N", true),
		ssdA("DCm", gr.DCm, B*L*G*N, "B·L·G·N", true),
		ssdA("DDskip", gr.DDskip, H, "H", true),
		ssdA("DH0", gr.DH0, B*H*P*N, "B·H·P·N", true))
	if err := ssdCheckArgs(op, d, args); err != nil {
		return err
	}
	nsplit := ssdSplit(d)
	nhMax := (d.H/d.G + nsplit - 1) / nsplit
	nt := B * G * nsplit
	// Parameter gradients per task (reduced below in a fixed order); dB/dC per task when a
	// group's heads are split over tasks.
	pg := make([]float32, nt*3*nhMax)
	var part []float32
	wantBC := gr.DBm != nil || gr.DCm != nil
	if nsplit > 1 && wantBC {
		part = make([]float32, nt*2*L*N)
	}
	scr := make([]*ssdScratch, par.Workers())
	par.Each(nt, func(wk, i int) {
		if scr[wk] == nil {
			scr[wk] = ssdGetScratch(d, nhMax, true)
		}
		b, g, h0, h1 := ssdTask(d, nsplit, i)
		var pb, pc []float32
		ld := 0
		if part != nil {
			pb, pc = part[i*2*L*N:(2*i+1)*L*N], part[(2*i+1)*L*N:(2*i+2)*L*N]
			ld = N
		}
		ssdBackwardTask(scr[wk], gr, pg[i*3*nhMax:(i+1)*3*nhMax], pb, pc, ld, dy, dhLast, in, saved, d, b, g, h0, h1)
	})
	for _, sc := range scr {
		if sc != nil {
			ssdPool.Put(sc)
		}
	}
	for i := range nt {
		_, _, h0, h1 := ssdTask(d, nsplit, i)
		p := pg[i*3*nhMax:]
		for hh := range h1 - h0 {
			if gr.DDtBias != nil {
				gr.DDtBias[h0+hh] += p[hh]
			}
			if gr.DA != nil {
				gr.DA[h0+hh] += p[nhMax+hh]
			}
			if gr.DDskip != nil {
				gr.DDskip[h0+hh] += p[2*nhMax+hh]
			}
		}
	}
	if part != nil {
		for b := range B {
			for g := range G {
				for t := range L {
					o := ((b*L+t)*G + g) * N
					for s := range nsplit {
						i := (b*G+g)*nsplit + s
						pb, pc := part[i*2*L*N+t*N:], part[(2*i+1)*L*N+t*N:]
						for n := range N {
							if s == 0 {
								if gr.DBm != nil {
									gr.DBm[o+n] = pb[n]
								}
								if gr.DCm != nil {
									gr.DCm[o+n] = pc[n]
								}
								continue
							}
							if gr.DBm != nil {
								gr.DBm[o+n] += pb[n]
							}
							if gr.DCm != nil {
								gr.DCm[o+n] += pc[n]
							}
						}
					}
				}
			}
		}
	}
	return nil
}

// ssdBackwardTask runs the backward pass of heads [h0, h1) of batch b, group g. pg receives
// (dDtBias, dA, dDskip) per head (3 rows of stride len(pg)/3). dB/dC go to pb/pc ((L, N), ld
// N) when non-nil, else straight to gr.DBm/gr.DCm.
func ssdBackwardTask(sc *ssdScratch, gr SSDGrads, pg, pb, pc []float32, ldp int, dy, dhLast []float32, in SSDInputs, saved []float32, d SSDDims, b, g, h0, h1 int) {
	L, H, P, G, N, Q := d.L, d.H, d.P, d.G, d.N, d.Chunk
	nh, nC := h1-h0, ssdChunks(d)
	nhMax := len(pg) / 3
	K, ldx, ldbc, ldc := nh*P, H*P, G*N, N+Q
	impl := blas32.Implementation()
	wantBC := gr.DBm != nil || gr.DCm != nil
	st, dse := sc.w[:N*K], sc.dse
	for hh := range nh {
		for n := range N {
			row := dse[n*K+hh*P : n*K+hh*P+P]
			if dhLast == nil {
				clear(row)
				continue
			}
			src := dhLast[(b*H+h0+hh)*P*N:]
			for p := range row {
				row[p] = src[p*N+n]
			}
		}
	}
	for c := nC - 1; c >= 0; c-- {
		t0 := c * Q
		q := min(Q, L-t0)
		for hh := range nh {
			src := saved[((b*nC+c)*H+h0+hh)*N*P:]
			for n := range N {
				copy(st[n*K+hh*P:n*K+hh*P+P], src[n*P:n*P+P])
			}
		}
		ssdChunkPrep(sc, in, d, b, g, h0, h1, t0, q)
		// T's diagonal is taken out of the products and handled elementwise: its two
		// contributions to dacum_i cancel exactly, and computing them inside sums would leave
		// a float32 residue as large as the diagonal term (amplified by A in dΔ).
		for i := range q {
			sc.tdiag[i] = sc.cext[i*ldc+N+i]
			sc.cext[i*ldc+N+i] = 0
		}
		xb := in.X[(b*L+t0)*ldx+h0*P:]
		dyb := dy[(b*L+t0)*ldx+h0*P:]
		off := ((b*L+t0)*G + g) * N
		bm := in.Bm[off:]
		// Recompute the pre-scaling output, scale dY by e_i.
		impl.Sgemm(blas.NoTrans, blas.NoTrans, q, K, N+q, 1, sc.cext, ldc, sc.w, K, 0, sc.yp, K)
		for hh := range nh {
			acum, dacum := sc.acum[hh*Q:], sc.dacum[hh*Q:hh*Q+q]
			for i := range q {
				e := fmath.Exp(acum[i])
				dr := dyb[i*ldx+hh*P : i*ldx+hh*P+P]
				de := sc.dye[i*K+hh*P : i*K+hh*P+P]
				yr := sc.yp[i*K+hh*P : i*K+hh*P+P]
				s := float32(0)
				for p, v := range dr {
					v *= e
					de[p] = v
					s += v * yr[p]
				}
				dacum[i] = s
			}
			clear(sc.ddt[hh*Q : hh*Q+q])
		}
		// dW = [C | T]ᵀ·dYe: rows < N are Cᵀ·dYe (to dS_prev), rows ≥ N are Tᵀ·dYe (dXg).
		impl.Sgemm(blas.Trans, blas.NoTrans, N+q, K, q, 1, sc.cext, ldc, sc.dye, K, 0, sc.dw, K)
		// Bd = B·dSe (q×K), for dX and dΔ through the chunk state.
		impl.Sgemm(blas.NoTrans, blas.NoTrans, q, K, N, 1, bm, ldbc, dse, K, 0, sc.bd, K)
		// Xs = exp(acum_last − acum_j)·Δ_j·x_j.
		for hh := range nh {
			acum, dt := sc.acum[hh*Q:], sc.dt[hh*Q:]
			for i := range q {
				wgt := fmath.Exp(acum[q-1]-acum[i]) * dt[i]
				xr := xb[i*ldx+hh*P : i*ldx+hh*P+P]
				xs := sc.xs[i*K+hh*P : i*K+hh*P+P]
				for p, v := range xr {
					xs[p] = wgt * v
				}
			}
		}
		if wantBC {
			// [dC_off | dT] = dYe·[Sᵀ ; Xg]ᵀ and dB from the state: Xs·dSeᵀ.
			impl.Sgemm(blas.NoTrans, blas.Trans, q, N+q, K, 1, sc.dye, K, sc.w, K, 0, sc.dcext, ldc)
			impl.Sgemm(blas.NoTrans, blas.Trans, q, N, K, 1, sc.xs, K, dse, K, 0, sc.dbc, N)
		}
		for hh := range nh {
			h := h0 + hh
			acum, dt := sc.acum[hh*Q:hh*Q+q], sc.dt[hh*Q:hh*Q+q]
			dacum, ddt := sc.dacum[hh*Q:hh*Q+q], sc.ddt[hh*Q:hh*Q+q]
			last := acum[q-1]
			E := fmath.Exp(last)
			var dsk float32
			if in.Dskip != nil {
				dsk = in.Dskip[h]
			}
			sp := float32(0) // <dSe, S_prev>
			for n := range N {
				a, s := dse[n*K+hh*P:n*K+hh*P+P], st[n*K+hh*P:n*K+hh*P+P]
				for p := range a {
					sp += a[p] * s[p]
				}
			}
			dlast := E * sp
			dskip := float32(0)
			for i := range q {
				xr := xb[i*ldx+hh*P : i*ldx+hh*P+P]
				dr := dyb[i*ldx+hh*P : i*ldx+hh*P+P]
				bd := sc.bd[i*K+hh*P : i*K+hh*P+P]
				dxg := sc.dw[(N+i)*K+hh*P : (N+i)*K+hh*P+P] // strictly-lower Tᵀ·dYe
				de := sc.dye[i*K+hh*P : i*K+hh*P+P]
				ed := fmath.Exp(last - acum[i])
				wgt := ed * dt[i]
				var s, dg, ds, xde float32
				for p, v := range xr {
					s += v * bd[p]
					dg += v * dxg[p]
					ds += v * dr[p]
					xde += v * de[p]
				}
				dskip += ds
				ddt[i] += ed * s
				if i < q-1 { // the last token's term would enter dacum_last twice with opposite signs
					dacum[i] -= wgt * s
					dlast += wgt * s
				}
				var gi, gd float32
				if !sc.direct[hh] {
					f := fmath.Exp(-acum[i])
					gi = f * dt[i]
					dacum[i] -= dg * gi
					ddt[i] += (dg + sc.tdiag[i]*xde) * f
					gd = gi * sc.tdiag[i] // the diagonal: dx_i += g_i·T_ii·dYe_i
				}
				if gr.DX != nil {
					dx := gr.DX[(b*L+t0+i)*ldx+h*P : (b*L+t0+i)*ldx+h*P+P]
					for p := range dx {
						dx[p] = dsk*dr[p] + wgt*bd[p] + gi*dxg[p] + gd*de[p]
					}
				}
			}
			if sc.direct[hh] {
				ssdMask(sc.m, sc.cext, sc.tdiag, acum, dt, q, N, Q)
				if gr.DX != nil {
					dxb := gr.DX[(b*L+t0)*ldx+h*P:]
					impl.Sgemm(blas.Trans, blas.NoTrans, q, P, q, 1, sc.m, Q, dyb[hh*P:], ldx, 1, dxb, ldx)
				}
				impl.Sgemm(blas.NoTrans, blas.Trans, q, q, P, 1, dyb[hh*P:], ldx, xb[hh*P:], ldx, 0, sc.dm, Q)
				for i := range q {
					dmr := sc.dm[i*Q : i*Q+i+1]
					t := sc.cext[i*ldc+N : i*ldc+N+i+1]
					dtr := sc.dcext[i*ldc+N : i*ldc+N+i+1]
					ai := acum[i]
					var rs float32
					for j, v := range dmr {
						l := fmath.Exp(ai - acum[j])
						lm := t[j] * l
						if j == i {
							lm = sc.tdiag[i]
						}
						ddt[j] += v * lm
						if j < i { // G_ii enters dacum_i with both signs: leave it out (cancellation)
							gij := v * lm * dt[j]
							rs += gij
							dacum[j] -= gij
						}
						if wantBC {
							dtr[j] += v * l * dt[j]
						}
					}
					dacum[i] += rs
				}
			}
			dacum[q-1] += dlast
			// acum_i = Σ_{k≤i} Δ_k·A: reverse cumulative sum, then through Δ = softplus(raw).
			a := in.A[h]
			var bias float32
			if in.DtBias != nil {
				bias = in.DtBias[h]
			}
			var da, sumA, sumBias float32
			for i := q - 1; i >= 0; i-- {
				da += dacum[i]
				gdt := ddt[i] + da*a
				sumA += da * dt[i]
				raw := in.Dt[(b*L+t0+i)*H+h] + bias
				if raw <= 20 {
					gdt *= fmath.Sigmoid(raw)
				}
				if gr.DDt != nil {
					gr.DDt[(b*L+t0+i)*H+h] = gdt
				}
				sumBias += gdt
			}
			pg[hh] += sumBias
			pg[nhMax+hh] += sumA
			pg[2*nhMax+hh] += dskip
		}
		// dS_prevᵀ = Cᵀ·dYe + E·dSe.
		for hh := range nh {
			E := fmath.Exp(sc.acum[hh*Q+q-1])
			for n := range N {
				a, s := dse[n*K+hh*P:n*K+hh*P+P], sc.dw[n*K+hh*P:n*K+hh*P+P]
				for p := range a {
					a[p] = s[p] + E*a[p]
				}
			}
		}
		if wantBC {
			for i := range q - 1 {
				clear(sc.dcext[i*ldc+N+i+1 : i*ldc+N+q])
			}
			dt := sc.dcext[N:]
			// dC = dC_off + tril(dT)·B, dB = Xs·dSeᵀ + tril(dT)ᵀ·C.
			impl.Sgemm(blas.NoTrans, blas.NoTrans, q, N, q, 1, dt, ldc, bm, ldbc, 1, sc.dcext, ldc)
			impl.Sgemm(blas.Trans, blas.NoTrans, q, N, q, 1, dt, ldc, sc.cext, ldc, 1, sc.dbc, N)
			for i := range q {
				var ob, oc []float32
				if pb != nil {
					ob, oc = pb[(t0+i)*ldp:(t0+i)*ldp+N], pc[(t0+i)*ldp:(t0+i)*ldp+N]
				} else {
					o := off + i*ldbc
					if gr.DBm != nil {
						ob = gr.DBm[o : o+N]
					}
					if gr.DCm != nil {
						oc = gr.DCm[o : o+N]
					}
				}
				if ob != nil {
					copy(ob, sc.dbc[i*N:i*N+N])
				}
				if oc != nil {
					copy(oc, sc.dcext[i*ldc:i*ldc+N])
				}
			}
		}
	}
	if gr.DH0 != nil {
		for hh := range nh {
			dst := gr.DH0[(b*H+h0+hh)*P*N:]
			for n := range N {
				for p := range P {
					dst[p*N+n] = dse[n*K+hh*P+p]
				}
			}
		}
	}
}

// SSDStep advances the recurrence by one token for decoding: state (B, H, P, N) is updated in
// place and y (B, H, P) receives the output. x (B, H, P), dt (B, H) raw step sizes, bm and cm
// (B, G, N). A, DtBias and Dskip are read from in (the other fields are ignored); d.L and
// d.Chunk are ignored.
func SSDStep(state, y []float32, x, dt, bm, cm []float32, in SSDInputs, d SSDDims) error {
	const op = "selectivescan.SSDStep"
	if err := ssdDimsErr(op, d, true); err != nil {
		return err
	}
	B, H, P, G, N := d.B, d.H, d.P, d.G, d.N
	if err := ssdCheckArgs(op, d, []ssdArg{
		ssdA("state", state, B*H*P*N, "B·H·P·N", false),
		ssdA("y", y, B*H*P, "B·H·P", false),
		ssdA("x", x, B*H*P, "B·H·P", false),
		ssdA("dt", dt, B*H, "B·H", false),
		ssdA("bm", bm, B*G*N, "B·G·N", false),
		ssdA("cm", cm, B*G*N, "B·G·N", false),
		ssdA("A", in.A, H, "H", false),
		ssdA("DtBias", in.DtBias, H, "H", true),
		ssdA("Dskip", in.Dskip, H, "H", true),
	}); err != nil {
		return err
	}
	hpg := H / G
	par.For(B*H, max(1, 4096/(P*N)), func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			raw := dt[bh]
			if in.DtBias != nil {
				raw += in.DtBias[h]
			}
			delta := fmath.Softplus(raw)
			alpha := fmath.Exp(delta * in.A[h])
			var dsk float32
			if in.Dskip != nil {
				dsk = in.Dskip[h]
			}
			o := (b*G + h/hpg) * N
			bt, ct := bm[o:o+N], cm[o:o+N]
			xr, yr := x[bh*P:bh*P+P], y[bh*P:bh*P+P]
			s := state[bh*P*N : (bh+1)*P*N]
			for p, xv := range xr {
				row := s[p*N : p*N+N]
				u := delta * xv
				var acc float32
				for n := range row {
					v := alpha*row[n] + u*bt[n]
					row[n] = v
					acc += v * ct[n]
				}
				yr[p] = acc + dsk*xv
			}
		}
	})
	return nil
}
