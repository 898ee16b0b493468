package cuda

// Device-free tests of the backend: a fake device checks every launch against the embedded PTX
// (kernel exists, parameter count and widths match, pointers lie inside allocations, geometry
// within the hardware limits) while every op runs at the conformance suite's shapes. They check
// the Go ↔ kernel ABI and the validation, not the numbers: those need a GPU (cuda_test.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"github.com/hybridlab/hybrid/attention"
	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/ops"
	selectivescan "github.com/hybridlab/hybrid/selective_scan"
)

var (
	entryRx = regexp.MustCompile(`(?s)\.entry ([A-Za-z0-9_]+)\((.*?)\)`)
	paramRx = regexp.MustCompile(`\.param \.(u64|u32|s32|f32|s64)`)
)

// ptxSigs reads the kernels of ptx/*_<arch>.ptx: name → one letter per parameter
// (P: 64-bit, pointer or i64; i: 32-bit int; f: float32).
func ptxSigs(t *testing.T, arch string) map[string]string {
	t.Helper()
	files, err := filepath.Glob("ptx/*_" + arch + ".ptx")
	if err != nil || len(files) == 0 {
		t.Fatalf("no PTX for %s (run go generate ./kernels/cuda): %v", arch, err)
	}
	sigs := map[string]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range entryRx.FindAllStringSubmatch(string(src), -1) {
			var sig []byte
			for _, p := range paramRx.FindAllStringSubmatch(m[2], -1) {
				sig = append(sig, map[string]byte{"u64": 'P', "s64": 'P', "u32": 'i', "s32": 'i', "f32": 'f'}[p[1]])
			}
			sigs[m[1]] = string(sig)
		}
	}
	return sigs
}

type fakeDev struct {
	t        *testing.T
	next     devPtr
	allocs   map[devPtr]int
	sigs     map[string]string
	launched map[string]int
	gemms    int
}

func newFake(t *testing.T) *fakeDev {
	return &fakeDev{t: t, next: 1 << 32, allocs: map[devPtr]int{}, sigs: ptxSigs(t, "sm90"), launched: map[string]int{}}
}

func (f *fakeDev) name() string { return "fake" }
func (f *fakeDev) enter() error { return nil }
func (f *fakeDev) exit()        {}
func (f *fakeDev) sync() error  { return nil }

func (f *fakeDev) alloc(bytes int) (devPtr, error) {
	p := f.next
	f.allocs[p] = bytes
	f.next += devPtr((bytes + 4096) &^ 255)
	return p, nil
}

func (f *fakeDev) free(p devPtr) error {
	if _, ok := f.allocs[p]; !ok {
		return fmt.Errorf("free of %#x: not allocated", p)
	}
	delete(f.allocs, p)
	return nil
}

// inside reports whether [p, p+bytes) lies in one allocation.
func (f *fakeDev) inside(p devPtr, bytes int) bool {
	for a, n := range f.allocs {
		if p >= a && p+devPtr(bytes) <= a+devPtr(n) {
			return true
		}
	}
	return false
}

func (f *fakeDev) memset32(p devPtr, _ uint32, n int) error { return f.span("memset32", p, 4*n) }
func (f *fakeDev) htod(dst devPtr, _ unsafe.Pointer, bytes int) error {
	return f.span("htod", dst, bytes)
}

func (f *fakeDev) dtoh(dst unsafe.Pointer, src devPtr, bytes int) error {
	clear(unsafe.Slice((*byte)(dst), bytes))
	return f.span("dtoh", src, bytes)
}

func (f *fakeDev) dtod(dst, src devPtr, bytes int) error {
	if err := f.span("dtod dst", dst, bytes); err != nil {
		return err
	}
	return f.span("dtod src", src, bytes)
}

func (f *fakeDev) span(op string, p devPtr, bytes int) error {
	if !f.inside(p, bytes) {
		return fmt.Errorf("%s: %d bytes at %#x outside every allocation", op, bytes, p)
	}
	return nil
}

