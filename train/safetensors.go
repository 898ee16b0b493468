package train

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/hybridlab/hybrid/internal/atomicfile"
	"io"
	"math"
	"os"
	"sort"
)

// The safetensors format (github.com/huggingface/safetensors), as PyTorch, JAX and Rust tools
// read it:
//
//	u64 LE  N, the header length in bytes
//	N bytes JSON: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...],
//	        "data_offsets": [begin, end]}, ...}, padded with spaces so 8+N is a multiple of 8
//	data    the tensors' raw little-endian bytes; offsets count from the start of this block,
//	        and the tensors tile it exactly (no gaps, no overlaps)
//
// Only F32 is written and read here.

// Entry is one named float32 array of a safetensors file.
type Entry struct {
	Name  string
	Shape []int
	Data  []float32 // row-major, len = product of Shape
}

// Safetensors is a file read by ReadSafetensors.
type Safetensors struct {
	Path     string
	Metadata map[string]string
	Entries  []Entry // in file order
	byName   map[string]int
}

// Get returns the entry called name.
func (s *Safetensors) Get(name string) (Entry, bool) {
	i, ok := s.byName[name]
	if !ok {
		return Entry{}, false
	}
	return s.Entries[i], true
}

// maxHeader bounds the header, as the reference implementation does (100 MB).
const maxHeader = 100 << 20

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// header builds the padded JSON header for entries, in their order.
func header(entries []Entry, meta map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	sep := ""
	if len(meta) > 0 {
		m, err := json.Marshal(meta) // keys sorted
		if err != nil {
			return nil, err
		}
		b.WriteString(`"__metadata__":`)
		b.Write(m)
		sep = ","
	}
	seen := map[string]bool{}
	off := 0
	for _, e := range entries {
		if e.Name == "" || e.Name == "__metadata__" || seen[e.Name] {
			return nil, fmt.Errorf("tensor name %q is empty, reserved or repeated", e.Name)
		}
		seen[e.Name] = true
		if len(e.Data) != numel(e.Shape) {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", e.Name, len(e.Data), e.Shape)
		}
		name, _ := json.Marshal(e.Name)
		shape, _ := json.Marshal(append([]int{}, e.Shape...)) // [] rather than null for scalars
		end := off + 4*len(e.Data)
		fmt.Fprintf(&b, `%s%s:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, sep, name, shape, off, end)
		sep, off = ",", end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// WriteSafetensors writes entries (in order) and metadata to path atomically.
func WriteSafetensors(path string, entries []Entry, meta map[string]string) error {
	h, err := header(entries, meta)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(h); err != nil {
			return err
		}
		buf := make([]byte, 0, 1<<16)
		for _, e := range entries {
			for _, x := range e.Data {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
				if len(buf) == cap(buf) {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
		}
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

// ReadSafetensors reads and validates a safetensors file of F32 tensors: the header length
// against the file size, the JSON, every dtype, shape and offset pair, and that the tensors tile
// the data block exactly. Errors name the file and the tensor.
func ReadSafetensors(path string) (*Safetensors, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := parseSafetensors(raw)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	s.Path = path
	return s, nil
}

type stEntry struct {
	Dtype   string  `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

func parseSafetensors(raw []byte) (*Safetensors, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length (truncated?)", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > maxHeader || n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("header length %d does not fit the file of %d bytes (truncated or not safetensors?)", n, len(raw))
	}
	hdr, data := raw[8:8+n], raw[8+n:]
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("header does not start with '{'")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &fields); err != nil {
		return nil, fmt.Errorf("header is not a JSON object: %v", err)
	}
	s := &Safetensors{byName: map[string]int{}}
	if m, ok := fields["__metadata__"]; ok {
		if err := json.Unmarshal(m, &s.Metadata); err != nil {
			return nil, fmt.Errorf("__metadata__ is not a map of strings: %v", err)
		}
		delete(fields, "__metadata__")
	}
	type placed struct {
		name string
		e    stEntry
	}
	var ps []placed
	for name, msg := range fields {
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		var e stEntry
		if err := d.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		if e.Dtype != "F32" {
			return nil, fmt.Errorf("tensor %q: dtype %q not supported (want F32)", name, e.Dtype)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] {
			return nil, fmt.Errorf("tensor %q: data_offsets %v, want [begin, end] with 0 ≤ begin ≤ end", name, e.Offsets)
		}
		size := int64(4)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && size > math.MaxInt64/int64(d)) {
				return nil, fmt.Errorf("tensor %q: bad shape %v", name, e.Shape)
			}
			size *= int64(d)
		}
		if e.Offsets[1]-e.Offsets[0] != size {
			return nil, fmt.Errorf("tensor %q: shape %v needs %d bytes, data_offsets %v span %d", name, e.Shape, size, e.Offsets, e.Offsets[1]-e.Offsets[0])
		}
		ps = append(ps, placed{name, e})
	}
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i].e.Offsets, ps[j].e.Offsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return a[1] < b[1]
	})
	at := int64(0)
	for _, p := range ps {
		b, e := p.e.Offsets[0], p.e.Offsets[1]
		if b != at {
			return nil, fmt.Errorf("tensor %q: data_offsets %v leave a gap or overlap at byte %d of the data", p.name, p.e.Offsets, at)
		}
		if e > int64(len(data)) {
			return nil, fmt.Errorf("tensor %q: data_offsets %v run past the %d data bytes (truncated?)", p.name, p.e.Offsets, len(data))
		}
		vals := make([]float32, (e-b)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[b+4*int64(i):]))
		}
		s.byName[p.name] = len(s.Entries)
		s.Entries = append(s.Entries, Entry{Name: p.name, Shape: p.e.Shape, Data: vals})
		at = e
	}
	if at != int64(len(data)) {
		return nil, fmt.Errorf("tensors cover %d of the %d data bytes (trailing bytes)", at, len(data))
	}
	return s, nil
}
