package giteatest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Repo names a repository on the Gitea.
type Repo struct {
	Owner string
	Name  string
	// CloneURL is the repository's http URL, without credentials.
	CloneURL string
}

// Status is a commit status as Gitea's API reports it.
type Status struct {
	ID          int64
	Context     string
	State       string // pending, success, error, failure or warning
	Description string
	TargetURL   string
	UpdatedAt   time.Time
}

// Do sends one API request with token (none when empty) and decodes the
// JSON answer into out (ignored when nil). path is relative to APIURL, such
// as "/repos/alice/widget/statuses/<sha>". An answer other than 2xx fails t
// with Gitea's message.
func (g *Gitea) Do(t testing.TB, method, path, token string, in, out any) {
	t.Helper()
	g.do(t, method, path, func(r *http.Request) {
		if token != "" {
			r.Header.Set("Authorization", "token "+token)
		}
	}, in, out)
}

func (g *Gitea) do(t testing.TB, method, path string, auth func(*http.Request), in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.APIURL+path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	auth(req)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode answer: %v: %s", method, path, err, data)
		}
	}
}

// newToken makes an access token with every scope for a user, signing in
// with their password.
func (g *Gitea) newToken(t testing.TB, user, password string) string {
	t.Helper()
	var tok struct {
		Token string `json:"sha1"`
	}
	in := map[string]any{"name": "giteatest-" + randomHex(4), "scopes": []string{"all"}}
	g.do(t, http.MethodPost, "/users/"+url.PathEscape(user)+"/tokens", func(r *http.Request) {
		r.SetBasicAuth(user, password)
	}, in, &tok)
	if tok.Token == "" {
		t.Fatalf("POST /users/%s/tokens: the answer holds no token", user)
	}
	return tok.Token
}

// apiRepo is the part of Gitea's repository answer that Repo keeps.
type apiRepo struct {
	Name     string `json:"name"`
	CloneURL string `json:"clone_url"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
}

func (r apiRepo) repo() Repo {
	return Repo{Owner: r.Owner.Login, Name: r.Name, CloneURL: r.CloneURL}
}

func (r Repo) path() string {
	return "/repos/" + url.PathEscape(r.Owner) + "/" + url.PathEscape(r.Name)
}

// CreateRepo creates an empty public repository, with main as its default
// branch, owned by the administrator.
func (g *Gitea) CreateRepo(t testing.TB, name string) Repo {
	t.Helper()
	var r apiRepo
	g.Do(t, http.MethodPost, "/user/repos", g.Token,
		map[string]any{"name": name, "private": false, "default_branch": "main"}, &r)
	return r.repo()
}

// Push runs git push of refspec from the repository in workdir to repo,
// as the administrator (who may push anywhere). The token travels in a
// header set through git's environment, so it is neither in git's
// arguments nor in what a failure prints.
func (g *Gitea) Push(t testing.TB, workdir string, repo Repo, refspec string) {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte(g.User + ":" + g.Token))
	cmd := exec.Command("git", "push", "--quiet", repo.CloneURL, refspec)
	cmd.Dir = workdir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic,
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git push %s %s: %v\n%s", repo.CloneURL, refspec, err, out)
	}
}

// AddWebhook adds an active Gitea-type webhook to repo that posts JSON,
// signed with secret, to url for events (Gitea's names: "push",
// "pull_request", ...), and returns its id.
func (g *Gitea) AddWebhook(t testing.TB, repo Repo, url, secret string, events []string) int64 {
	t.Helper()
	var hook struct {
		ID int64 `json:"id"`
	}
	g.Do(t, http.MethodPost, repo.path()+"/hooks", g.Token, map[string]any{
		"type":          "gitea",
		"config":        map[string]string{"url": url, "content_type": "json", "secret": secret},
		"events":        events,
		"branch_filter": "*",
		"active":        true,
	}, &hook)
	return hook.ID
}

// CreateUser creates a user who is not an administrator, with the email
// name@example.com, and returns their password and an access token of
// theirs with every scope.
func (g *Gitea) CreateUser(t testing.TB, name string) (password, token string) {
	t.Helper()
	password = randomHex(16)
	g.Do(t, http.MethodPost, "/admin/users", g.Token, map[string]any{
		"username":             name,
		"email":                name + "@example.com",
		"password":             password,
		"must_change_password": false,
	}, nil)
	return password, g.newToken(t, name, password)
}

// Fork forks repo into the account of asUser, whose token this is, and
// returns the fork.
func (g *Gitea) Fork(t testing.TB, repo Repo, asUser, token string) Repo {
	t.Helper()
	var r apiRepo
	g.Do(t, http.MethodPost, repo.path()+"/forks", token, map[string]any{}, &r)
	if r.Owner.Login != asUser {
		t.Fatalf("fork of %s/%s: owned by %q, not %q (whose token is it?)", repo.Owner, repo.Name, r.Owner.Login, asUser)
	}
	return r.repo()
}

// CreatePullRequest opens a pull request on repo from head into base with
// token's user as its author, and returns its number. head is a branch of
// repo, or "user:branch" for a branch of user's fork.
func (g *Gitea) CreatePullRequest(t testing.TB, repo Repo, head, base, title, token string) int {
	t.Helper()
	var pr struct {
		Number int `json:"number"`
	}
	g.Do(t, http.MethodPost, repo.path()+"/pulls", token,
		map[string]any{"head": head, "base": base, "title": title}, &pr)
	return pr.Number
}

// Statuses returns every status posted to commit sha of repo, the last
// posted first, reading all pages.
func (g *Gitea) Statuses(t testing.TB, repo Repo, sha string) []Status {
	t.Helper()
	const limit = 50 // Gitea's default cap on a page
	var all []Status
	for page := 1; ; page++ {
		var got []struct {
			ID          int64     `json:"id"`
			Context     string    `json:"context"`
			State       string    `json:"status"`
			Description string    `json:"description"`
			TargetURL   string    `json:"target_url"`
			UpdatedAt   time.Time `json:"updated_at"`
		}
		// Ordered by the status's index, which is unique per commit (the
		// default, by creation second, has ties that could shift between pages).
		g.Do(t, http.MethodGet, fmt.Sprintf("%s/commits/%s/statuses?sort=leastindex&page=%d&limit=%d",
			repo.path(), url.PathEscape(sha), page, limit), g.Token, nil, &got)
		if len(got) == 0 {
			return all
		}
		for _, s := range got {
			all = append(all, Status{ID: s.ID, Context: s.Context, State: s.State,
				Description: s.Description, TargetURL: s.TargetURL, UpdatedAt: s.UpdatedAt})
		}
	}
}