func (f *fakeDev) launch(k string, grid, block dim3, shmem int, args []uint64, sig string) error {
	want, ok := f.sigs[k]
	if !ok {
		return fmt.Errorf("kernel %s is not in the PTX", k)
	}
	if len(sig) != len(want) {
		return fmt.Errorf("kernel %s: %d arguments, the PTX has %d parameters", k, len(sig), len(want))
	}
	for i := range sig {
		g, w := sig[i], want[i]
		if (w == 'P' && g != 'p' && g != 'l') || (w != 'P' && g != w) {
			return fmt.Errorf("kernel %s: argument %d is %c, the PTX parameter is %c (sig %s vs %s)", k, i, g, w, sig, want)
		}
		if g == 'p' && args[i] != 0 && !f.inside(devPtr(args[i]), 4) {
			return fmt.Errorf("kernel %s: pointer argument %d = %#x outside every allocation", k, i, args[i])
		}
	}
	if n := block.x * block.y * block.z; n < 1 || n > 1024 || block.x%32 != 0 && n > 32 {
		return fmt.Errorf("kernel %s: block %v", k, block)
	}
	if grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535 {
		return fmt.Errorf("kernel %s: grid %v", k, grid)
	}
	if shmem > 48<<10 {
		return fmt.Errorf("kernel %s: %d bytes of dynamic shared memory (over 48 KiB needs an opt-in)", k, shmem)
	}
	f.launched[k]++
	return nil
}

func (f *fakeDev) sgemm(tA, tB bool, m, n, k int, alpha float32, a devPtr, lda int, b devPtr, ldb int, beta float32, c devPtr, ldc int) error {
	// Column-major extents: op(A) is m×k, op(B) k×n, C m×n.
	ext := func(rows, cols, ld int, tr bool) int {
		if tr {
			rows, cols = cols, rows
		}
		if ld < rows {
			f.t.Errorf("sgemm: ld %d < rows %d", ld, rows)
		}
		return 4 * (ld*(cols-1) + rows)
	}
	for _, e := range []error{f.span("sgemm A", a, ext(m, k, lda, tA)), f.span("sgemm B", b, ext(k, n, ldb, tB)), f.span("sgemm C", c, ext(m, n, ldc, false))} {
		if e != nil {
			return e
		}
	}
	f.gemms++
	return nil
}

type abi struct {
	*testing.T
	be *Backend
}

func (a abi) buf(n int) kernels.Buffer { return a.be.Alloc(n) }

func (a abi) must(name string, err error) {
	a.Helper()
	if err != nil {
		a.Errorf("%s: %v", name, err)
	}
}

