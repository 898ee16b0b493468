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

// tileSizes returns the query and key tile rows. Measured on a 2-core AVX2 machine (causal,
// Dh=64, CPU-time GFLOP/s): 64×64 ≈ 39, 128×64 ≈ 45, 64×128 ≈ 43, 128×128 ≈ 48, 64×256 ≈ 50.
// Wide key tiles amortise the per-GEMM call cost and the accumulator rescales; 64×128 keeps the
// wasted half of causal diagonal tiles and of window edges small.
func tileSizes(Dims) (bq, bk int) { return 64, 128 }

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
	bq, bk := tileSizes(d)
	nq, nk := (d.L+bq-1)/bq, (d.S+bk-1)/bk
	scale, rep, dh := d.scale(), d.rep(), d.Dh
	ldq, ldk := d.H*dh, d.HKV*dh
	impl := blas32.Implementation()
	ws := newWorkerScratch()
	defer ws.release()

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
		for kt := range nk {
			j0 := kt * bk
			nc := min(bk, d.S-j0)
			cls := d.tileClass(p0, p0+n-1, j0, j0+nc)
			if cls == tileNone {
				continue
			}
			koff := ((b*d.S+j0)*d.HKV + g) * dh
			s := sc.s[:n*nc]
			impl.Sgemm(blas.NoTrans, blas.Trans, n, nc, dh, scale, qs, ldq, k[koff:], ldk, 0, s, nc)
			if cls == tilePartial {
				d.mask(s, n, nc, p0, j0)
			}
			for r := range n {
				row := s[r*nc : (r+1)*nc]
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
			impl.Sgemm(blas.NoTrans, blas.NoTrans, n, dh, nc, 1, s, nc, v[koff:], ldk, 1, acc, dh)
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
	bq, bk := tileSizes(d)
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
		for h := g * rep; h < (g+1)*rep; h++ {
			for qt := range nq {
				i0 := qt * bq
				n := min(bq, d.L-i0)
				p0 := d.S - d.L + i0
				cls := d.tileClass(p0, p0+n-1, j0, j0+nc)
				if cls == tileNone {
					continue
				}
				qoff := ((b*d.L+i0)*d.H + h) * dh
				qs, dos := q[qoff:], do[qoff:]
				lr := lse[(b*d.H+h)*d.L+i0:][:n]
				dr := delta[(b*d.H+h)*d.L+i0:][:n]
				p, dp := sc.s[:n*nc], sc.dp[:n*nc]
				// P = exp(Q Kᵀ·scale − LSE)
				impl.Sgemm(blas.NoTrans, blas.Trans, n, nc, dh, scale, qs, ldq, ks, ldk, 0, p, nc)
				if cls == tilePartial {
					d.mask(p, n, nc, p0, j0)
				}
				for r := range n {
					expSub(p[r*nc:(r+1)*nc], lr[r])
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
				// dQ += dS K·scale, summed under the tile's lock
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
