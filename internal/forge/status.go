package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/core"
)

// maxAnswer bounds how much of a forge's answer is read: a status answer
// is a few KiB, and a proxy's error page must not fill memory.
const maxAnswer = 64 << 10

// maxMessage bounds PostError.Message.
const maxMessage = 200

// userAgent names Delta CI to the forge; GitHub refuses requests without
// one.
const userAgent = "deltaci"

// dialect is one forge's status endpoint: where a status goes, how it is
// written and authenticated, and which refusals mean it is already shown.
type dialect struct {
	// maxDescription is the forge's limit on a description, in characters.
	maxDescription int
	// ownerName is whether Repo must be exactly owner/name.
	ownerName bool
	// states maps each State to the forge's word.
	states map[State]string
	// endpoint is the status URL's path below the API root, escaped.
	endpoint func(repo, sha string) string
	// body is the JSON the forge takes, with state already mapped and the
	// description already trimmed.
	body func(state string, s Status) any
	// auth sets the header that carries the token.
	auth func(h http.Header, token string)
	// shown, when set, says whether a refusal means the status the forge
	// shows already is the one sent.
	shown func(code int, message, state string) bool
}

var dialects = map[Kind]*dialect{
	GitHub:  &githubDialect,
	GitLab:  &gitlabDialect,
	Gitea:   &giteaDialect,
	Forgejo: &giteaDialect,
}

// The four-state dialect GitHub, Gitea and Forgejo share.
var fourStates = map[State]string{
	Pending: "pending", Running: "pending",
	Success: "success", Failure: "failure",
	Canceled: "error", Error: "error",
}

// statusJSON is GitHub's and Gitea's request body.
type statusJSON struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context,omitempty"`
}

func fourStateBody(state string, s Status) any {
	return statusJSON{State: state, TargetURL: s.TargetURL, Description: s.Description, Context: s.Context}
}

func reposEndpoint(repo, sha string) string {
	owner, name, _ := strings.Cut(repo, "/")
	return "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + sha
}

var githubDialect = dialect{
	// GitHub answers 422 "description is too long (maximum is 140
	// characters)"; the OpenAPI description does not say it.
	maxDescription: 140,
	ownerName:      true,
	states:         fourStates,
	endpoint:       reposEndpoint,
	body:           fourStateBody,
	auth: func(h http.Header, token string) {
		h.Set("Accept", "application/vnd.github+json")
		h.Set("X-GitHub-Api-Version", "2022-11-28")
		h.Set("Authorization", "Bearer "+token)
	},
}

// Gitea and Forgejo store a description as TEXT with no limit; 255 keeps
// it as short as the other forges show.
var giteaDialect = dialect{
	maxDescription: 255,
	ownerName:      true,
	states:         fourStates,
	endpoint:       reposEndpoint,
	body:           fourStateBody,
	auth: func(h http.Header, token string) {
		h.Set("Accept", "application/json")
		h.Set("Authorization", "token "+token)
	},
}

// gitlabMaxField is GitLab's documented limit on description, target_url
// and ref.
const gitlabMaxField = 255

var gitlabDialect = dialect{
	maxDescription: gitlabMaxField,
	states: map[State]string{
		Pending: "pending", Running: "running",
		Success: "success", Failure: "failed", Canceled: "canceled",
		// GitLab has no "error": a run that could not finish failed.
		Error: "failed",
	},
	endpoint: func(repo, sha string) string {
		// The project's path with its namespace is one URL-encoded
		// segment: group%2Fsubgroup%2Fproject.
		return "/projects/" + url.PathEscape(repo) + "/statuses/" + sha
	},
	body: func(state string, s Status) any {
		b := struct {
			State       string `json:"state"`
			Name        string `json:"name,omitempty"`
			TargetURL   string `json:"target_url,omitempty"`
			Description string `json:"description,omitempty"`
		}{State: state, Name: s.Context, TargetURL: s.TargetURL, Description: s.Description}
		// GitLab refuses a longer link with 400; a status without its
		// link still tells the commit's state.
		if utf8.RuneCountInString(b.TargetURL) > gitlabMaxField {
			b.TargetURL = ""
		}
		return b
	},
	// A personal, project or group access token goes in PRIVATE-TOKEN;
	// GitLab keeps Authorization: Bearer for OAuth tokens (which it takes
	// from access tokens too).
	auth: func(h http.Header, token string) {
		h.Set("Accept", "application/json")
		h.Set("PRIVATE-TOKEN", token)
	},
	shown: gitlabShown,
}

