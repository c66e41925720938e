package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/termsafe"
)

// DigestSalt is mixed into every job digest (planner.DefaultSalt).
const DigestSalt = planner.DefaultSalt

type planOptions struct {
	base     string
	head     string
	noReuse  bool
	strict   bool   // warnings are errors
	executor string // part of every digest: shell and sandbox results differ
}

func newPlanCmd(e env) *cobra.Command {
	var o planOptions
	var repo, database string
	var explain, asJSON, check bool
	cmd := &cobra.Command{
		Use:   "plan [--check-inputs [JOB...]]",
		Short: "Show what a run would do with each job, and why, without running anything",
		Long: `Plan chooses the base of the change (the merge-base with the default branch or
its upstream, or --base), lists what changed (uncommitted changes included),
computes every job's input digest and decides for each job: run, reuse (a
recorded success with the same digest) or skip (branch or event filters).`,
		Example: `  deltaci plan
  deltaci plan --explain
  deltaci plan --base origin/main --json
  deltaci plan --head v1.2.0 --base v1.1.0
  deltaci plan --check-inputs test lint`,
		Args: checkArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !check {
				return fmt.Errorf("plan takes job names only with --check-inputs, got %q", args)
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			top, err := gitx.TopLevel(ctx, repo)
			if err != nil {
				return usage(err)
			}
			if check {
				switch {
				case o.head != "":
					return usage(fmt.Errorf("--check-inputs runs the jobs on the working tree: leave out --head"))
				case explain:
					return usage(fmt.Errorf("--check-inputs and --explain do not go together: plan --explain first"))
				}
				return checkInputs(ctx, e, top, o, args, asJSON)
			}
			if database == "" {
				database = e.get("DELTACI_DATABASE")
			}
			var res *results.Store // nil: nothing recorded yet
			if database == "" {
				database = filepath.Join(top, gitx.StateDir, "state.db")
				if _, err := os.Stat(database); errors.Is(err, fs.ErrNotExist) {
					// A repository deltaci run never ran in has no results:
					// plan without creating the state a run would.
					database = ""
				}
			}
			if database != "" {
				arts, err := open.Open(ctx, open.Config{Database: database, Store: filepath.Join(top, gitx.StateDir, "store")})
				if err != nil {
					return err
				}
				defer arts.Close()
				res = localResults(arts)
			}
			pl, err := func() (*planner.Plan, error) {
				if o.head != "" {
					if ok, err := gitx.CommitExists(ctx, top, o.head); err != nil || !ok {
						return nil, usage(fmt.Errorf("--head %s: no such commit in %s", o.head, top))
					}
				}
				p, err := pipelineAt(ctx, top, o.head)
				if err != nil {
					return nil, usage(err)
				}
				var wt *gitx.WorkTree // the working tree, read once, unless --head
				if o.head == "" {
					if wt, err = gitx.ReadWorkTree(ctx, top); err != nil {
						return nil, err
					}
				}
				return makePlan(ctx, top, wt, p, o, res)
			}()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, pl)
			}
			for _, w := range pl.Warnings {
				fmt.Fprintf(e.stderr, "warning: %s\n", termsafe.String(w.String()))
			}
			printPlan(e, pl, explain)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&repo, "repo", ".", "directory inside the git repository")
	f.StringVar(&o.base, "base", "", "compare with this revision instead of the merge-base with the default branch")
	f.StringVar(&o.head, "head", "", "plan this revision instead of the working tree")
	f.BoolVar(&o.noReuse, "no-reuse", false, "plan as if no result were recorded")
	f.BoolVar(&o.strict, "strict", false, "make warnings (an input glob that matches no file) errors, as strict: true in .deltaci.yml does")
	f.StringVar(&o.executor, "executor", planner.ExecutorShell, "the executor the run would use (shell or sandbox); it is part of every digest")
	f.StringVar(&database, "database", "", "SQLite file path or postgres:// URL (env DELTACI_DATABASE)")
	f.BoolVar(&explain, "explain", false, "list every reason, with the changed files and the globs they matched")
	f.BoolVar(&asJSON, "json", false, "print the plan as JSON (schema in docs/planner.md)")
	f.BoolVar(&check, "check-inputs", false, "run the named jobs (all by default) without hermetic, then hermetic, and report those that fail only hermetic, with the files they miss")
	return cmd
}

