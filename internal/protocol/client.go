package protocol

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

	"github.com/google/uuid"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// Client calls a Delta CI server. Its errors are *core.Error values whose
// Kind follows the answer (409 lease_lost is core.KindLeaseLost, 416 is a
// *store.LogOffsetError, a log over its cap wraps store.ErrLogCapExceeded);
// a request that got no answer is core.KindUnavailable.
type Client struct {
	// BaseURL is the server, e.g. http://127.0.0.1:8080.
	BaseURL string
	// HTTP sends the requests; nil means a client without a timeout, since
	// lease long-polls and log streams last.
	HTTP *http.Client
	// Token returns the bearer token for calls that need one (a runner's
	// session, or a user's API token); nil sends none.
	Token func(ctx context.Context) (string, error)
	// OnUnauthorized, when set, is called after a 401 on a call that sent
	// Token, and that call is tried once more (a session the server no
	// longer knows, after its restart).
	OnUnauthorized func()
}

// APIError is a failed request's error body and status.
type APIError struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// call is one request.
type call struct {
	method, path string
	query        url.Values
	header       http.Header
	body         []byte
	json         any // encoded as the body when body is nil
	bearer       string
	noAuth       bool
}

// do sends req and returns the response for a 2xx status; the caller
// closes its body.
func (c *Client) do(ctx context.Context, req call) (*http.Response, error) {
	resp, err := c.send(ctx, req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && c.OnUnauthorized != nil && req.bearer == "" && !req.noAuth {
		resp.Body.Close()
		c.OnUnauthorized()
		resp, err = c.send(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(req.method+" "+req.path, resp)
}

func (c *Client) send(ctx context.Context, req call) (*http.Response, error) {
	op := req.method + " " + req.path
	body := req.body
	if body == nil && req.json != nil {
		b, err := json.Marshal(req.json)
		if err != nil {
			return nil, core.Wrap(core.KindInternal, op, err)
		}
		body = b
	}
	u := strings.TrimRight(c.BaseURL, "/") + "/api/v1" + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, bytes.NewReader(body))
	if err != nil {
		return nil, core.Wrap(core.KindInvalid, op, err)
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	if req.json != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	tok := req.bearer
	if tok == "" && !req.noAuth && c.Token != nil {
		if tok, err = c.Token(ctx); err != nil {
			return nil, err
		}
	}
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http().Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, core.Wrap(core.KindCanceled, op, ctx.Err())
		}
		return nil, core.Wrap(core.KindUnavailable, op, err)
	}
	return resp, nil
}

// decodeError turns a failed answer into a *core.Error of the right Kind.
func decodeError(op string, resp *http.Response) error {
	var body ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, &body) != nil || body.Error.Code == "" {
		body.Error = ErrorDetail{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
		if body.Error.Message == "" {
			body.Error.Message = resp.Status
		}
	}
	ae := &APIError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, Details: body.Error.Details}
	var inner error = ae
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && body.Error.Code == CodeLogOffset:
		n, ok := body.Error.Details["length"].(float64)
		if !ok {
			return core.E(core.KindInternal, op, "416 without the log length")
		}
		return &store.LogOffsetError{Length: int64(n)}
	case body.Error.Code == CodeLogCapExceeded:
		inner = fmt.Errorf("%w: %w", store.ErrLogCapExceeded, ae)
	}
	// The message is the APIError's alone: repeating it in Msg would
	// print it twice.
	return &core.Error{Kind: kindOf(resp.StatusCode, body.Error.Code), Op: op, Err: inner}
}

func kindOf(status int, code string) core.Kind {
	if code == CodeLeaseLost {
		return core.KindLeaseLost
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return core.KindUnauthorized
	case status == http.StatusNotFound:
		return core.KindNotFound
	case status == http.StatusConflict:
		return core.KindConflict
	case status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusGatewayTimeout,
		status == http.StatusTooManyRequests:
		return core.KindUnavailable
	case status >= 500:
		return core.KindInternal
	}
	return core.KindInvalid
}

// IsTransient reports whether err may go away by itself: no answer, or a
// server that is restarting or overloaded.
func IsTransient(err error) bool {
	k := core.KindOf(err)
	return k == core.KindUnavailable || (k == core.KindInternal && !errors.Is(err, store.ErrLogCapExceeded))
}

// closeBody reads what is left of a body before closing it, so that the
// connection is kept for the next request.
func closeBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}

