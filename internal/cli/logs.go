package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/termsafe"
)

type logsOptions struct {
	server, apiToken string
	follow           bool
}

func newLogsCmd(e env) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs RUN [JOB]",
		Short: "Print the logs of a run on a Delta CI server",
		Long: `Print the log of each job of a run, in the run's order, each line prefixed
with its job's name; with JOB, that job's log alone, unprefixed. A job that
ran more than once shows its latest attempt; reused and skipped jobs have
no log.

With --follow, print the logs as the jobs write them (and, without JOB, the
jobs' state changes) until the run ends. Output is escaped as trigger --follow escapes
it: a job cannot drive the terminal.`,
		Example: `  deltaci logs 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e --server http://127.0.0.1:8080
  deltaci logs 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e test --follow`,
		Args: checkArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := ""
			if len(args) == 2 {
				job = args[1]
			}
			return logs(cmd.Context(), e, o, args[0], job)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of the Delta CI server (env DELTACI_SERVER)")
	f.StringVar(&o.apiToken, "api-token", "", "the server's API token, if it has one (env DELTACI_API_TOKEN)")
	f.BoolVarP(&o.follow, "follow", "f", false, "print the logs as they grow until the run ends")
	return cmd
}

func logs(ctx context.Context, e env, o logsOptions, runID, job string) error {
	fromEnv(e, &o.server, "DELTACI_SERVER", &o.apiToken, "DELTACI_API_TOKEN")
	if o.server == "" {
		return usage(fmt.Errorf("--server is required (or DELTACI_SERVER)"))
	}
	c := apiClient(o.server, o.apiToken)
	run, err := c.Run(ctx, runID)
	if err != nil {
		return err
	}
	names := make([]string, len(run.Jobs))
	found := job == ""
	for i, j := range run.Jobs {
		names[i] = j.Name
		found = found || j.Name == job
	}
	if !found {
		return usage(fmt.Errorf("run %s has no job %q (its jobs: %s)", run.ID, termsafe.String(job), termsafe.String(fmt.Sprint(names))))
	}
	con := newConsole(e.stdout, names)
	if o.follow {
		p := newRunPrinter(con, job == "")
		raw := termsafe.NewWriter(e.stdout)
		if job != "" {
			p.raw = raw
		}
		_, err := c.FollowRun(ctx, run.ID, protocol.FollowRunOptions{Job: job}, p.event)
		p.close()
		_ = raw.Close()
		if err != nil && ctx.Err() != nil {
			return &exitError{code: ExitCanceled}
		}
		return err
	}
	if job != "" {
		data, err := c.JobLog(ctx, run.ID, job, 0)
		if err != nil {
			return err
		}
		w := termsafe.NewWriter(e.stdout)
		if _, err := w.Write(data); err != nil {
			return err
		}
		return w.Close()
	}
	for _, j := range run.Jobs {
		if len(j.Attempts) == 0 {
			continue // reused, skipped or not started: no log
		}
		data, err := c.JobLog(ctx, run.ID, j.Name, 0)
		if err != nil {
			return err
		}
		w := con.job(j.Name)
		_, _ = w.Write(data)
		_ = w.Close()
	}
	return nil
}
