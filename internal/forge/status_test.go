package forge_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/forge/forgetest"
)

const sha = "18f3e63d05582537db6d183d9d557be09e1f90c8"

// post sends st to s and fails the test on an error.
func post(t *testing.T, s *forgetest.Server, st forge.Status) {
	t.Helper()
	if err := forge.Post(context.Background(), s.Client(), s.Target(sha), st); err != nil {
		t.Fatalf("Post(%+v): %v", st, err)
	}
}

// postErr sends st to s and returns the *PostError it must give.
func postErr(t *testing.T, s *forgetest.Server, st forge.Status) *forge.PostError {
	t.Helper()
	err := forge.Post(context.Background(), s.Client(), s.Target(sha), st)
	var pe *forge.PostError
	if !errors.As(err, &pe) {
		t.Fatalf("Post: got %v, want a *PostError", err)
	}
	return pe
}

var allStates = []forge.State{forge.Pending, forge.Running, forge.Success, forge.Failure, forge.Canceled, forge.Error}

func TestPostMapsStates(t *testing.T) {
	t.Parallel()
	want := map[forge.Kind]map[forge.State]forge.State{
		// What each forge shows, read back into Delta CI's words.
		forge.GitHub: {forge.Pending: forge.Pending, forge.Running: forge.Pending, forge.Success: forge.Success,
			forge.Failure: forge.Failure, forge.Canceled: forge.Error, forge.Error: forge.Error},
		forge.GitLab: {forge.Pending: forge.Pending, forge.Running: forge.Running, forge.Success: forge.Success,
			forge.Failure: forge.Failure, forge.Canceled: forge.Canceled, forge.Error: forge.Failure},
		forge.Gitea: {forge.Pending: forge.Pending, forge.Running: forge.Pending, forge.Success: forge.Success,
			forge.Failure: forge.Failure, forge.Canceled: forge.Error, forge.Error: forge.Error},
	}
	want[forge.Forgejo] = want[forge.Gitea]
	for _, kind := range forge.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, kind)
			for _, st := range allStates {
				// One context per state: GitLab would refuse running after
				// success on one job as a transition.
				post(t, s, forge.Status{Context: "deltaci/" + string(st), State: st, Description: "d", TargetURL: "https://ci.example.com/runs/1"})
			}
			got := s.Statuses(sha)
			if len(got) != len(allStates) {
				t.Fatalf("the forge shows %d statuses, want %d: %+v", len(got), len(allStates), got)
			}
			for i, st := range allStates {
				if got[i].Context != "deltaci/"+string(st) || got[i].State != want[kind][st] {
					t.Errorf("%s shows as %q (context %q), want %q", st, got[i].State, got[i].Context, want[kind][st])
				}
				if got[i].Description != "d" || got[i].TargetURL != "https://ci.example.com/runs/1" {
					t.Errorf("%s: description %q, link %q", st, got[i].Description, got[i].TargetURL)
				}
			}
		})
	}
}

func TestPostSendsEachForgesHeaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind forge.Kind
		want map[string]string
		path string
	}{
		{forge.GitHub, map[string]string{
			"Accept": "application/vnd.github+json", "X-Github-Api-Version": "2022-11-28",
			"Authorization": "Bearer <token>", "User-Agent": "deltaci", "Content-Type": "application/json",
		}, "/repos/octo-org/hello-world/statuses/" + sha},
		{forge.GitLab, map[string]string{
			"Private-Token": "<token>", "Authorization": "", "User-Agent": "deltaci", "Content-Type": "application/json",
		}, "/api/v4/projects/group%2Fsubgroup%2Fproject/statuses/" + sha},
		{forge.Gitea, map[string]string{
			"Authorization": "token <token>", "User-Agent": "deltaci", "Content-Type": "application/json",
		}, "/api/v1/repos/owner/repo/statuses/" + sha},
		{forge.Forgejo, map[string]string{
			"Authorization": "token <token>", "User-Agent": "deltaci",
		}, "/api/v1/repos/owner/repo/statuses/" + sha},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, c.kind)
			post(t, s, forge.Status{Context: "deltaci", State: forge.Success})
			r := s.Requests()[0]
			if r.Method != http.MethodPost || r.Path != c.path {
				t.Errorf("request %s %s, want POST %s", r.Method, r.Path, c.path)
			}
			for k, v := range c.want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPostGitLabBody(t *testing.T) {
	t.Parallel()
	s := forgetest.New(t, forge.GitLab)
	post(t, s, forge.Status{Context: "deltaci/test", State: forge.Running, Description: "running", TargetURL: "https://ci.example.com/r/2"})
	body := s.Requests()[0].Body
	want := map[string]any{"state": "running", "name": "deltaci/test", "description": "running", "target_url": "https://ci.example.com/r/2"}
	if len(body) != len(want) {
		t.Errorf("body %v, want %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, body[k], v)
		}
	}
}