// TestABI runs every op at the conformance suite's shapes against the fake device.
func TestABI(t *testing.T) {
	f := newFake(t)
	a := abi{t, newBackend(f)}
	be := a.be
	x, y, d := a.buf(35), a.buf(35), a.buf(35)
	a.must("Axpby", be.Axpby(d, 2, x, -0.5, y))
	a.must("Mul", be.Mul(d, x, y))
	_, err := be.SumSquares(x)
	a.must("SumSquares", err)
	c := a.buf(21)
	a.must("CopyRows", be.CopyRows(c, 3, 0, x, 5, 1, 7, 3, true))
	be.Fill(c, 1.5)
	for _, sz := range [][3]int{{1, 1, 1}, {17, 33, 65}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			a.must("MatMul", be.MatMul(a.buf(m*n), a.buf(m*k), a.buf(k*n), tr[0], tr[1], m, n, k, true))
		}
	}
	const r, in, out = 13, 9, 7
	a.must("Linear", be.Linear(a.buf(r*out), a.buf(r*in), a.buf(out*in), a.buf(out), r, in, out))
	a.must("LinearBackward", be.LinearBackward(a.buf(r*in), a.buf(out*in), a.buf(out), a.buf(r*out), a.buf(r*in), a.buf(out*in), r, in, out))
	ids := []int32{0, 3, 12, 3}
	a.must("Embedding", be.Embedding(a.buf(4*5), ids, a.buf(13*5), 4, 13, 5))
	a.must("EmbeddingBackward", be.EmbeddingBackward(a.buf(13*5), a.buf(4*5), ids, 4, 13, 5))
	a.must("RMSNorm", be.RMSNorm(a.buf(9*33), a.buf(9), a.buf(9*33), a.buf(33), 9, 33, 1e-5))
	a.must("RMSNormBackward", be.RMSNormBackward(a.buf(9*33), a.buf(33), a.buf(9*33), a.buf(9*33), a.buf(33), a.buf(9), 9, 33))
	a.must("GatedRMSNorm", be.GatedRMSNorm(a.buf(7*24), a.buf(21), a.buf(7*24), a.buf(7*24), a.buf(24), 7, 24, 3, 1e-5))
	a.must("GatedRMSNormBackward", be.GatedRMSNormBackward(a.buf(7*24), a.buf(7*24), a.buf(24), a.buf(7*24), a.buf(7*24), a.buf(7*24), a.buf(24), a.buf(21), 7, 24, 3))
	a.must("LayerNorm", be.LayerNorm(a.buf(5*31), a.buf(5), a.buf(5), a.buf(5*31), a.buf(31), a.buf(31), 5, 31, 1e-5))
	a.must("LayerNormBackward", be.LayerNormBackward(a.buf(5*31), a.buf(31), a.buf(31), a.buf(5*31), a.buf(5*31), a.buf(31), a.buf(5), a.buf(5), 5, 31))
	a.must("GroupNorm", be.GroupNorm(a.buf(6*30), a.buf(30), a.buf(30), a.buf(6*30), a.buf(30), a.buf(30), 6, 30, 5, 1e-5))
	a.must("GroupNormBackward", be.GroupNormBackward(a.buf(6*30), a.buf(30), a.buf(30), a.buf(6*30), a.buf(6*30), a.buf(30), a.buf(30), a.buf(30), 6, 30, 5))
	for _, u := range []kernels.Unary{kernels.SiLU, kernels.Softplus} {
		a.must("Activate", be.Activate(u, a.buf(101), a.buf(101)))
		a.must("ActivateBackward", be.ActivateBackward(u, a.buf(101), a.buf(101), a.buf(101)))
	}
	a.must("SwiGLU", be.SwiGLU(a.buf(101), a.buf(101), a.buf(101)))
	a.must("SwiGLUBackward", be.SwiGLUBackward(a.buf(101), a.buf(101), a.buf(101), a.buf(101), a.buf(101)))
	targets := []int32{1, -1, 36, 0}
	_, cnt, err := be.CrossEntropy(a.buf(4), a.buf(4*37), targets, 4, 37, -1)
	a.must("CrossEntropy", err)
	if cnt != 3 {
		t.Errorf("CrossEntropy count = %d, want 3", cnt)
	}
	a.must("CrossEntropyBackward", be.CrossEntropyBackward(a.buf(4*37), 0.7, a.buf(4*37), targets, a.buf(4), 4, 37, -1))
	for _, w := range []int{1, 2, 4} {
		cd := selectivescan.ConvDims{B: 2, L: 9, D: 5, W: w}
		n, ns := cd.B*cd.L*cd.D, cd.B*(cd.W-1)*cd.D
		st := a.buf(ns)
		a.must("Conv1D", be.Conv1D(a.buf(n), st, a.buf(n), a.buf(cd.D*cd.W), a.buf(cd.D), st, true, cd))
		a.must("Conv1DBackward", be.Conv1DBackward(a.buf(n), a.buf(cd.D*cd.W), a.buf(cd.D), a.buf(ns), a.buf(n), a.buf(ns), a.buf(n), a.buf(cd.D*cd.W), a.buf(cd.D), a.buf(ns), true, cd))
		a.must("Conv1DStep", be.Conv1DStep(a.buf(ns), a.buf(cd.B*cd.D), a.buf(cd.B*cd.D), a.buf(cd.D*cd.W), nil, false, cd))
	}
	sd := selectivescan.ScanDims{B: 2, L: 13, D: 6, N: 5, G: 2, Chunk: 4}
	bld, blgn, bdn := sd.B*sd.L*sd.D, sd.B*sd.L*sd.G*sd.N, sd.B*sd.D*sd.N
	sa := kernels.ScanArgs{U: a.buf(bld), Delta: a.buf(bld), A: a.buf(sd.D * sd.N), Bm: a.buf(blgn), Cm: a.buf(blgn), Dskip: a.buf(sd.D),
		Z: a.buf(bld), DeltaBias: a.buf(sd.D), H0: a.buf(bdn), Softplus: true, Dims: sd}
	saved := a.buf(be.ScanSavedLen(sd))
	a.must("Scan", be.Scan(a.buf(bld), a.buf(bdn), saved, sa))
	sg := kernels.ScanGrads{DU: a.buf(bld), DDelta: a.buf(bld), DA: a.buf(sd.D * sd.N), DBm: a.buf(blgn), DCm: a.buf(blgn),
		DDskip: a.buf(sd.D), DZ: a.buf(bld), DDeltaBias: a.buf(sd.D), DH0: a.buf(bdn)}
	a.must("ScanBackward", be.ScanBackward(sg, a.buf(bld), a.buf(bdn), sa, saved))
	a.must("ScanStep", be.ScanStep(a.buf(bdn), a.buf(sd.B*sd.D), a.buf(sd.B*sd.D), a.buf(sd.B*sd.D), a.buf(sd.B*sd.G*sd.N), a.buf(sd.B*sd.G*sd.N), nil, sa))
	dd := selectivescan.SSDDims{B: 2, L: 11, H: 3, P: 4, G: 1, N: 5, Chunk: 4}
	x5, bgn, hpn := dd.B*dd.L*dd.H*dd.P, dd.B*dd.L*dd.G*dd.N, dd.B*dd.H*dd.P*dd.N
	ia := kernels.SSDArgs{X: a.buf(x5), Dt: a.buf(dd.B * dd.L * dd.H), DtBias: a.buf(dd.H), A: a.buf(dd.H), Bm: a.buf(bgn), Cm: a.buf(bgn),
		Dskip: a.buf(dd.H), H0: a.buf(hpn), Dims: dd}
	ssaved := a.buf(be.SSDSavedLen(dd))
	a.must("SSD", be.SSD(a.buf(x5), a.buf(hpn), ssaved, ia))
	a.must("SSD (no saved)", be.SSD(a.buf(x5), nil, nil, ia))
	ig := kernels.SSDGrads{DX: a.buf(x5), DDt: a.buf(dd.B * dd.L * dd.H), DDtBias: a.buf(dd.H), DA: a.buf(dd.H), DBm: a.buf(bgn), DCm: a.buf(bgn),
		DDskip: a.buf(dd.H), DH0: a.buf(hpn)}
	a.must("SSDBackward", be.SSDBackward(ig, a.buf(x5), a.buf(hpn), ia, ssaved))
	a.must("SSDStep", be.SSDStep(a.buf(hpn), a.buf(dd.B*dd.H*dd.P), a.buf(dd.B*dd.H*dd.P), a.buf(dd.B*dd.H), a.buf(dd.B*dd.G*dd.N), a.buf(dd.B*dd.G*dd.N), ia))
	for _, ad := range []attention.Dims{
		{B: 2, L: 9, S: 9, H: 3, HKV: 3, Dh: 8, Causal: true},
		{B: 1, L: 17, S: 17, H: 4, HKV: 2, Dh: 16, Causal: true, Window: 5, Sinks: 2},
		{B: 1, L: 6, S: 6, H: 4, HKV: 1, Dh: 256, Causal: false},
	} {
		nq, nkv := ad.B*ad.L*ad.H*ad.Dh, ad.B*ad.S*ad.HKV*ad.Dh
		o, lse := a.buf(nq), a.buf(ad.B*ad.H*ad.L)
		a.must("Attention", be.Attention(o, lse, a.buf(nq), a.buf(nkv), a.buf(nkv), ad))
		a.must("AttentionBackward", be.AttentionBackward(a.buf(nq), a.buf(nkv), a.buf(nkv), a.buf(nq), a.buf(nq), a.buf(nkv), a.buf(nkv), o, lse, ad))
		a.must("AttentionBackward (dq only)", be.AttentionBackward(a.buf(nq), nil, a.buf(nkv), a.buf(nq), a.buf(nq), a.buf(nkv), a.buf(nkv), o, lse, ad))
	}
	rd := attention.RoPEDims{B: 2, L: 5, H: 3, Dh: 8}
	rb := a.buf(2 * 5 * 3 * 8)
	a.must("RoPE", be.RoPE(rb, rb, 7, 10000, rd))
	a.must("RoPEBackward", be.RoPEBackward(a.buf(240), rb, 7, 10000, rd))
	a.must("AdamW", be.AdamW(a.buf(37), a.buf(37), a.buf(37), a.buf(37), 3, ops.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}))
	kv, err := be.NewKVCache(attention.CacheDims{B: 2, HKV: 2, Dh: 16, Window: 4, Sinks: 1})
	a.must("NewKVCache", err)
	a.must("KVCache.Append", kv.Append(a.buf(2*3*2*16), a.buf(2*3*2*16), 3))
	a.must("KVCache.Decode", kv.Decode(a.buf(2*4*16), a.buf(2*4*16), attention.DecodeDims{H: 4}))

	// 16-bit storage: SSD and attention variants, conversions.
	for _, st := range []Storage{BF16, F16} {
		h := func(n int) kernels.Buffer { return be.AllocStorage(n, st) }
		s16 := sa
		s16.U, s16.Delta, s16.Bm, s16.Cm, s16.Z = h(bld), h(bld), h(blgn), h(blgn), h(bld)
		a.must("Scan "+st.String(), be.Scan(h(bld), a.buf(bdn), saved, s16))
		sg16 := sg
		sg16.DU, sg16.DDelta, sg16.DBm, sg16.DCm, sg16.DZ = h(bld), h(bld), h(blgn), h(blgn), h(bld)
		a.must("ScanBackward "+st.String(), be.ScanBackward(sg16, h(bld), a.buf(bdn), s16, saved))
		bd, bgn1 := sd.B*sd.D, sd.B*sd.G*sd.N
		a.must("ScanStep "+st.String(), be.ScanStep(a.buf(bdn), h(bd), h(bd), h(bd), h(bgn1), h(bgn1), nil, sa))
		i16 := ia
		i16.X, i16.Bm, i16.Cm = h(x5), h(bgn), h(bgn)
		a.must("SSD "+st.String(), be.SSD(h(x5), a.buf(hpn), ssaved, i16))
		g16 := ig
		g16.DX, g16.DBm, g16.DCm = h(x5), h(bgn), h(bgn)
		a.must("SSDBackward "+st.String(), be.SSDBackward(g16, h(x5), a.buf(hpn), i16, ssaved))
		ad := attention.Dims{B: 1, L: 17, S: 17, H: 4, HKV: 2, Dh: 16, Causal: true, Window: 5, Sinks: 2}
		nq, nkv := ad.B*ad.L*ad.H*ad.Dh, ad.B*ad.S*ad.HKV*ad.Dh
		o, lse := h(nq), a.buf(ad.B*ad.H*ad.L)
		a.must("Attention "+st.String(), be.Attention(o, lse, h(nq), h(nkv), h(nkv), ad))
		a.must("AttentionBackward "+st.String(), be.AttentionBackward(h(nq), nil, h(nkv), h(nq), h(nq), h(nkv), h(nkv), o, lse, ad))
		hb := h(10)
		a.must("Upload "+st.String(), be.Upload(hb, make([]float32, 10)))
		a.must("Download "+st.String(), be.Download(make([]float32, 10), hb))
		be.Fill(hb, 1)
		a.must("Convert", be.Convert(h(10), be.AllocStorage(10, BF16+F16-st)))
	}

	// Every kernel except fill (memset does it) has a Go caller.
	var missing []string
	for k := range f.sigs {
		if f.launched[k] == 0 && k != "fill_f32" {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("kernels never launched by the Go side: %v", missing)
	}
	if f.gemms == 0 {
		t.Error("no cuBLAS call")
	}
}

