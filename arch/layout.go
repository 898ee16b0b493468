package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what one layer of the stack holds. Its value is the layer's letter in a pattern string.
type Kind byte

// The layout alphabet. '*' is accepted as Megatron-LM's spelling of A and printed as A.
const (
	KindMamba       Kind = 'M' // Mamba mixer (mamba.version 1 or 2)
	KindAttn        Kind = 'A' // global causal softmax attention (GQA, RoPE)
	KindWindow      Kind = 'S' // sliding-window attention: attention.window recent keys + attention.sinks first tokens
	KindIntra       Kind = 'I' // intra-layer hybrid block: attention and Mamba branches in parallel
	KindIntraWindow Kind = 'W' // intra-layer hybrid block whose attention branch uses the sliding window
	KindFFN         Kind = '-' // a layer with no mixer, only (norm +) FFN, as Megatron's '-'
)

// String names the kind for tables.
func (k Kind) String() string {
	switch k {
	case KindMamba:
		return "mamba"
	case KindAttn:
		return "attention"
	case KindWindow:
		return "swa"
	case KindIntra:
		return "intra"
	case KindIntraWindow:
		return "intra-swa"
	case KindFFN:
		return "ffn"
	}
	return fmt.Sprintf("Kind(%q)", byte(k))
}

// kindOf maps an input letter to its kind; '*' is Megatron's attention.
func kindOf(c byte) (Kind, bool) {
	switch c {
	case 'M', 'A', 'S', 'I', 'W', '-':
		return Kind(c), true
	case '*':
		return KindAttn, true
	}
	return 0, false
}

// Layout says which kind each layer is. Give either Pattern, or Ratio with a Placement (or
// explicit Indices). Every resolved layout is printed and stored as its canonical pattern.
//
// Placements of k = round(n·a/(a+m)) placed layers (ties round down, to the cheaper mixer)
// among n, j = 0..k−1:
//
//	middle   attention and SWA at floor((j+1)·n/(k+1)), intra blocks at ceil((j+1)·n/(k+1)):
//	         the k+1 gaps are as equal as possible and neither end holds one. This reproduces the
//	         paper's 1B placements: 13 layers at 1:5 → attention at {4, 8}, intra at {5, 9}.
//	even     floor((j+1)·n/k) − 1: one at the end of each of k equal segments (…MMA MMA).
//	front    0..k−1 (the paper's "attention first" control).
//	back     n−k..n−1.
//	periodic layer i is placed when (i − offset) mod (a+m) < a: Jamba's attn_layer_period/offset.
//	indices  exactly Indices (0-based); with a Ratio their count must match it.
type Layout struct {
	Pattern   string `yaml:"pattern,omitempty" json:"pattern,omitempty"`
	Ratio     string `yaml:"ratio,omitempty" json:"ratio,omitempty"`         // "attn:mamba", e.g. "1:5"
	Placement string `yaml:"placement,omitempty" json:"placement,omitempty"` // middle (default) | even | front | back | periodic | indices
	Indices   []int  `yaml:"indices,omitempty" json:"indices,omitempty"`
	Offset    int    `yaml:"offset,omitempty" json:"offset,omitempty"` // periodic only
	// Place is the letter the ratio's first term counts (default A; S, I or W for SWA or intra
	// hybrids) and Fill the letter of every other layer (default M; S for the SWA baseline).
	Place string `yaml:"place,omitempty" json:"place,omitempty"`
	Fill  string `yaml:"fill,omitempty" json:"fill,omitempty"`
}

func layoutErr(field, format string, a ...any) error {
	return &FieldError{Path: "layout." + field, Msg: fmt.Sprintf(format, a...)}
}

// Pattern spells kinds as a canonical pattern string (A for attention, never '*').
func Pattern(kinds []Kind) string {
	b := make([]byte, len(kinds))
	for i, k := range kinds {
		b[i] = byte(k)
	}
	return string(b)
}

