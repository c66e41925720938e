package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/termsafe"
)

// projectFlags are the settings of a project as flags; set remembers
// which were given, so that `projects set` changes only those.
type projectFlags struct {
	repo, defaultBranch        string
	protected, secrets, labels []string
	untrustedNetwork, public   bool
	forge                      protocol.ProjectForge
}

// forgeFlags are the flags of the project's forge settings.
var forgeFlags = []string{"forge", "forge-repo", "forge-api", "forge-token-secret", "keep-superseded"}

func (p *projectFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.repo, "repo", "", "clone URL the server fetches (https, ssh, git, file) or an absolute path on the server's machine; a local directory is made absolute")
	f.StringVar(&p.defaultBranch, "default-branch", "main", "the branch runs are for when none is named")
	f.StringSliceVar(&p.protected, "protected", nil, "globs of branches whose pushes are trusted: they get secrets and write shared results (default: the default branch)")
	f.StringSliceVar(&p.secrets, "secrets", nil, "secret names trusted runs of this project may receive")
	f.BoolVar(&p.untrustedNetwork, "untrusted-network", false, "give jobs of untrusted runs (unprotected branches) network when they ask for it")
	f.StringSliceVar(&p.labels, "labels", nil, "runs-on labels this project's jobs may ask for (default: any)")
	f.BoolVar(&p.public, "public", false, "let anyone read this project's runs in the web UI, signed in or not")
	f.StringVar(&p.forge.Kind, "forge", "", "the forge that hosts the repository: github, gitlab, gitea or forgejo (none to remove it); its webhooks start runs and statuses go back to it")
	f.StringVar(&p.forge.Repo, "forge-repo", "", "the repository on the forge: owner/name (GitLab: the project's path with its namespace)")
	f.StringVar(&p.forge.APIURL, "forge-api", "", "the forge API's root: https://host/api/v4 for GitLab, https://host/api/v1 for Gitea and Forgejo (default for github: https://api.github.com)")
	f.StringVar(&p.forge.TokenSecret, "forge-token-secret", "", "name of the server's secret that holds the forge token commit statuses are posted with (none: no statuses)")
	f.BoolVar(&p.forge.KeepSuperseded, "keep-superseded", false, "keep a pull request's unfinished run going when a new push to it starts another (default: cancel it)")
}

// forgeOf is the forge the flags ask for, over the project's current one
// (nil when it has none); nil when no forge flag was given.
func (p *projectFlags) forgeOf(cmd *cobra.Command, current *protocol.ProjectForge) (*protocol.ProjectForge, error) {
	f := cmd.Flags()
	changed := false
	for _, n := range forgeFlags {
		changed = changed || f.Changed(n)
	}
	if !changed {
		return nil, nil
	}
	if p.forge.Kind == "none" {
		return &protocol.ProjectForge{}, nil
	}
	out := protocol.ProjectForge{}
	if current != nil {
		out = *current
	}
	if f.Changed("forge") && out.Kind != p.forge.Kind {
		// Another forge: its API is not the old one's.
		out.Kind, out.APIURL = p.forge.Kind, ""
	}
	if f.Changed("forge-repo") {
		out.Repo = p.forge.Repo
	}
	if f.Changed("forge-api") {
		out.APIURL = p.forge.APIURL
	}
	if f.Changed("forge-token-secret") {
		out.TokenSecret = p.forge.TokenSecret
	}
	if f.Changed("keep-superseded") {
		out.KeepSuperseded = p.forge.KeepSuperseded
	}
	if out.Kind == "" {
		return nil, usage(fmt.Errorf("--forge is required with the other forge flags"))
	}
	return &out, nil
}

type projectsOptions struct {
	runnersOptions // the server and API token flags, as for runners
}

