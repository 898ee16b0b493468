package results

import (
	"errors"
	"os"
	"strings"
)

// ReadPaths reads runs from each argument: a CSV export (a path ending in .csv, read with
// ReadCSV) or a results.json / directory of them (ReadAll). Errors name the path.
func ReadPaths(paths ...string) ([]*Results, error) {
	if len(paths) == 0 {
		return nil, errors.New("no results given (a results.json, a directory of them, or a .csv export)")
	}
	var out []*Results
	var files []string
	var errs []error
	for _, p := range paths {
		if !strings.HasSuffix(strings.ToLower(p), ".csv") {
			files = append(files, p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rs, err := ReadCSV(f, p)
		f.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, rs...)
	}
	if len(files) > 0 {
		rs, err := ReadAll(files...)
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
