package giteatest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/giteatest"
)

// hookSecret signs the deliveries of these tests, and so the fixtures
// recorded from them (internal/forge/testdata/gitea/README.md names it).
const hookSecret = "deltaci-gitea-fixture-secret"

// recordEnv, set to 1, makes TestGitea write the deliveries it receives as
// the forge package's fixtures.
const recordEnv = "DELTACI_RECORD_GITEA_FIXTURES"

const fixtureDir = "../forge/testdata/gitea"

func TestGitea(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	hooks := newReceiver(t)
	repo := g.CreateRepo(t, "widget")
	if repo.Owner != g.User || repo.Name != "widget" || !strings.HasPrefix(repo.CloneURL, g.URL+"/") {
		t.Fatalf("CreateRepo = %+v", repo)
	}
	hookID := g.AddWebhook(t, repo, hooks.URL, hookSecret, []string{"push", "pull_request"})
	if hookID <= 0 {
		t.Fatalf("AddWebhook = %d, want a hook id", hookID)
	}

	work := t.TempDir()
	git(t, work, "Alice", "init", "-q", "-b", "main")
	writeFile(t, work, "README.md", "# widget\n\nA widget that is built by Delta CI.\n")
	git(t, work, "Alice", "add", "README.md")
	git(t, work, "Alice", "commit", "-q", "-m", "Add README")
	sha := strings.TrimSpace(git(t, work, "Alice", "rev-parse", "HEAD"))

	pushed := time.Now()
	g.Push(t, work, repo, "refs/heads/main:refs/heads/main")
	pushDone := time.Now()

	t.Run("PushDeliversSignedWebhook", func(t *testing.T) {
		d := hooks.wait(t, "push")
		t.Logf("push delivery %s after git push began, %s after it returned",
			d.at.Sub(pushed).Round(time.Millisecond), d.at.Sub(pushDone).Round(time.Millisecond))
		d.checkSigned(t)
		var p struct {
			Ref   string `json:"ref"`
			After string `json:"after"`
			Repo  struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		}
		d.decode(t, &p)
		if p.Ref != "refs/heads/main" || p.After != sha || p.Repo.FullName != repo.Owner+"/"+repo.Name {
			t.Errorf("push payload: ref %q after %q repository %q; want refs/heads/main, %s, %s/%s",
				p.Ref, p.After, p.Repo.FullName, sha, repo.Owner, repo.Name)
		}
		record(t, "push", d)
	})

	t.Run("StatusesReadsEveryPage", func(t *testing.T) {
		// One more than a page of Gitea's answer holds.
		const n = 51
		for i := range n {
			g.Do(t, http.MethodPost, fmt.Sprintf("/repos/%s/%s/statuses/%s", repo.Owner, repo.Name, sha), g.Token,
				map[string]string{
					"state":       "success",
					"context":     fmt.Sprintf("deltaci/job-%02d", i),
					"description": "Passed",
					"target_url":  fmt.Sprintf("https://ci.example.com/runs/1/jobs/%d", i),
				}, nil)
		}
		g.Do(t, http.MethodPost, fmt.Sprintf("/repos/%s/%s/statuses/%s", repo.Owner, repo.Name, sha), g.Token,
			map[string]string{"state": "pending", "context": "deltaci/job-00", "description": "Rerun queued"}, nil)

		got := g.Statuses(t, repo, sha)
		if len(got) != n+1 {
			t.Fatalf("Statuses returned %d statuses, want %d", len(got), n+1)
		}
		last := got[0]
		if last.Context != "deltaci/job-00" || last.State != "pending" || last.Description != "Rerun queued" ||
			last.ID == 0 || last.UpdatedAt.IsZero() {
			t.Errorf("newest status = %+v, want deltaci/job-00 pending \"Rerun queued\" with an id and a time", last)
		}
		if s := got[len(got)-1]; s.Context != "deltaci/job-00" || s.State != "success" ||
			s.TargetURL != "https://ci.example.com/runs/1/jobs/0" {
			t.Errorf("oldest status = %+v, want deltaci/job-00 success with its target URL", s)
		}
	})

	t.Run("PullRequestFromForkDeliversWebhook", func(t *testing.T) {
		_, bobToken := g.CreateUser(t, "bob")
		fork := g.Fork(t, repo, "bob", bobToken)
		if fork.Owner != "bob" || fork.Name != repo.Name {
			t.Fatalf("Fork = %+v, want bob/%s", fork, repo.Name)
		}
		git(t, work, "Bob", "checkout", "-q", "-b", "fix-typo")
		writeFile(t, work, "README.md", "# widget\n\nA widget built by Delta CI.\n")
		git(t, work, "Bob", "commit", "-q", "-a", "-m", "README: shorter sentence")
		head := strings.TrimSpace(git(t, work, "Bob", "rev-parse", "HEAD"))
		g.Push(t, work, fork, "refs/heads/fix-typo:refs/heads/fix-typo")

		opened := time.Now()
		number := g.CreatePullRequest(t, repo, "bob:fix-typo", "main", "README: shorter sentence", bobToken)
		if number <= 0 {
			t.Fatalf("CreatePullRequest = %d, want a number", number)
		}
		d := hooks.wait(t, "pull_request")
		t.Logf("pull_request delivery %s after the request was sent", d.at.Sub(opened).Round(time.Millisecond))
		d.checkSigned(t)
		var p struct {
			Action string `json:"action"`
			Number int    `json:"number"`
			PR     struct {
				Head struct {
					SHA  string `json:"sha"`
					Repo struct {
						FullName string `json:"full_name"`
					} `json:"repo"`
				} `json:"head"`
			} `json:"pull_request"`
		}
		d.decode(t, &p)
		if p.Action != "opened" || p.Number != number || p.PR.Head.SHA != head || p.PR.Head.Repo.FullName != "bob/"+repo.Name {
			t.Errorf("pull_request payload: action %q number %d head %s from %q; want opened %d %s from bob/%s",
				p.Action, p.Number, p.PR.Head.SHA, p.PR.Head.Repo.FullName, number, head, repo.Name)
		}
		record(t, "pull_request", d)
	})
}

