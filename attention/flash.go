package attention

// FlashAttention-2 forward and backward on the CPU.
//
// Glossary: B batch, L queries, S keys, H query heads, HKV kv heads, Dh head dim, Bq×Bk a
// (query tile, key tile) pair, m running row max, ℓ running row sum, LSE = m + log ℓ,
// Δ = rowsum(dO ⊙ O).
//
// Both passes stream over tiles: the only scratch is a few tile-sized buffers per worker plus
// Δ (B·H·L floats) in the backward, so memory is O(L), never O(L·S). The tile products are
// GEMMs through blas32 with strides that read Q, K, V, dO in place (a row of head h is H·Dh or
// HKV·Dh floats from the next).

import (
	"math"
	"sync"

	"github.com/hybridlab/hybrid/internal/par"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// tileSizes returns the backward's query and key tile rows (the forward's are fwdTileSizes).
// Both passes trim causal diagonal tiles to 64-row blocks (diagRows) and the keys those rows
// see, so wide key tiles waste little masked work. Measured on a 2-core AVX2 machine with
// OpenBLAS (causal backward, best of 6, GFLOP/s), Dh=64 at L=2048: 64×128 ≈ 67, 128×128 ≈ 65,
// 64×256 ≈ 80, 128×256 ≈ 75, 256×256 ≈ 67, 64×512 ≈ 82; Dh=128 at L=1024 all within noise of
// each other (66–80). Key tiles shrink for short inputs so every worker has several items.
func tileSizes(d Dims) (bq, bk int) {
	bq, bk = 64, 256
	for bk > 64 && d.B*d.HKV*((d.S+bk-1)/bk) < 8*par.Workers() {
		bk /= 2
	}
	return bq, bk
}

// fwdTileSizes returns the forward's query and key tile rows. The forward trims causal
// diagonal tiles to the keys their last query sees, so wide key tiles cost little extra masked
// work there, while they make the per-tile GEMMs larger (Dh is their inner dimension, so small
// heads need more keys per call to amortise OpenBLAS's packing and the purego call) and halve
// the online-softmax rescales; diagonal tiles run in blocks of diagRows query rows.
//
// Measured on a 2-core AVX2 machine with OpenBLAS (causal, best of 12, GFLOP/s), Dh=64 at L=2048:
// 64×128 ≈ 55, 128×128 ≈ 63, 256×256 ≈ 67, 256×512 ≈ 72; Dh=128 at L=1024: 64×128 ≈ 76,
// 256×256 ≈ 80, 256×512 ≈ 83. The key tile keeps the score tile near 512 KiB·(64/Dh) so it and
// the K and V tiles stay in L2; query tiles shrink for short inputs so every worker has several
// items to balance.
var fwdTileSizes = func(d Dims) (bq, bk int) {
	bq, bk = 256, min(max(32768/d.Dh, 64), 512)
	for bq > diagRows && d.B*d.H*((d.L+bq-1)/bq) < 8*par.Workers() {
		bq /= 2
	}
	return bq, bk
}

// bwdTileSizes returns the backward's query and key tile rows.
var bwdTileSizes = tileSizes

// diagRows is the row block of partially masked causal tiles in the forward.
const diagRows = 64

// scratch is one worker's tile buffers, pooled across calls.
type scratch struct {
	s, dp, acc, dk, dv, tmp, m, l []float32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// workerScratch lends one scratch per par worker for the length of a call.
type workerScratch []*scratch

func newWorkerScratch() workerScratch { return make(workerScratch, par.Workers()) }

func (w workerScratch) get(i int) *scratch {
	if w[i] == nil {
		w[i] = scratchPool.Get().(*scratch)
	}
	return w[i]
}

func (w workerScratch) release() {
	for _, s := range w {
		if s != nil {
			scratchPool.Put(s)
		}
	}
}

// Forward computes O = softmax(Q Kᵀ·scale + mask) V per head and saves LSE for Backward.
// It parallelises over (batch, head, query tile) itself; with OpenBLAS, call
// openblas.SetThreads(1) so the tile GEMMs do not spawn threads of their own on top.
//
//	o   (B, L, H, Dh)   output, assigned
//	lse (B, H, L)       log-sum-exp of each scaled, masked score row, assigned (saved for Backward)
//	q   (B, L, H, Dh)
//	k   (B, S, HKV, Dh)
//	v   (B, S, HKV, Dh)
func Forward(o, lse []float32, q, k, v []float32, d Dims) error {
	if err := checkAll("Forward", d,
		map[string][]float32{"o": o, "q": q}, map[string][]float32{"k": k, "v": v},
		map[string][]float32{"lse": lse}); err != nil {
		return err
	}
	bq, bk := fwdTileSizes(d)
	nq, nk := (d.L+bq-1)/bq, (d.S+bk-1)/bk
	scale, rep, dh := d.scale(), d.rep(), d.Dh
	ldq, ldk := d.H*dh, d.HKV*dh
	impl := blas32.Implementation()
	ws := newWorkerScratch()
	defer ws.release()
	causalOnly := d.Causal && d.Window == 0

	// Items run the longest causal query tiles (the last ones) first, for balance.
	par.Each(d.B*d.H*nq, func(w, item int) {
		qt := nq - 1 - item/(d.B*d.H)
		bh := item % (d.B * d.H)
		b, h := bh/d.H, bh%d.H
		g := h / rep
		sc := ws.get(w)
		i0 := qt * bq
		n := min(bq, d.L-i0)
		p0 := d.S - d.L + i0
		sc.s = grow(sc.s, bq*bk)
		acc := grow(sc.acc, bq*dh)
		m, l := grow(sc.m, bq), grow(sc.l, bq)
		sc.acc, sc.m, sc.l = acc, m, l
		clear(acc)
		for r := range n {
			m[r], l[r] = negInf, 0
		}
		qs := q[((b*d.L+i0)*d.H+h)*dh:]
		// block runs the online-softmax step for query rows [r0, r0+rn) of the tile against
		// keys [j0, j0+nc).
		block := func(r0, rn, j0, nc int) {
			pr := p0 + r0
			cls := d.tileClass(pr, pr+rn-1, j0, j0+nc)
			if cls == tileNone {
				return
			}
			if d.Causal {
				// Keys after the last query's position are masked for every row.
				nc = min(nc, pr+rn-j0)
			}
			koff := ((b*d.S+j0)*d.HKV + g) * dh
			s := sc.s[:rn*nc]
			acc, m, l := acc[r0*dh:], m[r0:], l[r0:]
			impl.Sgemm(blas.NoTrans, blas.Trans, rn, nc, dh, scale, qs[r0*ldq:], ldq, k[koff:], ldk, 0, s, nc)
			if cls == tilePartial && !causalOnly {
				d.mask(s, rn, nc, pr, j0)
			}
			for r := range rn {
				row := s[r*nc : (r+1)*nc]
				if cls == tilePartial && causalOnly {
					// Row r sees keys up to its position pr+r: −Inf after it, i.e. 0 once exponentiated.
					row = causalRow(row, pr+r-j0+1)
				}
				mn := max(m[r], rowMax(row))
				if mn == negInf { // row fully masked so far
					clear(row)
					continue
				}
				alpha := float32(0)
				if m[r] != negInf {
					alpha = expOne(m[r] - mn)
				}
				l[r] = l[r]*alpha + expSub(row, mn)
				m[r] = mn
				if alpha != 1 {
					ar := acc[r*dh : (r+1)*dh]
					for c := range ar {
						ar[c] *= alpha
					}
				}
			}
			impl.Sgemm(blas.NoTrans, blas.NoTrans, rn, dh, nc, 1, s, nc, v[koff:], ldk, 1, acc, dh)
		}
		for kt := range nk {
			j0 := kt * bk
			nc := min(bk, d.S-j0)
			if d.Causal && d.tileClass(p0, p0+n-1, j0, j0+nc) == tilePartial {
				// Diagonal tiles go in row blocks, each trimmed to the keys its rows can see,
				// so tall query tiles waste no more masked work than short ones.
				for r0 := 0; r0 < n; r0 += diagRows {
					block(r0, min(diagRows, n-r0), j0, nc)
				}
				continue
			}
			block(0, n, j0, nc)
		}
		for r := range n {
			// Every row sees at least its own position, so ℓ ≥ 1.
			inv := 1 / l[r]
			or := o[((b*d.L+i0+r)*d.H+h)*dh:][:dh]
			ar := acc[r*dh : (r+1)*dh]
			for c := range or {
				or[c] = ar[c] * inv
			}
			lse[(b*d.H+h)*d.L+i0+r] = m[r] + float32(math.Log(float64(l[r])))
		}
	})
	return nil
}

// mask sets the scores of invisible (query, key) pairs in an n×nc tile to −Inf.
func (d Dims) mask(s []float32, n, nc, p0, j0 int) {
	for r := range n {
		row := s[r*nc : (r+1)*nc]
		for c := range row {
			if !d.visible(p0+r, j0+c) {
				row[c] = negInf
			}
		}
	}
}

// causalRow masks a score row whose first vis keys are visible and returns the part the softmax
// must read: the rest is cleared (0, as exp(−Inf) would give) except up to the next multiple of
// 8, set to −Inf, so the vector kernels run without a scalar tail.
func causalRow(row []float32, vis int) []float32 {
	vis = min(max(vis, 0), len(row))
	v8 := min((vis+7)&^7, len(row))
	for c := vis; c < v8; c++ {
		row[c] = negInf
	}
	clear(row[v8:])
	return row[:v8]
}

// Backward computes the gradients of Forward by recomputing each probability tile from the saved
// LSE. dq, dk and dv are assigned.
//
//	dq  (B, L, H, Dh)   out
//	dk  (B, S, HKV, Dh) out (sums over the H/HKV query heads of each kv head)
//	dv  (B, S, HKV, Dh) out
//	do  (B, L, H, Dh)   gradient of the loss with respect to o
//	q   (B, L, H, Dh), k, v (B, S, HKV, Dh): the Forward inputs
//	o   (B, L, H, Dh), lse (B, H, L): saved by Forward
//
// Work is split over (batch, kv head, key tile), so each worker owns its dK and dV rows; dQ
// tiles are summed under a per-tile lock, so dq can differ from run to run in the last bits.
func Backward(dq, dk, dv []float32, do, q, k, v, o, lse []float32, d Dims) error {
	if err := checkAll("Backward", d,
		map[string][]float32{"dq": dq, "do": do, "q": q, "o": o},
		map[string][]float32{"dk": dk, "dv": dv, "k": k, "v": v},
		map[string][]float32{"lse": lse}); err != nil {
		return err
	}
	bq, bk := bwdTileSizes(d)
	nq, nk := (d.L+bq-1)/bq, (d.S+bk-1)/bk
	scale, rep, dh := d.scale(), d.rep(), d.Dh
	ldq, ldk := d.H*dh, d.HKV*dh
	impl := blas32.Implementation()
	ws := newWorkerScratch()
	defer ws.release()

	// Δ = rowsum(dO ⊙ O), laid out like lse.
	dl := getFloats(d.B * d.H * d.L)
	defer putFloats(dl)
	delta := *dl
	par.For(d.B*d.L, 16, func(lo, hi int) {
		for bt := lo; bt < hi; bt++ {
			b, t := bt/d.L, bt%d.L
			for h := range d.H {
				off := (bt*d.H + h) * dh
				var s float32
				for c, x := range do[off : off+dh] {
					s += x * o[off+c]
				}
				delta[(b*d.H+h)*d.L+t] = s
			}
		}
	})
	clear(dq)
	locks := make([]sync.Mutex, d.B*d.H*nq)
	causalOnly := d.Causal && d.Window == 0

	// Causal key tiles near the start are seen by the most queries: run them first.
	par.Each(d.B*d.HKV*nk, func(w, item int) {
		kt := item / (d.B * d.HKV)
		bg := item % (d.B * d.HKV)
		b, g := bg/d.HKV, bg%d.HKV
		sc := ws.get(w)
		j0 := kt * bk
		nc := min(bk, d.S-j0)
		sc.s, sc.dp = grow(sc.s, bq*bk), grow(sc.dp, bq*bk)
		sc.tmp = grow(sc.tmp, bq*dh)
		dka, dva := grow(sc.dk, bk*dh), grow(sc.dv, bk*dh)
		sc.dk, sc.dv = dka, dva
		dka, dva = dka[:nc*dh], dva[:nc*dh]
		clear(dka)
		clear(dva)
		koff := ((b*d.S+j0)*d.HKV + g) * dh
		ks, vs := k[koff:], v[koff:]
		// block accumulates query rows [i0, i0+n) of query tile qt, head h, against the key tile.
		block := func(h, qt, i0, n int) {
			p0 := d.S - d.L + i0
			cls := d.tileClass(p0, p0+n-1, j0, j0+nc)
			if cls == tileNone {
				return
			}
			nc := nc
			if d.Causal {
				// Keys after the last query's position are masked for every row.
				nc = min(nc, p0+n-j0)
			}
			qoff := ((b*d.L+i0)*d.H + h) * dh
			qs, dos := q[qoff:], do[qoff:]
			lr := lse[(b*d.H+h)*d.L+i0:][:n]
			dr := delta[(b*d.H+h)*d.L+i0:][:n]
			p, dp := sc.s[:n*nc], sc.dp[:n*nc]
			// P = exp(Q Kᵀ·scale − LSE)
			impl.Sgemm(blas.NoTrans, blas.Trans, n, nc, dh, scale, qs, ldq, ks, ldk, 0, p, nc)
			if cls == tilePartial && !causalOnly {
				d.mask(p, n, nc, p0, j0)
			}
			for r := range n {
				row := p[r*nc : (r+1)*nc]
				if cls == tilePartial && causalOnly {
					row = causalRow(row, p0+r-j0+1)
				}
				expSub(row, lr[r])
			}
			// dV += Pᵀ dO
			impl.Sgemm(blas.Trans, blas.NoTrans, nc, dh, n, 1, p, nc, dos, ldq, 1, dva, dh)
			// dP = dO Vᵀ; dS = P ⊙ (dP − Δ), in dp
			impl.Sgemm(blas.NoTrans, blas.Trans, n, nc, dh, 1, dos, ldq, vs, ldk, 0, dp, nc)
			for r := range n {
				pr, dr2 := p[r*nc:(r+1)*nc], dp[r*nc:(r+1)*nc]
				dl := dr[r]
				for c := range dr2 {
					dr2[c] = pr[c] * (dr2[c] - dl)
				}
			}
			// dK += dSᵀ Q·scale
			impl.Sgemm(blas.Trans, blas.NoTrans, nc, dh, n, scale, dp, nc, qs, ldq, 1, dka, dh)
			// dQ += dS K·scale, summed under the query tile's lock
			tmp := sc.tmp[:n*dh]
			impl.Sgemm(blas.NoTrans, blas.NoTrans, n, dh, nc, scale, dp, nc, ks, ldk, 0, tmp, dh)
			mu := &locks[(b*d.H+h)*nq+qt]
			mu.Lock()
			for r := range n {
				dqr := dq[qoff+r*ldq:][:dh]
				for c, x := range tmp[r*dh : (r+1)*dh] {
					dqr[c] += x
				}
			}
			mu.Unlock()
		}
		for h := g * rep; h < (g+1)*rep; h++ {
			for qt := range nq {
				i0 := qt * bq
				n := min(bq, d.L-i0)
				p0 := d.S - d.L + i0
				if d.Causal && d.tileClass(p0, p0+n-1, j0, j0+nc) == tilePartial {
					// Diagonal tiles go in row blocks trimmed to the keys they see.
					for r0 := 0; r0 < n; r0 += diagRows {
						block(h, qt, i0+r0, min(diagRows, n-r0))
					}
					continue
				}
				block(h, qt, i0, n)
			}
		}
		for r := range nc {
			copy(dk[koff+r*ldk:][:dh], dka[r*dh:(r+1)*dh])
			copy(dv[koff+r*ldk:][:dh], dva[r*dh:(r+1)*dh])
		}
	})
	return nil
}

var floatPool sync.Pool

func getFloats(n int) *[]float32 {
	if p, ok := floatPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float32, n)
	return &b
}

func putFloats(p *[]float32) { floatPool.Put(p) }
