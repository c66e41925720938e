package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/missingfile"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/termsafe"
)

// The verdicts of plan --check-inputs, per job.
const (
	// VerdictOK: the job succeeds hermetic as it does without.
	VerdictOK = "ok"
	// VerdictHermeticOnly: the job succeeds without hermetic and fails
	// hermetic: it reads a file its inputs do not match.
	VerdictHermeticOnly = "hermetic_only"
	// VerdictFails: the job fails without hermetic too, so the check says
	// nothing about its inputs.
	VerdictFails = "fails"
	// VerdictNotChecked: a run did not execute the job (skipped by its
	// filters, or a job it needs failed).
	VerdictNotChecked = "not_checked"
)

// CheckSchemaVersion is the version of the JSON form of a check.
const CheckSchemaVersion = 1

// InputCheck is what plan --check-inputs found; its JSON form is
// documented in docs/configuration.md.
type InputCheck struct {
	Version int            `json:"version"`
	Summary map[string]int `json:"summary"`
	Jobs    []CheckedJob   `json:"jobs"`
}

// CheckedJob is one job's outcome, without hermetic and hermetic.
type CheckedJob struct {
	Name string `json:"name"`
	// Verdict is one of the Verdict constants.
	Verdict string `json:"verdict"`
	// Plain and Hermetic are the job's states in each run ("" when it was
	// not in it).
	Plain    string `json:"plain"`
	Hermetic string `json:"hermetic"`
	// Why says why a job was not checked.
	Why string `json:"why,omitempty"`
	// Missing are the files of the repository that the hermetic run's
	// output says were missing and that the job's inputs do not match.
	Missing []string `json:"missing,omitempty"`
	// Tail is the end of the hermetic run's output, for a job that fails
	// only there.
	Tail []string `json:"tail,omitempty"`
}

// tailLines is how much of a failing job's output the report shows.
const tailLines = 10

// checkInputs runs the named jobs (all when none is named), with the jobs
// they need, twice on the working tree: without hermetic, then hermetic,
// and reports those that fail only hermetic. Results go to a database
// and store of their own, removed afterwards, so that nothing recorded by
// deltaci run is used or changed. The second run reuses the first's
// results for every job it does not check.
func checkInputs(ctx context.Context, e env, top string, o planOptions, named []string, asJSON bool) error {
	log := newLogger(e.stderr, false)
	exec, err := newExecutor(o.executor, log, executor.Limits{})
	if err != nil {
		return err
	}
	wt, err := gitx.ReadWorkTree(ctx, top)
	if err != nil {
		return err
	}
	p, err := pipelineAt(ctx, top, "")
	if err != nil {
		return usage(err)
	}
	if len(named) == 0 {
		named = names(p.Jobs)
	}
	for _, n := range named {
		if _, ok := p.Job(n); !ok {
			return usage(fmt.Errorf("job %s: no such job in %s (jobs: %s)", n, ConfigFile, strings.Join(names(p.Jobs), ", ")))
		}
	}
	specs, err := selectJobs(p, named)
	if err != nil {
		return usage(err)
	}
	tmp, err := os.MkdirTemp("", "deltaci-check-inputs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	database := filepath.Join(tmp, "state.db")
	st, err := openStore(ctx, database, true)
	if err != nil {
		return err
	}
	defer st.Close()
	arts, err := open.Open(ctx, open.Config{Database: database, Store: filepath.Join(tmp, "store"), Log: log})
	if err != nil {
		return fmt.Errorf("artifact store: %w", err)
	}
	defer arts.Close()
	res := localResults(arts)
	notifier := orchestrator.NewNotifier()
	x := &localRun{st: st, orch: orchestrator.New(st, log, notifier), notifier: notifier, exec: exec, homes: jobHomes(o.executor), log: log, res: res, registry: arts.Registry,
		vars: e.vars, jobs: runtime.NumCPU(), grace: defaultGrace,
		printf: func(format string, args ...any) { fmt.Fprintf(e.stderr, format, args...) }}

	var passes [2]checkPass
	// A job whose inputs hold a link out of the repository cannot be made
	// hermetic: it is run as written in the second pass too, and reported
	// as not checked, instead of stopping the check of the others.
	outside := map[string]string{}
	for i, hermetic := range []bool{false, true} {
		what := "without hermetic"
		if hermetic {
			what = "hermetic"
		}
		fmt.Fprintf(e.stderr, "deltaci: checking the inputs of %s: running %s\n", plural(len(named), "job"), what)
		for {
			pp, ps := withHermetic(p, named, hermetic), withHermetic(&core.Pipeline{Jobs: specs}, named, hermetic)
			for job := range outside {
				pp, ps = withHermetic(pp, []string{job}, false), withHermetic(ps, []string{job}, false)
			}
			pass, err := x.runPass(ctx, top, wt, pp, ps.Jobs, o)
			var lo *planner.LinkOutsideError
			if hermetic && errors.As(err, &lo) && slices.Contains(named, lo.Job) && outside[lo.Job] == "" {
				outside[lo.Job] = fmt.Sprintf("cannot be made hermetic: symlink %s among its inputs leads outside the repository (%s)", strconv.Quote(lo.Path), strconv.Quote(lo.Target))
				fmt.Fprintf(e.stderr, "deltaci: %s is not checked: %s\n", lo.Job, termsafe.String(outside[lo.Job]))
				continue
			}
			if err != nil {
				return err
			}
			if pass.interrupted {
				return &exitError{code: ExitCanceled}
			}
			passes[i] = pass
			break
		}
	}
	check, err := compare(named, passes[0], passes[1], outside)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(e.stdout, check); err != nil {
			return err
		}
	} else {
		printCheck(e, check)
	}
	if check.Summary[VerdictHermeticOnly] > 0 {
		return &exitError{code: ExitFailed}
	}
	return nil
}

