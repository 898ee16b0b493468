package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hybridlab/hybrid/results"
)

// hostile values that must reach the trial literally, never through a shell.
var hostile = []string{"x; rm -rf ~", "$(touch PWNED)", "a'b\"c `touch PWNED2` && echo $HOME"}

// The array script gets sweep values only as data: a fake sbatch runs the real script with sh
// for every array task, the workers (this test binary) record the corpus path each trial saw.
func TestSlurmValuesArriveLiterally(t *testing.T) {
	var vals []string
	for _, h := range hostile {
		vals = append(vals, strconv.Quote(h))
	}
	spec := writeSpec(t, fmt.Sprintf(`name: inj
recipe: quickstart
parameters:
  train.budget.steps: {value: 1}
  data.corpus.kind: {value: text}
  data.corpus.path: {values: [%s]}
resources: {cpus: 1, mem: 1G, time: "00:10:00", partition: debug, parallel: 2}
`, strings.Join(vals, ", ")))
	p := loadPlan(t, spec)
	work := t.TempDir()                                               // the shell's cwd: a $(touch PWNED) that ran would land here
	dir := filepath.Join(t.TempDir(), "sweep dir; $(touch DIRPWNED)") // passed as an argument, never as shell text
	ev := filepath.Join(t.TempDir(), "events")
	t.Setenv("HYBRID_FAKE_EVENTS", ev)
	var sbatch []string
	fake := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		switch name {
		case "squeue":
			return nil, nil
		case "sacct":
			return nil, fmt.Errorf("accounting disabled")
		case "sbatch":
			sbatch = args
			n := len(args)
			script, list := args[n-4], args[n-3]
			b, _ := os.ReadFile(list)
			tasks := strings.Count(string(b), "\n")
			for i := 0; i < tasks; i++ {
				cmd := exec.Command("/bin/sh", append([]string{script}, args[n-3:]...)...)
				cmd.Dir = work
				cmd.Env = append(os.Environ(), "HYBRID_SWEEP_TEST_ROLE=worker", "SLURM_ARRAY_JOB_ID=42", "SLURM_ARRAY_TASK_ID="+strconv.Itoa(i))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("task %d: %v\n%s", i, err, out)
				}
			}
			return []byte("42;cluster\n"), nil
		}
		return nil, fmt.Errorf("unexpected command %s", name)
	}
	s := &Slurm{Exec: fake, Binary: os.Args[0], Poll: time.Millisecond, Out: io.Discard}
	sum, err := s.Run(context.Background(), p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Count(Done) != 3 {
		t.Fatalf("%d trials done, want 3", sum.Count(Done))
	}
	want := map[string]bool{}
	for _, h := range hostile {
		want[h] = true
	}
	for _, e := range events(t, ev) {
		if !want[e.path] {
			t.Errorf("a trial saw corpus path %q, not one of the sweep's values", e.path)
		}
		delete(want, e.path)
	}
	if len(want) != 0 {
		t.Errorf("values never seen by a trial: %v", want)
	}
	for _, f := range []string{"PWNED", "PWNED2", "DIRPWNED"} {
		if _, err := os.Stat(filepath.Join(work, f)); err == nil {
			t.Errorf("a value was executed by the shell (%s exists)", f)
		}
	}
	joined := strings.Join(sbatch, " ")
	for _, w := range []string{"--parsable", "--array=0-2%2", "--cpus-per-task=1", "--mem=1G", "--time=00:10:00", "--partition=debug"} {
		if !strings.Contains(joined, w) {
			t.Errorf("sbatch args %q lack %s", joined, w)
		}
	}
	for _, h := range hostile {
		if strings.Contains(joined, h) {
			t.Errorf("a parameter value reached sbatch's arguments: %q", joined)
		}
	}
	jobs, _ := Jobs(dir)
	if len(jobs) != 1 || jobs[0].ID != "42" || len(jobs[0].Trials) != 3 {
		t.Errorf("jobs.jsonl: %+v", jobs)
	}
	var st Status
	readJSON(filepath.Join(TrialDir(dir, p.Trials[0].Hash), StatusFile), &st)
	if st.SlurmJob != "42_0" || st.State != Done {
		t.Errorf("status %+v, want done as task 42_0", st)
	}
	// Nothing is left to submit.
	if j, err := s.Submit(context.Background(), p, dir); j != nil || err != nil {
		t.Errorf("second submit: %+v %v, want nothing", j, err)
	}
}

