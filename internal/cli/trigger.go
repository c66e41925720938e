package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/termsafe"
)

type triggerOptions struct {
	server, project, repo, ref, commit, event, apiToken string
	follow                                              bool
}

func newTriggerCmd(e env) *cobra.Command {
	var o triggerOptions
	cmd := &cobra.Command{
		Use:   "trigger",
		Short: "Start a run on a Delta CI server",
		Long: `Start a run of a project at --ref on the server, as a push of that ref, and
print the run's id. Name the project with --project, or with --repo, its
clone URL as registered (deltaci projects add). The server fetches the
repository itself and decides on its own whether the run is trusted: a push
of a protected branch at a commit on that branch as it fetched it.

Run inside a checkout (or with --repo naming one, from any of its
subdirectories), --ref defaults to the branch checked out there; elsewhere
the server takes the project's default branch. The server runs the commit
it fetches: changes not committed and pushed are not part of the run, and
trigger warns when the checkout has some.

With --follow, stream the run's job states, waiting reasons and logs until
it ends (each job's log before the line saying it ended), then exit like
deltaci run: 0 when every job succeeded, 1 when one failed, 130 when the
run was canceled. Ctrl-C stops following; the run goes on.`,
		Example: `  deltaci trigger --server http://127.0.0.1:8080 --project web --ref main --follow
  deltaci trigger --server https://ci.example.com --repo https://git.example.com/org/mono.git --ref feature/x`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return trigger(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of the Delta CI server (env DELTACI_SERVER)")
	f.StringVar(&o.project, "project", "", "the project to run (env DELTACI_PROJECT)")
	f.StringVar(&o.repo, "repo", "", "or the project's repository as registered: a directory (its checkout's top, made absolute) or a git URL")
	f.StringVar(&o.ref, "ref", "", "branch or revision to run (default: the branch checked out in --repo's directory or the current one, else the project's default branch)")
	f.StringVar(&o.commit, "commit", "", "pin the commit (default: where --ref points on the server's fetch)")
	f.StringVar(&o.event, "event", "push", "push or manual")
	f.StringVar(&o.apiToken, "api-token", "", "the server's API token, if it has one (env DELTACI_API_TOKEN)")
	f.BoolVarP(&o.follow, "follow", "f", false, "stream job states and logs until the run ends")
	return cmd
}

func trigger(ctx context.Context, e env, o triggerOptions) error {
	fromEnv(e, &o.server, "DELTACI_SERVER", &o.apiToken, "DELTACI_API_TOKEN", &o.project, "DELTACI_PROJECT")
	switch {
	case o.server == "":
		return usage(fmt.Errorf("--server is required (or DELTACI_SERVER)"))
	case o.project == "" && o.repo == "":
		return usage(fmt.Errorf("--project (or --repo) is required"))
	}
	// The checkout trigger is run from: --repo's directory, or the current
	// one. It names the project (as a directory), the default --ref, and
	// the changes the server will not see.
	local, top := ".", ""
	if o.repo != "" {
		o.repo = repoArg(o.repo)
		local = ""
		if filepath.IsAbs(o.repo) {
			local = o.repo
		}
	}
	if local != "" {
		if t, err := gitx.TopLevel(ctx, local); err == nil {
			top = t
			if o.repo != "" {
				o.repo = checkoutTop(o.repo, t)
			}
		}
	}
	inferred := false
	if top != "" && o.ref == "" && o.commit == "" {
		b, err := gitx.CurrentBranch(ctx, top)
		switch {
		case err == nil && b != "":
			o.ref, inferred = b, true
		case err == nil:
			fmt.Fprintf(e.stderr, "deltaci: HEAD is detached in %s, so the run is of the project's default branch; pass --ref to run another\n", termsafe.String(top))
		}
	}
	if top != "" {
		warnUncommitted(ctx, e, top)
	}
	c := apiClient(o.server, o.apiToken)
	run, err := c.CreateRun(ctx, protocol.CreateRunRequest{Project: o.project, Repo: o.repo, Ref: o.ref, Commit: o.commit, Event: o.event})
	if err != nil {
		// A configuration error at the commit was recorded as an errored run.
		if ae := (*protocol.APIError)(nil); errors.As(err, &ae) && ae.Details["run_id"] != nil {
			fmt.Fprintf(e.stdout, "%s\n", termsafe.String(fmt.Sprint(ae.Details["run_id"])))
		}
		if core.KindOf(err) == core.KindInvalid {
			if inferred {
				err = fmt.Errorf("%w (--ref defaulted to %s, the branch checked out here; pass --ref to run another)", err, o.ref)
			}
			return usage(err)
		}
		return err
	}
	fmt.Fprintln(e.stdout, run.ID)
	for _, w := range run.Warnings {
		fmt.Fprintf(e.stderr, "deltaci: warning: %s\n", termsafe.String(w))
	}
	if !o.follow {
		return nil
	}
	return follow(ctx, e, c, run)
}

// checkoutTop returns the top of the checkout that the directory dir is
// in, top as git resolved it, spelled as dir was: a project registered by
// a path through a symbolic link is still found by that path.
func checkoutTop(dir, top string) string {
	realDir, err1 := filepath.EvalSymlinks(dir)
	realTop, err2 := filepath.EvalSymlinks(top)
	if err1 != nil || err2 != nil {
		return top
	}
	rel, err := filepath.Rel(realTop, realDir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return top
	}
	if rel == "." {
		return dir
	}
	for range strings.Count(rel, "/") + 1 {
		dir = filepath.Dir(dir)
	}
	return dir
}

// warnUncommitted says on stderr that the server runs the committed tip,
// not the working tree's changes.
func warnUncommitted(ctx context.Context, e env, top string) {
	dirty, err := gitx.DirtyPaths(ctx, top)
	if err != nil || len(dirty) == 0 {
		return
	}
	fmt.Fprintf(e.stderr, "deltaci: warning: %s in %s differ from the last commit; the server runs what it fetches, without them (commit and push first)\n",
		plural(len(dirty), "file"), termsafe.String(top))
}

// follow prints job state changes, waiting reasons and each attempt's log,
// prefixed with its job, until the run ends, then the summary; it returns
// the exit status deltaci run would. It wakes on the run's event stream:
// a job's log comes before the line saying it ended, jobs in the run's
// order.
func follow(ctx context.Context, e env, c *protocol.Client, run protocol.Run) error {
	names := make([]string, len(run.Jobs))
	for i, j := range run.Jobs {
		names[i] = j.Name
	}
	con := newConsole(e.stdout, names)
	con.printf("deltaci: run %s of %s at %.12s: %s\n", run.ID, run.Ref, run.Commit, plural(len(run.Jobs), "job"))
	p := newRunPrinter(con, true)
	final, err := c.FollowRun(ctx, run.ID, protocol.FollowRunOptions{}, p.event)
	p.close()
	if err != nil {
		if ctx.Err() != nil {
			con.printf("deltaci: stopped following; run %s goes on\n", run.ID)
			return &exitError{code: ExitCanceled}
		}
		return err
	}
	printRemoteSummary(e, final)
	switch core.RunState(final.State) {
	case core.RunSucceeded:
		return nil
	case core.RunCanceled:
		return &exitError{code: ExitCanceled}
	}
	return &exitError{code: ExitFailed}
}

// runPrinter prints a run's event stream on a console: each job's log
// lines with its prefix and, with states, a line per job state change and
// waiting reason. Events seen again after a reconnection print nothing.
type runPrinter struct {
	con     *console
	states  bool
	job     map[string]string // job name: state printed
	waiting map[string]string // job name: waiting reason printed
	latest  map[string]int    // job name: its latest attempt's number
	printed map[string]int64  // attempt id: log bytes printed
	out     map[string]io.WriteCloser
	// raw writes logs unprefixed, for one job's log.
	raw io.Writer
}

func newRunPrinter(con *console, states bool) *runPrinter {
	return &runPrinter{con: con, states: states, job: map[string]string{}, waiting: map[string]string{},
		latest: map[string]int{}, printed: map[string]int64{}, out: map[string]io.WriteCloser{}}
}

func (p *runPrinter) event(ev protocol.RunEvent) error {
	switch ev.Type {
	case protocol.EventRun, protocol.EventEnd:
		for _, j := range ev.Run.Jobs {
			p.attempts(j)
		}
	case protocol.EventJob:
		j := *ev.Job
		p.attempts(j)
		if !p.states {
			return nil
		}
		if p.job[j.Name] != j.State {
			// The job's log is complete before it ends: flush its last line.
			if core.JobState(j.State).Terminal() {
				for _, a := range j.Attempts {
					p.closeAttempt(a.ID)
				}
			}
			p.job[j.Name] = j.State
			p.con.printf("deltaci: %s %s\n", j.Name, j.State)
		}
		if j.Waiting != p.waiting[j.Name] {
			p.waiting[j.Name] = j.Waiting
			if j.Waiting != "" {
				p.con.printf("deltaci: %s waits: %s\n", j.Name, j.Waiting)
			}
		}
	case protocol.EventLog:
		l := ev.Log
		if l.Number < p.latest[l.Job] && p.raw != nil {
			return nil // an earlier attempt's log, when one job's latest is asked for
		}
		data := l.Data
		have := p.printed[l.Attempt]
		if skip := have - l.Offset; skip > 0 {
			if skip >= int64(len(data)) {
				return nil // printed before a reconnection
			}
			data = data[skip:]
		}
		p.printed[l.Attempt] = l.Offset + int64(len(l.Data))
		_, err := p.writer(l.Job, l.Attempt).Write(data)
		return err
	}
	return nil
}

// attempts notes a job's latest attempt.
func (p *runPrinter) attempts(j protocol.Job) {
	for _, a := range j.Attempts {
		p.latest[j.Name] = max(p.latest[j.Name], a.Number)
	}
}

func (p *runPrinter) writer(job, attempt string) io.Writer {
	if p.raw != nil {
		return p.raw
	}
	w, ok := p.out[attempt]
	if !ok {
		w = p.con.job(job)
		p.out[attempt] = w
	}
	return w
}

func (p *runPrinter) closeAttempt(id string) {
	if w, ok := p.out[id]; ok {
		_ = w.Close()
		delete(p.out, id)
	}
}

// close flushes every log's last line.
func (p *runPrinter) close() {
	for id := range p.out {
		p.closeAttempt(id)
	}
}

func printRemoteSummary(e env, run protocol.Run) {
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATUS\tREASON\tDURATION\tATTEMPT\tWHY")
	for _, j := range run.Jobs {
		reason, dur, num := or(j.Reason, "-"), "-", "-"
		if n := len(j.Attempts); n > 0 {
			a := j.Attempts[n-1]
			num = fmt.Sprint(a.Number)
			if a.StartedAt != nil && a.FinishedAt != nil {
				dur = a.FinishedAt.Sub(*a.StartedAt).Round(10 * time.Millisecond).String()
			}
			if j.Reason == string(core.ReasonExitCode) && a.ExitCode != nil {
				reason = fmt.Sprintf("exit code %d", *a.ExitCode)
			}
		}
		// The explanation names repository files, which anyone who pushes names.
		why := termsafe.String(decidingReason(j.Explain))
		if j.State == string(core.JobUpstreamFailed) || j.State == string(core.JobCanceled) {
			why = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.State, reason, dur, num, why)
	}
	_ = tw.Flush()
	fmt.Fprintf(e.stdout, "\nrun %s %s\n", run.ID, run.State)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
