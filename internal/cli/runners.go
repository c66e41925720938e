package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/protocol"
)

type runnersOptions struct {
	server, apiToken string
	json             bool
}

func newRunnersCmd(e env) *cobra.Command {
	var o runnersOptions
	cmd := &cobra.Command{
		Use:   "runners",
		Short: "List and remove the runners registered with a Delta CI server",
		Long: `List the runners registered with a server: for each, its state (idle, busy
with the attempts it holds, or offline), when the server last heard from it
(a session, a lease request, a heartbeat or a log upload, to within 10
seconds) and the jobs it runs now. A runner is offline after 70 seconds of
silence (with the server's default lease settings).

Or remove one: its credential and tokens stop working. A runner process that
still runs and holds the registration token registers again at once; stop it
first, or change the server's registration token.`,
		Example: `  deltaci runners ls --server http://127.0.0.1:8080
  deltaci runners rm --server http://127.0.0.1:8080 01a20a28-5a1c-7d43-9b0e-2f6c1e7a9b10`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.server, "server", "", "URL of the Delta CI server (env DELTACI_SERVER)")
	pf.StringVar(&o.apiToken, "api-token", "", "the server's API token, if it has one (env DELTACI_API_TOKEN)")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the registered runners, oldest first",
		Args:  checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			runners, err := c.Runners(cmd.Context())
			if err != nil {
				return err
			}
			return printRunners(cmd.OutOrStdout(), runners, o.json)
		},
	}
	ls.Flags().BoolVar(&o.json, "json", false, "print JSON for scripts")
	rm := &cobra.Command{
		Use:   "rm RUNNER_ID...",
		Short: "Remove runners: their credentials and tokens stop working",
		Args:  checkArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, ids []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			return removeRunners(cmd.Context(), c, ids, cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(ls, rm)
	return cmd
}

func (o *runnersOptions) client(e env) (*protocol.Client, error) {
	fromEnv(e, &o.server, "DELTACI_SERVER", &o.apiToken, "DELTACI_API_TOKEN")
	if o.server == "" {
		return nil, usage(fmt.Errorf("--server is required (or DELTACI_SERVER)"))
	}
	return apiClient(o.server, o.apiToken), nil
}

// apiClient is a client of a server's API, sending its API token when
// one is given.
func apiClient(server, apiToken string) *protocol.Client {
	c := &protocol.Client{BaseURL: strings.TrimRight(server, "/")}
	if apiToken != "" {
		c.Token = func(context.Context) (string, error) { return apiToken, nil }
	}
	return c
}

func printRunners(w io.Writer, runners []protocol.RunnerInfo, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(protocol.RunnerList{Runners: runners})
	}
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLABELS\tSTATE\tLAST SEEN\tRUNNING")
	for _, r := range runners {
		state := r.State
		if state == protocol.RunnerBusy {
			state = fmt.Sprintf("busy (%d)", len(r.Attempts))
		}
		running := make([]string, 0, len(r.Attempts))
		for _, a := range r.Attempts {
			running = append(running, a.RunID+"/"+a.Job)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, strings.Join(r.Labels, ","), state,
			ago(now.Sub(r.LastSeenAt)), cmp.Or(strings.Join(running, " "), "-"))
	}
	return tw.Flush()
}

// ago says how long ago something was, in its largest whole unit.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// removeRunners removes each runner, and stops at the first it cannot.
func removeRunners(ctx context.Context, c *protocol.Client, ids []string, w io.Writer) error {
	for _, id := range ids {
		// The error names the runner already (DELETE /runners/ID).
		if err := c.RemoveRunner(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(w, "removed %s\n", id)
	}
	return nil
}
