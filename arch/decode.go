package arch

// Inference: Logits over whole sequences and a Decoder that keeps each layer's decode cache
// between calls (Prefill a prompt, then Step one token at a time).
//
// Glossary: B streams (batch), T tokens in a call, t tokens in one piece of it, n tokens a
// stream holds (Len), V vocabulary, d d_model; attention: h query heads, kh KV heads, qk Q/K
// width, hd V width, w = max(qk, hd); Mamba: C conv channels, W conv width.
//
// The caches, per layer kind (what Count.CacheBytes counts, element for element):
//
//	global attention   K (n, kh, qk) and V (n, kh, hd) per stream, post-RoPE, grown on demand
//	                   up to the capacity (allocation slack is reported by Reserved, not Bytes)
//	sliding window     the same in a ring of at most sinks + window slots: token p lives in slot
//	                   p when p < sinks, else sinks + (p − sinks) mod window
//	Mamba-1/2          the conv state (B, W−1, C), the last W−1 conv inputs, and the SSM state
//	                   ((B, di, N) for Mamba-1, (B, H, P, N) for Mamba-2), fixed size
//	intra block        its attention branch's KV cache plus its SSM branch's state
//
// A call runs the layers in order on a no-grad tape, which is reset after every layer (the
// residual stream is carried over in a host buffer), so activation memory is one layer's worth
// for one piece of at most Decoder.Piece tokens, whatever the prompt length. Pieces run the
// chunked kernels: the conv from the carried conv state, SSD / selective scan from the carried
// SSM state (the final state replaces it), attention of the piece's queries to the cached keys
// plus the piece's own (flash tiles: no T×T matrix). One-token calls run the decode kernels
// (Conv1DStep, SSDStep, ScanStep, and a GEMM over the cache for attention). RoPE positions
// continue from Len().
//
// The KV cache lives in host memory and attention runs the attention package's CPU kernels on
// it; the other ops go through the model's backend (a non-host backend pays a transfer of q, k,
// v and o per attention layer per call).

