package arch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestLayoutResolve(t *testing.T) {
	tests := []struct {
		name string
		n    int
		l    Layout
		want string
	}{
		// The paper at 1B: 13 layers, 1:5 → attention at {4, 8}, intra blocks at {5, 9}.
		{"paper inter 1:5", 13, Layout{Ratio: "1:5"}, "MMMMAMMMAMMMM"},
		{"paper intra 1:5", 13, Layout{Ratio: "1:5", Place: "I"}, "MMMMMIMMMIMMM"},
		{"1:12 middle", 13, Layout{Ratio: "1:12", Placement: "middle"}, "MMMMMMAMMMMMM"},
		{"1:12 front control", 13, Layout{Ratio: "1:12", Placement: "front"}, "AMMMMMMMMMMMM"},
		{"1:1 alternates", 13, Layout{Ratio: "1:1"}, "MAMAMAMAMAMAM"},
		{"1:3", 13, Layout{Ratio: "1:3"}, "MMMAMMAMMAMMM"},
		{"1:0 all attention", 4, Layout{Ratio: "1:0"}, "AAAA"},
		{"0:1 all mamba", 4, Layout{Ratio: "0:1"}, "MMMM"},
		{"swa 1:5 at 16", 16, Layout{Ratio: "1:5", Fill: "S"}, "SSSSASSSASSSASSS"},
		{"even", 8, Layout{Ratio: "1:3", Placement: "even"}, "MMMAMMMA"},
		{"back", 6, Layout{Ratio: "1:2", Placement: "back"}, "MMMMAA"},
		{"jamba periodic", 8, Layout{Ratio: "1:7", Placement: "periodic", Offset: 4}, "MMMMAMMM"},
		{"periodic two periods", 16, Layout{Ratio: "1:7", Placement: "periodic", Offset: 4}, "MMMMAMMMMMMMAMMM"},
		{"indices alone", 5, Layout{Indices: []int{1, 3}}, "MAMAM"},
		{"indices with ratio", 12, Layout{Ratio: "1:5", Placement: "indices", Indices: []int{0, 11}}, "AMMMMMMMMMMA"},
		{"megatron star", 8, Layout{Pattern: "M-M*-M*-"}, "M-MA-MA-"},
		{"hymba-like", 4, Layout{Pattern: "IWWI"}, "IWWI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kinds, pat, err := tt.l.Resolve(tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if pat != tt.want || Pattern(kinds) != tt.want {
				t.Errorf("got %s, want %s", pat, tt.want)
			}
		})
	}
}

func TestLayoutErrors(t *testing.T) {
	tests := []struct {
		name, path, msg string
		n               int
		l               Layout
	}{
		{"ratio too big", "layout.ratio", `"1:5" needs at least 6 layers, have 4`, 4, Layout{Ratio: "1:5"}},
		{"bad ratio", "layout.ratio", "not attn:mamba", 4, Layout{Ratio: "1-5"}},
		{"zero ratio", "layout.ratio", "not attn:mamba", 4, Layout{Ratio: "0:0"}},
		{"index out of range", "layout.indices", "index 13 is out of range [0, 13)", 13, Layout{Indices: []int{4, 13}}},
		{"negative index", "layout.indices", "index -1 is out of range", 13, Layout{Indices: []int{-1}}},
		{"duplicate index", "layout.indices", "appears twice", 13, Layout{Indices: []int{4, 4}}},
		{"index count", "layout.indices", "has 1 entries but ratio", 13, Layout{Ratio: "1:5", Placement: "indices", Indices: []int{4}}},
		{"unknown letter", "layout.pattern", `unknown letter 'X' at layer 2`, 4, Layout{Pattern: "MMXM"}},
		{"pattern length", "layout.pattern", "has 3 layers, n_layers is 4", 4, Layout{Pattern: "MMA"}},
		{"both", "layout.pattern", "not both", 4, Layout{Pattern: "MMAM", Ratio: "1:3"}},
		{"nothing", "layout.ratio", "missing", 4, Layout{}},
		{"placement", "layout.placement", `"sideways" is not one of`, 6, Layout{Ratio: "1:5", Placement: "sideways"}},
		{"place letter", "layout.place", `"-" is not a mixer letter`, 6, Layout{Ratio: "1:5", Place: "-"}},
		{"same letters", "layout.fill", "same as place", 6, Layout{Ratio: "1:5", Place: "M"}},
		{"offset range", "layout.offset", "outside the period", 8, Layout{Ratio: "1:7", Placement: "periodic", Offset: 8}},
		{"offset unused", "layout.offset", "only applies", 8, Layout{Ratio: "1:7", Offset: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.l.Resolve(tt.n)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if fe.Path != tt.path || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got %q, want path %s and message containing %q", err, tt.path, tt.msg)
			}
		})
	}
}

func ExampleLayout_Resolve() {
	for _, l := range []Layout{
		{Ratio: "1:5"},             // the paper's inter-layer hybrid
		{Ratio: "1:5", Place: "I"}, // the paper's intra-layer hybrid
		{Ratio: "1:12", Placement: "front"},
		{Pattern: "MM*MMM*MMM*MM"}, // Megatron spelling
	} {
		_, pat, err := l.Resolve(13)
		fmt.Println(pat, err)
	}
	// Output:
	// MMMMAMMMAMMMM <nil>
	// MMMMMIMMMIMMM <nil>
	// AMMMMMMMMMMMM <nil>
	// MMAMMMAMMMAMM <nil>
}