// TestPTXArchs: both architectures carry the same kernels with the same parameters.
func TestPTXArchs(t *testing.T) {
	a, b := ptxSigs(t, "sm80"), ptxSigs(t, "sm90")
	if len(a) != len(b) {
		t.Fatalf("sm80 has %d kernels, sm90 %d", len(a), len(b))
	}
	for k, s := range a {
		if b[k] != s {
			t.Errorf("kernel %s: sm80 parameters %q, sm90 %q", k, s, b[k])
		}
	}
}

// TestErrors: bad sizes and buffers are errors naming the op and the argument.
func TestErrors(t *testing.T) {
	be := newBackend(newFake(t))
	x := be.Alloc(10)
	for _, c := range []struct {
		err  error
		want string
	}{
		{be.Axpby(x, 1, be.Alloc(9), 1, x), "cuda.Axpby: x has length 9"},
		{be.MatMul(x, x, x, false, false, 2, 5, 3, false), "cuda.MatMul: a has length 10, want M·K = 6"},
		{be.RMSNorm(x, be.Alloc(2), x, be.Alloc(5), 2, 5, -1), "eps"},
		{be.GroupNorm(x, x, x, x, x, x, 1, 10, 3, 1e-5), "not divisible by G=3"},
		{be.Embedding(x, []int32{0, 7}, be.Alloc(15), 2, 3, 5), "ids[1] = 7 out of range"},
		{be.Scan(x, nil, nil, kernels.ScanArgs{Dims: selectivescan.ScanDims{B: 1, L: 3, D: 1, N: 4, G: 1}}), "cuda.Scan: U is nil"},
		{be.Attention(x, x, x, x, x, attention.Dims{B: 1, L: 2, S: 1, H: 1, HKV: 1, Dh: 5, Causal: true}), "S = 1 < L = 2"},
		{be.Attention(x, x, x, x, x, attention.Dims{B: 1, L: 1, S: 1, H: 1, HKV: 1, Dh: 512}), "Dh = 512 is above"},
		{be.Upload(x, make([]float32, 3)), "cuda.Upload: dst has length 10, want len(src) = 3"},
		{be.Conv1D(x, nil, x, x, nil, nil, false, selectivescan.ConvDims{B: 1, L: 10, D: 1, W: 17}), "W=17 is above"},
		{be.AdamW(x, x, x, x, 0, ops.AdamWConfig{Eps: 1e-8}), "step = 0"},
		{be.Mul(x, x, fakeBuf{}), "not a buffer of the CUDA backend"},
		{be.Mul(x, x, be.AllocStorage(10, BF16)), "y is stored as bfloat16; this op takes float32 buffers"},
		{be.Attention(be.AllocStorage(5, BF16), be.Alloc(1), be.AllocStorage(5, F16), be.AllocStorage(5, F16), be.AllocStorage(5, F16),
			attention.Dims{B: 1, L: 1, S: 1, H: 1, HKV: 1, Dh: 5}), "q is stored as float16, the op's other activations as bfloat16"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("got error %v, want one containing %q", c.err, c.want)
		}
	}
}

type fakeBuf struct{}

func (fakeBuf) Len() int { return 10 }
