package forge

import (
	"net/http"
	"strconv"
)

func verifyGitHub(secret string, h http.Header, body []byte) error {
	v, _ := firstHeader(h, "X-Hub-Signature-256")
	if v == "" {
		return signatureError("no X-Hub-Signature-256 header")
	}
	return hubSignature(secret, body, v)
}

// ghRepo is the part of a GitHub repository a delivery is read for.
type ghRepo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
}

type ghUser struct {
	Login string `json:"login"`
}

type ghCommit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

type ghPush struct {
	Ref        string    `json:"ref"`
	Before     string    `json:"before"`
	After      string    `json:"after"`
	Deleted    bool      `json:"deleted"`
	HeadCommit *ghCommit `json:"head_commit"`
	Repository ghRepo    `json:"repository"`
	Sender     ghUser    `json:"sender"`
}

type ghBranch struct {
	Ref  string  `json:"ref"`
	SHA  string  `json:"sha"`
	Repo *ghRepo `json:"repo"` // null when the fork was deleted
}

type ghPull struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int      `json:"number"`
		Head   ghBranch `json:"head"`
		Base   ghBranch `json:"base"`
	} `json:"pull_request"`
	Repository ghRepo `json:"repository"`
	Sender     ghUser `json:"sender"`
}

type ghPing struct {
	Repository ghRepo `json:"repository"`
	Sender     ghUser `json:"sender"`
}

func readGitHub(h http.Header, body []byte) (Event, error) {
	delivery, err := deliveryID(h, "X-GitHub-Delivery")
	if err != nil {
		return Event{}, err
	}
	name, err := eventName(h, "X-GitHub-Event")
	if err != nil {
		return Event{}, err
	}
	switch name {
	case "ping":
		var p ghPing
		if err := decodeBody("ping", body, &p); err != nil {
			return Event{}, err
		}
		return Event{Delivery: delivery, Type: EventPing, Ignore: "ping", Repo: p.Repository.FullName, Sender: p.Sender.Login}, nil
	case "push":
		var p ghPush
		if err := decodeBody("push", body, &p); err != nil {
			return Event{}, err
		}
		var message string
		if p.HeadCommit != nil {
			message = p.HeadCommit.Message
		}
		return pushDelivery{
			ref: p.Ref, before: p.Before, after: p.After, deleted: p.Deleted,
			message: message, repo: p.Repository.FullName, sender: p.Sender.Login,
		}.event(delivery)
	case "pull_request":
		var p ghPull
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
			fork: pr.Head.Repo == nil || pr.Base.Repo == nil || pr.Head.Repo.ID != pr.Base.Repo.ID,
			ref:  "refs/pull/" + strconv.Itoa(number) + "/head",
			repo: p.Repository.FullName, sender: p.Sender.Login,
		}
		switch p.Action {
		case "opened", "synchronize", "reopened":
		default:
			out.ignore = actionIgnored("pull request", p.Action)
		}
		return out.event(delivery)
	}
	return otherEvent(delivery, name), nil
}
