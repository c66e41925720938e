package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/termsafe"
	"github.com/spf13/cobra"
)

// newHealthCmd checks a server's health endpoint from inside its own
// container: the server image has no shell and no HTTP client, so
// Compose's and other container healthchecks run this.
func newHealthCmd(e env) *cobra.Command {
	var target string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if a server (or artifact store) answers its health check with 200",
		Long: `Ask a server's /readyz (or the URL given) and exit 0 if it answers 200 OK,
1 otherwise, printing why. Meant for container healthchecks, where the server
image has no other HTTP client.`,
		Example: `  deltaci health                                   # http://127.0.0.1:8080/readyz
  deltaci health --url http://127.0.0.1:8080/healthz`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usage(fmt.Errorf("--url %q: give an http or https URL such as http://127.0.0.1:8080/readyz", target))
			}
			if timeout <= 0 {
				return usage(fmt.Errorf("--timeout %s: give a positive duration", timeout))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				return usage(fmt.Errorf("--url %q: %w", target, err))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return &exitError{code: ExitFailed, err: fmt.Errorf("%s: %w", target, err)}
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: ExitFailed, err: fmt.Errorf("%s answered %s: %s", target, termsafe.String(resp.Status), termsafe.String(strings.TrimSpace(string(body))))}
			}
			fmt.Fprintf(e.stdout, "%s: %s\n", target, termsafe.String(strings.TrimSpace(string(body))))
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "http://127.0.0.1:8080/readyz", "URL to ask")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}