func TestBinaryRefusesMissingDELTACI_GITEA(t *testing.T) {
	t.Setenv("DELTACI_GITEA", filepath.Join(t.TempDir(), "missing"))
	if p, err := giteatest.Binary(); err == nil {
		t.Fatalf("Binary() = %s, want an error for a DELTACI_GITEA that names no file", p)
	}
}

// delivery is one webhook request as the receiver got it.
type delivery struct {
	header http.Header
	body   []byte
	at     time.Time
}

// checkSigned checks the headers a Gitea delivery carries, and that its
// signature is the body's HMAC-SHA256 under hookSecret.
func (d delivery) checkSigned(t *testing.T) {
	t.Helper()
	if d.header.Get("X-Gitea-Delivery") == "" {
		t.Error("no X-Gitea-Delivery header")
	}
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write(d.body)
	if want, got := hex.EncodeToString(mac.Sum(nil)), d.header.Get("X-Gitea-Signature"); got != want {
		t.Errorf("X-Gitea-Signature = %q, want %q", got, want)
	}
}

func (d delivery) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(d.body, v); err != nil {
		t.Fatalf("decode %s delivery: %v\n%s", d.header.Get("X-Gitea-Event"), err, d.body)
	}
}

// receiver is a webhook endpoint that hands each delivery to the test.
type receiver struct {
	URL string
	got chan delivery
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan delivery, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.got <- delivery{header: req.Header.Clone(), body: body, at: time.Now()}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks/gitea"
	return r
}

// wait returns the next delivery of event, passing over others, or fails
// t when none comes within a minute.
func (r *receiver) wait(t *testing.T, event string) delivery {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case d := <-r.got:
			if d.header.Get("X-Gitea-Event") == event {
				return d
			}
			t.Logf("passing over a %q delivery while waiting for %q", d.header.Get("X-Gitea-Event"), event)
		case <-deadline:
			t.Fatalf("no %q delivery within a minute", event)
		}
	}
}

// record writes d as the forge package's fixture for event when recordEnv
// is 1: the body byte for byte (the signature covers it) and the headers.
func record(t *testing.T, event string, d delivery) {
	t.Helper()
	if os.Getenv(recordEnv) != "1" {
		return
	}
	if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for k, v := range d.header {
		headers[k] = strings.Join(v, ", ")
	}
	hj, err := json.MarshalIndent(headers, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, fixtureDir, event+".json", string(d.body))
	writeFile(t, fixtureDir, event+".headers.json", string(hj)+"\n")
	t.Logf("recorded %s", filepath.Join(fixtureDir, event+".json"))
}

// git runs git in dir as Alice or Bob, whatever the machine's git
// configuration says, and returns its output.
func git(t *testing.T, dir, who string, args ...string) string {
	t.Helper()
	email := strings.ToLower(who) + "@example.com"
	cmd := exec.Command("git", append([]string{"-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME="+who, "GIT_AUTHOR_EMAIL="+email,
		"GIT_COMMITTER_NAME="+who, "GIT_COMMITTER_EMAIL="+email)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