import (
	"fmt"
	"math"

	attn "github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/internal/fmath"
	"github.com/hybridlab/hybrid/internal/par"
	"github.com/hybridlab/hybrid/kernels"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
	"github.com/hybridlab/hybrid/tensor"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// DefaultPiece is the default Decoder.Piece: the most prompt tokens run through the model at once.
const DefaultPiece = 2048

// Logits runs the whole (B, T) batch without recording gradients and returns logits (B·T·V,
// row-major (B, T, V)). Long sequences run in pieces of DefaultPiece tokens through a Decoder, so
// activation memory stays bounded; the values equal Forward's within float32 rounding.
func (m *Model) Logits(ids []int32, B, T int) ([]float32, error) {
	if B <= 0 || T <= 0 || len(ids) != B*T {
		return nil, fmt.Errorf("arch.Logits: %d ids for B=%d, T=%d, want B, T > 0 and B·T ids", len(ids), B, T)
	}
	if err := m.checkIDs("arch.Logits", ids); err != nil {
		return nil, err
	}
	d, err := m.NewDecoder(B, T)
	if err != nil {
		return nil, err
	}
	V := m.Config.VocabSize
	out := make([]float32, B*T*V)
	for off := 0; off < T; off += d.Piece {
		t := min(d.Piece, T-off)
		lg, err := d.forward(rows(ids, B, T, off, t), t, headAll)
		if err != nil {
			return nil, fmt.Errorf("arch.Logits: %w", err)
		}
		for b := range B {
			copy(out[(b*T+off)*V:(b*T+off+t)*V], lg[b*t*V:(b+1)*t*V])
		}
	}
	return out, nil
}

// checkIDs reports the first id outside the vocabulary.
func (m *Model) checkIDs(op string, ids []int32) error {
	V := m.Config.VocabSize
	for i, id := range ids {
		if id < 0 || int(id) >= V {
			return fmt.Errorf("%s: ids[%d] = %d is outside the vocabulary [0, %d)", op, i, id, V)
		}
	}
	return nil
}

// rows returns columns [off, off+t) of the (B, T) ids (the ids themselves when that is all of them).
func rows(ids []int32, B, T, off, t int) []int32 {
	if off == 0 && t == T {
		return ids
	}
	out := make([]int32, 0, B*t)
	for b := range B {
		out = append(out, ids[b*T+off:b*T+off+t]...)
	}
	return out
}

// Decoder runs B independent streams incrementally, holding every layer's decode cache. It is
// not safe for concurrent use. It reads the model's weights at each call, except A = −exp(A_log)
// of the Mamba layers, which it computes at NewDecoder and Reset: Reset it after changing weights.
type Decoder struct {
	// Piece is the most tokens Prefill runs through the model at once (DefaultPiece unless
	// changed; values < 1 mean DefaultPiece). Activation memory grows with it; the results do
	// not depend on it beyond float32 rounding.
	Piece int

	m           *Model
	b, capacity int
	n           int
	tp          *tensor.Tape
	states      []*layerState // one per block; nil for FFN-only blocks
	x           []float32     // the residual stream carried between layers, (B, t, d)
	err         error         // a failure inside a forward pass: the caches are inconsistent
}

// NewDecoder starts B independent streams with room for capacity tokens of context.
func (m *Model) NewDecoder(B, capacity int) (*Decoder, error) {
	if B <= 0 || capacity <= 0 {
		return nil, fmt.Errorf("arch.NewDecoder: B=%d, capacity=%d, want both > 0", B, capacity)
	}
	d := &Decoder{Piece: DefaultPiece, m: m, b: B, capacity: capacity, tp: tensor.NewTape(m.be)}
	d.tp.SetNoGrad(true)
	for _, blk := range m.Blocks {
		var st *layerState
		switch mx := blk.mixer.(type) {
		case *attention:
			st = &layerState{kv: newKVCache(B, capacity, mx)}
		case *mamba1, *mamba2:
			st = &layerState{ssm: newSSMCache(m.be, B, mx.(ssmBranch))}
		case *intra:
			st = &layerState{kv: newKVCache(B, capacity, mx.attn), ssm: newSSMCache(m.be, B, mx.ssm)}
		}
		d.states = append(d.states, st)
	}
	if err := d.snapshotA(); err != nil {
		return nil, fmt.Errorf("arch.NewDecoder: %w", err)
	}
	return d, nil
}

// Prefill consumes a (B, T) prompt (appending to whatever the decoder holds) and returns the
// logits of each stream's last position (B·V). The prompt runs in pieces of at most Piece tokens.
func (d *Decoder) Prefill(ids []int32, T int) ([]float32, error) {
	if err := d.check("Prefill", ids, T); err != nil {
		return nil, err
	}
	piece := d.Piece
	if piece < 1 {
		piece = DefaultPiece
	}
	var out []float32
	for off := 0; off < T; off += piece {
		t := min(piece, T-off)
		head := headNone
		if off+t == T {
			head = headLast
		}
		var err error
		if out, err = d.forward(rows(ids, d.b, T, off, t), t, head); err != nil {
			return nil, fmt.Errorf("arch.Decoder.Prefill: %w", err)
		}
	}
	return out, nil
}

// Step consumes one token per stream (B ids) and returns the next-token logits (B·V).
func (d *Decoder) Step(ids []int32) ([]float32, error) {
	if err := d.check("Step", ids, 1); err != nil {
		return nil, err
	}
	out, err := d.forward(ids, 1, headLast)
	if err != nil {
		return nil, fmt.Errorf("arch.Decoder.Step: %w", err)
	}
	return out, nil
}

// Len is the number of tokens consumed per stream.
func (d *Decoder) Len() int { return d.n }

// Bytes is the memory of the decode cache held, in bytes: every stream's Mamba conv and SSM
// states and attention keys and values (at most window + sinks tokens for sliding-window
// layers), measured from the buffers. It equals B · Config.CacheBytes(Len(), Float32) for
// Len() ≥ 1.
func (d *Decoder) Bytes() int64 {
	var n int64
	for _, st := range d.states {
		if st != nil {
			n += st.kv.bytes(false) + st.ssm.bytes()
		}
	}
	return n
}

// Reserved is the memory allocated for the decode cache, in bytes: Bytes plus the room the KV
// caches have grown into ahead of use (they grow geometrically, and keep their room across Reset).
func (d *Decoder) Reserved() int64 {
	var n int64
	for _, st := range d.states {
		if st != nil {
			n += st.kv.bytes(true) + st.ssm.bytes()
		}
	}
	return n
}

// Reset empties every stream (Len 0, zero states), keeping allocated room, and clears a failure.
// It also re-reads A_log from the model.
func (d *Decoder) Reset() {
	for _, st := range d.states {
		if st == nil {
			continue
		}
		if c := st.kv; c != nil {
			c.n = 0
			for b := range c.k {
				c.k[b], c.v[b] = c.k[b][:0], c.v[b][:0]
			}
		}
		if s := st.ssm; s != nil {
			d.m.be.Fill(s.conv, 0)
			d.m.be.Fill(s.h, 0)
		}
	}
	d.n, d.err = 0, nil
	d.tp.Reset()
	d.err = d.snapshotA()
}

// check validates a call's ids before anything changes.
func (d *Decoder) check(op string, ids []int32, T int) error {
	op = "arch.Decoder." + op
	if d.err != nil {
		return fmt.Errorf("%s: the decoder failed earlier and must be Reset: %w", op, d.err)
	}
	if T <= 0 {
		return fmt.Errorf("%s: T=%d, want > 0", op, T)
	}
	if len(ids) != d.b*T {
		return fmt.Errorf("%s: %d ids, want B·T = %d (B=%d, T=%d)", op, len(ids), d.b*T, d.b, T)
	}
	if d.n+T > d.capacity {
		return fmt.Errorf("%s: %d tokens held + T=%d exceed the capacity of %d", op, d.n, T, d.capacity)
	}
	return d.m.checkIDs(op, ids)
}

// snapshotA computes A = −exp(A_log) of every Mamba layer into its state, as negExp does.
func (d *Decoder) snapshotA() error {
	be := d.m.be
	for _, st := range d.states {
		if st == nil || st.ssm == nil {
			continue
		}
		s := st.ssm
		host := make([]float32, s.aLog.Size())
		if err := be.Download(host, s.aLog.Buf()); err != nil {
			return fmt.Errorf("reading %s: %w", s.aLog.Name(), err)
		}
		for i, v := range host {
			host[i] = -float32(math.Exp(float64(v)))
		}
		if err := be.Upload(s.a, host); err != nil {
			return err
		}
	}
	return nil
}

// What forward computes after the layers.
const (
	headNone = iota // nothing (a prompt piece before the last)
	headLast        // logits of each stream's last position, (B, V)
	headAll         // logits of every position, (B, t, V)
)

// forward runs t tokens per stream (ids (B, t), validated) through the layers, advancing the
// caches, and returns the logits head asks for.
func (d *Decoder) forward(ids []int32, t, head int) ([]float32, error) {
	m, tp, B, dm := d.m, d.tp, d.b, d.m.Config.DModel
	tp.Reset()
	x := tp.Embedding(ids, m.embed, B, t)
	for i, blk := range m.Blocks {
		x = blk.forward(tp, x, d.states[i])
		if i < len(m.Blocks)-1 || head != headNone {
			x = d.carry(x, t)
		}
	}
	if err := tp.Err(); err != nil {
		d.err = err
		return nil, err
	}
	d.n += t
	if head == headNone {
		tp.Reset()
		return nil, nil
	}
	if head == headLast && t > 1 { // only the last rows need the norm and the head
		x = tp.Reshape(tp.Split(tp.Reshape(x, B, t*dm), (t-1)*dm, dm)[1], B, 1, dm)
	}
	lg := tp.Linear(m.normF.apply(tp, x), m.head, nil)
	if err := tp.Err(); err != nil {
		d.err = err
		return nil, err
	}
	out := make([]float32, lg.Size())
	if err := m.be.Download(out, lg.Buf()); err != nil {
		d.err = err
		return nil, err
	}
	tp.Reset()
	return out, nil
}

// carry moves the residual stream x (B, t, d) to the host, resets the tape (returning the
// layer's activations to its pool) and puts x back on it: memory of one layer at a time.
func (d *Decoder) carry(x *tensor.Tensor, t int) *tensor.Tensor {
	tp := d.tp
	if tp.Err() != nil {
		return x
	}
	dm := d.m.Config.DModel
	n := d.b * t * dm
	if cap(d.x) < n {
		d.x = make([]float32, n)
	}
	d.x = d.x[:n]
	if tp.Fail(d.m.be.Download(d.x, x.Buf())) != nil {
		return x
	}
	tp.Reset()
	return tp.Constant("x", d.x, d.b, t, dm)
}

// layerState is one layer's decode cache: the attention KV cache and/or the SSM state.
type layerState struct {
	kv  *kvCache
	ssm *ssmCache
}

// attn is the layer's KV cache; nil without one (and for a nil state: training).
func (s *layerState) attn() *kvCache {
	if s == nil {
		return nil
	}
	return s.kv
}

// ssmState is the layer's SSM state; nil without one.
func (s *layerState) ssmState() *ssmCache {
	if s == nil {
		return nil
	}
	return s.ssm
}

// ---- Mamba state ----

// ssmCache is a Mamba layer's recurrent state on the model's backend.
type ssmCache struct {
	conv kernels.Buffer // (B, W−1, C): the last W−1 conv inputs, oldest first
	h    kernels.Buffer // Mamba-1 (B, di, N), Mamba-2 (B, H, P, N)
	a    kernels.Buffer // −exp(A_log), snapshot (not cache: a function of the weights)
	aLog *tensor.Tensor
}

func newSSMCache(be kernels.Backend, B int, m ssmBranch) *ssmCache {
	var conv convLayer
	var state int
	var aLog *tensor.Tensor
	switch mx := m.(type) {
	case *mamba1:
		conv, state, aLog = mx.conv, mx.di*mx.n, mx.aLog
	case *mamba2:
		conv, state, aLog = mx.conv, mx.h*mx.p*mx.n, mx.aLog
	}
	ch, w := conv.w.Dim(0), conv.w.Dim(1)
	return &ssmCache{conv: be.Alloc(B * (w - 1) * ch), h: be.Alloc(B * state), a: be.Alloc(aLog.Size()), aLog: aLog}
}

func (s *ssmCache) bytes() int64 {
	if s == nil {
		return 0
	}
	return 4 * int64(s.conv.Len()+s.h.Len())
}

// conv1d is the causal conv with SiLU of x (B, t, C): the training op without a state, else it
// starts from the carried inputs and leaves the last W−1 inputs in the state.
func (s *ssmCache) conv1d(tp *tensor.Tape, x *tensor.Tensor, c convLayer) *tensor.Tensor {
	if s == nil {
		return tp.Conv1D(x, c.w, c.b, true)
	}
	if tp.Err() != nil {
		return x
	}
	be := tp.Backend()
	d := selectivescan.ConvDims{B: x.Dim(0), L: x.Dim(1), D: x.Dim(2), W: c.w.Dim(1)}
	out := tp.New("conv1d", d.B, d.L, d.D)
	if d.L == 1 {
		tp.Fail(be.Conv1DStep(s.conv, out.Buf(), x.Buf(), c.w.Buf(), c.b.Buf(), true, d))
	} else { // stateOut may be state0 (Conv1DForward's contract)
		tp.Fail(be.Conv1D(out.Buf(), s.conv, x.Buf(), c.w.Buf(), c.b.Buf(), s.conv, true, d))
	}
	return out
}

// keep copies a final state from tape scratch into the carried state.
func (s *ssmCache) keep(tp *tensor.Tape, last kernels.Buffer) {
	n := s.h.Len()
	tp.Fail(tp.Backend().CopyRows(s.h, n, 0, last, n, 0, 1, n, false))
}

// ssd runs Mamba-2's SSD over t tokens from the carried state (A from the snapshot).
func (s *ssmCache) ssd(tp *tensor.Tape, in tensor.SSDInputs, bs, t int, m *mamba2) *tensor.Tensor {
	if tp.Err() != nil {
		return in.X
	}
	be := tp.Backend()
	args := kernels.SSDArgs{X: in.X.Buf(), Dt: in.Dt.Buf(), DtBias: in.DtBias.Buf(), A: s.a, Bm: in.Bm.Buf(),
		Cm: in.Cm.Buf(), Dskip: in.Dskip.Buf(), Dims: selectivescan.SSDDims{B: bs, L: t, H: m.h, P: m.p, G: m.g, N: m.n, Chunk: m.chunk}}
	y := tp.New("ssd", bs, t, m.h, m.p)
	if t == 1 {
		tp.Fail(be.SSDStep(s.h, y.Buf(), args.X, args.Dt, args.Bm, args.Cm, args))
		return y
	}
	args.H0 = s.h
	last := tp.Scratch(s.h.Len())
	if tp.Fail(be.SSD(y.Buf(), last, nil, args)) == nil {
		s.keep(tp, last)
	}
	return y
}

// scan runs Mamba-1's selective scan over t tokens from the carried state.
func (s *ssmCache) scan(tp *tensor.Tape, in tensor.ScanInputs, bs, t int, m *mamba1) *tensor.Tensor {
	if tp.Err() != nil {
		return in.U
	}
	be := tp.Backend()
	args := kernels.ScanArgs{U: in.U.Buf(), Delta: in.Delta.Buf(), A: s.a, Bm: in.Bm.Buf(), Cm: in.Cm.Buf(),
		Dskip: in.Dskip.Buf(), Z: in.Z.Buf(), DeltaBias: in.DeltaBias.Buf(), Softplus: in.Softplus,
		Dims: selectivescan.ScanDims{B: bs, L: t, D: m.di, N: m.n, G: in.Groups, Chunk: in.Chunk}}
	y := tp.New("scan", bs, t, m.di)
	if t == 1 {
		tp.Fail(be.ScanStep(s.h, y.Buf(), args.U, args.Delta, args.Bm, args.Cm, args.Z, args))
		return y
	}
	args.H0 = s.h
	last := tp.Scratch(s.h.Len())
	if tp.Fail(be.Scan(y.Buf(), last, nil, args)) == nil {
		s.keep(tp, last)
	}
	return y
}

// ---- attention KV cache ----

// kvCache holds one attention layer's post-RoPE keys and values, per stream on the host.
type kvCache struct {
	B, kh, qk, hd int
	window, sinks int
	limit         int         // slots a stream can hold: capacity, or min(capacity, sinks+window) with a window
	n             int         // tokens appended per stream
	k, v          [][]float32 // per stream (slots, kh, qk), (slots, kh, hd); length min(n, limit) slots
	scr           [][]float32 // per-worker scores of a decode step
}

func newKVCache(B, capacity int, a *attention) *kvCache {
	c := &kvCache{B: B, kh: a.kh, qk: a.qk, hd: a.hd, window: a.window, sinks: a.sinks, limit: capacity,
		k: make([][]float32, B), v: make([][]float32, B)}
	if a.window > 0 {
		c.limit = min(capacity, a.sinks+a.window)
	}
	return c
}

// pos is the position of the next token (0 without a cache: training).
func (c *kvCache) pos() int {
	if c == nil {
		return 0
	}
	return c.n
}

// bytes is the memory of keys and values held (reserved: allocated).
func (c *kvCache) bytes(reserved bool) int64 {
	if c == nil {
		return 0
	}
	var n int
	for b := range c.k {
		if reserved {
			n += cap(c.k[b]) + cap(c.v[b])
		} else {
			n += len(c.k[b]) + len(c.v[b])
		}
	}
	return 4 * int64(n)
}

// slot is where the token at position p lives (as attention.KVCache).
func (c *kvCache) slot(p int) int {
	if c.window == 0 || p < c.sinks {
		return p
	}
	return c.sinks + (p-c.sinks)%c.window
}

// grow makes room for t more tokens: min(n+t, limit) slots per stream, reallocating
// geometrically (by a quarter, at least 256 slots, at most limit) when full.
func (c *kvCache) grow(t int) {
	slots := min(c.n+t, c.limit)
	rk, rv := c.kh*c.qk, c.kh*c.hd
	for b := range c.B {
		if cap(c.k[b]) < slots*rk {
			old := len(c.k[b]) / rk
			room := min(c.limit, max(slots, old+old/4+256))
			k, v := make([]float32, slots*rk, room*rk), make([]float32, slots*rv, room*rv)
			copy(k, c.k[b])
			copy(v, c.v[b])
			c.k[b], c.v[b] = k, v
		}
		c.k[b], c.v[b] = c.k[b][:slots*rk], c.v[b][:slots*rv]
	}
}

// append adds t tokens per stream: k (B, t, kh, qk), v (B, t, kh, hd).
func (c *kvCache) append(k, v []float32, t int) {
	c.grow(t)
	rk, rv := c.kh*c.qk, c.kh*c.hd
	for b := range c.B {
		for i := range t {
			p := c.n + i
			if c.window > 0 && p >= c.sinks && p < c.n+t-c.window {
				continue // overwritten later in this call
			}
			s := c.slot(p)
			copy(c.k[b][s*rk:(s+1)*rk], k[(b*t+i)*rk:])
			copy(c.v[b][s*rv:(s+1)*rv], v[(b*t+i)*rv:])
		}
	}
	c.n += t
}

// attend runs attention for q (B, t, h, qk), k (B, t, kh, qk), v (B, t, kh, hd) at positions
// n…n+t−1 against the cache, adds k and v to it, and returns o (B, t, h, hd).
func (c *kvCache) attend(tp *tensor.Tape, a *attention, q, k, v *tensor.Tensor) *tensor.Tensor {
	if tp.Err() != nil {
		return q
	}
	be := tp.Backend()
	bs, t := q.Dim(0), q.Dim(1)
	o := tp.New("attention", bs, t, a.h, a.hd)
	var hq, hk, hv []float32
	for _, p := range []struct {
		dst *[]float32
		x   *tensor.Tensor
	}{{&hq, q}, {&hk, k}, {&hv, v}} {
		var err error
		if *p.dst, err = hostOf(be, p.x); tp.Fail(err) != nil {
			return o
		}
	}
	ho, onHost := kernels.Host(o.Buf())
	if !onHost {
		ho = make([]float32, o.Size())
	}
	ho = ho[:o.Size()]
	scale := float32(1 / math.Sqrt(float64(a.qk)))
	var err error
	switch {
	case t == 1: // every filled slot is visible to the newest token
		c.append(hk, hv, 1)
		c.decode(ho, hq, a.h, scale)
	case c.window == 0:
		c.append(hk, hv, t)
		err = c.prefill(ho, hq, nil, nil, t, a.h, scale)
	default: // attend before the ring overwrites keys the earlier queries need
		err = c.prefill(ho, hq, hk, hv, t, a.h, scale)
		c.append(hk, hv, t)
	}
	if err == nil && !onHost {
		err = be.Upload(o.Buf(), ho)
	}
	tp.Fail(err)
	return o
}

// hostOf returns x's values on the host (its own storage on a host backend).
func hostOf(be kernels.Backend, x *tensor.Tensor) ([]float32, error) {
	if h, ok := kernels.Host(x.Buf()); ok {
		return h[:x.Size()], nil
	}
	h := make([]float32, x.Size())
	return h, be.Download(h, x.Buf())
}

// padRows copies rows of width from (src) into rows of width to (dst), zero-filling the rest.
func padRows(dst, src []float32, rows, from, to int) {
	if from == to {
		copy(dst[:rows*to], src)
		return
	}
	for r := range rows {
		copy(dst[r*to:r*to+from], src[r*from:(r+1)*from])
		clear(dst[r*to+from : (r+1)*to])
	}
}

func growTo(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// prefill attends the t queries q (B, t, h, qk) of each stream with the flash kernel. Global
// cache: the new keys are already appended and the keys are the cache's n tokens. Window: k, v
// (B, t, ·) are the new keys, and the keys are the visible old ones (the sinks, then the last
// window−1 positions, in order) followed by the new ones; dropping the invisible middle keeps the
// distances within the recent block, so the kernel's mask (with the same window and sinks) holds.
// The flash kernel takes one head width: Q/K and V are zero-padded to w = max(qk, hd) when they
// differ (the padding adds 0 to every score).
func (c *kvCache) prefill(o, q, k, v []float32, t, h int, scale float32) error {
	w := max(c.qk, c.hd)
	rq, rk, rv, ro := h*c.qk, c.kh*c.qk, c.kh*c.hd, h*c.hd
	lse := make([]float32, h*t)
	var qb, ob, kb, vb []float32
	for b := range c.B {
		var ks, vs []float32
		var s int
		if c.window == 0 {
			s = c.n
			ks, vs = c.k[b][:s*rk], c.v[b][:s*rv]
			if c.qk != w || c.hd != w {
				kb, vb = growTo(kb, s*c.kh*w), growTo(vb, s*c.kh*w)
				padRows(kb, ks, s*c.kh, c.qk, w)
				padRows(vb, vs, s*c.kh, c.hd, w)
				ks, vs = kb, vb
			}
		} else {
			ns := min(c.n, c.sinks)
			r0 := max(ns, c.n-c.window+1)
			s = ns + (c.n - r0) + t
			kb, vb = growTo(kb, s*c.kh*w), growTo(vb, s*c.kh*w)
			j := 0
			add := func(ksrc, vsrc []float32, n int) {
				padRows(kb[j*c.kh*w:], ksrc, n*c.kh, c.qk, w)
				padRows(vb[j*c.kh*w:], vsrc, n*c.kh, c.hd, w)
				j += n
			}
			add(c.k[b][:ns*rk], c.v[b][:ns*rv], ns)
			for p := r0; p < c.n; p++ {
				sl := c.slot(p)
				add(c.k[b][sl*rk:(sl+1)*rk], c.v[b][sl*rv:(sl+1)*rv], 1)
			}
			add(k[b*t*rk:(b+1)*t*rk], v[b*t*rv:(b+1)*t*rv], t)
			ks, vs = kb, vb
		}
		qs, os := q[b*t*rq:(b+1)*t*rq], o[b*t*ro:(b+1)*t*ro]
		if c.qk != w {
			qb = growTo(qb, t*h*w)
			padRows(qb, qs, t*h, c.qk, w)
			qs = qb
		}
		dst := os
		if c.hd != w {
			ob = growTo(ob, t*h*w)
			dst = ob
		}
		err := attn.Forward(dst, lse, qs, ks, vs, attn.Dims{B: 1, L: t, S: s, H: h, HKV: c.kh, Dh: w,
			Causal: true, Window: c.window, Sinks: c.sinks, Scale: scale})
		if err != nil {
			return err
		}
		if c.hd != w {
			for r := range t * h {
				copy(os[r*c.hd:(r+1)*c.hd], ob[r*w:])
			}
		}
	}
	return nil
}

// decode attends one query per stream, q (B, 1, h, qk), to every filled slot (the newest token's
// key and value appended): per (stream, KV head) the group's query heads are the rows of one GEMM
// for the scores and one for the output o (B, 1, h, hd).
func (c *kvCache) decode(o, q []float32, h int, scale float32) {
	m := min(c.n, c.limit)
	rep, ldk, ldv := h/c.kh, c.kh*c.qk, c.kh*c.hd
	impl := blas32.Implementation()
	if len(c.scr) < par.Workers() {
		c.scr = make([][]float32, par.Workers())
	}
	par.Each(c.B*c.kh, func(wk, item int) {
		b, g := item/c.kh, item%c.kh
		s := growTo(c.scr[wk], rep*m)
		c.scr[wk] = s
		qoff := (b*h + g*rep) * c.qk
		impl.Sgemm(blas.NoTrans, blas.Trans, rep, m, c.qk, scale, q[qoff:], c.qk, c.k[b][g*c.qk:], ldk, 0, s, m)
		for r := range rep {
			softmax(s[r*m : (r+1)*m])
		}
		impl.Sgemm(blas.NoTrans, blas.NoTrans, rep, c.hd, m, 1, s, m, c.v[b][g*c.hd:], ldv, 0, o[(b*h+g*rep)*c.hd:], c.hd)
	})
}

// softmax normalises a row of scores in place.
func softmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		e := fmath.Exp(v - mx)
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}
