package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/analyzer"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/termsafe"
)

func newWhyCmd(e env) *cobra.Command {
	var (
		so       serverOpts
		database string
		repo     string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "why RUN",
		Short: "Say why a run's jobs failed: their failing tests and first errors",
		Long: `Print, per failed job of a run, its failure class, its failing tests (new,
or existing at the run's base) and, when no report names a failing test, the
log's first real error with its place in the log.

With --server it reads a server's run; without, a run of deltaci run in
the repository of the current directory (its .deltaci/state.db).`,
		Example: `  deltaci why 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e
  deltaci why --server http://127.0.0.1:8080 0195f3a2-7c4e-7b1a-9d2e-3f4a5b6c7d8e`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var view protocol.RunAnalysis
			fromEnv(e, &so.server, "DELTACI_SERVER", &so.apiToken, "DELTACI_API_TOKEN")
			if so.server != "" {
				c, err := so.client(e)
				if err != nil {
					return err
				}
				if view, err = c.RunAnalysis(ctx, args[0]); err != nil {
					return err
				}
			} else {
				if database == "" {
					database = e.get("DELTACI_DATABASE")
				}
				if database == "" {
					top, err := gitx.TopLevel(ctx, repo)
					if err != nil {
						return usage(err)
					}
					database = filepath.Join(top, ".deltaci", "state.db")
				}
				st, err := openStore(ctx, database, false)
				if err != nil {
					return err
				}
				defer st.Close()
				if view, err = analyzer.RunView(ctx, st, args[0]); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(e.stdout, view)
			}
			printWhy(e.stdout, view)
			return nil
		},
	}
	so.flags(cmd.Flags())
	cmd.Flags().StringVar(&database, "database", "", "the local runs' database (env DELTACI_DATABASE; default .deltaci/state.db in the repository)")
	cmd.Flags().StringVar(&repo, "repo", ".", "the repository whose local runs to read, without --server")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the analysis as the API gives it")
	return cmd
}

// printWhy prints, per failed job, its class, failing tests and excerpt.
func printWhy(w io.Writer, v protocol.RunAnalysis) {
	failed := 0
	for _, j := range v.Jobs {
		if j.State != string(core.JobFailed) {
			continue
		}
		failed++
		printJobWhy(w, j)
	}
	switch {
	case failed == 0:
		fmt.Fprintln(w, "no job failed")
	case v.Pending > 0:
		fmt.Fprintf(w, "(%d ended attempts are not analyzed yet)\n", v.Pending)
	}
}

func printJobWhy(w io.Writer, j protocol.JobAnalysis) {
	s := termsafe.String
	head := "job " + s(j.Job)
	if j.Number > 1 {
		head += fmt.Sprintf(" (attempt %d)", j.Number)
	}
	switch {
	case j.AttemptID == "":
		fmt.Fprintf(w, "%s: failed, not analyzed yet\n", head)
		return
	case j.Class != "":
		head += ": " + strings.ReplaceAll(j.Class, "_", " ") + " failure"
	}
	if j.Flaky {
		head += " (the job is known flaky)"
	}
	fmt.Fprintln(w, head)
	if t := j.Totals; t.Passed+t.Failed+t.Errored+t.Skipped > 0 {
		fmt.Fprintf(w, "  %d failed, %d errored, %d passed, %d skipped\n", t.Failed, t.Errored, t.Passed, t.Skipped)
	}
	for _, f := range j.Failures {
		status := f.Status
		if status == "" {
			status = "failed"
		}
		if f.Flaky {
			status += ", flaky"
		}
		line := fmt.Sprintf("  %-9s %s", status, s(f.ID))
		if f.Location != "" {
			line += "  " + s(f.Location)
		}
		fmt.Fprintln(w, line)
		if msg := firstLine(strings.TrimSpace(f.Message)); msg != "" {
			fmt.Fprintf(w, "            %s\n", s(msg))
		}
		if f.SeenCount > 1 {
			fmt.Fprintf(w, "            seen %d times since %s\n", f.SeenCount, f.FirstSeen.Format("2006-01-02"))
		}
	}
	if j.MoreFailures > 0 {
		fmt.Fprintf(w, "  and %d more failing tests\n", j.MoreFailures)
	}
	if len(j.Fixed) > 0 {
		fmt.Fprintf(w, "  fixed since the base: %s\n", s(strings.Join(j.Fixed, ", ")))
	}
	if ex := j.Excerpt; ex != nil {
		if ex.ErrorLine > 0 {
			fmt.Fprintf(w, "  first error at log line %d (bytes %d-%d):\n", ex.ErrorLine, ex.Start, ex.End)
		} else {
			fmt.Fprintf(w, "  end of the log (bytes %d-%d):\n", ex.Start, ex.End)
		}
		for _, l := range strings.Split(strings.TrimRight(ex.Text, "\n"), "\n") {
			fmt.Fprintf(w, "    | %s\n", s(l))
		}
	}
	for _, p := range j.Problems {
		fmt.Fprintf(w, "  note: %s\n", s(p))
	}
}
