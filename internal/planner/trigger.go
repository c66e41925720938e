package planner

import "github.com/deltaci/deltaci/internal/core"

// TriggerKind says what started a run; it decides how the base is chosen.
type TriggerKind string

// The triggers.
const (
	// TriggerPush is a push of Trigger.Head to Trigger.Branch, whose tip
	// was Trigger.Before.
	TriggerPush TriggerKind = "push"
	// TriggerPullRequest is a pull request of Trigger.Head into
	// Trigger.Target.
	TriggerPullRequest TriggerKind = "pull_request"
	// TriggerLocal is `deltaci run` or `deltaci plan` in a working tree:
	// HEAD plus the uncommitted changes.
	TriggerLocal TriggerKind = "local"
	// TriggerManual is a run started by hand for a commit, compared with
	// Trigger.Base if given.
	TriggerManual TriggerKind = "manual"
)

// Trigger describes what a run is for.
type Trigger struct {
	Kind TriggerKind
	// Head is the commit to plan (a commit id or any revision). A local run
	// plans the working tree, on HEAD, and must leave it empty; the other
	// kinds require it.
	Head string
	// Branch is the short name of the branch the run is for (the pushed
	// branch, a pull request's source branch, the checked-out branch), or ""
	// (a detached HEAD). Job branch filters match it. For a push it also
	// tells a push to the default branch itself, which the default branch
	// cannot serve as base for.
	Branch string
	// Before is, for a push, the commit the branch pointed to before the
	// push: all zeros (or "") for a new branch.
	Before string
	// Target is, for a pull request, the branch (or any revision) it is
	// to be merged into, such as "refs/remotes/origin/main".
	Target string
	// Base is an explicit base revision for a manual or local run. A
	// manual run without one has no base; a local run without one compares
	// with the default branch or the upstream.
	Base string
}

// Event is the event a trigger counts as for job event filters: push,
// pull_request, or manual for local and manual runs.
func (t Trigger) Event() string {
	switch t.Kind {
	case TriggerPush:
		return core.EventPush
	case TriggerPullRequest:
		return core.EventPullRequest
	}
	return core.EventManual
}