// slurmUp says whether a Slurm cluster answers here; with HYBRID_REQUIRE_SLURM=1 (set by
// .ci/slurm.sh) a missing one fails the test instead of skipping it.
func slurmUp(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("sbatch"); err != nil {
		why = "sbatch not installed"
	} else if out, err := exec.Command("sinfo", "-h", "-o", "%t").Output(); err != nil {
		why = "sinfo failed: " + err.Error()
	} else if !strings.Contains(string(out), "idle") && !strings.Contains(string(out), "mix") && !strings.Contains(string(out), "alloc") {
		why = fmt.Sprintf("no usable node (sinfo: %q)", strings.TrimSpace(string(out)))
	}
	if why == "" {
		return
	}
	if os.Getenv("HYBRID_REQUIRE_SLURM") == "1" {
		t.Fatalf("Slurm is required (HYBRID_REQUIRE_SLURM=1) but %s", why)
	}
	t.Skipf("Slurm is not up (%s): source .ci/slurm.sh to start a single-node cluster", why)
}

// End to end on a real Slurm: the hybrid binary submits a 2-task array, each task runs
// `hybrid sweep worker` which trains a tiny recipe through experiment.Run on a corpus whose
// file name is hostile shell text, and `hybrid sweep results` ranks both trials.
func TestSlurmEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	slurmUp(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "hybrid")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hybrid").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	corpus := filepath.Join(tmp, "c x; rm -rf ~ $(touch PWNED) a'b.txt")
	if err := os.WriteFile(corpus, []byte(strings.Repeat("package main\n\nfunc main() { println(\"hello, sweep\") }\n", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(tmp, "tiny.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`# 2 trials of a 2-layer model, 2 steps each: seconds.
name: e2e
recipe: quickstart
metric: {name: lm.bpb, goal: minimize}
parameters:
  model.n_layers: {value: 2}
  model.layout.pattern: {value: MA}
  model.d_model: {value: 32}
  model.ffn.hidden: {value: 64}
  model.attention: {value: {heads: 2, kv_heads: 1, head_dim: 16}}
  model.mamba: {value: {head_dim: 16, d_state: 8, chunk_size: 16}}
  data: {value: {seq_len: 32, batch_size: 2, corpus: {kind: text, path: %s}}}
  train.budget.steps: {value: 2}
  train.schedule.warmup: {value: 0}
  train.eval_every: {value: 0}
  eval: {value: {suites: [lm], batches: 1, lengths: []}}
seeds: [1, 2]
resources: {cpus: 1, time: "00:05:00", parallel: 2}
`, strconv.Quote(corpus))), 0o644)
	dir := filepath.Join(tmp, "sweep")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "sweep", "run", spec, "--executor", "slurm", "--dir", dir)
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	t.Logf("hybrid sweep run --executor slurm:\n%s", out)
	jobs, jerr := Jobs(dir)
	if jerr != nil || len(jobs) != 1 || len(jobs[0].Trials) != 2 {
		t.Fatalf("want one 2-task array in slurm/jobs.jsonl, have %+v (%v)", jobs, jerr)
	}
	for i, h := range jobs[0].Trials {
		td := TrialDir(dir, h)
		var st Status
		if err := readJSON(filepath.Join(td, StatusFile), &st); err != nil {
			logs, _ := os.ReadFile(filepath.Join(dir, "slurm", "logs", jobs[0].ID+"_"+strconv.Itoa(i)+".out"))
			t.Fatalf("task %d wrote no status (the worker never ran): %v\n%s", i, err, logs)
		}
		if want := jobs[0].ID + "_" + strconv.Itoa(i); st.SlurmJob != want {
			t.Errorf("trial %s ran as slurm task %q, want %s", h[:12], st.SlurmJob, want)
		}
		if st.State != Done {
			b, _ := os.ReadFile(filepath.Join(td, ErrorFile))
			t.Errorf("trial %s: state %s: %s", h[:12], st.State, b)
			continue
		}
		r, err := results.Read(filepath.Join(td, results.FileName))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Data struct{ Corpus struct{ Path string } }
		}
		json.Unmarshal(r.Config, &cfg)
		if cfg.Data.Corpus.Path != corpus {
			t.Errorf("trial trained on %q, want %q", cfg.Data.Corpus.Path, corpus)
		}
	}
	if err != nil {
		t.Fatalf("sweep run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "PWNED")); err == nil {
		t.Error("the corpus file name was executed by a shell")
	}
	out, err = exec.Command(bin, "sweep", "results", spec, "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("sweep results: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := results.ReadCSV(strings.NewReader(string(b)), "results.csv")
	if err != nil || len(rs) != 2 || rs[0].ConfigHash == rs[1].ConfigHash {
		t.Fatalf("results.csv: %d rows (%v), want the 2 trials once each\n%s", len(rs), err, b)
	}
	out, err = exec.Command(bin, "sweep", "status", spec, "--dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 done") {
		t.Errorf("sweep status: %v\n%s", err, out)
	}
}