func TestPostEscapesPaths(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind forge.Kind
		repo string
		path string
	}{
		// GitLab's namespaced path is one encoded segment.
		{forge.GitLab, "my-group/sub.group/my_project", "/api/v4/projects/my-group%2Fsub.group%2Fmy_project/statuses/" + sha},
		{forge.GitLab, "g/with space", "/api/v4/projects/g%2Fwith%20space/statuses/" + sha},
		{forge.GitHub, "o/r.js", "/repos/o/r.js/statuses/" + sha},
		{forge.Gitea, "o/r%x", "/api/v1/repos/o/r%25x/statuses/" + sha},
	}
	for _, c := range cases {
		t.Run(string(c.kind)+" "+c.repo, func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, c.kind, forgetest.WithRepo(c.repo))
			post(t, s, forge.Status{Context: "deltaci", State: forge.Success})
			if got := s.Requests()[0].Path; got != c.path {
				t.Errorf("path %s, want %s", got, c.path)
			}
			if len(s.Statuses(sha)) != 1 {
				t.Errorf("the forge did not take the status: %+v", s.Requests())
			}
		})
	}
}

func TestPostTrimsDescription(t *testing.T) {
	t.Parallel()
	limits := map[forge.Kind]int{forge.GitHub: 140, forge.GitLab: 255, forge.Gitea: 255, forge.Forgejo: 255}
	for kind, limit := range limits {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, kind)
			exact := strings.Repeat("é", limit)
			long := strings.Repeat("日本", limit)
			post(t, s, forge.Status{Context: "exact", State: forge.Success, Description: exact})
			post(t, s, forge.Status{Context: "long", State: forge.Success, Description: long})
			got := s.Statuses(sha)
			if got[0].Description != exact {
				t.Errorf("a description of exactly %d characters was changed to %q", limit, got[0].Description)
			}
			d := got[1].Description
			if n := utf8.RuneCountInString(d); n != limit || !strings.HasSuffix(d, "…") || !strings.HasPrefix(long, strings.TrimSuffix(d, "…")) {
				t.Errorf("long description became %q (%d characters), want the first %d characters ending in …", d, n, limit)
			}
			if !utf8.ValidString(d) {
				t.Errorf("the cut is not on a character boundary: %q", d)
			}
		})
	}
}

