package api

import (
	"context"
	"log/slog"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// configError is a run refused for its configuration (the pipeline file
// at the commit, or its plan): the run was recorded as errored, and the
// answer names it.
type configError struct {
	runID string
	err   error
}

// Error is the error as the run keeps it, so that both say the same.
func (c *configError) Error() string { return message(c.err) }
func (c *configError) Unwrap() error { return c.err }

// erroredRun records nr as a run that errored for cause, a configuration
// error, so that run history shows it (a hook's run has nobody to read the
// answer), logs it, and returns the error the request answers with. When
// the record fails the cause is still the answer.
func (s *Server) erroredRun(ctx context.Context, who principal, nr store.NewRun, cause error) error {
	msg := message(cause)
	run, err := s.st.CreateErroredRun(ctx, who.actor, nr, core.ReasonConfigError, msg)
	if err != nil {
		s.log.ErrorContext(ctx, "recording an errored run", slog.String("project", nr.Project), slog.Any("err", err), slog.String("cause", msg))
		return cause
	}
	s.log.WarnContext(ctx, "run errored", slog.String("run_id", run.ID), slog.String("project", nr.Project),
		slog.String("ref", nr.Ref), slog.String("commit", nr.Commit), slog.String("reason", string(core.ReasonConfigError)),
		slog.String("message", msg), slog.String("actor", who.actor))
	return &configError{runID: run.ID, err: cause}
}

// message is what an errored run says: the error without the operations
// that wrapped it on the way here ("create run: "), so that a pipeline
// error starts with the file:line:col of the problem.
func message(err error) string {
	for {
		ce, ok := err.(*core.Error)
		switch {
		case !ok:
			return err.Error()
		case ce.Msg == "" && ce.Err != nil:
			err = ce.Err
		case ce.Msg != "" && ce.Err == nil:
			return ce.Msg
		default:
			return ce.Msg + ": " + ce.Err.Error()
		}
	}
}
