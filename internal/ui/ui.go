// Package ui is Delta CI's web UI: server-rendered pages of projects,
// runs, a run's job graph and waterfall, job logs and runners, with
// actions to cancel and rerun. Pages are html/template, embedded with
// their stylesheet and one small script; live parts update over
// Server-Sent Events. It reads and acts through the same calls the API
// makes (Backend), and asks an Authorizer what the caller may do.
package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jobcache"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// Backend is what the pages read and do: *api.Server provides it.
type Backend interface {
	Run(ctx context.Context, id string) (protocol.Run, error)
	// Analysis is the Failure Analyzer's view of a run's failed jobs.
	Analysis(ctx context.Context, runID string) (protocol.RunAnalysis, error)
	Runs(ctx context.Context, f store.RunFilter) (store.RunPage, error)
	Projects(ctx context.Context) ([]core.Project, error)
	Runners(ctx context.Context) (protocol.RunnerList, error)
	Cancel(ctx context.Context, actor, runID string) error
	Rerun(ctx context.Context, actor, runID, job string) (protocol.Run, error)
	ReadLog(ctx context.Context, attemptID string, offset int64, max int) ([]byte, store.LogInfo, error)
	// LogTimes is when the log's bytes [from, to) reached the server.
	LogTimes(ctx context.Context, attemptID string, from, to int64) ([]store.LogTime, error)
	Changes(ctx context.Context, runID string, ids ...string) (<-chan struct{}, func())
	Draining() <-chan struct{}
}

// Config wires the UI.
type Config struct {
	Backend Backend
	Auth    Authorizer
	// Middleware runs before every page: it loads the caller's session
	// into the request's context (the web login's, or APIAuth's).
	Middleware func(http.Handler) http.Handler
	// Session returns who the request's caller is, as events record it,
	// and the CSRF token its forms must carry.
	Session func(ctx context.Context) (actor, csrf string)
	// LoginURL, when set, is the web login's path that signs in and comes
	// back to next: a visitor who is not signed in and may not see a page
	// is sent there, and every page links to it.
	LoginURL func(next string) string
	Log      *slog.Logger
	// Now is the clock of durations still running (time.Now when nil).
	Now func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// UI serves the pages.
type UI struct {
	cfg   Config
	pages map[string]*template.Template
	ansi  []byte
}

// New parses the templates; it fails only on a broken build.
func New(cfg Config) (*UI, error) {
	if cfg.Backend == nil || cfg.Auth == nil || cfg.Session == nil {
		return nil, errors.New("ui: Backend, Auth and Session are required")
	}
	if cfg.Middleware == nil {
		cfg.Middleware = func(h http.Handler) http.Handler { return h }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u := &UI{cfg: cfg, pages: map[string]*template.Template{}, ansi: ansiCSS()}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		u.pages[base] = t
	}
	return u, nil
}

// Routes registers the pages on mux. Paths the UI does not serve (the
// API's) are left to mux's other routes.
func (u *UI) Routes(mux *http.ServeMux) {
	page := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, secure(u.cfg.Middleware(u.handle(h))))
	}
	page("GET /{$}", u.projects)
	page("GET /runs", u.runs)
	page("GET /runs/{id}", u.run)
	page("GET /runs/{id}/jobs/{name}", u.job)
	page("GET /runs/{id}/jobs/{name}/log", u.logPage)
	page("GET /runs/{id}/jobs/{name}/tail", u.tail)
	page("GET /runs/{id}/jobs/{name}/raw", u.raw)
	page("GET /runs/{id}/jobs/{name}/search", u.search)
	page("GET /runners", u.runners)
	page("POST /runs/{id}/cancel", u.cancel)
	page("POST /runs/{id}/rerun", u.rerun)
	page("POST /runs/{id}/jobs/{name}/rerun", u.rerunJob)
	mux.Handle("GET /static/{file}", secure(http.HandlerFunc(u.static)))
}