// gitlabShown recognizes GitLab's answer to a status posted twice in the
// same state: it moves its job through a state machine, and "pending" on
// a pending job or "running" on a running one is a transition the machine
// refuses with 400 "Cannot transition status via :enqueue from :pending
// (Reason(s): Status cannot transition via "enqueue")", or ":run from
// :running". The status shown is the one sent. Any other refused
// transition (pending after running) is a real error.
func gitlabShown(code int, message, state string) bool {
	if code != http.StatusBadRequest {
		return false
	}
	var event string
	switch state {
	case "pending":
		event = "enqueue"
	case "running":
		event = "run"
	default:
		return false
	}
	prefix := "Cannot transition status via :" + event + " from :" + state
	rest, ok := strings.CutPrefix(message, prefix)
	return ok && (rest == "" || strings.HasPrefix(rest, " ("))
}

// Post shows s on the commit t names, on t's forge: GitHub's, Gitea's and
// Forgejo's POST /repos/{owner}/{repo}/statuses/{sha}, GitLab's POST
// /projects/{path}/statuses/{sha}. States the forge lacks are mapped to
// its nearest (running shows pending on GitHub, Gitea and Forgejo;
// canceled shows error there and canceled on GitLab; error shows failed on
// GitLab). The description is cut to the forge's limit (GitHub 140
// characters, GitLab, Gitea and Forgejo 255), ending in "…" when cut.
//
// Post sends nothing and returns a plain error for a target it cannot
// address: an unknown Kind, an empty APIURL, Repo, Commit or Token, an
// APIURL that is not http(s), a Repo that is not owner/name (GitHub,
// Gitea, Forgejo), a Commit that is not a full hex object name, an
// unknown State. A forge that answers other than 2xx gives a *PostError;
// a request that got no answer (refused, reset, timed out, canceled) gives
// an error for which Retryable is true. Redirects are not followed: a
// forge that moved answers a *PostError with its 3xx code. GitLab's
// refusal of a status posted twice in the same state is success. The
// token is never part of an error. A nil c is http.DefaultClient.
func Post(ctx context.Context, c *http.Client, t Target, s Status) error {
	const op = "forge status"
	d, err := checkTarget(t)
	if err != nil {
		return err
	}
	state, ok := d.states[s.State]
	if !ok {
		return core.E(core.KindInvalid, op, "unknown status state %q", s.State)
	}
	s.Description = trimDescription(s.Description, d.maxDescription)
	body, err := json.Marshal(d.body(state, s))
	if err != nil {
		return core.Wrap(core.KindInternal, op, err)
	}
	endpoint := strings.TrimRight(t.APIURL, "/") + d.endpoint(t.Repo, strings.ToLower(t.Commit))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return core.E(core.KindInvalid, op, "status URL for %s %s: %v", t.Kind, t.Repo, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	d.auth(req.Header, t.Token)

	resp, err := noRedirects(c).Do(req)
	if err != nil {
		return &transportError{msg: fmt.Sprintf("%s: post to %s %s: %s", op, t.Kind, t.Repo, redact(err.Error(), t.Token)), err: err}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	message := forgeMessage(answer)
	if d.shown != nil && d.shown(resp.StatusCode, message, state) {
		return nil
	}
	if message == "" {
		message = http.StatusText(resp.StatusCode)
	}
	retry, after := retryAdvice(resp.StatusCode, resp.Header, time.Now())
	return &PostError{
		Code:       resp.StatusCode,
		Retry:      retry,
		RetryAfter: after,
		Message:    printable(redact(message, t.Token), maxMessage),
	}
}

// Retryable reports whether the Post that returned err may succeed if
// tried again later: a *PostError that says so, or a request that got no
// answer. A refused target or an answer such as 404 or 422 is not.
func Retryable(err error) bool {
	var pe *PostError
	if errors.As(err, &pe) {
		return pe.Retry
	}
	var te *transportError
	return errors.As(err, &te)
}

// transportError is a status request that got no answer.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// checkTarget returns t's dialect, or why t cannot be addressed.
func checkTarget(t Target) (*dialect, error) {
	const op = "forge status"
	d, ok := dialects[t.Kind]
	if !ok {
		return nil, core.E(core.KindInvalid, op, "unknown forge %q", t.Kind)
	}
	switch {
	case t.APIURL == "":
		return nil, core.E(core.KindInvalid, op, "no API URL for %s", t.Kind)
	case t.Repo == "":
		return nil, core.E(core.KindInvalid, op, "no repository")
	case t.Commit == "":
		return nil, core.E(core.KindInvalid, op, "no commit for %s", t.Repo)
	case t.Token == "":
		return nil, core.E(core.KindInvalid, op, "no token for %s %s", t.Kind, t.Repo)
	}
	u, err := url.Parse(t.APIURL)
	if err != nil {
		return nil, core.E(core.KindInvalid, op, "API URL of %s is not a URL", t.Kind)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, core.E(core.KindInvalid, op, "API URL %q is not an http(s) URL", redact(u.Redacted(), t.Token))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Credentials belong in Token, which is never logged; a query or
		// fragment would end up in the middle of the status URL.
		return nil, core.E(core.KindInvalid, op, "API URL of %s must have no user, query or fragment", t.Kind)
	}
	segments := strings.Split(t.Repo, "/")
	if d.ownerName && len(segments) != 2 {
		return nil, core.E(core.KindInvalid, op, "repository %q is not owner/name", t.Repo)
	}
	for _, seg := range segments {
		if seg == "" || seg == "." || seg == ".." {
			return nil, core.E(core.KindInvalid, op, "repository %q has an empty or dot segment", t.Repo)
		}
	}
	if !isCommitID(t.Commit) {
		return nil, core.E(core.KindInvalid, op, "commit %q is not a full hex object name", t.Commit)
	}
	if strings.ContainsFunc(t.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, core.E(core.KindInvalid, op, "token for %s %s has spaces or control characters", t.Kind, t.Repo)
	}
	return d, nil
}

// trimDescription cuts s to max characters, the last one "…" when cut.
func trimDescription(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// noRedirects returns c (or the default client) answering a redirect
// itself. A POST that follows a 301 or 302 becomes a GET, which a status
// endpoint answers 200 without showing anything; and Go keeps a custom
// header such as PRIVATE-TOKEN on a redirect to another host.
func noRedirects(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// forgeMessage reads the forge's words from an error answer: "message"
// (GitHub, GitLab, Gitea), or "error" (GitLab's parameter checks), with
// GitHub's per-field "errors" after it.
func forgeMessage(answer []byte) string {
	var a struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return ""
	}
	msg := jsonText(a.Message)
	if msg == "" {
		msg = jsonText(a.Error)
	}
	for _, e := range a.Errors {
		if e.Message != "" {
			msg += ": " + e.Message
		}
	}
	return msg
}

// jsonText is a JSON string's text, or another JSON value compacted
// (GitLab's validation message is an object of field errors).
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return ""
	}
	return buf.String()
}

// retryAdvice says whether an answer of code may succeed later, and after
// how long the forge asked to wait.
func retryAdvice(code int, h http.Header, now time.Time) (bool, time.Duration) {
	rateLimited := h.Get("X-RateLimit-Remaining") == "0"
	retry := code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		// GitHub's primary and secondary rate limits answer 403.
		code == http.StatusForbidden && (rateLimited || h.Get("Retry-After") != "")
	if !retry {
		return false, 0
	}
	if d, ok := parseRetryAfter(h.Get("Retry-After"), now); ok {
		return true, d
	}
	if rateLimited {
		if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return true, max(time.Unix(reset, 0).Sub(now), 0)
		}
	}
	return true, 0
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// A day at most: a larger value is a forge's mistake, and would
		// overflow a Duration.
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// redact replaces every occurrence of token in s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[token]")
}

// printable makes s one line without control or format characters (a
// bidirectional override could disguise a log line) and cuts it to at
// most max bytes on a character boundary.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.In(r, unicode.Cc, unicode.Cf) || r == utf8.RuneError:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
