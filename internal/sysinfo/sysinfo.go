// Package sysinfo describes the machine and the program for results files: CPU model, cores,
// peak resident memory (measured by the kernel, not estimated) and the code version.
package sysinfo

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// CPU is the processor model name ("" when the OS does not say).
func CPU() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// PeakRSS is the process's peak resident set size in bytes (VmHWM), or the Go runtime's
// total obtained memory where /proc is missing.
func PeakRSS() int64 {
	if v := procStatus("VmHWM:"); v > 0 {
		return v
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

// RSS is the current resident set size in bytes (VmRSS), 0 when unknown.
func RSS() int64 { return procStatus("VmRSS:") }

// Available is the memory the kernel reports available for new allocations (MemAvailable),
// 0 when unknown.
func Available() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return field(b, "MemAvailable:")
}

func procStatus(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return field(b, key)
}

// field parses "Key:   123 kB" lines.
func field(b []byte, key string) int64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, key) {
			continue
		}
		f := strings.Fields(line[len(key):])
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		return n
	}
	return 0
}

// Version is the module path, the module version or VCS revision of this binary, and whether
// the tree was modified.
func Version() (module, version string, modified bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "unknown", false
	}
	module, version = bi.Main.Path, bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if version == "" || version == "(devel)" {
				version = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if version == "" {
		version = "(devel)"
	}
	return module, version, modified
}
