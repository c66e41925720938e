package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/termsafe"
)

// serverOpts are the flags of the commands that talk to a server's API.
type serverOpts struct {
	server, apiToken string
}

func (o *serverOpts) flags(f interface {
	StringVar(p *string, name, value, usage string)
}) {
	f.StringVar(&o.server, "server", "", "URL of the Delta CI server (env DELTACI_SERVER)")
	f.StringVar(&o.apiToken, "api-token", "", "the server's API token, if it has one (env DELTACI_API_TOKEN)")
}

func (o *serverOpts) client(e env) (*protocol.Client, error) {
	fromEnv(e, &o.server, "DELTACI_SERVER", &o.apiToken, "DELTACI_API_TOKEN")
	if o.server == "" {
		return nil, usage(fmt.Errorf("--server is required (or DELTACI_SERVER)"))
	}
	return apiClient(o.server, o.apiToken), nil
}

type runsLsOptions struct {
	filter protocol.RunFilter
	limit  int
	json   bool
}

func newRunsCmd(e env) *cobra.Command {
	var so serverOpts
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List the runs of a Delta CI server and show one",
		Long: `List a server's runs, newest first, filtered by project, ref, state or event;
or show one run: its trust and why, and its jobs.

Any API token may read runs, a viewer's too. deltaci logs prints a run's
logs; deltaci cancel and deltaci rerun act on a run.`,
		Example: `  deltaci runs ls --server http://127.0.0.1:8080 --project web --state failed
  deltaci runs show 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e`,
	}
	so.flags(cmd.PersistentFlags())

	var lo runsLsOptions
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List runs, newest first",
		Long: `List runs, newest first: for each, its id, project, ref, commit, event,
state, when it was created and how long it ran. --ref takes a ref or a
branch name (main matches refs/heads/main). --limit says how many runs to
show (at most 1000); --json prints them as the API's run list, whose
next_cursor (when more runs follow) is for GET /api/v1/runs.`,
		Example: `  deltaci runs ls --project web --ref main --limit 5
  deltaci runs ls --state failed --event push --json`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := so.client(e)
			if err != nil {
				return err
			}
			return runsLs(cmd.Context(), c, e.stdout, lo)
		},
	}
	f := ls.Flags()
	f.StringVar(&lo.filter.Project, "project", "", "only this project's runs")
	f.StringVar(&lo.filter.Ref, "ref", "", "only runs of this ref or branch")
	f.StringVar(&lo.filter.State, "state", "", "only runs in this state: queued, planning, running, canceling, succeeded, failed, canceled or errored")
	f.StringVar(&lo.filter.Event, "event", "", "only runs of this event: push, pull_request or manual")
	f.IntVar(&lo.limit, "limit", 20, "how many runs to show, newest first")
	f.BoolVar(&lo.json, "json", false, "print JSON for scripts")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run: its trust and why, and its jobs",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := so.client(e)
			if err != nil {
				return err
			}
			run, err := c.Run(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return printJSON(e.stdout, run)
			}
			printRunHeader(e.stdout, run)
			printRemoteSummary(e, run)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print the run as the API gives it, with its jobs and attempts")
	cmd.AddCommand(ls, show)
	return cmd
}

// maxListed bounds runs ls: enough for a terminal, and a few requests.
const maxListed = 1000

