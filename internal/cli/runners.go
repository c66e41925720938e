package cli

import (
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
		Long: `List the runners registered with a server, with when each last got a session,
or remove one: its credential and tokens stop working. A runner process that
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
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLABELS\tLAST SEEN")
	for _, r := range runners {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, strings.Join(r.Labels, ","), r.LastSeenAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// removeRunners removes each runner, and stops at the first it cannot.
func removeRunners(ctx context.Context, c *protocol.Client, ids []string, w io.Writer) error {
	for _, id := range ids {
		if err := c.RemoveRunner(ctx, id); err != nil {
			return fmt.Errorf("remove runner %s: %w", id, err)
		}
		fmt.Fprintf(w, "removed %s\n", id)
	}
	return nil
}
