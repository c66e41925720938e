package planner

import (
	"context"
	"slices"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// InputFiles answers, for each job named, which files of the planned tree
// its inputs match: the files its digest covers (globs and "!" exclusions
// in order, inferred entries expanded, what its symlinks lead to), and the
// lockfiles sliced for its inferred entries, which its digest covers in
// part. Entries are sorted by path. o is read as Make reads it (Dir,
// Pipeline, Trigger, WorkTree); the other options do not matter. A job
// without inputs gets every file.
//
// Errors: those of Make reading the tree, and KindNotFound for a name that
// is not a job of o.Pipeline.
func InputFiles(ctx context.Context, o Options, jobs ...string) (map[string][]gitx.TreeEntry, error) {
	if o.Executor == "" {
		o.Executor = ExecutorShell // not part of what is read
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	for _, name := range jobs {
		if _, ok := o.Pipeline.Job(name); !ok {
			return nil, core.E(core.KindNotFound, "input files", "no job %s", name)
		}
	}
	dir, head, wt, err := o.locate(ctx)
	if err != nil {
		return nil, err
	}
	var dirty []gitx.Change
	if wt != nil {
		dirty = wt.Changes
	}
	in, tree, _, err := readInputs(ctx, o.Pipeline, dir, head, dirty, wt)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]gitx.TreeEntry, len(jobs))
	for _, name := range jobs {
		out[name] = in.files(tree, name)
	}
	return out, nil
}

// files lists the files of tree that the job named name's inputs match,
// as InputFiles says.
func (in *inputs) files(tree *treeFiles, name string) []gitx.TreeEntry {
	set := in.jobSet[name]
	files := make([]gitx.TreeEntry, 0, len(tree.sets[set]))
	for _, i := range tree.sets[set] {
		files = append(files, *tree.entries.at(i))
	}
	if in.rules != nil {
		for _, l := range in.rules.locks[set] {
			i, ok := tree.find(string(l.Path))
			if ok && !slices.ContainsFunc(files, func(e gitx.TreeEntry) bool { return e.Path == string(l.Path) }) {
				files = append(files, *tree.entries.at(i))
			}
		}
		slices.SortFunc(files, func(a, b gitx.TreeEntry) int { return strings.Compare(a.Path, b.Path) })
	}
	return files
}
