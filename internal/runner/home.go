package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/deltaci/deltaci/internal/workspace"
)

// The job's home.
//
// An attempt's job gets a home directory of its own (executor.Spec.Home):
// its HOME, and XDG_CACHE_HOME=HOME/.cache, where tools keep their caches
// (Go's build and module caches, ~/.npm, ~/.cache/pip). It is made empty in
// the attempt's work area, beside the workspace and never inside it, so that
// what tools leave there is not taken for the job's outputs and a hermetic
// workspace holds only its inputs. No two attempts share one, and none is
// the runner user's home.
//
// Its life, in attempt.run (Remote) and Local.execute:
//
//  1. newHome, once the workspace exists;
//  2. the job runs with it (caches are restored into it before, and saved
//     from it after the job: it is still there until the attempt is
//     reported);
//  3. removeHome, when the attempt is done with it, with the workspace.
//
// A runner killed in between leaves it in its work area, where the next
// start removes it with the stale workspaces.

// homeName is the home's name inside an attempt's work area, beside the
// workspace's own directories.
const homeName = "home"

// newHome makes the empty home of the attempt whose work area is root.
func newHome(root string) (string, error) {
	dir := filepath.Join(root, homeName)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("cannot make the job's home: %w", err)
	}
	return dir, nil
}

// removeHome removes a home and all the job left in it, read-only
// directories included (Go's module cache makes its files and directories
// read-only).
func removeHome(ctx context.Context, log *slog.Logger, dir string) {
	if err := workspace.RemoveAll(ctx, dir); err != nil {
		log.WarnContext(ctx, "removing the job's home", slog.String("dir", dir), slog.Any("err", err))
	}
}
