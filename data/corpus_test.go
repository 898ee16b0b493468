package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree creates files (slash paths → contents) under a new temporary folder.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, s := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// collect reads a corpus into names and texts, failing on error.
func collect(t *testing.T, c Corpus) (names, texts []string) {
	t.Helper()
	for d, err := range c.Docs() {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, d.Name)
		texts = append(texts, string(d.Text))
	}
	return names, texts
}

func TestFiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		"b.txt":          "bee",
		"a/z.txt":        "zed",
		"a/y.md":         "why",
		"a/x.go":         "package x",
		".git/config":    "hidden",
		"a/.hidden.txt":  "hidden",
		"c/d/e/deep.txt": "deep",
	})
	tests := []struct {
		exts  []string
		names []string
	}{
		{nil, []string{"a/x.go", "a/y.md", "a/z.txt", "b.txt", "c/d/e/deep.txt"}},
		{[]string{".txt"}, []string{"a/z.txt", "b.txt", "c/d/e/deep.txt"}},
		{[]string{"txt", "md"}, []string{"a/y.md", "a/z.txt", "b.txt", "c/d/e/deep.txt"}},
		{[]string{".rs"}, nil},
	}
	for _, tt := range tests {
		l, err := Files(root, tt.exts...)
		if err != nil {
			t.Fatal(err)
		}
		names, _ := collect(t, l)
		if !reflect.DeepEqual(names, tt.names) {
			t.Errorf("Files(%v) = %v, want %v", tt.exts, names, tt.names)
		}
	}
	l, _ := Files(root, "txt")
	if _, texts := collect(t, l); strings.Join(texts, ",") != "zed,bee,deep" {
		t.Errorf("texts = %v", texts)
	}
	if l.Bytes() != 10 || l.Len() != 3 {
		t.Errorf("Bytes, Len = %d, %d, want 10, 3", l.Bytes(), l.Len())
	}

	one, err := Files(filepath.Join(root, "b.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if names, texts := collect(t, one); !reflect.DeepEqual(names, []string{"b.txt"}) || texts[0] != "bee" {
		t.Errorf("single file: %v %v", names, texts)
	}
	if _, err := Files(filepath.Join(root, "missing")); err == nil {
		t.Error("missing root: no error")
	}

	// A file deleted after listing is an error when read.
	os.Remove(filepath.Join(root, "b.txt"))
	var err2 error
	for _, err := range l.Docs() {
		if err != nil {
			err2 = err
		}
	}
	if err2 == nil || !strings.Contains(err2.Error(), "b.txt") {
		t.Errorf("deleted file: err = %v", err2)
	}
}

func TestSubset(t *testing.T) {
	l := &FileList{Root: "/r"}
	for i := range 2000 {
		l.Paths = append(l.Paths, filepath.ToSlash(filepath.Join("pkg", string(rune('a'+i%26)), "f"+string(rune('0'+i%10))+strings.Repeat("x", i/260)+".go")))
		l.Sizes = append(l.Sizes, 1)
	}
	in, out := l.split(0.1, "s")
	if in.Len()+out.Len() != l.Len() {
		t.Fatalf("split lost files: %d + %d != %d", in.Len(), out.Len(), l.Len())
	}
	if in.Len() < 150 || in.Len() > 250 {
		t.Errorf("10%% subset has %d of %d files", in.Len(), l.Len())
	}
	if !reflect.DeepEqual(l.Subset(0.1, "s").Paths, in.Paths) {
		t.Error("Subset differs from split")
	}
	if reflect.DeepEqual(l.Subset(0.1, "t").Paths, in.Paths) {
		t.Error("another salt gave the same subset")
	}
	if l.Subset(0, "s").Len() != 0 || l.Subset(1, "s").Len() != l.Len() {
		t.Error("Subset(0) or Subset(1) wrong")
	}
}

func TestJSONL(t *testing.T) {
	root := writeTree(t, map[string]string{
		"a.jsonl": `{"text": "first", "id": 1}` + "\n\n" + `{"id": 2, "text": "sec\nond"}` + "\n",
		"b.jsonl": `{"text": "no newline at end"}`,
	})
	a, b := filepath.Join(root, "a.jsonl"), filepath.Join(root, "b.jsonl")
	names, texts := collect(t, JSONL{Paths: []string{a, b}, Field: "text"})
	if want := []string{a + ":1", a + ":3", b + ":1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if want := []string{"first", "sec\nond", "no newline at end"}; !reflect.DeepEqual(texts, want) {
		t.Errorf("texts = %q, want %q", texts, want)
	}

	bad := writeTree(t, map[string]string{
		"json.jsonl":   `{"text": "ok"}` + "\n" + `{"text": "ok"}` + "\n" + `{"text": oops}` + "\n",
		"field.jsonl":  `{"text": "ok"}` + "\n" + `{"body": "x"}` + "\n",
		"type.jsonl":   `{"text": 42}` + "\n",
		"array.jsonl":  `["text"]` + "\n",
		"latin1.jsonl": "{\"text\": \"ok\"}\n{\"text\": \"\xff\"\n",
	})
	tests := []struct {
		file, want string
	}{
		{"json.jsonl", "json.jsonl:3: bad JSON"},
		{"field.jsonl", `field.jsonl:2: no field "text"`},
		{"type.jsonl", `type.jsonl:1: field "text" is not a string`},
		{"array.jsonl", "array.jsonl:1: bad JSON"},
		{"latin1.jsonl", "latin1.jsonl:2: bad JSON"},
		{"missing.jsonl", "missing.jsonl"},
	}
	for _, tt := range tests {
		var last error
		for _, err := range (JSONL{Paths: []string{filepath.Join(bad, tt.file)}, Field: "text"}).Docs() {
			last = err
		}
		if last == nil || !strings.Contains(last.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.file, last, tt.want)
		}
	}
}
