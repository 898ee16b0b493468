package sweep

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// arrayScript is the one Slurm job-array script, the same for every sweep: it takes the trials
// list, the sweep directory and the hybrid binary as arguments and maps SLURM_ARRAY_TASK_ID to
// a trial hash by line number. No sweep value is ever pasted into shell text.
const arrayScript = `#!/bin/sh
# hybrid sweep: one Slurm array task runs one trial.
# Arguments: TRIALS_FILE SWEEP_DIR HYBRID_BINARY. Line N+1 of TRIALS_FILE is task N's trial hash.
set -eu
list=$1
dir=$2
bin=$3
n=$((SLURM_ARRAY_TASK_ID + 1))
hash=$(sed -n "${n}p" "$list")
case $hash in
'' | *[!0-9a-f]*)
	echo "hybrid sweep: no trial hash on line $n of $list" >&2
	exit 2
	;;
esac
exec "$bin" sweep worker --dir "$dir" --trial "$hash"
`

// Job is one submitted array, as recorded in <sweepdir>/slurm/jobs.jsonl.
type Job struct {
	ID        string   `json:"job"`
	Submitted string   `json:"submitted"`
	Trials    []string `json:"trials"` // task i runs Trials[i]
	List      string   `json:"list"`
	Args      []string `json:"sbatch_args"`
}

// Slurm submits a sweep's pending trials as one job array and follows it.
type Slurm struct {
	// Exec runs a Slurm command and returns its standard output; nil runs the real one.
	Exec func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Binary is the hybrid executable the tasks run (default: this one).
	Binary string
	Poll   time.Duration // squeue period (default 5 s)
	Out    io.Writer
}

func (s *Slurm) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if s.Exec != nil {
		return s.Exec(ctx, name, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (s *Slurm) out() io.Writer {
	if s.Out == nil {
		return io.Discard
	}
	return s.Out
}

// Jobs reads the sweep's submitted arrays.
func Jobs(dir string) ([]Job, error) {
	f, err := os.Open(filepath.Join(dir, "slurm", "jobs.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var jobs []Job
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var j Job
		if json.Unmarshal(sc.Bytes(), &j) == nil && j.ID != "" {
			jobs = append(jobs, j)
		}
	}
	return jobs, sc.Err()
}

// Active returns the recorded jobs that Slurm still has (pending or running), with their
// tasks' states by trial hash.
func (s *Slurm) Active(ctx context.Context, dir string) (map[string]string, []Job, error) {
	jobs, err := Jobs(dir)
	if err != nil {
		return nil, nil, err
	}
	states := map[string]string{}
	var active []Job
	for _, j := range jobs {
		out, err := s.run(ctx, "squeue", "-h", "-j", j.ID, "-o", "%i|%T")
		if err != nil {
			if strings.Contains(err.Error(), "Invalid job id") {
				continue // finished and purged
			}
			return nil, nil, err
		}
		any := false
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			id, state, ok := strings.Cut(strings.TrimSpace(line), "|")
			if !ok {
				continue
			}
			any = true
			_, task, _ := strings.Cut(id, "_")
			if strings.HasPrefix(task, "[") { // a pending range: 12_[3-7%2]
				for _, i := range expandRange(strings.Trim(task, "[]")) {
					if i < len(j.Trials) {
						states[j.Trials[i]] = strings.ToLower(state) + " (slurm " + j.ID + "_" + strconv.Itoa(i) + ")"
					}
				}
				continue
			}
			if i, err := strconv.Atoi(task); err == nil && i < len(j.Trials) {
				states[j.Trials[i]] = strings.ToLower(state) + " (slurm " + id + ")"
			}
		}
		if any {
			active = append(active, j)
		}
	}
	return states, active, nil
}

// expandRange reads Slurm's "3-7%2" or "1,4-5" task lists.
func expandRange(s string) []int {
	s, _, _ = strings.Cut(s, "%")
	var out []int
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil {
				continue
			}
		}
		for i := lo; i <= hi && i-lo < MaxTrials; i++ {
			out = append(out, i)
		}
	}
	return out
}