func newProjectsCmd(e env) *cobra.Command {
	var o projectsOptions
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "Register and configure the projects a Delta CI server runs",
		Long: `A project is a repository the server is told about, and the unit of trust: a
run is trusted only when it is a push (or an admin's manual run) of one of the
project's protected branches, at a commit on that branch as the server fetched
it. Trusted runs get the project's secrets and write its shared results;
every other run gets no secrets, reads the shared results and writes only its
own. The server makes runs only for registered projects.`,
		Example: `  deltaci projects add web --repo https://git.example.com/org/web.git --protected main,release/*
  deltaci projects set web --secrets CODECOV_TOKEN --untrusted-network=false
  deltaci projects ls`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.server, "server", "", "URL of the Delta CI server (env DELTACI_SERVER)")
	pf.StringVar(&o.apiToken, "api-token", "", "an admin API token of the server (env DELTACI_API_TOKEN)")

	var add projectFlags
	addCmd := &cobra.Command{
		Use:   "add NAME --repo URL",
		Short: "Register a project",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			if add.repo == "" {
				return usage(fmt.Errorf("--repo is required"))
			}
			protected := add.protected
			if !cmd.Flags().Changed("protected") {
				protected = []string{add.defaultBranch}
			}
			fg, err := add.forgeOf(cmd, nil)
			if err != nil {
				return err
			}
			if fg != nil && fg.Kind == "" {
				fg = nil
			}
			p, err := c.AddProject(cmd.Context(), protocol.Project{
				Name: args[0], RepoURL: repoArg(add.repo), DefaultBranch: add.defaultBranch,
				ProtectedBranches: orNone(protected), Secrets: orNone(add.secrets),
				UntrustedNetwork: add.untrustedNetwork, Labels: orNone(add.labels), Public: add.public, Forge: fg,
			})
			if err != nil {
				return err
			}
			if err := printProject(cmd.OutOrStdout(), p, false); err != nil {
				return err
			}
			if p.Forge != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "\nset up its webhook on %s with: deltaci projects hooks %s\n", p.Forge.Kind, p.Name)
			}
			return nil
		},
	}
	add.register(addCmd)

	var set projectFlags
	setCmd := &cobra.Command{
		Use:   "set NAME [flags]",
		Short: "Change the settings given as flags; the others stay",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			var patch protocol.ProjectPatch
			changed := false
			if f.Changed("repo") {
				r := repoArg(set.repo)
				patch.RepoURL, changed = &r, true
			}
			if f.Changed("default-branch") {
				patch.DefaultBranch, changed = &set.defaultBranch, true
			}
			for _, l := range []struct {
				flag string
				v    []string
				to   **[]string
			}{{"protected", set.protected, &patch.ProtectedBranches}, {"secrets", set.secrets, &patch.Secrets}, {"labels", set.labels, &patch.Labels}} {
				if f.Changed(l.flag) {
					v := orNone(l.v)
					*l.to, changed = &v, true
				}
			}
			if f.Changed("untrusted-network") {
				patch.UntrustedNetwork, changed = &set.untrustedNetwork, true
			}
			if f.Changed("public") {
				patch.Public, changed = &set.public, true
			}
			var current *protocol.ProjectForge
			if set.forge.Kind != "none" && slices.ContainsFunc(forgeFlags, f.Changed) {
				cur, err := c.Project(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				current = cur.Forge
			}
			fg, err := set.forgeOf(cmd, current)
			if err != nil {
				return err
			}
			if fg != nil {
				patch.Forge, changed = fg, true
			}
			if !changed {
				return usage(fmt.Errorf("nothing to change: give at least one setting as a flag"))
			}
			p, err := c.UpdateProject(cmd.Context(), args[0], patch)
			if err != nil {
				return err
			}
			return printProject(cmd.OutOrStdout(), p, false)
		},
	}
	set.register(setCmd)

	var asJSON bool
	lsCmd := &cobra.Command{
		Use:   "ls",
		Short: "List the projects by name",
		Args:  checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			ps, err := c.Projects(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeIndented(w, protocol.ProjectList{Projects: ps})
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREPOSITORY\tPROTECTED\tSECRETS")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.RepoURL, strings.Join(p.ProtectedBranches, ","), strings.Join(p.Secrets, ","))
			}
			return tw.Flush()
		},
	}
	lsCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")

	var showJSON bool
	showCmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a project's settings",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			p, err := c.Project(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printProject(cmd.OutOrStdout(), p, showJSON)
		},
	}
	showCmd.Flags().BoolVar(&showJSON, "json", false, "print JSON for scripts")

	rmCmd := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Forget projects: no new runs; their runs and results stay",
		Args:  checkArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			for _, n := range names {
				if err := c.RemoveProject(cmd.Context(), n); err != nil {
					return fmt.Errorf("remove project %s: %w", n, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", n)
			}
			return nil
		},
	}
	var rotate, hooksJSON bool
	hooksCmd := &cobra.Command{
		Use:   "hooks NAME",
		Short: "Show the webhook to set up on the project's forge, and its latest deliveries",
		Long: `Prints the payload URL, content type, secret and events to enter in the forge's
webhook settings for the project (admins only), then the latest deliveries
the server received: whether each made a run, or why not. --rotate makes a
new secret first: deliveries signed with the old one are refused from then on.
The URL uses the server's --external-url, or else the address this command
reached it at.`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			var h protocol.ProjectHooks
			if rotate {
				h, err = c.RotateHookSecret(cmd.Context(), args[0])
			} else {
				h, err = c.ProjectHooks(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return printHooks(cmd.OutOrStdout(), h, hooksJSON)
		},
	}
	hooksCmd.Flags().BoolVar(&rotate, "rotate", false, "make a new webhook secret first")
	hooksCmd.Flags().BoolVar(&hooksJSON, "json", false, "print JSON for scripts")
	cmd.AddCommand(addCmd, setCmd, lsCmd, showCmd, rmCmd, hooksCmd, newProjectRolesCmd(e, &o))
	return cmd
}

