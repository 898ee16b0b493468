package eval

import (
	"fmt"
	"runtime/metrics"

	"github.com/hybridlab/hybrid/internal/sysinfo"
)

// memory estimates what a call needs against what the machine has.
type memory struct {
	avail int64 // bytes an evaluation may use; ≤ 0: unknown, no check
	V     int
	o     *Options
}

func newMemory(m Model, o *Options) *memory {
	mem := &memory{avail: o.MemoryBytes, V: m.Vocab(), o: o}
	if mem.avail == 0 {
		mem.avail = sysinfo.Available() // 0 where unknown: no check
	}
	return mem
}

// need is the estimated memory of one call on B rows of T tokens: the decode cache at T for
// every row plus the activations.
func (mem *memory) need(B, T int) int64 {
	var n int64
	if mem.o.CacheBytes != nil {
		n += int64(B) * mem.o.CacheBytes(T)
	}
	if mem.o.ActivationBytes != nil {
		n += mem.o.ActivationBytes(B, T)
	} else {
		n += 3 * 4 * int64(B) * int64(T) * int64(mem.V)
	}
	return n
}

// fits reports an error when B rows of T tokens are estimated not to fit.
func (mem *memory) fits(suite string, B, T int) error {
	if mem.avail <= 0 {
		return nil
	}
	if n := mem.need(B, T); n > mem.avail {
		return fmt.Errorf("%s: length %d at batch %d needs about %s, %s available (Options.MemoryBytes)",
			suite, T, B, human(n), human(mem.avail))
	}
	return nil
}

// human prints bytes in binary units.
func human(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// GoMemory is the memory the Go runtime has mapped now (all classes) and the heap in use.
func GoMemory() (total, heap int64) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		total = int64(s[0].Value.Uint64())
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		heap = int64(s[1].Value.Uint64())
	}
	return total, heap
}
