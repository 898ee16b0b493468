package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hybridlab/hybrid/internal/atomicfile"
	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
	"go.yaml.in/yaml/v3"
)

// Files of a trial directory.
const (
	RecipeFile = "recipe.yaml"
	TrialFile  = "trial.json"
	StatusFile = "status.json"
	ErrorFile  = "error.txt"
	LockFile   = "lock"
	LogDir     = "logs"
)

// DefaultDir is where a sweep lives unless told otherwise: runs/sweeps/<name>.
func DefaultDir(s *Spec) string { return filepath.Join("runs", "sweeps", s.Name) }

// TrialDir is <sweepdir>/trials/<hash[:12]>.
func TrialDir(dir, hash string) string {
	if len(hash) > 12 {
		hash = hash[:12]
	}
	return filepath.Join(dir, "trials", hash)
}

// TrialInfo is trial.json: written once when the trial directory is made, never rewritten.
type TrialInfo struct {
	Index     int               `json:"index"`
	Hash      string            `json:"hash"`
	Sweep     string            `json:"sweep"`
	Base      string            `json:"recipe"`
	Params    map[string]any    `json:"params"`
	Settings  []Setting         `json:"settings"`
	Overrides []string          `json:"overrides"`
	Changes   map[string]string `json:"changes"` // resolved path → new value, vs the base
	Created   string            `json:"created"`
}

// Status is status.json, written by the worker running the trial.
type Status struct {
	State    string `json:"state"` // running | done | failed | interrupted
	Host     string `json:"host,omitempty"`
	PID      int    `json:"pid,omitempty"`
	SlurmJob string `json:"slurm_job,omitempty"` // JOBID_TASK
	Attempt  int    `json:"attempt"`
	Started  string `json:"started,omitempty"`
	Ended    string `json:"ended,omitempty"`
	Error    string `json:"error,omitempty"`
}

// States a trial can be in, as Status (and `hybrid sweep status`) reports them.
const (
	Pending     = "pending"     // never started
	Running     = "running"     // its lock is held by a live worker on this host
	Done        = "done"        // results.json present
	Failed      = "failed"      // the last attempt failed (error.txt)
	Interrupted = "interrupted" // a worker started it and went away; the next run resumes it
)

func writeJSON(path string, v any) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Prepare makes every trial's directory with recipe.yaml and trial.json, leaving existing ones
// as they are (a sweep directory is never renumbered or overwritten), and writes plan.json,
// the current plan's trial hashes in order.
func Prepare(p *Plan, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "trials"), 0o755); err != nil {
		return err
	}
	var hashes []string
	for _, t := range p.Trials {
		hashes = append(hashes, t.Hash)
		td := TrialDir(dir, t.Hash)
		if err := os.MkdirAll(filepath.Join(td, LogDir), 0o755); err != nil {
			return err
		}
		rp := filepath.Join(td, RecipeFile)
		if _, err := os.Stat(rp); errors.Is(err, fs.ErrNotExist) {
			b, err := t.Recipe.Marshal()
			if err != nil {
				return err
			}
			if err := atomicfile.Write(rp, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
				return err
			}
		}
		ip := filepath.Join(td, TrialFile)
		var old TrialInfo
		if err := readJSON(ip, &old); err == nil {
			if old.Hash != t.Hash {
				return fmt.Errorf("sweep: %s belongs to trial %s, not %s", td, old.Hash, t.Hash)
			}
			continue
		}
		info := TrialInfo{Index: t.Index, Hash: t.Hash, Sweep: p.Spec.Name, Base: t.Base, Params: map[string]any{},
			Settings: t.Params, Overrides: t.Overrides, Changes: map[string]string{}, Created: time.Now().UTC().Format(time.RFC3339)}
		if info.Settings == nil {
			info.Settings = []Setting{}
		}
		for _, st := range t.Params {
			info.Params[st.Path] = parseValue(st.Value)
		}
		for _, c := range t.Changes {
			info.Changes[c.Path] = c.To
		}
		if err := writeJSON(ip, info); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "plan.json"), map[string]any{"sweep": p.Spec.Name, "file": p.Spec.File, "trials": hashes})
}

// parseValue reads a flow-YAML setting back as a JSON-able value.
func parseValue(s string) any {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	return v
}

// Lock is a held trial lock: an exclusive flock on <trialdir>/lock, released by Unlock or
// by the kernel when the holding process dies (so a SIGKILLed worker never leaves it stale).
type Lock struct{ f *os.File }

// ErrBusy says another process holds the trial's lock.
var ErrBusy = errors.New("sweep: trial is running in another process")

