// Package cli holds the cobra commands of deltaci. Commands are thin: they
// parse flags, build dependencies and call the packages that do the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/core"
)

// Exit codes of deltaci.
const (
	ExitOK       = 0
	ExitFailed   = 1   // a job failed
	ExitUsage    = 2   // bad flags or configuration
	ExitCanceled = 130 // interrupted (SIGINT)
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// env is the process environment, injected so tests control it.
type env struct {
	vars   []string
	stdout io.Writer
	stderr io.Writer
}

func (e env) get(key string) string {
	prefix := key + "="
	for i := len(e.vars) - 1; i >= 0; i-- {
		if strings.HasPrefix(e.vars[i], prefix) {
			return e.vars[i][len(prefix):]
		}
	}
	return ""
}

// Run executes deltaci with args (without the program name) and returns the
// process exit code. ctx is canceled on SIGINT/SIGTERM by main.
func Run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	e := env{vars: environ, stdout: stdout, stderr: stderr}
	return execute(ctx, newRoot(e), args, stdout, stderr)
}

// execute runs a command tree and maps its error to an exit code.
func execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, root.Name()+":", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, root.Name()+":", err)
	switch core.KindOf(err) {
	case core.KindInvalid:
		return ExitUsage
	case core.KindCanceled:
		return ExitCanceled
	}
	// Cobra reports unknown commands and stray arguments as plain errors.
	if strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitFailed
}

func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "deltaci",
		Short: "Delta CI runs only what a change affects",
		Long: `Delta CI is a self-hosted CI system for monorepos. It plans a pipeline from
.deltaci.yml, runs the jobs a change affects and reuses recorded results.

Run "deltaci run" inside a git repository to run its pipeline locally.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(e), newPlanCmd(e), newServerCmd(e), newRunnerCmd(e), newRunnersCmd(e), newProjectsCmd(e), newTriggerCmd(e), newLogsCmd(e), newWhyCmd(e), newRunsCmd(e), newCancelCmd(e), newRerunCmd(e),
		newMigrateCmd(e), newHealthCmd(e), newVersionCmd(e, "deltaci"), newArtifactsCmd(e, "artifacts", false))
	return root
}

// newLogger returns the human-readable logger for interactive commands.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// checkArgs makes a wrong number of arguments a usage error (exit 2).
func checkArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := v(c, args); err != nil {
			return usage(fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath()))
		}
		return nil
	}
}
