package sweep

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ExitBusy is the worker's exit status when another process holds the trial's lock.
const ExitBusy = 3

// Outcome is how one trial ended in one run of an executor.
type Outcome struct {
	Trial  *Trial
	State  string // done | failed | skipped (done before) | busy (running elsewhere) | interrupted
	Err    string
	Metric float64
	HasM   bool
	Wall   time.Duration
}

// Summary is what one executor run did.
type Summary struct {
	Outcomes []*Outcome
}

// Count is how many outcomes are in state.
func (s *Summary) Count(state string) int {
	n := 0
	for _, o := range s.Outcomes {
		if o.State == state {
			n++
		}
	}
	return n
}

// Err is nil when no trial failed or was interrupted, else an error listing them.
func (s *Summary) Err() error {
	var bad []string
	for _, o := range s.Outcomes {
		if o.State == Failed || o.State == Interrupted {
			msg := strings.TrimSpace(o.Err)
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i] + " …"
			}
			bad = append(bad, fmt.Sprintf("  #%d %s %s {%s}: %s", o.Trial.Index, o.Trial.ID(), o.State, o.Trial.Label(false), msg))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d trials did not finish:\n%s", len(bad), len(s.Outcomes), strings.Join(bad, "\n"))
}

// WriteSummary prints the end-of-run counts.
func (s *Summary) Write(w io.Writer) {
	fmt.Fprintf(w, "sweep: %d trials: %d done now, %d done before, %d failed, %d interrupted, %d running elsewhere\n",
		len(s.Outcomes), s.Count(Done), s.Count("skipped"), s.Count(Failed), s.Count(Interrupted), s.Count("busy"))
}

// Local runs trials on this machine, Jobs at a time, each in its own worker subprocess so a
// crash or a kill of one trial cannot take the runner down.
type Local struct {
	// Jobs is how many trials run at once; 0 means cores / the spec's resources.cpus (default
	// 4 per trial), at least 1, capped by resources.parallel.
	Jobs int
	// Command builds the worker process of a trial; nil re-executes this program as
	// `hybrid sweep worker --dir DIR --trial HASH`.
	Command func(ctx context.Context, dir, hash string) *exec.Cmd
	// Out gets the progress display and the live table (stderr in the CLI); TTY redraws it in
	// place, otherwise events are printed as lines.
	Out io.Writer
	TTY bool
	// Refresh is the display period (default 1 s on a TTY, 30 s otherwise).
	Refresh time.Duration
}

// CPUs is a trial's CPU need: the spec's resources.cpus, else 4, at most the machine's cores.
func CPUs(s *Spec) int {
	c := s.Resources.CPUs
	if c == 0 {
		c = 4
	}
	return min(c, runtime.NumCPU())
}

// DefaultJobs is the local executor's default parallelism for a sweep.
func DefaultJobs(s *Spec) int {
	j := max(1, runtime.NumCPU()/CPUs(s))
	if s.Resources.Parallel > 0 {
		j = min(j, s.Resources.Parallel)
	}
	return j
}

// WorkerCommand is the default worker process: this executable, `sweep worker`.
func WorkerCommand(ctx context.Context, dir, hash string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.CommandContext(ctx, exe, "sweep", "worker", "--dir", dir, "--trial", hash)
}

type running struct {
	t       *Trial
	start   time.Time
	last    string
	elapsed time.Duration
}

