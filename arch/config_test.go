package arch

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		path string
		msg  string
	}{
		{"heads not dividing", func(c *Config) { c.Attention.Heads, c.Attention.KVHeads = 6, 4 }, "attention.kv_heads", "4 does not divide attention.heads 6"},
		{"zero width", func(c *Config) { c.DModel = 0 }, "d_model", "must be positive"},
		{"negative vocab", func(c *Config) { c.VocabSize = -1 }, "vocab_size", "must be positive"},
		{"negative head dim", func(c *Config) { c.Attention.HeadDim = -1 }, "attention.head_dim", "must be ≥ 0"},
		{"heads not dividing width", func(c *Config) { c.Attention.Heads, c.Attention.KVHeads, c.Attention.HeadDim = 3, 1, 0 }, "attention.heads", "3 does not divide d_model 128"},
		{"mamba version", func(c *Config) { c.Mamba.Version = 3 }, "mamba.version", "must be 1 or 2"},
		{"mamba head dim", func(c *Config) { c.Mamba.HeadDim = 48 }, "mamba.head_dim", "does not divide the inner width"},
		{"groups", func(c *Config) { c.Mamba.NGroups = 3 }, "mamba.n_groups", "3 does not divide the 8 Mamba-2 heads"},
		{"a init", func(c *Config) { c.Mamba.AInit = []float64{2, 1} }, "mamba.a_init", "lo ≤ hi"},
		{"ffn type", func(c *Config) { c.FFN.Type = "relu" }, "ffn.type", "not one of swiglu, none"},
		{"moe refused", func(c *Config) { c.FFN.Type = "moe" }, "ffn.type", "reserved"},
		{"moe fields", func(c *Config) { c.FFN.Experts = 8 }, "ffn.experts", "reserved"},
		{"norm", func(c *Config) { c.Norm.Type = "batchnorm" }, "norm.type", "not one of"},
		{"window for S", func(c *Config) { c.Layout.Pattern = "MSMM"; c.Attention.Window = 0 }, "attention.window", "must be positive"},
		{"ffn-only with none", func(c *Config) { c.Layout.Pattern = "M-MA"; c.FFN.Type = "none" }, "ffn.type", "FFN-only"},
		{"intra share", func(c *Config) { c.Layout.Pattern = "MIMM"; c.Intra.AttnShare = 0.3 }, "intra.attn_share", "not a positive whole number"},
		{"intra fusion", func(c *Config) { c.Layout.Pattern = "MIMM"; c.Intra.Fusion = "mul" }, "intra.fusion", "not one of"},
		{"concat needs shared out", func(c *Config) { c.Layout.Pattern = "MIMM"; c.Intra.Fusion = "concat" }, "intra.fusion", "share_out"},
		{"shared out widths", func(c *Config) { c.Layout.Pattern = "MIMM"; c.Intra.ShareOut = true }, "intra.share_out", "equal branch widths"},
		{"layout", func(c *Config) { c.Layout.Ratio = "1:5" }, "layout.pattern", "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Layout = Layout{Pattern: "MMAM"}
			tt.edit(&c)
			err := c.Validate()
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %v, want Errors", err)
			}
			for _, e := range es {
				if e.Path == tt.path && strings.Contains(e.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("got %q, want %s: …%s…", err, tt.path, tt.msg)
		})
	}
}

func TestValidateSkipsUnusedSections(t *testing.T) {
	c := Default()
	c.Layout = Layout{Pattern: "AAAA"}
	c.Mamba = Mamba{} // a Transformer does not need a Mamba section
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c = Default()
	c.Layout = Layout{Pattern: "MMMM"}
	c.Attention = Attention{}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