// Submit writes the array script and a trials list for every trial of p that is not done,
// not running and not queued in an earlier array, and submits them with sbatch --parsable.
// It returns the job (nil when nothing needed submitting).
func (s *Slurm) Submit(ctx context.Context, p *Plan, dir string) (*Job, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := Prepare(p, abs); err != nil {
		return nil, err
	}
	queued, _, err := s.Active(ctx, abs)
	if err != nil {
		return nil, err
	}
	var hashes []string
	for _, t := range p.Trials {
		st, _ := State(TrialDir(abs, t.Hash))
		if st == Done || st == Running || queued[t.Hash] != "" {
			continue
		}
		hashes = append(hashes, t.Hash)
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	sd := filepath.Join(abs, "slurm")
	if err := os.MkdirAll(filepath.Join(sd, "logs"), 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(sd, "array.sh")
	if err := os.WriteFile(script, []byte(arrayScript), 0o755); err != nil {
		return nil, err
	}
	stamp := time.Now().UTC().Format("20060102T150405.000000000")
	list := filepath.Join(sd, "trials-"+stamp+".txt")
	if err := os.WriteFile(list, []byte(strings.Join(hashes, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	bin := s.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	cwd, _ := os.Getwd()
	r := p.Spec.Resources
	array := fmt.Sprintf("0-%d", len(hashes)-1)
	if r.Parallel > 0 {
		array += "%" + strconv.Itoa(r.Parallel)
	}
	// sbatch expands %A and %a in --output; a literal % in the directory is written %%.
	logs := strings.ReplaceAll(filepath.Join(sd, "logs"), "%", "%%")
	args := []string{"--parsable", "--array=" + array, "--job-name=hybrid-sweep-" + p.Spec.Name,
		"--output=" + logs + "/%A_%a.out", "--cpus-per-task=" + strconv.Itoa(CPUs(p.Spec)), "--chdir=" + cwd}
	if r.Mem != "" {
		args = append(args, "--mem="+r.Mem)
	}
	if r.Time != "" {
		args = append(args, "--time="+r.Time)
	}
	if r.Partition != "" {
		args = append(args, "--partition="+r.Partition)
	}
	args = append(args, script, list, abs, bin)
	out, err := s.run(ctx, "sbatch", args...)
	if err != nil {
		return nil, err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";") // --parsable: JOBID[;CLUSTER]
	if _, err := strconv.Atoi(id); err != nil {
		return nil, fmt.Errorf("sbatch --parsable printed %q, want a job id", strings.TrimSpace(string(out)))
	}
	j := &Job{ID: id, Submitted: now(), Trials: hashes, List: list, Args: args}
	b, _ := json.Marshal(j)
	f, err := os.OpenFile(filepath.Join(sd, "jobs.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return j, err
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return j, err
	}
	fmt.Fprintf(s.out(), "sweep %s: submitted array %s: %d trials (%s), logs in %s\n", p.Spec.Name, id, len(hashes), array, filepath.Join(sd, "logs"))
	return j, nil
}

// Follow waits until the recorded arrays have left the queue, printing progress, then records
// as failed any trial whose task ended without a result or a status of its own (Slurm killed it
// for time or memory, or it never started).
func (s *Slurm) Follow(ctx context.Context, p *Plan, dir string) (*Summary, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	poll := s.Poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	last := ""
	for {
		states, active, err := s.Active(ctx, abs)
		if err != nil {
			return nil, err
		}
		done, failed := 0, 0
		for _, t := range p.Trials {
			switch st, _ := State(TrialDir(abs, t.Hash)); st {
			case Done:
				done++
			case Failed:
				if states[t.Hash] == "" {
					failed++
				}
			}
		}
		line := fmt.Sprintf("slurm: %d/%d done, %d failed, %d queued or running", done, len(p.Trials), failed, len(states))
		if line != last {
			fmt.Fprintf(s.out(), "%s %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if len(active) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
	jobs, err := Jobs(abs)
	if err != nil {
		return nil, err
	}
	task := map[string]string{}
	for _, j := range jobs {
		for i, h := range j.Trials {
			task[h] = j.ID + "_" + strconv.Itoa(i)
		}
	}
	sum := &Summary{}
	for _, t := range p.Trials {
		td := TrialDir(abs, t.Hash)
		st, status := State(td)
		o := &Outcome{Trial: t, State: st}
		switch st {
		case Done:
			o.Metric, o.HasM = metricOf(p.Spec, abs, t)
		case Failed:
			o.Err = status.Error
		case Pending, Interrupted:
			id := task[t.Hash]
			if id == "" {
				o.State, o.Err = Pending, "never submitted"
				break
			}
			why := fmt.Sprintf("slurm task %s ended without a result%s (see %s)", id, s.sacct(ctx, id),
				filepath.Join(abs, "slurm", "logs", id+".out"))
			markFailed(td, errors.New(why))
			o.State, o.Err = Failed, why
		}
		sum.Outcomes = append(sum.Outcomes, o)
	}
	return sum, nil
}

// sacct adds the task's final Slurm state when accounting is on ("" otherwise).
func (s *Slurm) sacct(ctx context.Context, id string) string {
	out, err := s.run(ctx, "sacct", "-n", "-X", "-P", "-j", id, "-o", "State,ExitCode")
	if err != nil {
		return ""
	}
	if st := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]); st != "" {
		return ": " + strings.ReplaceAll(st, "|", " exit ")
	}
	return ""
}

// Run submits the pending trials and follows them to the end.
func (s *Slurm) Run(ctx context.Context, p *Plan, dir string) (*Summary, error) {
	if _, err := s.Submit(ctx, p, dir); err != nil {
		return nil, err
	}
	sum, err := s.Follow(ctx, p, dir)
	if err != nil {
		return nil, err
	}
	sum.Write(s.out())
	return sum, sum.Err()
}

// Cancel scancels the sweep's arrays that are still queued or running and returns their ids.
func (s *Slurm) Cancel(ctx context.Context, dir string) ([]string, error) {
	_, active, err := s.Active(ctx, dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, j := range active {
		if _, err := s.run(ctx, "scancel", j.ID); err != nil {
			return ids, err
		}
		ids = append(ids, j.ID)
	}
	return ids, nil
}
