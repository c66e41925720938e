package forge

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
)

// verifyGitLab compares digests of the token and the secret, so that the
// comparison takes the same time whatever the token's length.
func verifyGitLab(secret string, h http.Header, body []byte) error {
	token := h.Get("X-Gitlab-Token")
	if token == "" {
		return signatureError("no X-Gitlab-Token header")
	}
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return signatureError("X-Gitlab-Token does not match the hook's secret")
	}
	return nil
}

type glProject struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
}

type glCommit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

type glPush struct {
	Ref          string     `json:"ref"`
	Before       string     `json:"before"`
	After        string     `json:"after"`
	CheckoutSHA  string     `json:"checkout_sha"`
	UserUsername string     `json:"user_username"`
	Project      glProject  `json:"project"`
	Commits      []glCommit `json:"commits"`
}

type glMergeRequest struct {
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	Project          glProject `json:"project"`
	ObjectAttributes struct {
		IID             int      `json:"iid"`
		Action          string   `json:"action"`
		SourceBranch    string   `json:"source_branch"`
		TargetBranch    string   `json:"target_branch"`
		SourceProjectID int64    `json:"source_project_id"`
		TargetProjectID int64    `json:"target_project_id"`
		Oldrev          string   `json:"oldrev"`
		LastCommit      glCommit `json:"last_commit"`
	} `json:"object_attributes"`
}

// readGitLab takes the delivery id from Idempotency-Key (GitLab 17.4 and
// later), which GitLab documents as the same across retries of one
// delivery, and else from X-Gitlab-Event-UUID. X-Gitlab-Webhook-UUID is
// never used: it names the hook, so every delivery of a hook shares it.
func readGitLab(h http.Header, body []byte) (Event, error) {
	delivery, err := deliveryID(h, "Idempotency-Key", "X-Gitlab-Event-UUID")
	if err != nil {
		return Event{}, err
	}
	name, err := eventName(h, "X-Gitlab-Event")
	if err != nil {
		return Event{}, err
	}
	switch name {
	case "Push Hook", "Tag Push Hook":
		var p glPush
		if err := decodeBody("push", body, &p); err != nil {
			return Event{}, err
		}
		return pushDelivery{
			tag: name == "Tag Push Hook", ref: p.Ref, before: p.Before, after: p.After,
			message: glHeadMessage(p), repo: p.Project.PathWithNamespace, sender: p.UserUsername,
		}.event(delivery)
	case "Merge Request Hook":
		var m glMergeRequest
		if err := decodeBody("merge request", body, &m); err != nil {
			return Event{}, err
		}
		a := m.ObjectAttributes
		out := pullDelivery{
			what: "merge request", number: a.IID, action: a.Action,
			head: a.SourceBranch, base: a.TargetBranch,
			commit: a.LastCommit.ID, message: a.LastCommit.Message,
			fork: a.SourceProjectID != a.TargetProjectID,
			ref:  "refs/merge-requests/" + strconv.Itoa(a.IID) + "/head",
			repo: m.Project.PathWithNamespace, sender: m.User.Username,
		}
		switch {
		case a.Action == "open" || a.Action == "reopen":
		case a.Action == "update" && a.Oldrev != "":
			// GitLab sends oldrev only when the update changed the code.
		case a.Action == "update":
			out.ignore = "a merge request update that did not change its code (no oldrev)"
		default:
			out.ignore = actionIgnored("merge request", a.Action)
		}
		return out.event(delivery)
	}
	return otherEvent(delivery, name), nil
}

// glHeadMessage is the message of the push's head commit, found among the
// commits by its id: GitLab lists at most 20 commits, and a branch made
// without new commits lists none, so the head may be missing.
func glHeadMessage(p glPush) string {
	head := p.CheckoutSHA
	if head == "" {
		head = p.After
	}
	for _, c := range p.Commits {
		if c.ID == head {
			return c.Message
		}
	}
	return ""
}
