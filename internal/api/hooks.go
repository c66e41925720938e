package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/telemetry"
)

// Webhooks: a delivery is verified, stored in the inbox and answered at
// once; the inbox loop plans it afterwards, so a slow fetch never makes
// the forge give up on the delivery (GitHub waits 10 s).

// Defaults of the inbox.
const (
	// DefaultInboxPoll is how often a replica looks for deliveries another
	// replica stored; its own wake it at once.
	DefaultInboxPoll = time.Second
	// DefaultInboxLease is how long a claim on a delivery lasts unless its
	// planner renews it (a third of the way through); past it another
	// replica may take the delivery over.
	DefaultInboxLease = 30 * time.Second
	// maxDeliveryTries is how often a delivery whose planning failed for
	// a reason that may pass (a fetch timeout, the database) is tried.
	maxDeliveryTries = 5
)

// hookEvents are the forge's names of the events a project's webhook
// should send.
var hookEvents = map[forge.Kind][]string{
	forge.GitHub: {"push", "pull_request"},
	forge.GitLab: {"Push events", "Merge request events"},
	// Gitea's web form lists a pull request's new pushes as an event of
	// their own.
	forge.Gitea:   {"push", "pull_request", "pull_request_sync"},
	forge.Forgejo: {"push", "pull_request", "pull_request_sync"},
}

// receiveHook answers POST /hooks/{forge}/{project}: a forge's delivery,
// authenticated by its signature (GitLab: its token) with the project's
// webhook secret, not by an API token.
func (s *Server) receiveHook(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	k, err := forge.ParseKind(r.PathValue("forge"))
	if err != nil {
		s.metrics.HookDeliveries.WithLabelValues("unknown", "unknown_project").Inc()
		return core.E(core.KindNotFound, "webhook", "%v", err)
	}
	count := func(result string) { s.metrics.HookDeliveries.WithLabelValues(string(k), result).Inc() }
	name := r.PathValue("project")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, forge.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			count("too_large")
			return err
		}
		count("invalid")
		return core.Wrap(core.KindInvalid, "webhook", err)
	}
	p, err := s.st.Project(ctx, name)
	if core.KindOf(err) == core.KindNotFound || err == nil && p.Forge.Kind != string(k) {
		// One answer for both, so the hook URL does not tell which
		// projects exist.
		count("unknown_project")
		return core.E(core.KindNotFound, "webhook", "no project %q takes %s webhooks", name, k)
	}
	if err != nil {
		return err
	}
	if err := forge.Verify(k, p.Forge.HookSecret, r.Header, body); err != nil {
		count("bad_signature")
		err = core.Wrap(core.KindUnauthorized, "webhook for project "+name, err)
		if s.badHooks.due(name, time.Now()) {
			// A forge with the wrong secret must be seen in the log; a
			// flood of forged deliveries must not fill it: one line a
			// minute per project, and the metric counts them all.
			s.log.WarnContext(ctx, "webhook refused: bad signature (one line a minute per project)", slog.String("project", name),
				slog.String("forge", string(k)), slog.String("remote_addr", sourceAddr(r)), slog.Any("err", err))
		}
		return s.authFailed(r, "webhook", err)
	}
	ev, err := forge.Read(k, r.Header, body)
	if err != nil {
		count("invalid")
		s.log.WarnContext(ctx, "webhook refused", slog.String("project", name), slog.String("forge", string(k)), slog.Any("err", err))
		return core.Wrap(core.KindInvalid, "webhook", err)
	}
	log := s.log.With(slog.String("project", name), slog.String("forge", string(k)), slog.String("delivery", ev.Delivery), slog.String("event", ev.Type))
	if ev.Ignore != "" {
		count("ignored")
		log.InfoContext(ctx, "webhook ignored", slog.String("reason", ev.Ignore))
		writeJSON(w, http.StatusAccepted, protocol.HookAnswer{Result: "ignored", Reason: ev.Ignore})
		return nil
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return core.Wrap(core.KindInternal, "webhook", err)
	}
	d, added, err := s.st.AddDelivery(ctx, store.Delivery{Project: name, Forge: string(k), Delivery: ev.Delivery, Event: string(raw)})
	if err != nil {
		return err
	}
	if !added {
		count("duplicate")
		log.InfoContext(ctx, "webhook delivered again; already stored")
		writeJSON(w, http.StatusOK, protocol.HookAnswer{Result: "duplicate"})
		return nil
	}
	count("queued")
	log.InfoContext(ctx, "webhook queued", slog.String("id", d.ID), slog.String("ref", ev.Ref), slog.String("commit", ev.Commit))
	s.kickInbox()
	writeJSON(w, http.StatusAccepted, protocol.HookAnswer{Result: "queued", Delivery: d.ID})
	return nil
}

// kickInbox wakes this replica's inbox loop.
func (s *Server) kickInbox() {
	select {
	case s.inboxWake <- struct{}{}:
	default:
	}
}