// localResults is where deltaci run records and finds results: a
// namespace private to this machine's store.
func localResults(arts *open.Store) *results.Store {
	return &results.Store{Reg: arts.Registry, Write: results.Local, Read: []string{results.Local}, Actor: "deltaci run"}
}

// pipelineAt loads .deltaci.yml from the working tree, or from a revision.
func pipelineAt(ctx context.Context, top, rev string) (*core.Pipeline, error) {
	if rev == "" {
		p, err := pipeline.Load(filepath.Join(top, ConfigFile))
		if core.KindOf(err) == core.KindNotFound {
			return nil, fmt.Errorf("no %s at %s: create one (see docs/configuration.md)", ConfigFile, top)
		}
		return p, err
	}
	b, err := gitx.FileAt(ctx, top, rev, ConfigFile, pipeline.MaxFileSize)
	if err != nil {
		return nil, err
	}
	return pipeline.Parse(rev+":"+ConfigFile, b)
}

// makePlan plans the working tree as wt read it (or o.head, with wt nil)
// against its base; the pipeline at the base lets explanations say which
// definitions changed.
func makePlan(ctx context.Context, top string, wt *gitx.WorkTree, p *core.Pipeline, o planOptions, res *results.Store) (*planner.Plan, error) {
	var branch string
	if wt != nil {
		branch = wt.Branch
	} else {
		var err error
		if branch, err = gitx.CurrentBranch(ctx, top); err != nil {
			return nil, err
		}
	}
	for flag, rev := range map[string]string{"--base": o.base, "--head": o.head} {
		if rev == "" {
			continue
		}
		if ok, err := gitx.CommitExists(ctx, top, rev); err != nil {
			return nil, err
		} else if !ok {
			return nil, core.E(core.KindInvalid, "plan", "%s %s: no such commit in %s", flag, rev, top)
		}
	}
	trig := planner.Trigger{Kind: planner.TriggerLocal, Branch: branch, Base: o.base}
	if o.head != "" {
		// Branch filters match the branch checked out here.
		trig = planner.Trigger{Kind: planner.TriggerManual, Head: o.head, Base: o.base, Branch: branch}
	}
	return planner.Make(ctx, planner.Options{
		Dir: top, Pipeline: p, Trigger: trig, Executor: cmp.Or(o.executor, planner.ExecutorShell), Salt: DigestSalt,
		Lookup: res.Lookup(ctx), NoReuse: o.noReuse, Strict: o.strict, WorkTree: wt,
		BasePipelineAt: planner.PipelineAt(top),
	})
}