func printHooks(w io.Writer, h protocol.ProjectHooks, asJSON bool) error {
	if asJSON {
		return writeIndented(w, h)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "forge\t%s\n", h.Forge)
	fmt.Fprintf(tw, "payload URL\t%s\n", h.URL)
	fmt.Fprintf(tw, "content type\t%s\n", h.ContentType)
	fmt.Fprintf(tw, "secret\t%s\n", h.Secret)
	fmt.Fprintf(tw, "events\t%s\n", strings.Join(h.Events, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(h.Deliveries) == 0 {
		_, err := fmt.Fprintln(w, "\nno deliveries received yet")
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tDELIVERY\tEVENT\tSTATE\tRUN\tMESSAGE")
	for _, d := range h.Deliveries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ReceivedAt.Local().Format(time.DateTime), d.Delivery, d.Event, d.State,
			orDash(d.RunID), termsafe.String(firstLine(d.Message)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// repoArg makes a local directory absolute, as the server needs it; URLs
// pass as they are.
func repoArg(repo string) string {
	if !strings.Contains(repo, "://") && !strings.Contains(repo, "@") {
		if fi, err := os.Stat(repo); err == nil && fi.IsDir() {
			if abs, err := filepath.Abs(repo); err == nil {
				return abs
			}
		}
	}
	return repo
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printProject(w io.Writer, p protocol.Project, asJSON bool) error {
	if asJSON {
		return writeIndented(w, p)
	}
	none := func(s []string, empty string) string {
		if len(s) == 0 {
			return empty
		}
		return strings.Join(s, ", ")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name\t%s\n", p.Name)
	fmt.Fprintf(tw, "repository\t%s\n", p.RepoURL)
	fmt.Fprintf(tw, "default branch\t%s\n", p.DefaultBranch)
	fmt.Fprintf(tw, "protected branches\t%s\n", none(p.ProtectedBranches, "none: no run is trusted"))
	fmt.Fprintf(tw, "secrets\t%s\n", none(p.Secrets, "none"))
	fmt.Fprintf(tw, "untrusted network\t%t\n", p.UntrustedNetwork)
	fmt.Fprintf(tw, "labels\t%s\n", none(p.Labels, "any"))
	fmt.Fprintf(tw, "public\t%s\n", map[bool]string{true: "yes: anyone reads its runs in the web UI", false: "no"}[p.Public])
	if f := p.Forge; f != nil {
		api := f.APIURL
		if api == "" {
			api = "default"
		}
		tok := f.TokenSecret
		if tok == "" {
			tok = "none: no commit statuses"
		}
		fmt.Fprintf(tw, "forge\t%s %s (API %s)\n", f.Kind, f.Repo, api)
		fmt.Fprintf(tw, "forge token secret\t%s\n", tok)
		fmt.Fprintf(tw, "superseded PR runs\t%s\n", map[bool]string{true: "kept", false: "canceled"}[f.KeepSuperseded])
	}
	fmt.Fprintf(tw, "updated\t%s\n", p.UpdatedAt.Local().Format(time.DateTime))
	return tw.Flush()
}
