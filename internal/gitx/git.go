// Package gitx wraps the git command line: repository discovery, HEAD, and
// the snapshot of a working tree that `deltaci run` executes jobs in. It runs
// the git binary (never a Go reimplementation) so that behaviour matches the
// user's git exactly, config and all.
package gitx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// locationVars redirect git away from the directory we pass. They are set
// inside git hooks, so a `deltaci run` started from a hook would otherwise
// look at the wrong repository.
var locationVars = []string{
	"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR",
	"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX",
}

// gitEnv is the user's environment (their config stays in force) with
// output made parseable and side effects switched off.
func gitEnv() []string {
	env := make([]string, 0, len(os.Environ())+3)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !isLocationVar(k) {
			env = append(env, kv)
		}
	}
	return append(env,
		"LC_ALL=C",              // messages we match on are in English
		"GIT_OPTIONAL_LOCKS=0",  // git status must not rewrite the user's index
		"GIT_TERMINAL_PROMPT=0", // never wait on a prompt nobody sees
	)
}

func isLocationVar(k string) bool {
	for _, v := range locationVars {
		if k == v {
			return true
		}
	}
	return false
}

// run runs git in dir and returns its stdout. When git fails, the error is a
// *core.Error whose Msg is git's stderr and whose Err is the *exec.ExitError.
func run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return runEnv(ctx, dir, nil, args...)
}

// runEnv is run with extra environment variables.
func runEnv(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	return runInput(ctx, dir, env, nil, args...)
}

// runInput is runEnv with stdin (nil for none).
func runInput(ctx context.Context, dir string, env []string, stdin io.Reader, args ...string) ([]byte, error) {
	op := "git"
	if len(args) > 0 {
		op += " " + args[0]
	}
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "core.quotepath=off"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), env...)
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second // a stray child holding stdout cannot block us
	// A fetch's helpers (git-remote-https, ssh) end with git when ctx does.
	killGroupOnCancel(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}

	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, core.Wrap(core.KindCanceled, op, ctx.Err())
	case errors.Is(err, exec.ErrNotFound):
		return nil, &core.Error{Kind: core.KindUnavailable, Op: op, Msg: "git is not installed or not in PATH", Err: err}
	case errors.Is(err, fs.ErrNotExist): // the chdir into dir failed
		return nil, core.E(core.KindInvalid, op, "no such directory: %s", dir)
	case !errors.As(err, &exitErr):
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	return nil, &core.Error{Kind: core.KindInternal, Op: op, Msg: strings.TrimSpace(stderr.String()), Err: err}
}

// exitCode is git's exit status in an error from run, or -1 when git did not
// run to an exit.
func exitCode(err error) int {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	}
	return -1
}

// stderrOf is git's stderr in an error from run.
func stderrOf(err error) string {
	var e *core.Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return ""
}