// Handler returns a handler that serves the UI's pages and hands every
// other request to next (the API).
func (u *UI) Handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	u.Routes(mux)
	mux.Handle("/", next)
	return mux
}

// ContentSecurityPolicy is sent with every page: scripts and styles only
// from the server's own files (none inline), no frames of the pages, no
// form sent elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure adds the security headers of every page and file.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (u *UI) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var body []byte
	switch name {
	case "ansi.css":
		body = u.ansi
	default:
		b, err := staticFS.ReadFile("static/" + name)
		if err != nil || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		body = b
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

// handle turns a page's error into an error page.
func (u *UI) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			u.fail(w, r, err)
		}
	})
}

// forbidden is a request the caller's role does not allow.
type forbidden struct{ msg string }

func (f *forbidden) Error() string { return f.msg }

func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	title := "Something went wrong"
	msg := err.Error()
	var fb *forbidden
	if errors.As(err, &fb) && u.cfg.LoginURL != nil && r.Method == http.MethodGet && !wantsStream(r) {
		if actor, _ := u.cfg.Session(r.Context()); actor == "" {
			http.Redirect(w, r, u.cfg.LoginURL(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
	}
	switch k := core.KindOf(err); {
	case errors.As(err, &fb):
		status, title = http.StatusForbidden, "Not allowed"
	case k == core.KindNotFound:
		status, title = http.StatusNotFound, "Not found"
	case k == core.KindInvalid:
		status, title = http.StatusBadRequest, "Bad request"
	case k == core.KindConflict:
		status, title = http.StatusConflict, "Not possible now"
	case k == core.KindUnauthorized:
		status, title = http.StatusForbidden, "Not allowed"
	case k == core.KindUnavailable:
		status, title = http.StatusServiceUnavailable, "Unavailable"
	}
	if status >= 500 {
		u.cfg.Log.ErrorContext(r.Context(), "page failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		if status == http.StatusInternalServerError {
			msg = "internal error; the server log has the details"
		}
	}
	u.render(w, r, status, "error", &errorPage{basePage: u.base(r, title), Message: msg})
}

// renderPlainError answers without a template: before the UI has a
// session to show.
func renderPlainError(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	var b bytes.Buffer
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>`)
	escapeTo(&b, []byte(title))
	b.WriteString(`</title><link rel="stylesheet" href="/static/app.css"></head><body><main><h1>`)
	escapeTo(&b, []byte(title))
	b.WriteString(`</h1><p>`)
	escapeTo(&b, []byte(msg))
	b.WriteString(`</p></main></body></html>`)
	_, _ = w.Write(b.Bytes())
}

// basePage is what the layout shows on every page.
type basePage struct {
	Title string
	User  string
	CSRF  string
	Nav   string
	// Login is where to sign in, when the server has a web login.
	Login string
}

func (u *UI) base(r *http.Request, title string) basePage {
	actor, csrf := u.cfg.Session(r.Context())
	b := basePage{Title: title, User: actor, CSRF: csrf}
	if u.cfg.LoginURL != nil {
		b.Login = u.cfg.LoginURL(r.URL.RequestURI())
	}
	return b
}

type errorPage struct {
	basePage
	Message string
}

// render writes page name with data; when block is "live" only the page's
// live part is rendered (for its event stream).
func (u *UI) render(w http.ResponseWriter, _ *http.Request, status int, name string, data any) {
	var b bytes.Buffer
	if err := u.pages[name].Execute(&b, data); err != nil {
		u.cfg.Log.Error("rendering page", slog.String("page", name), slog.Any("err", err))
		renderPlainError(w, http.StatusInternalServerError, "Something went wrong", "internal error; the server log has the details")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// renderBlock renders one named template of a page into b.
func (u *UI) renderBlock(b *bytes.Buffer, page, block string, data any) error {
	return u.pages[page].ExecuteTemplate(b, block, data)
}

var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"branch": func(ref string) string { return strings.TrimPrefix(ref, "refs/heads/") },
	"dur":    fmtDuration,
	"size":   jobcache.Size,
}