// runInbox plans the inbox's deliveries, one at a time, until ctx ends.
func (s *Server) runInbox(ctx context.Context) {
	t := time.NewTicker(s.cfg.InboxPoll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			d, err := s.st.ClaimDelivery(ctx, s.cfg.InboxLease)
			if core.KindOf(err) == core.KindNotFound {
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "claiming a webhook delivery", slog.Any("err", err))
				}
				break
			}
			s.planDelivery(ctx, d)
		}
		if n, err := s.st.InboxDepth(ctx); err == nil {
			s.metrics.InboxDepth.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.inboxWake:
		}
	}
}

// planDelivery makes the run of a claimed delivery, or records why it
// makes none.
func (s *Server) planDelivery(ctx context.Context, d store.Delivery) {
	log := s.log.With(slog.String("project", d.Project), slog.String("forge", d.Forge), slog.String("delivery", d.Delivery))
	bg := context.WithoutCancel(ctx)
	finish := func(msg string) {
		log.WarnContext(ctx, "webhook delivery made no run", slog.String("message", msg))
		if err := s.st.FinishDelivery(bg, d, store.DeliveryFailed, "", msg); err != nil {
			log.WarnContext(ctx, "recording a webhook delivery", slog.Any("err", err))
		}
	}
	var ev forge.Event
	if err := json.Unmarshal([]byte(d.Event), &ev); err != nil {
		finish("the stored delivery cannot be read: " + err.Error())
		return
	}
	p, err := s.st.Project(ctx, d.Project)
	switch {
	case core.KindOf(err) == core.KindNotFound:
		finish(fmt.Sprintf("project %s was removed", d.Project))
		return
	case err == nil && p.Forge.Kind != d.Forge:
		finish(fmt.Sprintf("project %s no longer takes %s webhooks", d.Project, d.Forge))
		return
	}
	var run core.Run
	if err == nil {
		stop := s.keepDelivery(ctx, d, log)
		defer stop()
		req := runRequest{Event: core.EventPush, Ref: ev.Ref, Commit: ev.Commit, Before: ev.Before, Delivery: &d}
		if ev.Type == forge.EventPullRequest {
			req = runRequest{Event: core.EventPullRequest, Ref: ev.Ref, Commit: ev.Commit, Source: ev.Branch, Target: ev.Target, Fork: ev.Fork, Delivery: &d}
		}
		// Shutdown cancels planning (the delivery is handed back below);
		// once the run is recorded, starting it is not canceled.
		pctx, cancel := context.WithTimeout(ctx, planTimeout)
		pctx, span := s.startRoot(pctx, spanWebhook, telemetry.AttrProject.String(p.Name), telemetry.AttrEvent.String(req.Event),
			attrForge.String(d.Forge), attrDelivery.String(d.Delivery))
		var unlock func()
		if unlock, err = s.planning.lock(pctx, p.Name); err == nil {
			run, err = s.startRun(pctx, principal{actor: "webhook:" + d.Forge}, p, req)
			unlock()
		}
		telemetry.End(span, err)
		cancel()
	}
	var config *configError
	switch {
	case err == nil:
		log.InfoContext(ctx, "webhook delivery planned", slog.String("run_id", run.ID), slog.String("sender", ev.Sender))
		if ev.Type == forge.EventPullRequest && !p.Forge.KeepSuperseded {
			s.cancelSuperseded(bg, run)
		}
	case errors.As(err, &config):
		// The errored run finished the delivery in its own transaction.
	case core.KindOf(err) == core.KindLeaseLost:
		log.WarnContext(ctx, "webhook delivery taken over by another replica", slog.Any("err", err))
	case ctx.Err() != nil:
		log.InfoContext(ctx, "webhook delivery handed back: the server is stopping")
		if err := s.st.RetryDelivery(bg, d, 0, "the server stopped while planning it"); err != nil {
			log.WarnContext(ctx, "recording a webhook delivery", slog.Any("err", err))
		}
	case retryable(err) && d.Tries < maxDeliveryTries:
		wait := backoff(d.Tries, time.Second, time.Minute)
		log.WarnContext(ctx, "webhook delivery will be tried again", slog.Int("tries", d.Tries), slog.Duration("wait", wait), slog.Any("err", err))
		if err := s.st.RetryDelivery(bg, d, wait, err.Error()); err != nil {
			log.WarnContext(ctx, "recording a webhook delivery", slog.Any("err", err))
		}
	default:
		finish(message(err))
	}
}

