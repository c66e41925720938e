package planner

import (
	"context"
	"fmt"
	"path"
	"strconv"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// A hermetic job's workspace holds exactly the files of its digest: those
// its inputs match, and what their symlinks lead to in the repository. The
// functions here give that list, from a plan (a local run, whose tree holds
// the uncommitted changes) or from a commit (a runner).

// jobFiles is what a plan keeps to list the files of its hermetic jobs.
type jobFiles struct {
	tree *treeFiles
	in   *inputs
}

// InputFiles returns the files the job named job sees when it is hermetic:
// the files its inputs match as the function InputFiles lists them, sorted
// by path, from the tree the plan read (for a local run, with the
// uncommitted changes), without reading it again. Symlinks are entries
// like the others, and what they lead to in the repository is among the
// entries too.
//
// A plan keeps its tree only when a job of its pipeline is hermetic: for
// another plan, or a job it does not have, the error is KindInvalid.
func (p *Plan) InputFiles(job string) ([]gitx.TreeEntry, error) {
	if p.files == nil {
		return nil, core.E(core.KindInvalid, "input files", "the plan has no hermetic job, so it kept no list of files")
	}
	if _, ok := p.files.in.jobSet[job]; !ok {
		return nil, core.E(core.KindInvalid, "input files", "the plan has no job %s", strconv.Quote(job))
	}
	return p.files.in.files(p.files.tree, job), nil
}

// HasFile reports whether path is a file (or symlink, or submodule) of the
// planned tree, whatever job's inputs match it. Like InputFiles, it needs a
// plan with a hermetic job, and reports false for another.
func (p *Plan) HasFile(path string) bool {
	if p.files == nil {
		return false
	}
	_, ok := p.files.tree.find(path)
	return ok
}

// CommitFiles is what a hermetic job sees of a commit (see FilesAtCommit).
type CommitFiles struct {
	// Files are the entries the job's digest covers, sorted by path.
	Files []gitx.TreeEntry
	// Attributes are the commit's .gitattributes files, which decide how
	// Files are checked out (line endings, filters), whether or not the
	// job's inputs match them.
	Attributes []gitx.TreeEntry
}

// FilesAtCommit lists the files that job, hermetic, sees in the tree of
// commit in the repository at dir (a bare mirror will do): those
// InputFiles lists for it at that commit, read once with the commit's
// .gitattributes files. The job's needs, filters and definition play no
// part, only its inputs (inputs_from neither: it adds digests, not files).
// A symlink among its files that leads outside the repository is a
// KindInvalid error naming it, as in Make, and so is a cycle of links.
func FilesAtCommit(ctx context.Context, dir, commit string, job core.JobSpec) (CommitFiles, error) {
	job.Hermetic, job.Needs, job.InputsFrom = true, nil, nil
	p := &core.Pipeline{Jobs: []core.JobSpec{job}}
	o := Options{Dir: dir, Pipeline: p, Trigger: Trigger{Kind: TriggerManual, Head: commit}, Executor: ExecutorShell}
	if err := o.validate(); err != nil {
		return CommitFiles{}, err
	}
	in, t, links, err := readInputs(ctx, p, dir, commit, nil, nil)
	if err != nil {
		return CommitFiles{}, err
	}
	if err := checkHermeticLinks(p, in, links); err != nil {
		return CommitFiles{}, err
	}
	out := CommitFiles{Files: in.files(t, job.Name)}
	for i := range int32(t.entries.n) {
		if e := t.entries.at(i); path.Base(e.Path) == ".gitattributes" && e.Mode != gitx.ModeGitlink {
			out.Attributes = append(out.Attributes, *e)
		}
	}
	return out, nil
}

// LinkOutsideError is the cause of the KindInvalid error a plan returns
// for a hermetic job whose inputs hold a symlink that leads outside the
// repository, so a caller can tell which job it is.
type LinkOutsideError struct {
	Job    string // the hermetic job
	Path   string // the link, relative to the repository
	Target string // what the link says
}

func (e *LinkOutsideError) Error() string {
	return fmt.Sprintf("job %s is hermetic, and symlink %s among its inputs leads outside the repository (%s): a hermetic workspace holds only files of the repository; point the link inside it, leave it out of the inputs, or make the job not hermetic",
		e.Job, strconv.Quote(e.Path), strconv.Quote(e.Target))
}

// checkHermeticLinks refuses a hermetic job whose inputs hold a symlink
// that leads outside the repository: its workspace holds only repository
// files, so the job would read something its digest does not describe, or
// nothing at all.
func checkHermeticLinks(p *core.Pipeline, in *inputs, f *followed) error {
	for _, j := range p.Jobs {
		if !j.Hermetic {
			continue
		}
		for _, l := range f.links[in.jobSet[j.Name]] {
			if l.Kind == LinkOutside {
				return core.Wrap(core.KindInvalid, "plan", &LinkOutsideError{Job: j.Name, Path: l.Path, Target: l.Text})
			}
		}
	}
	return nil
}