// defaultGrace is deltaci run's --grace default.
const defaultGrace = 10 * time.Second

// withHermetic returns a copy of p whose jobs named are hermetic or not.
func withHermetic(p *core.Pipeline, named []string, hermetic bool) *core.Pipeline {
	out := *p
	out.Jobs = slices.Clone(p.Jobs)
	for i := range out.Jobs {
		if slices.Contains(named, out.Jobs[i].Name) {
			out.Jobs[i].Hermetic = hermetic
		}
	}
	return &out
}

// checkPass is one run of the check.
type checkPass struct {
	plan        *planner.Plan
	states      map[string]core.JobState
	logs        *capturedLogs
	interrupted bool
}

// runPass plans p on the working tree, with the results recorded so far,
// and runs specs, keeping each job's output.
func (x *localRun) runPass(ctx context.Context, top string, wt *gitx.WorkTree, p *core.Pipeline, specs []core.JobSpec, o planOptions) (checkPass, error) {
	pl, err := makePlan(ctx, top, wt, p, o, x.res)
	if core.KindOf(err) == core.KindInvalid {
		return checkPass{}, usage(err)
	}
	if err != nil {
		return checkPass{}, fmt.Errorf("plan: %w", err)
	}
	logs := &capturedLogs{byJob: map[string]*tailBuffer{}}
	x.output = logs.writer
	runID, interrupted, err := x.execute(ctx, top, wt, p, specs, pl, func(string, []store.NewJob) {})
	if err != nil {
		return checkPass{}, err
	}
	jobs, err := x.st.Jobs(context.WithoutCancel(ctx), runID)
	if err != nil {
		return checkPass{}, err
	}
	states := map[string]core.JobState{}
	for _, j := range jobs {
		states[j.Name] = j.State
	}
	return checkPass{plan: pl, states: states, logs: logs, interrupted: interrupted}, nil
}

// compare judges each named job from its states in both runs; outside
// holds, by job, why a job could not be made hermetic.
func compare(named []string, plain, herm checkPass, outside map[string]string) (InputCheck, error) {
	c := InputCheck{Version: CheckSchemaVersion, Summary: map[string]int{VerdictOK: 0, VerdictHermeticOnly: 0, VerdictFails: 0, VerdictNotChecked: 0}}
	for _, pj := range herm.plan.Jobs {
		if !slices.Contains(named, pj.Name) {
			continue
		}
		j := CheckedJob{Name: pj.Name, Plain: string(plain.states[pj.Name]), Hermetic: string(herm.states[pj.Name])}
		switch ps, hs := plain.states[pj.Name], herm.states[pj.Name]; {
		case outside[pj.Name] != "":
			j.Verdict, j.Why = VerdictNotChecked, outside[pj.Name]
		case ps == core.JobSkipped || hs == core.JobSkipped:
			j.Verdict, j.Why = VerdictNotChecked, "skipped by its filters: "+lastReason(pj)
		case ps == core.JobUpstreamFailed:
			j.Verdict, j.Why = VerdictNotChecked, "a job it needs failed without hermetic"
		case ps != core.JobSucceeded:
			j.Verdict = VerdictFails
		case hs == core.JobSucceeded:
			j.Verdict = VerdictOK
		case hs == core.JobUpstreamFailed:
			j.Verdict, j.Why = VerdictNotChecked, "a job it needs failed hermetic: check that one first"
		default:
			j.Verdict = VerdictHermeticOnly
			out := herm.logs.bytes(pj.Name)
			files, err := herm.plan.InputFiles(pj.Name)
			if err != nil {
				return InputCheck{}, err
			}
			j.Missing = missingInputs(herm.plan, files, missingfile.Scan(out))
			j.Tail = lastLines(out, tailLines)
		}
		c.Summary[j.Verdict]++
		c.Jobs = append(c.Jobs, j)
	}
	return c, nil
}

