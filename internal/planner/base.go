package planner

import (
	"context"
	"fmt"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// Base is the commit a run's changes are measured from, and why.
type Base struct {
	// Commit is the base commit id, or "" when there is no base: then every
	// job runs.
	Commit string `json:"commit"`
	// Reason says how the base was chosen, or why there is none.
	Reason string `json:"reason"`
	// Fallback, when not empty, says which rule did not apply and why, so
	// the base is a second choice (such as a merge-base with the default
	// branch after a force-push).
	Fallback string `json:"fallback,omitempty"`
}

// None reports whether there is no base, so that everything runs.
func (b Base) None() bool { return b.Commit == "" }

func noBase(why string) Base {
	return Base{Reason: "no base: " + why + "; everything runs"}
}

// baseFinder applies the base rules of the package doc for one run.
type baseFinder struct {
	dir      string
	head     string // resolved commit id, "" before the first commit
	t        Trigger
	remote   string
	deepenBy int
}

// find chooses the base. When a rule fails for want of history in a
// shallow clone, the clone is deepened once and the rules are tried again;
// if history is still missing there is no base.
func (f *baseFinder) find(ctx context.Context) (Base, error) {
	b, miss, err := f.try(ctx)
	if err != nil || miss == "" {
		return b, err
	}
	shallow, err := gitx.IsShallow(ctx, f.dir)
	if err != nil || !shallow {
		return b, err
	}
	by := fmt.Sprintf("%d %s", f.deepenBy, plural(f.deepenBy, "commit", "commits"))
	if err := gitx.Deepen(ctx, f.dir, f.remote, f.deepenBy); err != nil {
		if ctx.Err() != nil {
			return Base{}, core.Wrap(core.KindCanceled, "select base", ctx.Err())
		}
		return noBase(fmt.Sprintf("shallow clone: %s, and deepening it by %s from %s failed (%v)", miss, by, f.remote, err)), nil
	}
	b, miss, err = f.try(ctx)
	if err != nil {
		return Base{}, err
	}
	if miss != "" {
		return noBase(fmt.Sprintf("shallow clone: %s, even after deepening it by %s", miss, by)), nil
	}
	b.Fallback = join("shallow clone deepened by "+by, b.Fallback)
	return b, nil
}

// try applies the rules once. miss, when not empty, says which commit or
// ancestry the rules lacked: in a shallow clone, more history may change
// the answer.
func (f *baseFinder) try(ctx context.Context) (b Base, miss string, err error) {
	switch f.t.Kind {
	case TriggerPush:
		return f.push(ctx)
	case TriggerPullRequest:
		return f.pullRequest(ctx)
	case TriggerLocal:
		if f.t.Base != "" {
			return f.explicit(ctx)
		}
		b, err := f.local(ctx)
		return b, "", err
	case TriggerManual:
		if f.t.Base == "" {
			return noBase("a manual run without a base"), "", nil
		}
		return f.explicit(ctx)
	}
	return Base{}, "", core.E(core.KindInvalid, "select base", "unknown trigger %q", f.t.Kind)
}

func (f *baseFinder) push(ctx context.Context) (Base, string, error) {
	before := f.t.Before
	if strings.Trim(before, "0") == "" {
		return f.viaDefault(ctx, "before is all zeros (a new branch)")
	}
	id, ok, err := resolve(ctx, f.dir, before)
	if err != nil {
		return Base{}, "", err
	}
	if !ok {
		miss := fmt.Sprintf("before %s is not in the repository", short(before))
		b, _, err := f.viaDefault(ctx, miss)
		return b, miss, err
	}
	anc, err := gitx.IsAncestor(ctx, f.dir, id, f.head)
	if err != nil {
		return Base{}, "", err
	}
	if !anc {
		b, _, err := f.viaDefault(ctx, fmt.Sprintf("force-push: before %s is not an ancestor of head", short(id)))
		return b, fmt.Sprintf("before %s is not an ancestor of head", short(id)), err
	}
	return Base{Commit: id, Reason: fmt.Sprintf("push: before %s, an ancestor of head", short(id))}, "", nil
}

// viaDefault is the push fallback: the merge-base of head and the default
// branch, unless the push is to the default branch itself.
func (f *baseFinder) viaDefault(ctx context.Context, why string) (Base, string, error) {
	def, tip, err := gitx.DefaultBranchTip(ctx, f.dir)
	if core.KindOf(err) == core.KindNotFound {
		return noBase(why + ", and there is no default branch to compare with"), "", nil
	}
	if err != nil {
		return Base{}, "", err
	}
	if f.t.Branch != "" && branchName(def, f.remote) == f.t.Branch {
		return noBase(why + ", on the default branch itself"), "", nil
	}
	mb, err := mergeBase(ctx, f.dir, f.head, tip, def)
	if core.KindOf(err) == core.KindNotFound {
		miss := "head has no common ancestor with " + gitx.ShortRef(def)
		return noBase(why + ", and " + miss), miss, nil
	}
	if err != nil {
		return Base{}, "", err
	}
	return Base{Commit: mb, Reason: "merge-base of head and " + gitx.ShortRef(def), Fallback: why}, "", nil
}

func (f *baseFinder) pullRequest(ctx context.Context) (Base, string, error) {
	if f.t.Target == "" {
		return Base{}, "", core.E(core.KindInvalid, "select base", "a pull request needs its target branch")
	}
	target, ok, err := resolve(ctx, f.dir, f.t.Target)
	if err != nil {
		return Base{}, "", err
	}
	if !ok {
		miss := fmt.Sprintf("target %s is not in the repository", f.t.Target)
		return noBase(miss), miss, nil
	}
	mb, err := gitx.MergeBase(ctx, f.dir, target, f.head)
	if core.KindOf(err) == core.KindNotFound {
		miss := "head has no common ancestor with target " + f.t.Target
		return noBase(miss), miss, nil
	}
	if err != nil {
		return Base{}, "", err
	}
	return Base{Commit: mb, Reason: "pull request: merge-base of head and target " + f.t.Target}, "", nil
}

// local compares HEAD with the default branch, or the upstream, or itself.
// It never deepens: a local run does not fetch behind the user's back, and
// HEAD is always there to fall back on.
func (f *baseFinder) local(ctx context.Context) (Base, error) {
	if f.head == "" {
		return noBase("no commits yet"), nil
	}
	var why []string
	upstream := func(ctx context.Context, dir string) (string, string, error) {
		ref, err := gitx.Upstream(ctx, dir)
		return ref, "", err
	}
	for _, find := range []struct {
		what string
		ref  func(context.Context, string) (string, string, error)
	}{{"default branch", gitx.DefaultBranchTip}, {"upstream", upstream}} {
		ref, tip, err := find.ref(ctx, f.dir)
		if core.KindOf(err) == core.KindNotFound {
			why = append(why, "no "+find.what)
			continue
		}
		if err != nil {
			return Base{}, err
		}
		mb, err := mergeBase(ctx, f.dir, f.head, tip, ref)
		if core.KindOf(err) == core.KindNotFound {
			why = append(why, fmt.Sprintf("HEAD has no common ancestor with %s %s", find.what, gitx.ShortRef(ref)))
			continue
		}
		if err != nil {
			return Base{}, err
		}
		return Base{Commit: mb, Reason: "local run: merge-base of HEAD and " + gitx.ShortRef(ref),
			Fallback: strings.Join(why, "; ")}, nil
	}
	return Base{Commit: f.head, Reason: "local run: HEAD, so only uncommitted changes count",
		Fallback: strings.Join(why, "; ")}, nil
}

func (f *baseFinder) explicit(ctx context.Context) (Base, string, error) {
	id, ok, err := resolve(ctx, f.dir, f.t.Base)
	if err != nil {
		return Base{}, "", err
	}
	if !ok {
		miss := fmt.Sprintf("base %s is not in the repository", f.t.Base)
		return noBase(miss), miss, nil
	}
	return Base{Commit: id, Reason: "explicit base " + f.t.Base}, "", nil
}

// mergeBase is gitx.MergeBase of head and ref, whose commit is tip when
// known: a branch whose tip is head has head as merge-base, with no need to
// ask git.
func mergeBase(ctx context.Context, dir, head, tip, ref string) (string, error) {
	if tip != "" && tip == head {
		return head, nil
	}
	return gitx.MergeBase(ctx, dir, head, ref)
}

// resolve returns the commit id of rev and whether it exists.
func resolve(ctx context.Context, dir, rev string) (string, bool, error) {
	id, err := gitx.ResolveRev(ctx, dir, rev)
	if core.KindOf(err) == core.KindNotFound {
		return "", false, nil
	}
	return id, err == nil, err
}

// branchName is the branch name of a default-branch ref: main for
// refs/heads/main and refs/remotes/origin/main.
func branchName(ref, remote string) string {
	if s, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return s
	}
	if s, ok := strings.CutPrefix(ref, "refs/remotes/"+remote+"/"); ok {
		return s
	}
	return ref
}

// short abbreviates a commit id for messages.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
