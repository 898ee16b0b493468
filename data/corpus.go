package data

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Doc is one document of a corpus: a name for messages and the bytes of its text.
type Doc struct {
	Name string
	Text []byte
}

// Corpus yields documents in a fixed order. Iteration stops at the first error, which is
// yielded with a zero Doc; the consumer should return it.
type Corpus interface {
	Docs() iter.Seq2[Doc, error]
}

// Keyer is a corpus that can name its contents, so tokenised streams of it can be cached
// (PackCached). Two corpora with the same key must yield the same documents.
type Keyer interface {
	Key() string
}

var (
	_ Corpus = Texts(nil)
	_ Corpus = (*FileList)(nil)
	_ Corpus = JSONL{}
	_ Keyer  = (*FileList)(nil)
)

// Texts is an in-memory corpus, one document per string, named by index.
type Texts []string

// Docs yields the strings in order.
func (t Texts) Docs() iter.Seq2[Doc, error] {
	return func(yield func(Doc, error) bool) {
		for i, s := range t {
			if !yield(Doc{Name: fmt.Sprint(i), Text: []byte(s)}, nil) {
				return
			}
		}
	}
}

// FileList is a corpus of whole files, one document each, read when iterated. Paths are
// slash-separated, relative to Root and sorted, so the order (and anything derived from it,
// like a split) is the same on every machine.
type FileList struct {
	Root  string
	Paths []string
	Sizes []int64 // bytes of each file when listed
	key   string
}

// Files lists root (a file, or a folder walked recursively) as a corpus. With exts (".txt"
// or "txt"), only files with one of those extensions are kept. Entries whose names start
// with "." are skipped, like version-control folders.
func Files(root string, exts ...string) (*FileList, error) {
	l, err := listFiles(root, exts, nil)
	if err != nil {
		return nil, fmt.Errorf("data.Files: %w", err)
	}
	return l, nil
}

// listFiles walks root; skipDir names folders to leave out (by name, at any depth).
func listFiles(root string, exts []string, skipDir func(name string) bool) (*FileList, error) {
	exts = slices.Clone(exts)
	for i, e := range exts {
		if !strings.HasPrefix(e, ".") {
			exts[i] = "." + e
		}
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		l := &FileList{Root: filepath.Dir(root), Paths: []string{filepath.Base(root)}, Sizes: []int64{fi.Size()}}
		l.key = l.hash([]int64{fi.ModTime().UnixNano()})
		return l, nil
	}
	type entry struct {
		path        string
		size, mtime int64
	}
	var es []entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != root && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != root && skipDir != nil && skipDir(name) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || (len(exts) > 0 && !slices.Contains(exts, filepath.Ext(name))) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		es = append(es, entry{filepath.ToSlash(rel), info.Size(), info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	l := &FileList{Root: root}
	mtimes := make([]int64, len(es))
	for i, e := range es {
		l.Paths = append(l.Paths, e.path)
		l.Sizes = append(l.Sizes, e.size)
		mtimes[i] = e.mtime
	}
	l.key = l.hash(mtimes)
	return l, nil
}

// hash keys the list by root, paths, sizes and modification times.
func (l *FileList) hash(mtimes []int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", l.Root)
	for i, p := range l.Paths {
		fmt.Fprintf(h, "%s\x00%d\x00", p, l.Sizes[i])
		if mtimes != nil {
			fmt.Fprintf(h, "%d\x00", mtimes[i])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12])
}

// Key names the listing (root, paths, sizes, modification times).
func (l *FileList) Key() string { return l.key }

// Len is the number of files.
func (l *FileList) Len() int { return len(l.Paths) }

// Bytes is the total size of the files when they were listed.
func (l *FileList) Bytes() int64 {
	var n int64
	for _, s := range l.Sizes {
		n += s
	}
	return n
}

// Docs reads the files in order; each document is named by its relative path.
func (l *FileList) Docs() iter.Seq2[Doc, error] {
	return func(yield func(Doc, error) bool) {
		for _, p := range l.Paths {
			b, err := os.ReadFile(filepath.Join(l.Root, filepath.FromSlash(p)))
			if err != nil {
				yield(Doc{}, err)
				return
			}
			if !yield(Doc{Name: p, Text: b}, nil) {
				return
			}
		}
	}
}

// Subset keeps each file with probability frac, decided by a hash of salt and its path, so
// the same files are kept on every machine; different salts give independent subsets.
func (l *FileList) Subset(frac float64, salt string) *FileList {
	in, _ := l.split(frac, salt)
	return in
}

// split cuts l by file into the part whose hash falls below frac and the rest.
func (l *FileList) split(frac float64, salt string) (in, out *FileList) {
	in = &FileList{Root: l.Root}
	out = &FileList{Root: l.Root}
	for i, p := range l.Paths {
		dst := out
		if pathHash(salt, p) < fracBound(frac) {
			dst = in
		}
		dst.Paths = append(dst.Paths, p)
		dst.Sizes = append(dst.Sizes, l.Sizes[i])
	}
	in.key = fmt.Sprintf("%s/in:%g:%s", l.key, frac, salt)
	out.key = fmt.Sprintf("%s/out:%g:%s", l.key, frac, salt)
	return in, out
}

// pathHash is FNV-1a over salt, a zero byte and the slash-separated path: fixed by its
// specification, so splits agree across machines and Go versions.
func pathHash(salt, p string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, salt)
	h.Write([]byte{0})
	io.WriteString(h, p)
	return h.Sum64()
}

// fracBound maps a fraction in [0, 1] to a threshold on uniform uint64 hashes.
func fracBound(frac float64) uint64 {
	switch {
	case frac <= 0:
		return 0
	case frac >= 1:
		return math.MaxUint64
	}
	return uint64(frac * (1 << 64))
}

// JSONL is a corpus of JSON Lines files: each non-blank line is an object whose string
// Field is one document, named "path:line". A line that is not a JSON object, or lacks the
// field, or holds a non-string there, stops iteration with an error naming path and line.
type JSONL struct {
	Paths []string
	Field string
}

// Docs reads the files in order.
func (j JSONL) Docs() iter.Seq2[Doc, error] {
	return func(yield func(Doc, error) bool) {
		for _, p := range j.Paths {
			if err := j.file(p, yield); err != nil {
				if !errors.Is(err, errStop) {
					yield(Doc{}, err)
				}
				return
			}
		}
	}
}

var errStop = errors.New("stop")

func (j JSONL) file(path string, yield func(Doc, error) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var obj map[string]json.RawMessage
			if e := json.Unmarshal(t, &obj); e != nil {
				return fmt.Errorf("%s:%d: bad JSON: %v", path, line, e)
			}
			raw, ok := obj[j.Field]
			if !ok {
				return fmt.Errorf("%s:%d: no field %q", path, line, j.Field)
			}
			var s string
			if e := json.Unmarshal(raw, &s); e != nil {
				return fmt.Errorf("%s:%d: field %q is not a string: %s", path, line, j.Field, clip(raw, 40))
			}
			if !yield(Doc{Name: fmt.Sprintf("%s:%d", path, line), Text: []byte(s)}, nil) {
				return errStop
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Split cuts l by file hash into a held-out part (about frac of the files) and the rest, the
// same on every machine for the same salt.
func (l *FileList) Split(frac float64, salt string) (heldOut, rest *FileList) {
	return l.split(frac, salt)
}