func lastReason(j planner.Job) string {
	if len(j.Why) == 0 {
		return ""
	}
	return j.Why[len(j.Why)-1].Text
}

// missingInputs turns the names a job's output gave into the files of the
// repository that its inputs do not match. A name may be relative to the
// workspace or absolute (a path into the workspace): the longest of its
// tails that is a file of the tree is taken.
func missingInputs(pl *planner.Plan, inputs []gitx.TreeEntry, names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.TrimPrefix(n, "./")
		for {
			if pl.HasFile(n) {
				if !slices.ContainsFunc(inputs, func(e gitx.TreeEntry) bool { return e.Path == n }) && !slices.Contains(out, n) {
					out = append(out, n)
				}
				break
			}
			i := strings.IndexByte(n, '/')
			if i < 0 {
				break
			}
			n = n[i+1:]
		}
	}
	return out
}

func lastLines(b []byte, n int) []string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines[max(0, len(lines)-n):]
}

func printCheck(e env, c InputCheck) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tWITHOUT HERMETIC\tHERMETIC\tVERDICT")
	dash := func(s string) string { return cmp.Or(s, "-") }
	for _, j := range c.Jobs {
		verdict := map[string]string{
			VerdictOK:           "ok: its inputs hold what it reads",
			VerdictHermeticOnly: "fails only hermetic: it reads files its inputs do not match",
			VerdictFails:        "fails without hermetic too: not a question of inputs",
			VerdictNotChecked:   "not checked: " + j.Why,
		}[j.Verdict]
		if j.Verdict == VerdictHermeticOnly && len(j.Missing) > 0 {
			verdict = "fails only hermetic: missing " + strings.Join(j.Missing, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, dash(j.Plain), dash(j.Hermetic), termsafe.String(verdict))
	}
	tw.Flush()
	for _, j := range c.Jobs {
		if j.Verdict != VerdictHermeticOnly {
			continue
		}
		fmt.Fprintf(e.stdout, "\n%s: fails only hermetic\n", j.Name)
		if len(j.Missing) > 0 {
			fmt.Fprintf(e.stdout, "  files of the repository it read that its inputs do not match (add them to inputs):\n")
			for _, m := range j.Missing {
				fmt.Fprintf(e.stdout, "      %s\n", termsafe.String(m))
			}
		} else {
			fmt.Fprintf(e.stdout, "  its output names no file of the repository that its inputs miss; see how it ends\n")
		}
		fmt.Fprintf(e.stdout, "  its output, hermetic, ends with:\n")
		for _, l := range j.Tail {
			fmt.Fprintf(e.stdout, "      %s\n", termsafe.String(l))
		}
	}
	fmt.Fprintf(e.stdout, "\n%d ok, %d fail only hermetic, %d fail without hermetic too, %d not checked\n",
		c.Summary[VerdictOK], c.Summary[VerdictHermeticOnly], c.Summary[VerdictFails], c.Summary[VerdictNotChecked])
}

// capturedLogs keeps the end of each job's output.
type capturedLogs struct {
	mu    sync.Mutex
	byJob map[string]*tailBuffer
}

func (c *capturedLogs) writer(job string) io.WriteCloser {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.byJob[job]
	if !ok {
		b = &tailBuffer{max: maxCaptured}
		c.byJob[job] = b
	}
	return b
}

func (c *capturedLogs) bytes(job string) []byte {
	c.mu.Lock()
	b := c.byJob[job]
	c.mu.Unlock()
	if b == nil {
		return nil
	}
	return b.bytes()
}

// maxCaptured is how much of a job's output the check keeps: its end,
// where a job that stops on a missing file says so.
const maxCaptured = 1 << 20

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// Close keeps the buffer: a retry appends to it.
func (t *tailBuffer) Close() error { return nil }

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.buf[max(0, len(t.buf)-t.max):])
}
