package api

import (
	"context"
	"net/http"
	"time"

	"github.com/deltaci/deltaci/internal/analyzer"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// The methods in this file serve the web UI (internal/ui): the same reads
// and actions as the API's handlers, without HTTP and JSON.

// Run returns a run as GET /runs/{id} shows it: with its jobs, their
// attempts and waiting reasons.
func (s *Server) Run(ctx context.Context, id string) (protocol.Run, error) {
	return s.runBody(ctx, id)
}

// Runs returns a page of run history, as GET /runs does.
func (s *Server) Runs(ctx context.Context, f store.RunFilter) (store.RunPage, error) {
	return s.st.ListRuns(ctx, f)
}

// Analysis returns what the Failure Analyzer found of a run's failed jobs,
// as GET /runs/{id}/analysis does.
func (s *Server) Analysis(ctx context.Context, runID string) (protocol.RunAnalysis, error) {
	return analyzer.RunView(ctx, s.st, runID)
}

// Projects returns every registered project.
func (s *Server) Projects(ctx context.Context) ([]core.Project, error) {
	return s.st.Projects(ctx)
}

// Cancel cancels a run on behalf of actor, as POST /runs/{id}/cancel
// does; the caller has checked that actor may. Errors: core.KindNotFound,
// core.KindConflict for a run that has ended.
func (s *Server) Cancel(ctx context.Context, actor, id string) error {
	return s.orch.Cancel(ctx, actor, id)
}

// ReadLog reads up to max bytes of an attempt's log from offset, from its
// chunks while it is open and from the artifact store once it is sealed,
// and returns them with the log's length and digest. An offset past the
// end is a *store.LogOffsetError.
func (s *Server) ReadLog(ctx context.Context, attemptID string, offset int64, max int) ([]byte, store.LogInfo, error) {
	return s.readLog(ctx, attemptID, offset, max)
}

// LogTimes returns when the attempt's log bytes [from, to) reached the
// server, by chunk (store.Store.LogTimes).
func (s *Server) LogTimes(ctx context.Context, attemptID string, from, to int64) ([]store.LogTime, error) {
	return s.st.LogTimes(ctx, attemptID, from, to)
}

// Changes returns a channel that receives a value when run runID, or one
// of ids (its attempts, whose logs grow), may have changed, and the
// function that stops it. Where the store announces nothing, the channel
// ticks instead. It stops by itself when ctx ends.
func (s *Server) Changes(ctx context.Context, runID string, ids ...string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.runEvents.subscribe(ch, runID)
	for _, id := range ids {
		s.runEvents.subscribe(ch, id)
	}
	unwatch := s.watchRun(ctx, runID)
	ctx, cancel := context.WithCancel(ctx)
	if !s.runEvents.watched.Load() {
		go func() {
			t := time.NewTicker(unwatchedEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					wake(ch)
				}
			}
		}()
	}
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		s.runEvents.unsubscribe(ch)
		unwatch()
		close(stopped)
	}()
	return ch, func() { cancel(); <-stopped }
}

// Authenticate tells who a browser's request of the UI acts for by the
// API's own credentials: an API token as Authorization: Bearer, or, on a
// server run with InsecureNoAuth, nobody as an anonymous admin. It returns
// the actor events record and the role (auth.RoleAdmin, RoleMaintainer or
// RoleViewer). Errors: core.KindUnauthorized.
func (s *Server) Authenticate(r *http.Request) (actor, role string, err error) {
	p, err := s.user(r)
	return p.actor, p.role, err
}

// Draining is closed once the server begins to shut down: long-lived
// streams end when it is.
func (s *Server) Draining() <-chan struct{} { return s.draining }