func TestPostRefusesTargetsItCannotAddress(t *testing.T) {
	t.Parallel()
	for _, kind := range forge.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, kind)
			good := s.Target(sha)
			cases := map[string]func(*forge.Target){
				"NoAPIURL":         func(t *forge.Target) { t.APIURL = "" },
				"NoRepo":           func(t *forge.Target) { t.Repo = "" },
				"NoCommit":         func(t *forge.Target) { t.Commit = "" },
				"NoToken":          func(t *forge.Target) { t.Token = "" },
				"UnknownKind":      func(t *forge.Target) { t.Kind = "bitbucket" },
				"FileURL":          func(t *forge.Target) { t.APIURL = "file:///etc/passwd" },
				"NoHost":           func(t *forge.Target) { t.APIURL = "https://" },
				"UserInAPIURL":     func(t *forge.Target) { t.APIURL = strings.Replace(t.APIURL, "://", "://u:p@", 1) },
				"QueryInAPIURL":    func(t *forge.Target) { t.APIURL += "?x=1" },
				"ShortCommit":      func(t *forge.Target) { t.Commit = sha[:12] },
				"NotHexCommit":     func(t *forge.Target) { t.Commit = "zz" + sha[2:] },
				"RefAsCommit":      func(t *forge.Target) { t.Commit = "main" },
				"PathInCommit":     func(t *forge.Target) { t.Commit = "../../" + sha[6:] },
				"DotDotRepo":       func(t *forge.Target) { t.Repo = "../x" },
				"EmptySegment":     func(t *forge.Target) { t.Repo = "a//b" },
				"TrailingSlash":    func(t *forge.Target) { t.Repo = "a/b/" },
				"NewlineInToken":   func(t *forge.Target) { t.Token += "\r\nX-Injected: 1" },
				"RepoWithoutOwner": func(t *forge.Target) { t.Repo = "repo" },
			}
			if kind != forge.GitLab {
				cases["ThreeSegments"] = func(t *forge.Target) { t.Repo = "a/b/c" }
			}
			for name, change := range cases {
				if kind == forge.GitLab && name == "RepoWithoutOwner" {
					continue // a GitLab project path may be a bare name
				}
				target := good
				change(&target)
				err := forge.Post(context.Background(), s.Client(), target, forge.Status{Context: "deltaci", State: forge.Success})
				var pe *forge.PostError
				if err == nil || errors.As(err, &pe) || forge.Retryable(err) {
					t.Errorf("%s: got %v, want a plain error that is not retryable", name, err)
				}
				if err != nil && strings.Contains(err.Error(), s.Token) {
					t.Errorf("%s: the token is in the error: %v", name, err)
				}
			}
			err := forge.Post(context.Background(), s.Client(), good, forge.Status{Context: "deltaci", State: "exploded"})
			if err == nil || forge.Retryable(err) {
				t.Errorf("unknown state: got %v, want a plain error", err)
			}
			if n := len(s.Requests()); n != 0 {
				t.Errorf("the forge got %d requests for targets Post refused: %+v", n, s.Requests())
			}
		})
	}
}

func TestPostErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code  int
		retry bool
		after time.Duration
	}{
		{http.StatusUnprocessableEntity, false, 0},
		{http.StatusNotFound, false, 0},
		{http.StatusUnauthorized, false, 0},
		{http.StatusForbidden, false, 0}, // no rate limit: the token may not write statuses
		{http.StatusInternalServerError, true, 0},
		{http.StatusBadGateway, true, 0},
		{http.StatusServiceUnavailable, true, 30 * time.Second},
		{http.StatusTooManyRequests, true, 30 * time.Second},
		{http.StatusRequestTimeout, true, 0},
	}
	for _, kind := range forge.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, kind)
			for _, c := range cases {
				s.FailNext(1, c.code)
				pe := postErr(t, s, forge.Status{Context: "deltaci", State: forge.Success})
				if pe.Code != c.code || pe.Retry != c.retry || pe.RetryAfter != c.after || forge.Retryable(pe) != c.retry {
					t.Errorf("%d: got %+v, want retry %v after %v", c.code, pe, c.retry, c.after)
				}
				if !strings.Contains(pe.Message, http.StatusText(c.code)) {
					t.Errorf("%d: message %q does not carry the forge's words %q", c.code, pe.Message, http.StatusText(c.code))
				}
			}
			// The forge shows nothing it refused, and the next try goes through.
			post(t, s, forge.Status{Context: "deltaci", State: forge.Success})
			if got := s.Statuses(sha); len(got) != 1 {
				t.Errorf("the forge shows %+v, want the one status it took", got)
			}
		})
	}
}