// TryLock takes a trial's lock without waiting; ErrBusy when another process holds it.
func TryLock(trialDir string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(trialDir, LockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("sweep: lock %s: %w", trialDir, err)
	}
	return &Lock{f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// locked reports whether some process holds the trial's lock right now.
func locked(trialDir string) bool {
	l, err := TryLock(trialDir)
	if err != nil {
		return errors.Is(err, ErrBusy)
	}
	l.Unlock()
	return false
}

// State reads a trial directory's state (see the constants) and its status file.
func State(trialDir string) (string, Status) {
	var st Status
	readJSON(filepath.Join(trialDir, StatusFile), &st)
	if _, err := os.Stat(filepath.Join(trialDir, results.FileName)); err == nil {
		return Done, st
	}
	if locked(trialDir) {
		return Running, st
	}
	switch st.State {
	case "":
		return Pending, st
	case Running, Interrupted:
		return Interrupted, st
	}
	return st.State, st
}

// TrialFunc runs one trial: experiment.Run in the CLI, a fake in tests. It trains r in dir,
// resuming from dir's checkpoints, and writes dir/results.json on success.
type TrialFunc func(ctx context.Context, r *recipes.Recipe, dir string, progress, log io.Writer) (*results.Results, error)

// Work runs one trial of the sweep in dir, as `hybrid sweep worker` does: it takes the
// trial's lock (ErrBusy if another process has it), returns at once if results.json exists,
// loads recipe.yaml (checking its hash), records status.json, calls run, and on failure writes
// error.txt. progress gets run's progress bars; log gets one-line events (also appended to
// logs/worker.log).
func Work(ctx context.Context, dir, hash string, run TrialFunc, progress, log io.Writer) (err error) {
	if len(hash) < 12 || strings.Trim(hash, "0123456789abcdef") != "" {
		return fmt.Errorf("sweep: trial %q is not a recipe hash (12+ hex digits)", hash)
	}
	td := TrialDir(dir, hash)
	if _, err := os.Stat(filepath.Join(td, RecipeFile)); err != nil {
		return fmt.Errorf("sweep: no trial %s in %s (run `hybrid sweep plan` or `run` first): %w", hash, dir, err)
	}
	lock, err := TryLock(td)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if _, err := os.Stat(filepath.Join(td, results.FileName)); err == nil {
		fmt.Fprintf(log, "trial %s: already done\n", hash[:12])
		return nil
	}
	os.MkdirAll(filepath.Join(td, LogDir), 0o755)
	lf, err := os.OpenFile(filepath.Join(td, LogDir, "worker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	if log == nil {
		log = io.Discard
	}
	log = io.MultiWriter(log, lf)
	var prev Status
	readJSON(filepath.Join(td, StatusFile), &prev)
	host, _ := os.Hostname()
	st := Status{State: Running, Host: host, PID: os.Getpid(), Attempt: prev.Attempt + 1, Started: now()}
	if j := os.Getenv("SLURM_ARRAY_JOB_ID"); j != "" {
		st.SlurmJob = j + "_" + os.Getenv("SLURM_ARRAY_TASK_ID")
	} else if j := os.Getenv("SLURM_JOB_ID"); j != "" {
		st.SlurmJob = j
	}
	if err := writeJSON(filepath.Join(td, StatusFile), st); err != nil {
		return err
	}
	fmt.Fprintf(log, "%s trial %s: attempt %d on %s pid %d %s\n", now(), hash[:12], st.Attempt, host, st.PID, st.SlurmJob)

	finish := func(state string, e error) error {
		st.State, st.Ended = state, now()
		if e != nil {
			st.Error = e.Error()
			os.WriteFile(filepath.Join(td, ErrorFile), []byte(e.Error()+"\n"), 0o644)
		} else {
			os.Remove(filepath.Join(td, ErrorFile))
		}
		fmt.Fprintf(log, "%s trial %s: %s %v\n", now(), hash[:12], state, errOrEmpty(e))
		if werr := writeJSON(filepath.Join(td, StatusFile), st); werr != nil && e == nil {
			return werr
		}
		return e
	}
	r, err := recipes.Load(filepath.Join(td, RecipeFile), nil)
	if err != nil {
		return finish(Failed, err)
	}
	var info TrialInfo
	if readJSON(filepath.Join(td, TrialFile), &info) == nil && info.Hash != "" && info.Hash != r.Hash() {
		return finish(Failed, fmt.Errorf("sweep: %s has hash %s, the trial is %s (edited by hand?)", RecipeFile, r.Hash()[:12], info.Hash[:12]))
	}
	res, err := func() (res *results.Results, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return run(ctx, r, td, progress, log)
	}()
	if err == nil {
		if _, serr := os.Stat(filepath.Join(td, results.FileName)); serr != nil && res != nil {
			err = results.Write(filepath.Join(td, results.FileName), res)
		} else if serr != nil {
			err = fmt.Errorf("sweep: the trial returned without writing %s", results.FileName)
		}
	}
	if err != nil && ctx.Err() != nil {
		return finish(Interrupted, fmt.Errorf("interrupted: %w", err))
	}
	if err != nil {
		return finish(Failed, err)
	}
	return finish(Done, nil)
}

func errOrEmpty(e error) any {
	if e == nil {
		return ""
	}
	return e
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// markFailed records a failure the worker could not record itself (it was killed, or Slurm
// ended its task first), unless the trial finished or is running after all.
func markFailed(trialDir string, e error) {
	lock, err := TryLock(trialDir)
	if err != nil {
		return
	}
	defer lock.Unlock()
	if _, err := os.Stat(filepath.Join(trialDir, results.FileName)); err == nil {
		return
	}
	var st Status
	readJSON(filepath.Join(trialDir, StatusFile), &st)
	st.State, st.Ended, st.Error = Failed, now(), e.Error()
	os.WriteFile(filepath.Join(trialDir, ErrorFile), []byte(e.Error()+"\n"), 0o644)
	writeJSON(filepath.Join(trialDir, StatusFile), st)
}
