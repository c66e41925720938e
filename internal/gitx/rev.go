package gitx

import (
	"bytes"
	"context"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// ResolveRev returns the commit id that rev (a commit id, branch, tag or any
// git revision expression) names. When rev names no commit in the
// repository (unknown name, an object missing from a shallow clone, a tree)
// the error is KindNotFound.
func ResolveRev(ctx context.Context, dir, rev string) (string, error) {
	id, ok, err := resolveCommit(ctx, dir, rev)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", core.E(core.KindNotFound, "git rev-parse", "no commit %q in the repository", rev)
	}
	return id, nil
}

// CommitExists reports whether rev names a commit present in the
// repository. A commit that a shallow clone has not fetched does not exist.
func CommitExists(ctx context.Context, dir, rev string) (bool, error) {
	_, ok, err := resolveCommit(ctx, dir, rev)
	return ok, err
}

func resolveCommit(ctx context.Context, dir, rev string) (string, bool, error) {
	if rev == "" {
		return "", false, nil
	}
	// ^{commit} makes git read the object, so a well-formed id of a missing
	// commit does not resolve; --end-of-options keeps a rev such as
	// "--all" from being read as an option.
	out, err := run(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		// With --quiet, status 1 means "no such commit" (also when git
		// explains that the object is a tree); failures are 128.
		if exitCode(err) == 1 {
			return "", false, nil
		}
		return "", false, err
	}
	return string(trimNewline(out)), true, nil
}

// MergeBase returns the best common ancestor of commits a and b. The error
// is KindNotFound when they have none (unrelated histories, or history cut
// off by a shallow clone) or when a or b names no commit.
func MergeBase(ctx context.Context, dir, a, b string) (string, error) {
	const op = "git merge-base"
	out, err := run(ctx, dir, "merge-base", "--end-of-options", a, b)
	if err != nil {
		switch {
		case exitCode(err) == 1 && stderrOf(err) == "":
			return "", core.E(core.KindNotFound, op, "%s and %s have no common ancestor", a, b)
		case exitCode(err) == 128 && strings.Contains(stderrOf(err), "Not a valid"):
			return "", &core.Error{Kind: core.KindNotFound, Op: op, Msg: stderrOf(err), Err: err}
		}
		return "", err
	}
	return string(trimNewline(out)), nil
}

// IsAncestor reports whether commit a is an ancestor of commit b (a commit
// is its own ancestor). In a shallow clone the answer is false when the
// path from b to a crosses the shallow boundary. The error is KindNotFound
// when a or b names no commit.
func IsAncestor(ctx context.Context, dir, a, b string) (bool, error) {
	const op = "git merge-base --is-ancestor"
	_, err := run(ctx, dir, "merge-base", "--is-ancestor", "--end-of-options", a, b)
	switch {
	case err == nil:
		return true, nil
	case exitCode(err) == 1 && stderrOf(err) == "":
		return false, nil
	case exitCode(err) == 128 && strings.Contains(stderrOf(err), "Not a valid"):
		return false, &core.Error{Kind: core.KindNotFound, Op: op, Msg: stderrOf(err), Err: err}
	}
	return false, err
}

// DefaultBranch returns the full ref name of the repository's default
// branch: what refs/remotes/origin/HEAD points to when it is set and
// resolves, else the first of refs/heads/main, refs/heads/master,
// refs/remotes/origin/main and refs/remotes/origin/master that exists. The
// error is KindNotFound when there is none.
func DefaultBranch(ctx context.Context, dir string) (string, error) {
	ref, _, err := DefaultBranchTip(ctx, dir)
	return ref, err
}

// DefaultBranchTip is DefaultBranch with the commit id its ref names, found
// with one git process.
func DefaultBranchTip(ctx context.Context, dir string) (ref, commit string, err error) {
	const originHEAD = "refs/remotes/origin/HEAD"
	candidates := []string{"refs/heads/main", "refs/heads/master", "refs/remotes/origin/main", "refs/remotes/origin/master"}
	// for-each-ref shows a symbolic ref with its target and the object the
	// target names (leaving out one whose target is gone), and %(*objecttype)
	// is the type an annotated tag peels to.
	out, err := run(ctx, dir, append([]string{"for-each-ref",
		"--format=%(refname)%00%(symref)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)", originHEAD},
		candidates...)...)
	if err != nil {
		return "", "", err
	}
	type found struct{ symref, commit string }
	refs := map[string]found{}
	for _, line := range bytes.Split(out, []byte("\n")) {
		f := strings.Split(string(line), "\x00")
		if len(f) != 6 {
			continue // the empty line at the end
		}
		switch {
		case f[3] == "commit":
			refs[f[0]] = found{f[1], f[2]}
		case f[5] == "commit":
			refs[f[0]] = found{f[1], f[4]}
		}
	}
	// for-each-ref also lists refs below these names (refs/heads/main/x),
	// which the map ignores.
	if h, ok := refs[originHEAD]; ok && h.symref != "" {
		return h.symref, h.commit, nil
	}
	for _, c := range candidates {
		if f, ok := refs[c]; ok {
			return c, f.commit, nil
		}
	}
	return "", "", core.E(core.KindNotFound, "git default branch",
		"no default branch: origin/HEAD is not set and there is no main or master branch")
}

// Upstream returns the full ref name of the upstream of the checked-out
// branch (such as refs/remotes/origin/feature). The error is KindNotFound
// when HEAD is detached, the branch has no upstream, or the upstream ref is
// gone.
func Upstream(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "rev-parse", "--symbolic-full-name", "--verify", "--quiet", "@{upstream}")
	if err != nil {
		if code := exitCode(err); code == 1 || code == 128 {
			msg := stderrOf(err)
			if msg == "" {
				msg = "the current branch has no upstream"
			}
			return "", &core.Error{Kind: core.KindNotFound, Op: "git upstream", Msg: msg, Err: err}
		}
		return "", err
	}
	return string(trimNewline(out)), nil
}

// ShortRef shortens a full ref name for people: refs/heads/main becomes
// main, refs/remotes/origin/main becomes origin/main. Other names are
// returned unchanged.
func ShortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/remotes/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	return ref
}
