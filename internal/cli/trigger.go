package cli

import (
	"context"
	"fmt"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/core"
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

With --follow, stream the run's job states and logs until it ends, then exit
like deltaci run: 0 when every job succeeded, 1 when one failed, 130 when the
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
	f.StringVar(&o.repo, "repo", "", "or the project's repository as registered: a directory (made absolute) or a git URL")
	f.StringVar(&o.ref, "ref", "", "branch or revision to run (default: the project's default branch)")
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
	if o.repo != "" {
		o.repo = repoArg(o.repo)
	}
	c := apiClient(o.server, o.apiToken)
	run, err := c.CreateRun(ctx, protocol.CreateRunRequest{Project: o.project, Repo: o.repo, Ref: o.ref, Commit: o.commit, Event: o.event})
	if err != nil {
		if core.KindOf(err) == core.KindInvalid {
			return usage(err)
		}
		return err
	}
	fmt.Fprintln(e.stdout, run.ID)
	if !o.follow {
		return nil
	}
	return follow(ctx, e, c, run)
}

// follow prints job state changes and streams each attempt's log, prefixed
// with its job, until the run ends.
func follow(ctx context.Context, e env, c *protocol.Client, run protocol.Run) error {
	names := make([]string, len(run.Jobs))
	for i, j := range run.Jobs {
		names[i] = j.Name
	}
	con := newConsole(e.stdout, names)
	con.printf("deltaci: run %s of %s at %.12s: %s\n", run.ID, run.Ref, run.Commit, plural(len(run.Jobs), "job"))
	states := map[string]string{}
	streaming := map[string]bool{}
	var wg sync.WaitGroup
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, j := range run.Jobs {
			if states[j.ID] != j.State {
				states[j.ID] = j.State
				con.printf("deltaci: %s %s\n", j.Name, j.State)
			}
			for _, a := range j.Attempts {
				if streaming[a.ID] || a.State == string(core.AttemptQueued) {
					continue
				}
				streaming[a.ID] = true
				wg.Add(1)
				go func(job, attemptID string) {
					defer wg.Done()
					w := con.job(job)
					defer w.Close()
					_, err := c.FollowLog(ctx, attemptID, 0, func(ev protocol.LogEvent) error {
						_, err := w.Write(ev.Data)
						return err
					})
					if err != nil && ctx.Err() == nil {
						con.printf("deltaci: log of %s: %v\n", job, err)
					}
				}(j.Name, a.ID)
			}
		}
		if core.RunState(run.State).Terminal() {
			break
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			con.printf("deltaci: stopped following; run %s goes on\n", run.ID)
			return &exitError{code: ExitCanceled}
		case <-tick.C:
		}
		next, err := c.Run(ctx, run.ID)
		if err != nil {
			if protocol.IsTransient(err) {
				continue // a server restart: keep asking
			}
			wg.Wait()
			return err
		}
		run = next
	}
	wg.Wait()
	printRemoteSummary(e, run)
	switch core.RunState(run.State) {
	case core.RunSucceeded:
		return nil
	case core.RunCanceled:
		return &exitError{code: ExitCanceled}
	}
	return &exitError{code: ExitFailed}
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
