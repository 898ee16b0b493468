package sweep

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hybridlab/hybrid/recipes"
	"github.com/hybridlab/hybrid/results"
)

// The test binary doubles as the runner and worker processes of these tests, with a fake
// trial in place of experiment.Run (HYBRID_SWEEP_TEST_ROLE picks the role).
func TestMain(m *testing.M) {
	switch os.Getenv("HYBRID_SWEEP_TEST_ROLE") {
	case "worker":
		dir, hash := os.Args[len(os.Args)-3], os.Args[len(os.Args)-1] // ... sweep worker --dir D --trial H
		err := Work(context.Background(), dir, hash, fakeTrial, os.Stderr, os.Stderr)
		if err == ErrBusy {
			os.Exit(ExitBusy)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "runner":
		s, err := LoadSpec(os.Getenv("HYBRID_SWEEP_TEST_SPEC"))
		if err == nil {
			var p *Plan
			if p, err = s.Plan(); err == nil {
				l := &Local{Jobs: 1, Command: helperWorker, Out: os.Stderr, Refresh: 50 * time.Millisecond}
				_, err = l.Run(context.Background(), p, os.Getenv("HYBRID_SWEEP_TEST_DIR"))
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperWorker re-executes the test binary as a worker, argv shaped like the real one.
func helperWorker(ctx context.Context, dir, hash string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "sweep", "worker", "--dir", dir, "--trial", hash)
	cmd.Env = append(os.Environ(), "HYBRID_SWEEP_TEST_ROLE=worker")
	return cmd
}

// fakeTrial trains "steps" (train.budget.steps) of 40 ms, checkpointing the step in dir/ckpt so
// an interrupted trial resumes; it logs "start HASH FROMSTEP" to $HYBRID_FAKE_EVENTS. lr 0.666
// fails, lr 0.777 SIGKILLs its own process. The metric lm.bpb is the seed plus lr.
func fakeTrial(ctx context.Context, r *recipes.Recipe, dir string, progress, log io.Writer) (*results.Results, error) {
	from := 0
	if b, err := os.ReadFile(filepath.Join(dir, "ckpt")); err == nil {
		from, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if ev := os.Getenv("HYBRID_FAKE_EVENTS"); ev != "" {
		f, err := os.OpenFile(ev, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(f, "start %s %d %s\n", r.Hash()[:12], from, r.Data.Corpus.Path)
		f.Close()
	}
	switch r.Train.Optimizer.LR {
	case 0.666:
		return nil, fmt.Errorf("loss is NaN at step 3 (fake)")
	case 0.777:
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	for s := from; s < r.Train.Budget.Steps; s++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(40 * time.Millisecond):
		}
		fmt.Fprintf(progress, "\rstep %d/%d", s+1, r.Train.Budget.Steps)
		os.WriteFile(filepath.Join(dir, "ckpt"), []byte(strconv.Itoa(s+1)), 0o644)
	}
	res := &results.Results{Recipe: r.Name, ConfigHash: r.Hash(), Pattern: r.Pattern,
		Metrics: map[string]float64{"lm.bpb": float64(r.Train.Seed) + r.Train.Optimizer.LR}}
	return res, results.Write(filepath.Join(dir, results.FileName), res)
}

// fakeSpec is a sweep of n trials (seeds 1..n) of steps fake steps each, plus extra lr values.
func fakeSpec(t *testing.T, n, steps int, lrs ...string) string {
	lr := "0.001"
	if len(lrs) > 0 {
		lr = strings.Join(lrs, ", ")
	}
	return writeSpec(t, fmt.Sprintf(`name: fake
recipe: quickstart
metric: {name: lm.bpb, goal: minimize}
parameters:
  train.budget.steps: {value: %d}
  train.optimizer.lr: {values: [%s]}
seeds: %d
`, steps, lr, n))
}

type event struct {
	hash string
	from int
	path string
}

func events(t *testing.T, path string) []event {
	b, _ := os.ReadFile(path)
	var out []event
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 3 {
			continue
		}
		from, _ := strconv.Atoi(f[2])
		e := event{hash: f[1], from: from}
		if len(f) == 4 {
			e.path = f[3]
		}
		out = append(out, e)
	}
	return out
}

func loadPlan(t *testing.T, file string) *Plan {
	t.Helper()
	s, err := LoadSpec(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SIGKILL the runner mid-sweep, run again: finished trials do not re-run, the interrupted one
// resumes from its checkpoint, the results have each trial exactly once.
func TestLocalKillAndResume(t *testing.T) {
	spec := fakeSpec(t, 3, 8)
	dir := filepath.Join(t.TempDir(), "sw")
	ev := filepath.Join(t.TempDir(), "events")
	t.Setenv("HYBRID_FAKE_EVENTS", ev)
	p := loadPlan(t, spec)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HYBRID_SWEEP_TEST_ROLE=runner", "HYBRID_SWEEP_TEST_SPEC="+spec, "HYBRID_SWEEP_TEST_DIR="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once trial 0 is done and trial 1 has checkpointed two steps.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st0, _ := State(TrialDir(dir, p.Trials[0].Hash))
		b, _ := os.ReadFile(filepath.Join(TrialDir(dir, p.Trials[1].Hash), "ckpt"))
		if n, _ := strconv.Atoi(string(b)); st0 == Done && n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("runner made no progress:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL: no cleanup runs in the runner
	cmd.Wait()
	// Its worker dies with it (Pdeathsig) and the kernel drops its flock.
	td1 := TrialDir(dir, p.Trials[1].Hash)
	for deadline := time.Now().Add(5 * time.Second); locked(td1); {
		if time.Now().After(deadline) {
			t.Fatal("the killed runner's worker still holds trial 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, _ := State(td1); st != Interrupted {
		t.Errorf("trial 1 after the kill: %s, want interrupted", st)
	}

	l := &Local{Jobs: 1, Command: helperWorker, Out: io.Discard}
	sum, err := l.Run(context.Background(), p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Count("skipped") != 1 || sum.Count(Done) != 2 {
		t.Errorf("second run: %d skipped, %d done; want 1 and 2", sum.Count("skipped"), sum.Count(Done))
	}
	starts := map[string][]int{}
	for _, e := range events(t, ev) {
		starts[e.hash] = append(starts[e.hash], e.from)
	}
	if s := starts[p.Trials[0].ID()]; len(s) != 1 {
		t.Errorf("finished trial 0 started %d times, want once", len(s))
	}
	if s := starts[p.Trials[1].ID()]; len(s) != 2 || s[0] != 0 || s[1] < 2 {
		t.Errorf("interrupted trial 1 starts %v, want [0, ≥2] (resumed from its checkpoint)", s)
	}
	if s := starts[p.Trials[2].ID()]; len(s) != 1 {
		t.Errorf("trial 2 started %d times, want once", len(s))
	}
	rows, err := Collect(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteResults(p, dir, rows); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	rs, err := results.ReadCSV(bytes.NewReader(b), "results.csv")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range rs {
		count[r.ConfigHash]++
	}
	for _, tr := range p.Trials {
		if count[tr.Hash] != 1 {
			t.Errorf("trial %d appears %d times in results.csv", tr.Index, count[tr.Hash])
		}
	}
	if len(rs) != 3 || rs[0].Metrics["lm.bpb"] > rs[2].Metrics["lm.bpb"] {
		t.Errorf("results.csv: %d rows, want 3 ranked best first", len(rs))
	}
	// Nothing was renumbered: trial.json still holds the first index.
	var info TrialInfo
	if err := readJSON(filepath.Join(td1, TrialFile), &info); err != nil || info.Index != 1 || info.Params["train.seed"] != float64(2) {
		t.Errorf("trial.json %+v %v", info, err)
	}
}

// Two runners on one directory never run a trial twice.
func TestTwoRunners(t *testing.T) {
	spec := fakeSpec(t, 6, 3)
	dir := filepath.Join(t.TempDir(), "sw")
	ev := filepath.Join(t.TempDir(), "events")
	t.Setenv("HYBRID_FAKE_EVENTS", ev)
	p := loadPlan(t, spec)
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			l := &Local{Jobs: 2, Command: helperWorker, Out: io.Discard}
			_, err := l.Run(context.Background(), p, dir)
			errs <- err
		}()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	starts := map[string]int{}
	for _, e := range events(t, ev) {
		starts[e.hash]++
	}
	for _, tr := range p.Trials {
		if starts[tr.ID()] != 1 {
			t.Errorf("trial %d ran %d times", tr.Index, starts[tr.ID()])
		}
		if st, _ := State(TrialDir(dir, tr.Hash)); st != Done {
			t.Errorf("trial %d: %s", tr.Index, st)
		}
	}
}

// A failing trial and a crashing one are recorded, the others finish, the run errs with a
// summary naming them; a re-run retries only those.
func TestFailuresDoNotBlock(t *testing.T) {
	spec := fakeSpec(t, 1, 2, "0.001", "0.666", "0.777", "0.002")
	dir := filepath.Join(t.TempDir(), "sw")
	ev := filepath.Join(t.TempDir(), "events")
	t.Setenv("HYBRID_FAKE_EVENTS", ev)
	p := loadPlan(t, spec)
	var out bytes.Buffer
	l := &Local{Jobs: 2, Command: helperWorker, Out: &out}
	sum, err := l.Run(context.Background(), p, dir)
	if err == nil {
		t.Fatal("a sweep with failed trials returned no error")
	}
	if !strings.Contains(err.Error(), "2 of 4 trials did not finish") || !strings.Contains(err.Error(), "loss is NaN") ||
		!strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("summary:\n%v", err)
	}
	if sum.Count(Done) != 2 || sum.Count(Failed) != 2 {
		t.Errorf("%d done, %d failed; want 2 and 2", sum.Count(Done), sum.Count(Failed))
	}
	for _, i := range []int{1, 2} {
		td := TrialDir(dir, p.Trials[i].Hash)
		b, err := os.ReadFile(filepath.Join(td, ErrorFile))
		if err != nil || len(b) == 0 {
			t.Errorf("trial %d: no error.txt", i)
		}
		if st, _ := State(td); st != Failed {
			t.Errorf("trial %d state %s, want failed", i, st)
		}
	}
	if !strings.Contains(out.String(), "failed #1") || !strings.Contains(out.String(), "lm.bpb") {
		t.Errorf("display:\n%s", out.String())
	}
	// A re-run retries the failed trials only.
	n := len(events(t, ev))
	sum, _ = l.Run(context.Background(), p, dir)
	if sum.Count("skipped") != 2 || len(events(t, ev)) != n+2 {
		t.Errorf("re-run: %d skipped, %d new starts; want 2 and 2", sum.Count("skipped"), len(events(t, ev))-n)
	}
}