// Run runs every trial of p in dir that has no results yet and returns what happened; the
// error is non-nil (with a summary) when any trial failed or was interrupted.
func (l *Local) Run(ctx context.Context, p *Plan, dir string) (*Summary, error) {
	if err := Prepare(p, dir); err != nil {
		return nil, err
	}
	jobs := l.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs(p.Spec)
	}
	cmdf := l.Command
	if cmdf == nil {
		cmdf = WorkerCommand
	}
	out := l.Out
	if out == nil {
		out = io.Discard
	}
	refresh := l.Refresh
	if refresh == 0 {
		refresh = 30 * time.Second
		if l.TTY {
			refresh = time.Second
		}
	}
	unlock, err := holdRunner(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	d := &display{w: out, tty: l.TTY, p: p, run: map[string]*running{}, start: time.Now(), jobs: jobs}
	sum := &Summary{}
	var mu sync.Mutex
	record := func(o *Outcome) {
		mu.Lock()
		sum.Outcomes = append(sum.Outcomes, o)
		mu.Unlock()
		d.finish(o)
	}
	var todo []*Trial
	for _, t := range p.Trials {
		if st, _ := State(TrialDir(dir, t.Hash)); st == Done {
			o := &Outcome{Trial: t, State: "skipped"}
			o.Metric, o.HasM = metricOf(p.Spec, dir, t)
			sum.Outcomes = append(sum.Outcomes, o)
			d.done = append(d.done, o)
			continue
		}
		todo = append(todo, t)
	}
	d.total, d.prior = len(p.Trials), len(p.Trials)-len(todo)
	fmt.Fprintf(out, "sweep %s: %d trials, %d done before, %d to run, %d at a time, in %s\n",
		p.Spec.Name, len(p.Trials), d.prior, len(todo), jobs, dir)

	stop := make(chan struct{})
	var tick sync.WaitGroup
	tick.Add(1)
	go func() {
		defer tick.Done()
		tk := time.NewTicker(refresh)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				d.draw()
			}
		}
	}()

	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, t := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			record(&Outcome{Trial: t, State: Interrupted, Err: "not started: the runner was stopped"})
			continue
		}
		wg.Add(1)
		go func(t *Trial) {
			defer wg.Done()
			defer func() { <-sem }()
			record(l.one(ctx, cmdf, p, dir, t, d))
		}(t)
	}
	wg.Wait()
	close(stop)
	tick.Wait()
	d.draw()
	d.end()
	sort.Slice(sum.Outcomes, func(i, j int) bool { return sum.Outcomes[i].Trial.Index < sum.Outcomes[j].Trial.Index })
	sum.Write(out)
	return sum, sum.Err()
}

// one runs a trial's worker and reads how it ended.
func (l *Local) one(ctx context.Context, cmdf func(context.Context, string, string) *exec.Cmd, p *Plan, dir string, t *Trial, d *display) *Outcome {
	td := TrialDir(dir, t.Hash)
	o := &Outcome{Trial: t}
	if locked(td) {
		o.State = "busy"
		return o
	}
	cmd := cmdf(ctx, dir, t.Hash)
	cpus := CPUs(p.Spec)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(cpus), "OPENBLAS_NUM_THREADS="+strconv.Itoa(cpus))
	// Its own process group (the terminal's ^C goes to the runner, which stops workers with
	// SIGTERM so they can save), and SIGKILL if the runner dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	logf, err := os.OpenFile(filepath.Join(td, LogDir, "output.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		o.State, o.Err = Failed, err.Error()
		return o
	}
	defer logf.Close()
	r := &running{t: t, start: time.Now()}
	d.begin(r)
	defer d.stop(t)
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		sc := bufio.NewScanner(io.TeeReader(pr, logf))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sc.Split(scanLines)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				d.progress(t, s)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	copied.Wait()
	o.Wall = time.Since(r.start)
	st, status := State(td)
	var ee *exec.ExitError
	switch {
	case st == Done:
		o.State = Done
		o.Metric, o.HasM = metricOf(p.Spec, dir, t)
	case errors.As(err, &ee) && ee.ExitCode() == ExitBusy:
		o.State = "busy"
	case ctx.Err() != nil:
		o.State, o.Err = Interrupted, "stopped with the runner; the next run resumes it"
	default:
		o.State = Failed
		if b, rerr := os.ReadFile(filepath.Join(td, ErrorFile)); rerr == nil && status.State == Failed {
			o.Err = strings.TrimSpace(string(b))
		} else {
			why := "worker exited without a result"
			if err != nil {
				why = "worker " + err.Error() // "signal: killed", "exit status 2"
			}
			why += " (see " + filepath.Join(td, LogDir, "output.log") + ")"
			markFailed(td, errors.New(why))
			o.Err = why
		}
	}
	return o
}

// scanLines splits on \n and \r (progress bars redraw with \r).
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		if c == '\n' || c == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

var runnerSeq atomic.Int64

// holdRunner registers this process as a runner of dir (runners/<pid>-<n>.lock, flocked while it
// runs) so `hybrid sweep cancel` can find it.
func holdRunner(dir string) (func(), error) {
	rd := filepath.Join(dir, "runners")
	if err := os.MkdirAll(rd, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(rd, fmt.Sprintf("%d-%d.lock", os.Getpid(), runnerSeq.Add(1)))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("sweep: %s: %w", path, err)
	}
	return func() { os.Remove(path); f.Close() }, nil
}

// StopLocal sends SIGTERM to every live local runner of dir (their workers save and stop) and
// returns their pids.
func StopLocal(dir string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "runners"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		p, _, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".lock"), "-")
		pid, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		path := filepath.Join(dir, "runners", e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		// A lock we can take belongs to no live runner (the pid may have been reused).
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			f.Close()
			os.Remove(path)
			continue
		}
		f.Close()
		if syscall.Kill(pid, syscall.SIGTERM) == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
