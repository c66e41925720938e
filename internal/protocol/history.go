package protocol

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// RunSummary is one run of the history: a run without its jobs.
type RunSummary struct {
	ID          string `json:"id"`
	Project     string `json:"project,omitempty"`
	Repo        string `json:"repo"`
	Ref         string `json:"ref"`
	Commit      string `json:"commit"`
	Event       string `json:"event"`
	Trusted     bool   `json:"trusted"`
	TrustReason string `json:"trust_reason,omitempty"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	// RerunOf is the run this one reruns, when it is a rerun.
	RerunOf    string     `json:"rerun_of,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// RunList is a page of run history, newest first.
type RunList struct {
	Runs []RunSummary `json:"runs"`
	// NextCursor fetches the following page; empty on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// RunFilter selects run history; empty fields match every run.
type RunFilter struct {
	Project string
	Ref     string // a ref, or a branch name
	State   string
	Event   string
	Limit   int // the server's default page size when zero
	Cursor  string
}

// RerunRequest asks for a rerun. With Job empty, every job that did not
// succeed runs again; with Job set, that job and the jobs that need it and
// did not succeed.
type RerunRequest struct {
	Job string `json:"job,omitempty"`
}

// Runs returns a page of run history, newest first.
func (c *Client) Runs(ctx context.Context, f RunFilter) (RunList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"project": f.Project, "ref": f.Ref, "state": f.State, "event": f.Event, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out RunList
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/runs", query: q}, &out)
	return out, err
}

// Rerun makes a new run of an ended run's commit that runs again what req
// names and reuses the rest, and returns it.
func (c *Client) Rerun(ctx context.Context, id string, req RerunRequest) (Run, error) {
	var out Run
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/runs/" + url.PathEscape(id) + "/rerun", json: req}, &out)
	return out, err
}