func (c *Client) callJSON(ctx context.Context, req call, out any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return core.Wrap(core.KindUnavailable, req.method+" "+req.path+": decoding the answer", err)
	}
	return nil
}

// Register registers a runner with the registration token.
func (c *Client) Register(ctx context.Context, registrationToken string, req RegisterRequest) (RegisterResponse, error) {
	var out RegisterResponse
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/runners/register", json: req, bearer: registrationToken, noAuth: registrationToken == ""}, &out)
	return out, err
}

// Session exchanges a runner credential for a session token.
func (c *Client) Session(ctx context.Context, req SessionRequest) (SessionResponse, error) {
	var out SessionResponse
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/runner/session", json: req, noAuth: true}, &out)
	return out, err
}

// Lease asks for an attempt, waiting up to wait; nil means none came.
func (c *Client) Lease(ctx context.Context, wait time.Duration) (*Lease, error) {
	// Whole seconds, rounded up: 0 would mean the server's longest wait.
	secs := max(1, int((wait+time.Second-1)/time.Second))
	resp, err := c.do(ctx, call{method: http.MethodPost, path: "/runner/lease", json: LeaseRequest{WaitSeconds: secs}})
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	var l Lease
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&l); err != nil {
		return nil, core.Wrap(core.KindUnavailable, "lease: decoding the answer", err)
	}
	// The id names the attempt's directories on the runner: never a path.
	if _, err := uuid.Parse(l.AttemptID); err != nil || strings.ContainsAny(l.AttemptID, "/\\.") {
		return nil, core.E(core.KindInternal, "lease", "the server sent a malformed attempt id %.80q", l.AttemptID)
	}
	return &l, nil
}

// Heartbeat extends a lease.
func (c *Client) Heartbeat(ctx context.Context, attemptID, leaseToken string) (HeartbeatResponse, error) {
	var out HeartbeatResponse
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/attempts/" + url.PathEscape(attemptID) + "/heartbeat", json: Fenced{LeaseToken: leaseToken}}, &out)
	return out, err
}

// Start reports that the attempt's job began.
func (c *Client) Start(ctx context.Context, attemptID, leaseToken string) error {
	return c.callJSON(ctx, call{method: http.MethodPost, path: "/attempts/" + url.PathEscape(attemptID) + "/start", json: Fenced{LeaseToken: leaseToken}}, nil)
}

// Release hands back a lease not yet started.
func (c *Client) Release(ctx context.Context, attemptID, leaseToken string) error {
	return c.callJSON(ctx, call{method: http.MethodPost, path: "/attempts/" + url.PathEscape(attemptID) + "/release", json: Fenced{LeaseToken: leaseToken}}, nil)
}

// Complete reports how the attempt ended.
func (c *Client) Complete(ctx context.Context, attemptID string, req CompleteRequest) (CompleteResponse, error) {
	var out CompleteResponse
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/attempts/" + url.PathEscape(attemptID) + "/complete", json: req}, &out)
	return out, err
}

// AppendLog uploads one log chunk at offset with the attempt's job token
// and returns the server's log length.
func (c *Client) AppendLog(ctx context.Context, attemptID, leaseToken, jobToken string, offset int64, data []byte) (int64, error) {
	var out LogResponse
	err := c.callJSON(ctx, call{
		method: http.MethodPut, path: "/attempts/" + url.PathEscape(attemptID) + "/log",
		query:  url.Values{"offset": {strconv.FormatInt(offset, 10)}},
		header: http.Header{LeaseTokenHeader: {leaseToken}, "Content-Type": {"application/octet-stream"}},
		body:   data, bearer: jobToken,
	}, &out)
	return out.Length, err
}

// CreateRun starts a run.
func (c *Client) CreateRun(ctx context.Context, req CreateRunRequest) (Run, error) {
	var out Run
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/runs", json: req}, &out)
	return out, err
}

// Run returns a run with its jobs and attempts.
func (c *Client) Run(ctx context.Context, id string) (Run, error) {
	var out Run
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/runs/" + url.PathEscape(id)}, &out)
	return out, err
}

// Runners lists the registered runners, oldest first.
func (c *Client) Runners(ctx context.Context) ([]RunnerInfo, error) {
	var out RunnerList
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/runners"}, &out)
	return out.Runners, err
}

// RemoveRunner forgets a registered runner: its credential and tokens stop
// working.
func (c *Client) RemoveRunner(ctx context.Context, id string) error {
	return c.callJSON(ctx, call{method: http.MethodDelete, path: "/runners/" + url.PathEscape(id)}, nil)
}