func printPlan(e env, pl *planner.Plan, explain bool) {
	head := describeHead(pl.Branch, pl.Head, pl.Dirty)
	fmt.Fprintf(e.stdout, "plan of %s\nbase: %s\n", head, describeBase(pl.Base))
	fmt.Fprintf(e.stdout, "%s; %d to run, %d reused, %d skipped\n\n", plural(pl.ChangedFiles, "changed file"), pl.Summary.Run, pl.Summary.Reuse, pl.Summary.Skip)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tDECISION\tWHY")
	for _, j := range pl.Jobs {
		why := ""
		if len(j.Why) > 0 {
			why = j.Why[len(j.Why)-1].Text
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", j.Name, j.Decision, why)
	}
	tw.Flush()
	if !explain {
		return
	}
	for _, j := range pl.Jobs {
		fmt.Fprintf(e.stdout, "\n%s: %s (digest %s)\n", j.Name, j.Decision, j.Digest)
		for _, r := range j.Why {
			fmt.Fprintf(e.stdout, "  - %s\n", r.Text)
			for _, f := range r.Files {
				glob := f.Glob
				if glob == "" {
					glob = "(no inputs: the whole tree)"
				}
				fmt.Fprintf(e.stdout, "      %-12s %s  matched %s\n", f.Status, f.Chain(), glob)
			}
			if r.MoreFiles > 0 {
				fmt.Fprintf(e.stdout, "      … and %d more files\n", r.MoreFiles)
			}
		}
		printInferred(e, j)
		printLinks(e, j)
		printCache(e, j)
	}
}

// printCache shows a job's cache key and what it falls back to.
func printCache(e env, j planner.Job) {
	c := j.Cache
	if c == nil {
		return
	}
	fmt.Fprintf(e.stdout, "  cache key %s (%s of the key; paths %s)\n", c.Key, plural(c.Files, "file"), strings.Join(c.Paths, ", "))
	if len(c.RestoreKeys) > 0 {
		fmt.Fprintf(e.stdout, "      else the newest entry whose key starts with %s\n", strings.Join(c.RestoreKeys, ", then "))
	}
}

// printInferred shows what each inferred inputs entry of a job expanded to.
func printInferred(e env, j planner.Job) {
	for _, x := range j.Inferred {
		fmt.Fprintf(e.stdout, "  inputs %s expands to:\n", x.Input)
		kind := "package"
		if strings.HasPrefix(x.Input, "{go:") {
			kind = "module"
		}
		for _, u := range x.Units {
			fmt.Fprintf(e.stdout, "      %s %s in %s\n", kind, u.Name, slashDir(u.Dir))
		}
		for _, d := range x.Exclude {
			fmt.Fprintf(e.stdout, "      not %s (another %s)\n", slashDir(d), kind)
		}
		for _, f := range x.Files {
			fmt.Fprintf(e.stdout, "      file %s\n", f)
		}
		for _, l := range x.Locks {
			if l.Whole != "" {
				fmt.Fprintf(e.stdout, "      %s: the whole file (%s)\n", l.Path, l.Whole)
			} else {
				fmt.Fprintf(e.stdout, "      %s: the entries of these packages (%s)\n", l.Path, l.Digest)
			}
		}
	}
}

// slashDir shows a directory of the repository: "./" for the top.
func slashDir(d string) string {
	if d == "." {
		return "./"
	}
	return d + "/"
}

// printLinks lists the symlinks a job's digest followed.
func printLinks(e env, j planner.Job) {
	if len(j.Links) == 0 {
		return
	}
	fmt.Fprintf(e.stdout, "  symlinks among its inputs:\n")
	for _, l := range j.Links {
		chain := strings.Join(append(append([]string{l.Path}, l.Through...), l.Target), " → ")
		switch l.Kind {
		case planner.LinkDirectory:
			fmt.Fprintf(e.stdout, "      %s/  (a directory: the files under it)\n", chain)
		case planner.LinkSubmodule:
			fmt.Fprintf(e.stdout, "      %s  (a submodule: its commit)\n", chain)
		case planner.LinkOutside:
			fmt.Fprintf(e.stdout, "      %s → %s  (outside the repository: only the link counts)\n", l.Path, l.Text)
		case planner.LinkDangling:
			fmt.Fprintf(e.stdout, "      %s → %s  (nothing there: only the links count)\n", l.Path, l.Text)
		default:
			fmt.Fprintf(e.stdout, "      %s\n", chain)
		}
	}
	if j.MoreLinks > 0 {
		fmt.Fprintf(e.stdout, "      … and %d more symlinks\n", j.MoreLinks)
	}
}

func describeBase(b planner.Base) string {
	s := b.Reason
	if b.Commit != "" && !strings.Contains(s, b.Commit[:min(12, len(b.Commit))]) {
		s = b.Commit[:min(12, len(b.Commit))] + " (" + s + ")"
	}
	if b.Fallback != "" {
		s += "; " + b.Fallback
	}
	return s
}
