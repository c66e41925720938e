package gitx

import (
	"bytes"
	"context"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// ChangeStatus says how a path changed, with git's status letters.
type ChangeStatus string

// The statuses ChangedPaths and DirtyPaths report. Renames and copies are
// never reported as such: both sides of a rename appear, as a deletion and
// an addition.
const (
	Added       ChangeStatus = "A"
	Deleted     ChangeStatus = "D"
	Modified    ChangeStatus = "M" // content or mode (such as the executable bit)
	TypeChanged ChangeStatus = "T" // file, symlink and submodule swapped
	Unmerged    ChangeStatus = "U" // a conflict in the working tree
)

// String names the status for people: "added", "deleted", ...
func (s ChangeStatus) String() string {
	switch s {
	case Added:
		return "added"
	case Deleted:
		return "deleted"
	case Modified:
		return "modified"
	case TypeChanged:
		return "type changed"
	case Unmerged:
		return "unmerged"
	}
	return "changed (" + string(s) + ")"
}

// Change is one changed path, relative to the top of the repository, with
// slashes, exactly as git stores it (any bytes but NUL).
type Change struct {
	Status ChangeStatus
	Path   string
}

// ChangedPaths lists every path that differs between the trees of commits
// base and head: additions, deletions, content, mode and type changes, and
// submodule updates, with no limit on their number. Renames are not
// detected, so a moved file is a deletion and an addition. The list is in
// git's path order. An unknown base or head is a KindNotFound error.
func ChangedPaths(ctx context.Context, dir, base, head string) ([]Change, error) {
	// Each option pins a setting a user's config could otherwise change:
	// rename detection, paths relative to a subdirectory, colour codes,
	// ignored submodules.
	out, err := run(ctx, dir, "diff", "-z", "--name-status", "--no-renames", "--no-relative",
		"--no-color", "--no-ext-diff", "--ignore-submodules=none",
		"--end-of-options", base+"^{commit}", head+"^{commit}", "--")
	if err != nil {
		if exitCode(err) == 128 && strings.Contains(stderrOf(err), "bad revision") {
			return nil, &core.Error{Kind: core.KindNotFound, Op: "git diff", Msg: stderrOf(err), Err: err}
		}
		return nil, err
	}
	return parseNameStatus(out)
}

// parseNameStatus reads `git diff -z --name-status --no-renames` output:
// a status, NUL, a path, NUL, and so on.
func parseNameStatus(out []byte) ([]Change, error) {
	var changes []Change
	for len(out) > 0 {
		status, rest, ok := bytes.Cut(out, []byte{0})
		if !ok {
			return nil, core.E(core.KindInternal, "git diff", "truncated output %.100q", out)
		}
		path, rest, ok := bytes.Cut(rest, []byte{0})
		if !ok || len(status) == 0 {
			return nil, core.E(core.KindInternal, "git diff", "truncated output %.100q", out)
		}
		// Only the letter matters; a score could follow it for other formats.
		changes = append(changes, Change{Status: ChangeStatus(status[:1]), Path: string(path)})
		out = rest
	}
	return changes, nil
}

// DirtyPaths lists the paths where the working tree that contains dir
// differs from HEAD (or from nothing, before the first commit): tracked
// files modified or deleted, staged or not, and untracked files that are
// not ignored, each one file (untracked directories are listed file by
// file). Delta CI's state directory (StateDir) is left out, and so are
// submodules and nested repositories, which snapshots do not copy either.
// The paths are relative to the top of the working tree.
//
// The status is what happened relative to HEAD as far as git's index
// tells: a file that was changed and then changed back may be listed; the
// caller reads the working tree for the final word.
func DirtyPaths(ctx context.Context, dir string) ([]Change, error) {
	top, err := TopLevel(ctx, dir)
	if err != nil {
		return nil, err
	}
	w, err := readStatus(ctx, top)
	if err != nil {
		return nil, err
	}
	return w.Changes, nil
}
