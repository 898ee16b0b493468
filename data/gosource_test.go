package data

import (
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestGoSource lists the real GOROOT (no file is read, so it stays fast).
func TestGoSource(t *testing.T) {
	s, err := GoSource()
	if err != nil {
		t.Skip(err) // no Go installation: nothing to check
	}
	again, err := GoSource()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Train.Paths, again.Train.Paths) || !reflect.DeepEqual(s.Val.Paths, again.Val.Paths) {
		t.Fatal("two listings split differently")
	}
	if s.Version == "" || !strings.HasSuffix(s.Name, s.Version) {
		t.Errorf("Name %q, Version %q", s.Name, s.Version)
	}

	// Disjoint, and together exactly the .go files outside testdata, found by a second walk.
	seen := make(map[string]bool)
	for _, l := range []*FileList{s.Train, s.Val} {
		for _, p := range l.Paths {
			if seen[p] {
				t.Fatalf("%s is in both parts", p)
			}
			seen[p] = true
		}
	}
	root := s.Train.Root
	var want int
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			want++
			rel, _ := filepath.Rel(root, p)
			if !seen[filepath.ToSlash(rel)] {
				t.Errorf("%s is in neither part", rel)
			}
		}
		return nil
	})
	if len(seen) != want {
		t.Errorf("split has %d files, walk found %d", len(seen), want)
	}
	for p := range seen {
		if strings.Contains("/"+p, "/testdata/") {
			t.Errorf("%s is under testdata", p)
		}
	}

	frac := float64(s.Val.Bytes()) / float64(s.Val.Bytes()+s.Train.Bytes())
	if frac < GoValFrac/2 || frac > GoValFrac*2 {
		t.Errorf("validation is %.2f%% of bytes, want about %.0f%%", 100*frac, 100*GoValFrac)
	}
	t.Logf("%s: train %d files %d bytes, val %d files %d bytes", s.Name, s.Train.Len(), s.Train.Bytes(), s.Val.Len(), s.Val.Bytes())

	// The split depends only on relative paths: the same tree elsewhere splits the same way.
	fake := writeTree(t, map[string]string{
		"VERSION":                 "go9.9\ntime x\n",
		"src/fmt/print.go":        "package fmt",
		"src/fmt/testdata/x.go":   "package bad",
		"src/strings/builder.go":  "package strings",
		"src/strings/reader.txt":  "not go",
		"src/cmd/go/main_test.go": "package main",
	})
	f, err := GoSourceAt(fake)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != "go9.9" || f.Train.Len()+f.Val.Len() != 3 {
		t.Errorf("fake GOROOT: version %q, %d+%d files", f.Version, f.Train.Len(), f.Val.Len())
	}
	for _, p := range f.Val.Paths {
		if slices.Contains(s.Train.Paths, p) {
			t.Errorf("%s is validation in the fake tree, training in GOROOT", p)
		}
	}
	for _, p := range f.Train.Paths {
		if slices.Contains(s.Val.Paths, p) {
			t.Errorf("%s is training in the fake tree, validation in GOROOT", p)
		}
	}
	if _, err := GoSourceAt(t.TempDir()); err == nil {
		t.Error("empty GOROOT: no error")
	}
}
