package forge

import (
	"net/http"
	"strconv"
)

// verifyGitea accepts any one signature header that is present and valid:
// Gitea sends X-Gitea-Signature and X-Hub-Signature-256, Forgejo adds
// X-Forgejo-Signature. A forge whose hook has no secret sends them empty.
func verifyGitea(secret string, h http.Header, body []byte) error {
	var seen bool
	for _, name := range []string{"X-Forgejo-Signature", "X-Gitea-Signature"} {
		if v, _ := firstHeader(h, name); v != "" {
			seen = true
			if validHMAC(secret, body, v) {
				return nil
			}
		}
	}
	if v, _ := firstHeader(h, "X-Hub-Signature-256"); v != "" {
		if hubSignature(secret, body, v) == nil {
			return nil
		}
		seen = true
	}
	if !seen {
		return signatureError("no X-Gitea-Signature, X-Forgejo-Signature or X-Hub-Signature-256 header (is the hook's secret set on the forge?)")
	}
	return signatureError("no signature header matches the body")
}

type gtRepo struct {
	FullName string `json:"full_name"`
}

type gtUser struct {
	Login string `json:"login"`
}

type gtCommit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

type gtPush struct {
	Ref        string     `json:"ref"`
	Before     string     `json:"before"`
	After      string     `json:"after"`
	HeadCommit *gtCommit  `json:"head_commit"`
	Commits    []gtCommit `json:"commits"`
	Repository gtRepo     `json:"repository"`
	Sender     gtUser     `json:"sender"`
}

type gtBranch struct {
	Ref    string `json:"ref"`
	SHA    string `json:"sha"`
	RepoID int64  `json:"repo_id"`
}

type gtPull struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int      `json:"number"`
		Head   gtBranch `json:"head"`
		Base   gtBranch `json:"base"`
	} `json:"pull_request"`
	Repository gtRepo `json:"repository"`
	Sender     gtUser `json:"sender"`
}

// giteaReader reads Gitea's dialect, looking for its headers under first
// and then under second: Forgejo sends both X-Forgejo-* and X-Gitea-*,
// Gitea only X-Gitea-*.
func giteaReader(first, second string) func(http.Header, []byte) (Event, error) {
	return func(h http.Header, body []byte) (Event, error) {
		delivery, err := deliveryID(h, first+"Delivery", second+"Delivery")
		if err != nil {
			return Event{}, err
		}
		// X-Gitea-Event is the coarse name (pull_request also for a
		// synchronize, whose X-Gitea-Event-Type is pull_request_sync); the
		// payload's action tells them apart.
		name, err := eventName(h, first+"Event", second+"Event")
		if err != nil {
			return Event{}, err
		}
		switch name {
		case "push":
			var p gtPush
			if err := decodeBody("push", body, &p); err != nil {
				return Event{}, err
			}
			return pushDelivery{
				ref: p.Ref, before: p.Before, after: p.After,
				message: gtHeadMessage(p), repo: p.Repository.FullName, sender: p.Sender.Login,
			}.event(delivery)
		case "pull_request":
			var p gtPull
			if err := decodeBody("pull request", body, &p); err != nil {
				return Event{}, err
			}
			pr := p.PullRequest
			number := p.Number
			if number == 0 {
				number = pr.Number
			}
			out := pullDelivery{
				what: "pull request", number: number, action: p.Action,
				head: pr.Head.Ref, base: pr.Base.Ref, commit: pr.Head.SHA,
				fork: pr.Head.RepoID != pr.Base.RepoID,
				ref:  "refs/pull/" + strconv.Itoa(number) + "/head",
				repo: p.Repository.FullName, sender: p.Sender.Login,
			}
			switch p.Action {
			case "opened", "synchronized", "reopened":
			default:
				out.ignore = actionIgnored("pull request", p.Action)
			}
			return out.event(delivery)
		}
		return otherEvent(delivery, name), nil
	}
}

// gtHeadMessage is the message of the push's head commit: head_commit, or
// the commit among commits whose id is after (Gitea before 1.17 sends no
// head_commit). Matching by id keeps another commit's "[skip ci]" from
// skipping the run, whatever order commits come in.
func gtHeadMessage(p gtPush) string {
	if p.HeadCommit != nil && p.HeadCommit.ID == p.After {
		return p.HeadCommit.Message
	}
	for _, c := range p.Commits {
		if c.ID == p.After {
			return c.Message
		}
	}
	return ""
}
