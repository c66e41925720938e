// Package forge speaks to the forges Delta CI works with (GitHub, GitLab,
// Gitea and Forgejo): it verifies and reads their webhook deliveries, and
// posts commit statuses to them.
//
// Nothing here touches the database: the server stores what Read returns
// in its inbox, and hands Post what its outbox says to show.
package forge

import (
	"fmt"
	"strings"
	"time"
)

// Kind names a forge's webhook and status dialect.
type Kind string

// The forges.
const (
	GitHub  Kind = "github"
	GitLab  Kind = "gitlab"
	Gitea   Kind = "gitea"
	Forgejo Kind = "forgejo" // Gitea's dialect, under its own headers too
)

// Kinds lists every forge, in the order docs and errors name them.
var Kinds = []Kind{GitHub, GitLab, Gitea, Forgejo}

// ParseKind returns the forge named s, or an error that lists the known ones.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown forge %q: use one of %s", s, strings.Join(names, ", "))
}

// MaxBody is the largest webhook body accepted: GitHub's own cap on a
// payload.
const MaxBody = 25 << 20

// The event types Event.Type takes for deliveries Delta CI understands.
// Any other delivery keeps the forge's own event name, and Ignore says why
// it makes no run.
const (
	EventPush        = "push"
	EventPullRequest = "pull_request" // a GitLab merge request too
	EventPing        = "ping"
)

// Event is one verified webhook delivery, read into what the server needs
// to make a run of it.
type Event struct {
	// Delivery is the forge's id of this delivery: a replayed delivery has
	// the same one.
	Delivery string
	// Type is EventPush, EventPullRequest or EventPing, or the forge's own
	// name for an event Delta CI does not run for.
	Type string
	// Ignore, when not empty, says in words why the delivery makes no run:
	// a ping, an event or pull request action Delta CI does not run for, a
	// branch deletion, a tag push, "[skip ci]" in the head commit's message.
	Ignore string
	// Ref is the full ref the run is for: refs/heads/<branch> for a push;
	// the forge's ref of a pull request's head in the project's own
	// repository for a pull request (refs/pull/<n>/head on GitHub, Gitea
	// and Forgejo; refs/merge-requests/<iid>/head on GitLab).
	Ref string
	// Branch is the pushed branch, or a pull request's source branch.
	Branch string
	// Before is, for a push, the branch's commit before the push (all
	// zeros for a new branch).
	Before string
	// Commit is the head commit: the pushed tip or the pull request's head.
	Commit string
	// Message is the head commit's message when the delivery carries it.
	Message string
	// Number is a pull request's number (a merge request's iid on GitLab).
	Number int
	// Action is the pull request action as the forge names it (opened,
	// synchronize, reopened; GitLab's open, update, reopen).
	Action string
	// Target is a pull request's target branch.
	Target string
	// Fork is whether a pull request comes from another repository.
	Fork bool
	// Repo is the repository the forge says the delivery is about, as
	// owner/name (GitLab: the project's path with its namespace).
	Repo string
	// Sender is the forge user whose action caused the delivery.
	Sender string
}

// State is a commit status as Delta CI means it; Post maps it to each
// forge's own set.
type State string

// The states a status can take.
const (
	Pending  State = "pending"
	Running  State = "running" // GitLab shows it; the others show pending
	Success  State = "success"
	Failure  State = "failure"
	Canceled State = "canceled" // GitLab shows it; the others show error
	Error    State = "error"
)

// Status is one commit status to show on a commit.
type Status struct {
	// Context is the check's name: "deltaci" for a run, "deltaci/<job>"
	// for a job.
	Context     string
	State       State
	Description string
	// TargetURL links the status to the run's page; empty for none.
	TargetURL string
}

// Target says where a status goes.
type Target struct {
	Kind Kind
	// APIURL is the forge API's root: https://api.github.com (or a GitHub
	// Enterprise server's https://host/api/v3), https://host/api/v4 for
	// GitLab, https://host/api/v1 for Gitea and Forgejo.
	APIURL string
	// Repo is owner/name, or a GitLab project's path with its namespace.
	Repo   string
	Commit string
	// Token authenticates to the forge's API; it is never logged.
	Token string
}

// PostError is an error from a forge that answered a status request.
type PostError struct {
	// Code is the HTTP status of the forge's answer.
	Code int
	// Retry is whether the same request may succeed later (a 5xx, 408,
	// 429, or a rate limit's 403).
	Retry bool
	// RetryAfter is what the forge asked to wait, zero when it did not say.
	RetryAfter time.Duration
	// Message is the forge's own message, bounded and made printable.
	Message string
}

func (e *PostError) Error() string {
	return fmt.Sprintf("forge answered %d: %s", e.Code, e.Message)
}