// Resolve returns the kind of each of n layers and the canonical pattern. Errors are
// *FieldError with paths under "layout.".
func (l Layout) Resolve(n int) ([]Kind, string, error) {
	if n <= 0 {
		return nil, "", &FieldError{Path: "n_layers", Msg: fmt.Sprintf("must be positive, have %d", n)}
	}
	if l.Pattern != "" {
		if l.Ratio != "" || len(l.Indices) > 0 {
			return nil, "", layoutErr("pattern", "set either pattern or ratio/indices, not both (clear one, e.g. --set model.layout.pattern=)")
		}
		if len(l.Pattern) != n {
			return nil, "", layoutErr("pattern", "%q has %d layers, n_layers is %d", l.Pattern, len(l.Pattern), n)
		}
		kinds := make([]Kind, n)
		for i := 0; i < n; i++ {
			k, ok := kindOf(l.Pattern[i])
			if !ok {
				return nil, "", layoutErr("pattern", "unknown letter %q at layer %d (want M, A or *, S, I, W, -)", l.Pattern[i], i)
			}
			kinds[i] = k
		}
		return kinds, Pattern(kinds), nil
	}
	place, err := letter("place", l.Place, KindAttn)
	if err != nil {
		return nil, "", err
	}
	fill, err := letter("fill", l.Fill, KindMamba)
	if err != nil {
		return nil, "", err
	}
	if place == fill {
		return nil, "", layoutErr("fill", "%q is the same as place", byte(fill))
	}
	placement := l.Placement
	if placement == "" {
		placement = "middle"
		if l.Ratio == "" && len(l.Indices) > 0 {
			placement = "indices"
		}
	}
	if l.Ratio == "" && placement != "indices" {
		return nil, "", layoutErr("ratio", "missing: set model.layout.pattern, or ratio (\"1:5\") with a placement, or indices")
	}
	var a, m, k int
	if l.Ratio != "" {
		if a, m, err = parseRatio(l.Ratio); err != nil {
			return nil, "", err
		}
		if n < a+m && a > 0 && m > 0 {
			return nil, "", layoutErr("ratio", "%q needs at least %d layers, have %d", l.Ratio, a+m, n)
		}
		// k = round(n·a/(a+m)), ties down: (2·n·a + (a+m) − 1) / (2·(a+m)) in integers.
		k = (2*n*a + a + m - 1) / (2 * (a + m))
		if a > 0 && k == 0 {
			k = 1
		}
	}
	if placement != "indices" && len(l.Indices) > 0 {
		return nil, "", layoutErr("indices", "given but placement is %q (use placement: indices)", placement)
	}
	if placement != "periodic" && l.Offset != 0 {
		return nil, "", layoutErr("offset", "only applies to placement: periodic")
	}
	at := make([]int, 0, k)
	switch placement {
	case "middle":
		if k == n {
			for j := 0; j < n; j++ {
				at = append(at, j)
			}
			break
		}
		for j := 0; j < k; j++ {
			num := (j + 1) * n
			p := num / (k + 1)
			if (place == KindIntra || place == KindIntraWindow) && num%(k+1) != 0 {
				p++ // ceil for intra blocks, as the paper places them
			}
			at = append(at, p)
		}
	case "even":
		for j := 0; j < k; j++ {
			at = append(at, (j+1)*n/k-1)
		}
	case "front":
		for j := 0; j < k; j++ {
			at = append(at, j)
		}
	case "back":
		for j := 0; j < k; j++ {
			at = append(at, n-k+j)
		}
	case "periodic":
		p := a + m
		if l.Offset < 0 || l.Offset >= p {
			return nil, "", layoutErr("offset", "%d is outside the period [0, %d)", l.Offset, p)
		}
		for i := 0; i < n; i++ {
			if ((i-l.Offset)%p+p)%p < a {
				at = append(at, i)
			}
		}
	case "indices":
		if len(l.Indices) == 0 {
			return nil, "", layoutErr("indices", "placement is indices but no indices are given")
		}
		if l.Ratio != "" && len(l.Indices) != k {
			return nil, "", layoutErr("indices", "has %d entries but ratio %q at %d layers places %d", len(l.Indices), l.Ratio, n, k)
		}
		at = append(at, l.Indices...)
	default:
		return nil, "", layoutErr("placement", "%q is not one of middle, even, front, back, periodic, indices", l.Placement)
	}
	kinds := make([]Kind, n)
	for i := range kinds {
		kinds[i] = fill
	}
	for _, i := range at {
		if i < 0 || i >= n {
			return nil, "", layoutErr("indices", "index %d is out of range [0, %d)", i, n)
		}
		if kinds[i] == place {
			return nil, "", layoutErr("indices", "index %d appears twice", i)
		}
		kinds[i] = place
	}
	return kinds, Pattern(kinds), nil
}

// letter reads a Place/Fill letter, with a default when empty.
func letter(field, s string, def Kind) (Kind, error) {
	if s == "" {
		return def, nil
	}
	if len(s) == 1 {
		if k, ok := kindOf(s[0]); ok && k != KindFFN {
			return k, nil
		}
	}
	return 0, layoutErr(field, "%q is not a mixer letter (M, A or *, S, I, W)", s)
}

// parseRatio reads "a:m" with non-negative integers, not both zero.
func parseRatio(s string) (a, m int, err error) {
	as, ms, ok := strings.Cut(s, ":")
	if ok {
		var e1, e2 error
		a, e1 = strconv.Atoi(strings.TrimSpace(as))
		m, e2 = strconv.Atoi(strings.TrimSpace(ms))
		ok = e1 == nil && e2 == nil && a >= 0 && m >= 0 && a+m > 0
	}
	if !ok {
		return 0, 0, layoutErr("ratio", "%q is not attn:mamba with whole numbers, e.g. \"1:5\"", s)
	}
	return a, m, nil
}