func TestPostGitHubRateLimit(t *testing.T) {
	t.Parallel()
	s := forgetest.New(t, forge.GitHub)
	st := forge.Status{Context: "deltaci", State: forge.Pending}

	// The primary limit: 403 with no requests left until the reset.
	reset := time.Now().Add(10 * time.Minute).Unix()
	s.FailNextWith(1, http.StatusForbidden, http.Header{
		"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset, 10)},
	})
	pe := postErr(t, s, st)
	if !pe.Retry || pe.RetryAfter <= 0 || pe.RetryAfter > 10*time.Minute {
		t.Errorf("primary rate limit: got %+v, want retry within 10 minutes", pe)
	}

	// The secondary limit: 403 with Retry-After.
	s.FailNextWith(1, http.StatusForbidden, http.Header{"Retry-After": {"60"}})
	pe = postErr(t, s, st)
	if !pe.Retry || pe.RetryAfter != time.Minute {
		t.Errorf("secondary rate limit: got %+v, want retry after 1m", pe)
	}

	// Retry-After as an HTTP date.
	at := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	s.FailNextWith(1, http.StatusServiceUnavailable, http.Header{"Retry-After": {at}})
	pe = postErr(t, s, st)
	if !pe.Retry || pe.RetryAfter <= 0 || pe.RetryAfter > time.Hour {
		t.Errorf("Retry-After date: got %+v, want retry within the hour", pe)
	}

	// Headers GitHub sends on every answer do not make a refusal retryable.
	s.FailNextWith(1, http.StatusUnprocessableEntity, http.Header{"X-Ratelimit-Remaining": {"4999"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset, 10)}})
	if pe = postErr(t, s, st); pe.Retry || pe.RetryAfter != 0 {
		t.Errorf("422: got %+v, want no retry", pe)
	}
}

func TestPostForgeDown(t *testing.T) {
	t.Parallel()
	for _, kind := range forge.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			s := forgetest.New(t, kind)
			c := s.Client()
			st := forge.Status{Context: "deltaci", State: forge.Pending}
			// A connection kept from before the outage must not hide it.
			if err := forge.Post(context.Background(), c, s.Target(sha), st); err != nil {
				t.Fatal(err)
			}
			s.Down()
			err := forge.Post(context.Background(), c, s.Target(sha), forge.Status{Context: "deltaci", State: forge.Success})
			var pe *forge.PostError
			if err == nil || errors.As(err, &pe) || !forge.Retryable(err) {
				t.Fatalf("forge down: got %v, want a retryable error without an answer", err)
			}
			if strings.Contains(err.Error(), s.Token) {
				t.Errorf("the token is in the error: %v", err)
			}
			s.Up()
			if err := forge.Post(context.Background(), c, s.Target(sha), forge.Status{Context: "deltaci", State: forge.Success}); err != nil {
				t.Fatalf("forge back up: %v", err)
			}
			got := s.Statuses(sha)
			if len(got) != 2 || got[1].State != forge.Success {
				t.Errorf("the forge shows %+v, want pending then success", got)
			}
		})
	}
}

func TestPostGitLabSameStateTwiceIsShown(t *testing.T) {
	t.Parallel()
	s := forgetest.New(t, forge.GitLab)
	for _, st := range []forge.State{forge.Pending, forge.Pending, forge.Running, forge.Running, forge.Success} {
		post(t, s, forge.Status{Context: "deltaci", State: st})
	}
	reqs := s.Requests()
	codes := make([]int, len(reqs))
	for i, r := range reqs {
		codes[i] = r.Code
	}
	// GitLab refused the repeats; Post took them as shown.
	if want := []int{201, 400, 201, 400, 201}; !slices.Equal(codes, want) {
		t.Errorf("GitLab answered %v, want %v", codes, want)
	}
	var states []forge.State
	for _, st := range s.Statuses(sha) {
		states = append(states, st.State)
	}
	if len(states) != 3 || states[0] != forge.Pending || states[1] != forge.Running || states[2] != forge.Success {
		t.Errorf("GitLab shows %v, want pending, running, success", states)
	}
}

func TestPostGitLabOtherRefusedTransitionIsAnError(t *testing.T) {
	t.Parallel()
	s := forgetest.New(t, forge.GitLab)
	post(t, s, forge.Status{Context: "deltaci", State: forge.Running})
	// Pending after running is not a repeat: the status shown is not the
	// one sent.
	pe := postErr(t, s, forge.Status{Context: "deltaci", State: forge.Pending})
	if pe.Code != http.StatusBadRequest || pe.Retry || !strings.HasPrefix(pe.Message, "Cannot transition status via :enqueue from :running") {
		t.Errorf("got %+v, want GitLab's 400 refusal, not retryable", pe)
	}
}
