package runner

import (
	"context"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/planner"
	"github.com/deltaci/deltaci/internal/workspace"
)

// A hermetic job's workspace holds only the files of its digest (those its
// inputs match, and what their symlinks lead to in the repository), then
// the outputs of its needs, restored as for any job. Any other file of the
// repository is missing, so the job cannot depend on a file its digest
// does not describe.

// hermeticWorkspace copies into the new directory dir the files of the
// hermetic job j from the run's snapshot, l.Source, which holds them as
// the plan read them.
func (l *Local) hermeticWorkspace(j core.Job, dir string) error {
	if l.InputFiles == nil {
		return core.E(core.KindInternal, "hermetic workspace", "job %s is hermetic, but the runner has no list of its files", j.Name)
	}
	files, err := l.InputFiles(j.Name)
	if err != nil {
		return err
	}
	return workspace.CopyFiles(l.Source, dir, files)
}

// hermeticCheckout makes ws hold the files of the leased hermetic job at
// its commit, from the mirror: only those, without a .git. The runner
// lists them itself, with the planner's own rules, from the job's inputs.
func (a *attempt) hermeticCheckout(ctx context.Context, mirror, ws string) error {
	l := a.l
	cf, err := planner.FilesAtCommit(ctx, mirror, l.Commit, core.JobSpec{Name: l.Job, Inputs: l.Inputs, Hermetic: true})
	if err != nil {
		return err
	}
	return gitx.CheckoutFiles(ctx, mirror, ws, cf.Files, cf.Attributes)
}