func runsLs(ctx context.Context, c *protocol.Client, w io.Writer, o runsLsOptions) error {
	if o.limit < 1 || o.limit > maxListed {
		return usage(fmt.Errorf("--limit must be between 1 and %d, got %d", maxListed, o.limit))
	}
	out := protocol.RunList{Runs: []protocol.RunSummary{}}
	f := o.filter
	for len(out.Runs) < o.limit {
		f.Limit = min(o.limit-len(out.Runs), 200)
		page, err := c.Runs(ctx, f)
		if err != nil {
			return err
		}
		out.Runs = append(out.Runs, page.Runs...)
		out.NextCursor = page.NextCursor
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	if o.json {
		return printJSON(w, out)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPROJECT\tREF\tCOMMIT\tEVENT\tSTATE\tCREATED\tDURATION")
	for _, r := range out.Runs {
		state := r.State
		if r.RerunOf != "" {
			state += " (rerun)"
		}
		// Refs and project names come from repositories and admins: escape
		// them as job output is.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, or(termsafe.String(r.Project), "-"),
			termsafe.String(shortRef(r.Ref)), or(termsafe.String(short(r.Commit, 12)), "-"), termsafe.String(r.Event),
			termsafe.String(state), ago(now.Sub(r.CreatedAt)), runDuration(r.CreatedAt, r.StartedAt, r.FinishedAt, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(out.Runs) == 0 {
		fmt.Fprintln(w, "no runs match")
	}
	return nil
}

// printRunHeader prints what a run is before its jobs: where it ran, its
// state, and its trust with the server's reason.
func printRunHeader(w io.Writer, run protocol.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("run", run.ID)
	if run.RerunOf != "" {
		row("rerun of", run.RerunOf)
	}
	row("project", or(termsafe.String(run.Project), "-"))
	row("ref", termsafe.String(run.Ref))
	row("commit", or(termsafe.String(run.Commit), "-"))
	row("event", termsafe.String(run.Event))
	state := run.State
	if run.Reason != "" {
		state += " (" + run.Reason + ")"
	}
	row("state", termsafe.String(state))
	trust := "no"
	if run.Trusted {
		trust = "yes"
	}
	if run.TrustReason != "" {
		trust += ": " + run.TrustReason
	}
	row("trusted", termsafe.String(trust))
	row("created", run.CreatedAt.Local().Format(time.RFC3339))
	row("duration", runDuration(run.CreatedAt, run.StartedAt, run.FinishedAt, time.Now()))
	if run.Message != "" {
		row("message", termsafe.String(run.Message))
	}
	_ = tw.Flush()
}

// runDuration is how long a run ran: from its start (or creation) to its
// end, or to now with "so far" while it runs.
func runDuration(created time.Time, started, finished *time.Time, now time.Time) string {
	from := created
	if started != nil {
		from = *started
	}
	if finished == nil {
		return now.Sub(from).Round(time.Second).String() + " so far"
	}
	return finished.Sub(from).Round(10 * time.Millisecond).String()
}

// shortRef shows a branch's ref as the branch's name.
func shortRef(ref string) string { return strings.TrimPrefix(ref, "refs/heads/") }

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func newCancelCmd(e env) *cobra.Command {
	var so serverOpts
	cmd := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run on a Delta CI server",
		Long: `Cancel a run: its queued jobs are canceled at once, its running jobs are
told to stop, and the run ends canceled once they have (until then it is
canceling). Prints the run's id and state. Canceling a run that has ended
fails. Needs a maintainer or admin API token.`,
		Example: `  deltaci cancel 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e --server http://127.0.0.1:8080`,
		Args:    checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := so.client(e)
			if err != nil {
				return err
			}
			run, err := c.CancelRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "run %s %s\n", run.ID, run.State)
			return nil
		},
	}
	so.flags(cmd.Flags())
	return cmd
}

func newRerunCmd(e env) *cobra.Command {
	var so serverOpts
	var job string
	var followRun bool
	cmd := &cobra.Command{
		Use:   "rerun RUN",
		Short: "Run an ended run's failed jobs again, in a new run",
		Long: `Start a new run of the same project, ref, commit and event as RUN, which
must have ended, and print its id. Every job that did not succeed in RUN
runs again; the others are reused from RUN's results, not run. With --job,
that job runs again (whatever its state in RUN), with the jobs that need it
and did not succeed; the other jobs that did not succeed are skipped.

The server decides the new run's trust as for a new run, and a rerun of an
untrusted run is untrusted. The new run records RUN as the run it reruns
(runs show). Needs a maintainer or admin API token.

With --follow, stream the new run's job states and logs until it ends, and
exit as trigger --follow does: 0 when every job succeeded, 1 when one
failed, 130 when the run was canceled.`,
		Example: `  deltaci rerun 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e --follow
  deltaci rerun 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e --job test`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := so.client(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			run, err := c.Rerun(ctx, args[0], protocol.RerunRequest{Job: job})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, run.ID)
			if !followRun {
				return nil
			}
			return follow(ctx, e, c, run)
		},
	}
	so.flags(cmd.Flags())
	cmd.Flags().StringVar(&job, "job", "", "run this job again, and the jobs that need it and did not succeed")
	cmd.Flags().BoolVarP(&followRun, "follow", "f", false, "stream job states and logs until the new run ends")
	return cmd
}