// keepDelivery renews the claim on d while it is planned, so that a
// server that dies gives its deliveries up within one lease, and one that
// plans slowly keeps them. The returned func stops it.
func (s *Server) keepDelivery(ctx context.Context, d store.Delivery, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.InboxLease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := s.st.RenewDelivery(ctx, d, s.cfg.InboxLease); err != nil {
				if ctx.Err() == nil {
					// Creating the run is fenced by the claim: it will fail.
					log.WarnContext(ctx, "renewing a webhook delivery's claim", slog.Any("err", err))
				}
				if core.KindOf(err) == core.KindLeaseLost {
					return
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// retryable reports whether planning may succeed later: the repository or
// the database did not answer, or the server is stopping.
func retryable(err error) bool {
	var fe *fetchError
	if errors.As(err, &fe) {
		return true // a network error, or a forge not yet serving a new ref
	}
	switch core.KindOf(err) {
	case core.KindUnavailable, core.KindInternal, core.KindCanceled:
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// backoff is the wait before try n+1: exponential from base, capped, with
// full jitter over its upper half so retries of many replicas spread.
func backoff(tries int, base, max time.Duration) time.Duration {
	d := max
	if tries < 30 {
		if e := base << tries; e > 0 && e < max {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1)
}

// cancelSuperseded cancels the unfinished runs of the same pull request
// made before run: a new push makes them moot, as GitLab's interruptible
// pipelines and GitHub's concurrency groups do.
func (s *Server) cancelSuperseded(ctx context.Context, run core.Run) {
	active, err := s.st.ActiveRuns(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "looking for superseded runs", slog.String("run_id", run.ID), slog.Any("err", err))
		return
	}
	for _, old := range active {
		if old.ID == run.ID || old.Project != run.Project || old.Event != core.EventPullRequest || old.Ref != run.Ref ||
			old.CreatedAt.After(run.CreatedAt) {
			continue
		}
		if err := s.orch.Cancel(ctx, "webhook", old.ID); err != nil {
			s.log.WarnContext(ctx, "canceling a superseded run", slog.String("run_id", old.ID), slog.Any("err", err))
			continue
		}
		s.log.InfoContext(ctx, "superseded run canceled", slog.String("run_id", old.ID), slog.String("by", run.ID), slog.String("ref", run.Ref))
	}
}

// projectHooks answers GET /projects/{name}/hooks: the webhook to set up
// on the forge and the latest deliveries. The secret is for admins only.
func (s *Server) projectHooks(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.admin(r); err != nil {
		return err
	}
	p, err := s.st.Project(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	out, err := s.hooksBody(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rotateHookSecret answers POST /projects/{name}/hooks/secret: a new
// webhook secret, to paste into the forge.
func (s *Server) rotateHookSecret(w http.ResponseWriter, r *http.Request) error {
	who, err := s.admin(r)
	if err != nil {
		return err
	}
	s.editMu.Lock()
	defer s.editMu.Unlock()
	p, err := s.st.Project(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if p.Forge.Kind == "" {
		return core.E(core.KindConflict, "rotate webhook secret", "project %s has no forge: set one with deltaci projects set --forge", p.Name)
	}
	if p.Forge.HookSecret, err = newHookSecret(); err != nil {
		return err
	}
	if p, err = s.st.UpdateProject(r.Context(), p); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "webhook secret rotated", "project", p.Name, "actor", who.actor)
	out, err := s.hooksBody(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) hooksBody(r *http.Request, p core.Project) (protocol.ProjectHooks, error) {
	if p.Forge.Kind == "" {
		return protocol.ProjectHooks{}, core.E(core.KindConflict, "webhooks", "project %s has no forge: set one with deltaci projects set --forge", p.Name)
	}
	ds, err := s.st.Deliveries(r.Context(), p.Name, 20)
	if err != nil {
		return protocol.ProjectHooks{}, err
	}
	out := protocol.ProjectHooks{
		Forge: p.Forge.Kind, URL: s.externalURL(r) + "/api/v1/hooks/" + p.Forge.Kind + "/" + p.Name,
		Secret: p.Forge.HookSecret, ContentType: "application/json",
		Events: hookEvents[forge.Kind(p.Forge.Kind)], Deliveries: make([]protocol.HookDelivery, 0, len(ds)),
	}
	for _, d := range ds {
		var ev forge.Event
		_ = json.Unmarshal([]byte(d.Event), &ev) // stored by this server; a bad one shows no type
		out.Deliveries = append(out.Deliveries, protocol.HookDelivery{
			ID: d.ID, Delivery: d.Delivery, Event: ev.Type, State: d.State, RunID: d.RunID, Message: d.Message,
			Tries: d.Tries, ReceivedAt: d.ReceivedAt.UTC(), DoneAt: ts(d.DoneAt),
		})
	}
	return out, nil
}

// externalURL is the server's URL as forges and browsers reach it: the
// configured one, else the one the request came to.
func (s *Server) externalURL(r *http.Request) string {
	if s.cfg.ExternalURL != "" {
		return strings.TrimSuffix(s.cfg.ExternalURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// everyMinute says, per key, whether a minute has passed since it last
// said yes.
type everyMinute struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (e *everyMinute) due(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = map[string]time.Time{}
	}
	if now.Sub(e.last[key]) < time.Minute {
		return false
	}
	if len(e.last) > 10000 {
		clear(e.last) // keys are project names; bound the map anyway
	}
	e.last[key] = now
	return true
}