// Projects lists the registered projects by name.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var out ProjectList
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/projects"}, &out)
	return out.Projects, err
}

// Project returns one project.
func (c *Client) Project(ctx context.Context, name string) (Project, error) {
	var out Project
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/projects/" + url.PathEscape(name)}, &out)
	return out, err
}

// AddProject registers a project.
func (c *Client) AddProject(ctx context.Context, p Project) (Project, error) {
	var out Project
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/projects", json: p}, &out)
	return out, err
}

// UpdateProject changes the fields of a project that patch sets.
func (c *Client) UpdateProject(ctx context.Context, name string, patch ProjectPatch) (Project, error) {
	var out Project
	err := c.callJSON(ctx, call{method: http.MethodPatch, path: "/projects/" + url.PathEscape(name), json: patch}, &out)
	return out, err
}

// RemoveProject forgets a project; its runs stay.
func (c *Client) RemoveProject(ctx context.Context, name string) error {
	return c.callJSON(ctx, call{method: http.MethodDelete, path: "/projects/" + url.PathEscape(name)}, nil)
}

// ProjectRoles returns who holds which role on a project in the web UI
// (admins only).
func (c *Client) ProjectRoles(ctx context.Context, name string) ([]RoleBinding, error) {
	var out RoleList
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/projects/" + url.PathEscape(name) + "/roles"}, &out)
	return out.Roles, err
}

// UpdateProjectRoles grants and revokes roles on a project and returns its
// bindings as they now are (admins only).
func (c *Client) UpdateProjectRoles(ctx context.Context, name string, patch RolesPatch) ([]RoleBinding, error) {
	var out RoleList
	err := c.callJSON(ctx, call{method: http.MethodPatch, path: "/projects/" + url.PathEscape(name) + "/roles", json: patch}, &out)
	return out.Roles, err
}

// ProjectHooks returns what to paste into the forge's webhook settings
// for a project, and its latest deliveries (admins only).
func (c *Client) ProjectHooks(ctx context.Context, name string) (ProjectHooks, error) {
	var out ProjectHooks
	err := c.callJSON(ctx, call{method: http.MethodGet, path: "/projects/" + url.PathEscape(name) + "/hooks"}, &out)
	return out, err
}

// RotateHookSecret gives a project a new webhook secret; deliveries signed
// with the old one are refused from then on.
func (c *Client) RotateHookSecret(ctx context.Context, name string) (ProjectHooks, error) {
	var out ProjectHooks
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/projects/" + url.PathEscape(name) + "/hooks/secret"}, &out)
	return out, err
}

// CancelRun asks a run to stop.
func (c *Client) CancelRun(ctx context.Context, id string) (Run, error) {
	var out Run
	err := c.callJSON(ctx, call{method: http.MethodPost, path: "/runs/" + url.PathEscape(id) + "/cancel"}, &out)
	return out, err
}

// Log returns an attempt's log from offset, as far as the server holds it.
func (c *Client) Log(ctx context.Context, attemptID string, offset int64) ([]byte, error) {
	resp, err := c.do(ctx, call{method: http.MethodGet, path: "/attempts/" + url.PathEscape(attemptID) + "/log",
		query: url.Values{"offset": {strconv.FormatInt(offset, 10)}}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, core.Wrap(core.KindUnavailable, "read log", err)
	}
	return b, nil
}

// FollowLog streams an attempt's log from offset, calling fn with each
// piece, until the attempt has ended and its whole log was delivered; it
// returns the end event. A dropped stream is resumed from the last offset.
func (c *Client) FollowLog(ctx context.Context, attemptID string, offset int64, fn func(LogEvent) error) (LogEnd, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.do(ctx, call{method: http.MethodGet, path: "/attempts/" + url.PathEscape(attemptID) + "/log",
			query: url.Values{"offset": {strconv.FormatInt(offset, 10)}, "follow": {"1"}}})
		if err != nil {
			if IsTransient(err) && attempt < 30 && ctx.Err() == nil {
				time.Sleep(time.Second)
				continue
			}
			return LogEnd{}, err
		}
		end, done, err := readEvents(resp.Body, func(ev LogEvent) error {
			if err := fn(ev); err != nil {
				return err
			}
			offset = ev.Offset + int64(len(ev.Data))
			return nil
		})
		resp.Body.Close()
		if done || err != nil && !IsTransient(err) {
			return end, err
		}
		if ctx.Err() != nil {
			return LogEnd{}, core.Wrap(core.KindCanceled, "follow log", ctx.Err())
		}
	}
}
