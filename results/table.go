package results

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
)

// fixed are the leading CSV columns; every flat metric follows in sorted key order.
var fixed = []string{"recipe", "config_hash", "family", "pattern", "tokenizer"}

// Keys is the sorted union of the metric keys of rs.
func Keys(rs []*Results) []string {
	set := map[string]bool{}
	for _, r := range rs {
		for k := range r.Flatten() {
			set[k] = true
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// WriteCSV writes one row per run: the identifying columns, then every metric (empty where a
// run lacks it). extra columns (for example a sweep's parameters) come from the extra function
// when it is not nil.
func WriteCSV(w io.Writer, rs []*Results) error {
	keys := Keys(rs)
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{}, fixed...), keys...)); err != nil {
		return err
	}
	for _, r := range rs {
		row := []string{r.Recipe, r.ConfigHash, r.Family, r.Pattern, r.Tokenizer}
		for _, k := range keys {
			v, ok := r.Metrics[k]
			if !ok {
				row = append(row, "")
				continue
			}
			row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadCSV reads a WriteCSV export back: identity columns, Metrics, and Cost from the cost.*
// metrics. name labels errors (the file name).
func ReadCSV(r io.Reader, name string) ([]*Results, error) {
	cr := csv.NewReader(r)
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: empty CSV", name)
	}
	head := rows[0]
	if len(head) < len(fixed) {
		return nil, fmt.Errorf("%s: header has %d columns, want at least %v", name, len(head), fixed)
	}
	for i, c := range fixed {
		if head[i] != c {
			return nil, fmt.Errorf("%s: column %d is %q, want %q", name, i+1, head[i], c)
		}
	}
	var out []*Results
	for li, row := range rows[1:] {
		res := &Results{Schema: Version, Recipe: row[0], ConfigHash: row[1], Family: row[2], Pattern: row[3], Tokenizer: row[4], Metrics: map[string]float64{}}
		for j := len(fixed); j < len(head); j++ {
			if row[j] == "" {
				continue
			}
			v, err := strconv.ParseFloat(row[j], 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: column %s: %q is not a number", name, li+2, head[j], row[j])
			}
			res.Metrics[head[j]] = v
		}
		m := res.Metrics
		res.Cost = Cost{
			Params: int64(m["cost.params"]), NonEmbeddingParams: int64(m["cost.non_embedding_params"]),
			Tokens: int64(m["cost.tokens"]), FLOPs: m["cost.flops"], WallSeconds: m["cost.wall_seconds"],
			PeakBytes: int64(m["cost.peak_bytes"]),
		}
		if res.Cost.Tokens > 0 {
			res.Cost.FLOPsPerToken = res.Cost.FLOPs / float64(res.Cost.Tokens)
		}
		out = append(out, res)
	}
	return out, nil
}

// WriteJSONL writes one compact results object per line.
func WriteJSONL(w io.Writer, rs []*Results) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		r.Flatten()
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// Finite reports whether v is a usable number (not NaN or ±Inf).
func Finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
