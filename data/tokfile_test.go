package data

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTokenFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, vocab := range []int{1, 256, 65536, 65537, 100000} {
		ids := make([]int32, 70000)
		for i := range ids {
			ids[i] = int32((i * 7919) % vocab)
		}
		s, err := NewStream(ids, vocab)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "t.tok")
		if err := WriteStream(path, s); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if want := int64(tokHeader + widthFor(vocab)*len(ids)); fi.Size() != want {
			t.Errorf("vocab %d: file is %d bytes, want %d", vocab, fi.Size(), want)
		}
		got, err := ReadStream(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Vocab() != vocab || got.Len() != len(ids) {
			t.Fatalf("vocab %d: read back vocab %d, %d tokens", vocab, got.Vocab(), got.Len())
		}
		back := make([]int32, got.Len())
		got.Copy(back, 0)
		if !reflect.DeepEqual(back, ids) {
			t.Fatalf("vocab %d: tokens differ", vocab)
		}
	}
}

func TestTokenReaderChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.tok")
	tw, err := CreateTokens(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var want []int32
	for i := range 10 {
		chunk := []int32{int32(i), int32(10 * i), 999}
		want = append(want, chunk...)
		if err := tw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Write([]int32{1000}); err == nil {
		t.Error("Write of id = vocab: no error")
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("file visible before Close")
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tr, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Len() != 30 || tr.Vocab() != 1000 {
		t.Errorf("Len, Vocab = %d, %d", tr.Len(), tr.Vocab())
	}
	var got []int32
	buf := make([]int32, 7)
	for {
		n, err := tr.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
}

func TestTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tok")
	s, _ := NewStream([]int32{1, 2, 3, 4, 5}, 300)
	if err := WriteStream(good, s); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	header := func(width, vocab uint32, n uint64) []byte {
		h := append([]byte(tokMagic), make([]byte, 16)...)
		binary.LittleEndian.PutUint32(h[8:], width)
		binary.LittleEndian.PutUint32(h[12:], vocab)
		binary.LittleEndian.PutUint64(h[16:], n)
		return h
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", b[:len(b)-1], "truncated"},
		{"truncated header", b[:10], "short header"},
		{"padded", append(append([]byte{}, b...), 0, 0), "2 bytes after 5 tokens"},
		{"magic", append([]byte("HYBTOK2\x00"), b[8:]...), "not a token file"},
		{"width", header(3, 300, 0), "width 3"},
		{"vocab too big", header(2, 70000, 0), "does not fit"},
		{"huge count", header(4, 300, 1<<62), "truncated"},
		{"token out of range", append(header(2, 3, 1), 9, 0), "vocab is 3"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		os.WriteFile(p, tt.data, 0o644)
		_, err := ReadStream(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want it to name the file and contain %q", tt.name, err, tt.want)
		}
	}
}
