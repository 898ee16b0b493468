package data

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Split is a corpus cut by file into training and validation parts.
type Split struct {
	Name    string // e.g. "gosrc-go1.26.8"
	Version string // what the files are a version of
	Train   *FileList
	Val     *FileList
}

// GoValFrac is the share of GoSource files held out for validation (about 1.7 MB).
const GoValFrac = 0.02

// GoSource is the default corpus: the .go files of the Go standard library and toolchain
// under GOROOT/src (about 88 MB in go1.26), which every machine running the toolkit has.
//
// Test files (_test.go) are included: they are a fifth of the bytes and ordinary Go code.
// Folders named testdata are left out: they hold fixtures, deliberately broken code and
// large generated tables rather than representative source. Files are split by a hash of
// their path (GoValFrac to validation), so the split is the same on every machine with the
// same Go version, which Version records.
func GoSource() (*Split, error) {
	root, err := goroot()
	if err != nil {
		return nil, fmt.Errorf("data.GoSource: %w", err)
	}
	return GoSourceAt(root)
}

// GoSourceAt is GoSource for the Go installation at goroot.
func GoSourceAt(goroot string) (*Split, error) {
	all, err := listFiles(filepath.Join(goroot, "src"), []string{".go"}, func(name string) bool {
		return name == "testdata"
	})
	if err != nil {
		return nil, fmt.Errorf("data.GoSource: %w", err)
	}
	if all.Len() == 0 {
		return nil, fmt.Errorf("data.GoSource: no .go files under %s", filepath.Join(goroot, "src"))
	}
	v := goVersion(goroot)
	s := &Split{Name: "gosrc-" + v, Version: v}
	s.Val, s.Train = all.split(GoValFrac, "hybrid/gosrc/val")
	return s, nil
}

// goroot finds the Go installation: $GOROOT, then `go env GOROOT`, then the one this binary
// was built with.
func goroot() (string, error) {
	ok := func(d string) bool {
		fi, err := os.Stat(filepath.Join(d, "src"))
		return d != "" && err == nil && fi.IsDir()
	}
	if d := os.Getenv("GOROOT"); ok(d) {
		return d, nil
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); ok(d) {
			return d, nil
		}
	}
	if d := runtime.GOROOT(); ok(d) { //nolint:staticcheck // last resort when no go command is on PATH
		return d, nil
	}
	return "", fmt.Errorf("no Go installation found (set GOROOT)")
}

// goVersion reads the first line of GOROOT/VERSION, falling back to runtime.Version.
func goVersion(goroot string) string {
	b, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err == nil {
		if line, _, _ := bytes.Cut(b, []byte("\n")); len(bytes.TrimSpace(line)) > 0 {
			return string(bytes.TrimSpace(line))
		}
	}
	return runtime.Version()
}
