package train

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The bytes of a small file, checked by hand against the format: length prefix, the exact
// header with space padding to 8-byte alignment, then little-endian float32 data.
func TestSafetensorsBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	err := WriteSafetensors(path, []Entry{
		{Name: "a", Shape: []int{2}, Data: []float32{1, -2}},
		{Name: "b", Shape: []int{1, 1}, Data: []float32{0.5}},
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := `{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}`
	pad := (8 - len(hdr)%8) % 8
	n := len(hdr) + pad
	if got := binary.LittleEndian.Uint64(raw[:8]); got != uint64(n) {
		t.Fatalf("header length %d, want %d", got, n)
	}
	if (8+n)%8 != 0 {
		t.Fatalf("data starts at %d, not 8-aligned", 8+n)
	}
	if got := string(raw[8 : 8+n]); got != hdr+strings.Repeat(" ", pad) {
		t.Fatalf("header\n%q\nwant\n%q", got, hdr+strings.Repeat(" ", pad))
	}
	data := raw[8+n:]
	want := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f} // 1, -2, 0.5 as float32 LE
	if !reflect.DeepEqual(data, want) {
		t.Fatalf("data % x, want % x", data, want)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	in := []Entry{
		{Name: "layers.0.w", Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, float32(math.Inf(1))}},
		{Name: "norm", Shape: []int{3}, Data: []float32{-0, 1e-38, math.MaxFloat32}},
		{Name: "scalar", Shape: []int{}, Data: []float32{7}},
	}
	if err := WriteSafetensors(path, in, nil); err != nil {
		t.Fatal(err)
	}
	f, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 3 || f.Metadata != nil {
		t.Fatalf("read %d entries, metadata %v", len(f.Entries), f.Metadata)
	}
	for _, e := range in {
		got, ok := f.Get(e.Name)
		if !ok || !reflect.DeepEqual(got.Shape, e.Shape) || !reflect.DeepEqual(got.Data, e.Data) {
			t.Errorf("%s: got %+v, want %+v", e.Name, got, e)
		}
	}
	if err := WriteSafetensors(path, []Entry{{Name: "a", Shape: []int{2}, Data: []float32{1}}}, nil); err == nil {
		t.Error("wrong data length: no error")
	}
	if err := WriteSafetensors(path, []Entry{{Name: "a", Data: []float32{1}}, {Name: "a", Data: []float32{1}}}, nil); err == nil {
		t.Error("repeated name: no error")
	}
}

func TestSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := WriteSafetensors(good, []Entry{
		{Name: "a", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "b", Shape: []int{1}, Data: []float32{3}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	n := int(binary.LittleEndian.Uint64(raw))
	withHeader := func(h string) []byte {
		for len(h)%8 != 0 {
			h += " "
		}
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), raw[8+n:]...)
	}
	for _, c := range []struct {
		name, want string
		b          []byte
	}{
		{"empty", "too short", nil},
		{"truncated length", "too short", raw[:5]},
		{"truncated header", "does not fit", raw[:8+n/2]},
		{"truncated data", "run past", raw[:len(raw)-2]},
		{"trailing bytes", "trailing", append(append([]byte{}, raw...), 0, 0, 0, 0)},
		{"huge header length", "does not fit", append(binary.LittleEndian.AppendUint64(nil, 1<<40), raw[8:]...)},
		{"not json", "not a JSON object", withHeader(`{"a": nope}`)},
		{"not an object", "start with '{'", withHeader(`[1,2]`)},
		{"dtype", `dtype "F16"`, withHeader(`{"a":{"dtype":"F16","shape":[6],"data_offsets":[0,12]}}`)},
		{"shape mismatch", "needs 8 bytes", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}`)},
		{"gap", "gap or overlap", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`)},
		{"overlap", "gap or overlap", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`)},
		{"reversed offsets", "data_offsets", withHeader(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`)},
		{"unknown field", "unknown field", withHeader(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12],"x":1}}`)},
		{"bad metadata", "__metadata__", withHeader(`{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, c.b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSafetensors(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q should mention %q and the file", err, c.want)
			}
		})
	}
	// The sanity check on the header fixture: a hand-made valid header still reads.
	if err := os.WriteFile(good, withHeader(`{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := ReadSafetensors(good); err != nil || !reflect.DeepEqual(f.Entries[0].Data, []float32{1, 2, 3}) {
		t.Fatalf("hand-made file: %v, %v", f, err)
	}
}
