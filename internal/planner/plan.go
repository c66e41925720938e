package planner

import (
	"context"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/telemetry"
)

// SchemaVersion is the version of the JSON form of a Plan.
const SchemaVersion = 1

// Decision is what a run does with a job.
type Decision string

// The decisions.
const (
	Run   Decision = "run"   // execute the job
	Reuse Decision = "reuse" // take a recorded successful result with the same digest
	Skip  Decision = "skip"  // filtered out by branch or event
)

// Result is a recorded successful result of a job, found by its digest.
type Result struct {
	RunID     string `json:"run_id"`
	AttemptID string `json:"attempt_id"`
	// Attempt is the attempt's number within its job, from 1.
	Attempt int `json:"attempt"`
}

// Lookup finds a recorded successful result for a job digest in the
// namespaces the run may read. The planner never reuses anything else.
type Lookup func(jobDigest string) (Result, bool)

// Options are the inputs of Make.
type Options struct {
	// Dir is a directory of the repository: the working tree for a local
	// run, any clone (bare or not) for the other triggers.
	Dir string
	// Pipeline is the pipeline at head (the working tree's for a local run).
	Pipeline *core.Pipeline
	// BasePipeline is the pipeline at the base commit, if known; with it,
	// explanations say when a job's definition changed or the job is new.
	BasePipeline *core.Pipeline
	// BasePipelineAt, when BasePipeline is nil, is called with the chosen
	// base commit to read the pipeline there: nil when it has none (or
	// none that parses). An error stops Make. It is not called when the
	// pipeline file is not among the changed paths: then the base's is
	// Pipeline, which must be the one read from that file.
	BasePipelineAt func(ctx context.Context, baseCommit string) (*core.Pipeline, error)
	// Trigger says what the run is for, which decides its base.
	Trigger Trigger
	// Executor is ExecutorShell or ExecutorSandbox, where the jobs will run.
	Executor string
	// Salt is mixed into every digest; changing it invalidates every
	// recorded result.
	Salt string
	// Lookup finds recorded results; nil means there are none.
	Lookup Lookup
	// NoReuse makes every job that is not skipped run (deltaci run --no-reuse).
	NoReuse bool
	// Remote is the remote a shallow clone is deepened from: "origin" if empty.
	Remote string
	// DeepenBy is how many commits a shallow clone is deepened by, once,
	// when the base is missing: 100 if zero.
	DeepenBy int
	// Strict makes warnings errors, as strict: true in the pipeline does.
	Strict bool
	// WorkTree, for a local run, is the working tree as the caller read it
	// (gitx.ReadWorkTree); nil to read it here. The plan hashes its dirty
	// files through it, so that its Snapshot can check the copy against
	// what the plan read.
	WorkTree *gitx.WorkTree
}

// Plan is what a run will do with each job, and why. Its JSON form is
// stable and documented in the package doc.
type Plan struct {
	Version int    `json:"version"`
	Event   string `json:"event"`
	Branch  string `json:"branch"`
	// Head is the planned commit, "" in a repository without commits.
	Head string `json:"head"`
	// Dirty reports uncommitted changes on top of Head (local runs only).
	Dirty bool `json:"dirty"`
	Base  Base `json:"base"`
	// ChangedFiles counts the paths that differ between base and head,
	// uncommitted changes included; 0 when there is no base.
	ChangedFiles int     `json:"changed_files"`
	Summary      Summary `json:"summary"`
	// Warnings are problems of the pipeline that did not stop the plan,
	// in pipeline order; each also opens its job's explanation.
	Warnings []Warning `json:"warnings,omitempty"`
	// Jobs are in topological order: every job after the jobs it needs.
	Jobs []Job `json:"jobs"`

	// files lists the files of the hermetic jobs (InputFiles); nil when
	// the pipeline has none, so that no plan keeps its tree for nothing.
	files *jobFiles
}

// Summary counts the decisions.
type Summary struct {
	Run   int `json:"run"`
	Reuse int `json:"reuse"`
	Skip  int `json:"skip"`
}

// Job is the plan for one job.
type Job struct {
	Name     string   `json:"name"`
	Decision Decision `json:"decision"`
	// Digest is the job's input digest: "sha256:" and 64 hex digits.
	Digest string `json:"digest"`
	// Needs are the job's needs, sorted.
	Needs []string `json:"needs"`
	// InputsFrom are the jobs whose digests its digest covers, sorted.
	InputsFrom []string `json:"inputs_from,omitempty"`
	// Inferred are what its inferred inputs entries expanded to, in order.
	Inferred []Inferred `json:"inferred,omitempty"`
	// ReusedFrom is the result taken, when Decision is Reuse.
	ReusedFrom *Result `json:"reused_from,omitempty"`
	// Why explains the decision, causes first and the deciding reason last.
	Why []Reason `json:"why"`
	// Links are the first MaxListedFiles symlinks among the job's files
	// that the digest followed, by path, and where each led.
	Links []Link `json:"links,omitempty"`
	// MoreLinks counts the links followed that are not listed.
	MoreLinks int `json:"more_links,omitempty"`
	// Hermetic says the job's workspace holds only the files of its
	// digest (InputFiles).
	Hermetic bool `json:"hermetic,omitempty"`
	// Cache is the job's cache key and fallbacks, when it has a cache.
	Cache *Cache `json:"cache,omitempty"`
}

// SetCache copies the planned cache key into a job's definition, for the
// runner that restores and saves it.
func (j Job) SetCache(spec *core.JobSpec) {
	if j.Cache == nil || spec.Cache == nil {
		return
	}
	c := *spec.Cache
	c.Key, c.Env = j.Cache.Key, j.Cache.Env
	spec.Cache = &c
}

// Job returns the plan of the job named name and whether there is one.
func (p *Plan) Job(name string) (Job, bool) {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return Job{}, false
}

// Make plans a run: it chooses the base, lists what changed, computes
// every job's input digest and decides for each job whether it runs, is
// reused or is skipped, with the reasons. See the package doc for the
// rules.
//
// Errors: KindInvalid for bad options or a pipeline whose needs do not
// form a graph without cycles; KindNotFound when the head commit does not
// exist; KindCanceled; other kinds from git.
func Make(ctx context.Context, o Options) (*Plan, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	jobs, order, err := indexJobs(o.Pipeline)
	if err != nil {
		return nil, err
	}
	dir, head, wt, err := o.locate(ctx)
	if err != nil {
		return nil, err
	}
	local := wt != nil
	f := &baseFinder{dir: dir, head: head, t: o.Trigger, remote: o.Remote, deepenBy: o.DeepenBy}
	if f.remote == "" {
		f.remote = "origin"
	}
	if f.deepenBy == 0 {
		f.deepenBy = 100
	}
	tracer := telemetry.ChildTracer(ctx)
	_, diff := tracer.Start(ctx, SpanDiff)
	base, err := f.find(ctx)
	if err != nil {
		telemetry.End(diff, err)
		return nil, err
	}
	var dirty []gitx.Change
	if local {
		dirty = wt.Changes
	}
	changes, err := changedPaths(ctx, dir, base, head, dirty)
	diff.SetAttributes(attrChangedFiles.Int(len(changes)), attrHasBase.Bool(!base.None()))
	telemetry.End(diff, err)
	if err != nil {
		return nil, err
	}
	if o.BasePipeline == nil && o.BasePipelineAt != nil && !base.None() {
		if !slices.ContainsFunc(changes, func(c gitx.Change) bool { return c.Path == pipeline.FileName }) {
			// The file is the same at the base as the one read for head.
			o.BasePipeline = o.Pipeline
		} else if o.BasePipeline, err = o.BasePipelineAt(ctx, base.Commit); err != nil {
			return nil, err
		}
	}
	_, span := tracer.Start(ctx, SpanDigests, trace.WithAttributes(attrJobs.Int(len(o.Pipeline.Jobs))))
	dg, err := digestJobs(o, jobs, order, func() (*inputs, *treeFiles, *followed, error) {
		return readInputs(ctx, o.Pipeline, dir, head, dirty, wt)
	})
	telemetry.End(span, err)
	if err != nil {
		return nil, err
	}
	in, tree, links, warnings, digests := dg.in, dg.tree, dg.links, dg.warnings, dg.digests

	p := &Plan{
		Version:      SchemaVersion,
		Event:        o.Trigger.Event(),
		Branch:       o.Trigger.Branch,
		Head:         head,
		Dirty:        len(dirty) > 0,
		Base:         base,
		ChangedFiles: len(changes),
		Warnings:     warnings,
	}
	if slices.ContainsFunc(o.Pipeline.Jobs, func(j core.JobSpec) bool { return j.Hermetic }) {
		p.files = &jobFiles{tree: tree, in: in}
	}
	matches := in.matchChanges(changes, links)
	if err := in.lockChanges(ctx, dir, base, changes, matches); err != nil {
		return nil, err
	}
	caches := map[string]*Cache{}
	for name, j := range jobs {
		if caches[name], err = jobCache(j, o.Executor, tree); err != nil {
			return nil, err
		}
	}
	d := decider{o: o, base: base, digests: digests, matches: matches, decided: map[string]Decision{},
		warned: warningsByJob(warnings), in: in, links: links, caches: caches}
	d.decideAll(p, jobs, order)
	return p, nil
}

// digested is what digestJobs read and computed.
type digested struct {
	in       *inputs
	tree     *treeFiles
	links    *followed
	warnings []Warning
	digests  map[string]string
}

// digestJobs reads the files the jobs' inputs match and computes every
// job's input digest.
func digestJobs(o Options, jobs map[string]core.JobSpec, order []string, read func() (*inputs, *treeFiles, *followed, error)) (digested, error) {
	in, tree, links, err := read()
	if err != nil {
		return digested{}, err
	}
	if err := checkHermeticLinks(o.Pipeline, in, links); err != nil {
		return digested{}, err
	}
	warnings := unmatchedInputs(o.Pipeline, in, tree)
	if len(warnings) > 0 && (o.Strict || o.Pipeline.Strict) {
		why := "strict: true is set in " + pipeline.FileName
		if o.Strict {
			why = "the plan is strict"
		}
		return digested{}, strictError(warnings, why)
	}
	digests, err := jobDigests(o, jobs, order, in, tree)
	if err != nil {
		return digested{}, err
	}
	return digested{in: in, tree: tree, links: links, warnings: warnings, digests: digests}, nil
}

// locate finds the repository's top and the head commit, and for a local
// run reads the working tree (returned non-nil), unless o holds it.
func (o Options) locate(ctx context.Context) (dir, head string, wt *gitx.WorkTree, err error) {
	dir, wt = o.Dir, o.WorkTree
	if o.Trigger.Kind != TriggerLocal {
		head, err = gitx.ResolveRev(ctx, dir, o.Trigger.Head)
		return dir, head, nil, err
	}
	if wt == nil {
		// Dirty paths and hashes are relative to the top of the working tree.
		if dir, err = gitx.TopLevel(ctx, dir); err != nil {
			return "", "", nil, err
		}
		if wt, err = gitx.ReadWorkTree(ctx, dir); err != nil {
			return "", "", nil, err
		}
	}
	return wt.Top, wt.Head, wt, nil
}

// readInputs reads the planned tree and sorts its files into the input
// sets of p's jobs: globs as the tree streams by, then ordered sets, then
// what symlinks lead to.
func readInputs(ctx context.Context, p *core.Pipeline, dir, head string, dirty []gitx.Change, wt *gitx.WorkTree) (*inputs, *treeFiles, *followed, error) {
	in := newInputs(p)
	tree, err := readTree(ctx, dir, head, dirty, wt, in)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := expandOrdered(ctx, dir, tree, in); err != nil {
		return nil, nil, nil, err
	}
	links, err := followLinks(ctx, dir, tree, in)
	if err != nil {
		return nil, nil, nil, err
	}
	return in, tree, links, nil
}

func (o Options) validate() error {
	const op = "plan"
	switch {
	case o.Pipeline == nil:
		return core.E(core.KindInvalid, op, "no pipeline")
	case o.Executor != ExecutorShell && o.Executor != ExecutorSandbox:
		return core.E(core.KindInvalid, op, "executor %q: want %q or %q", o.Executor, ExecutorShell, ExecutorSandbox)
	case o.DeepenBy < 0:
		return core.E(core.KindInvalid, op, "deepen by %d: must not be negative", o.DeepenBy)
	}
	switch o.Trigger.Kind {
	case TriggerPush, TriggerPullRequest, TriggerManual:
		if o.Trigger.Head == "" {
			return core.E(core.KindInvalid, op, "a %s run needs a head commit", o.Trigger.Kind)
		}
	case TriggerLocal:
		if o.Trigger.Head != "" {
			return core.E(core.KindInvalid, op, "a local run plans the working tree on HEAD: leave the head empty")
		}
	default:
		return core.E(core.KindInvalid, op, "unknown trigger %q", o.Trigger.Kind)
	}
	for _, j := range o.Pipeline.Jobs {
		for _, g := range j.Inputs {
			if in := core.ParseInput(g); !in.Inferred() && !doublestar.ValidatePattern(in.Value) {
				return core.E(core.KindInvalid, op, "job %s: bad input glob %q", j.Name, g)
			}
		}
	}
	return nil
}

// indexJobs maps the jobs by name and orders them so that each comes after
// its needs, refusing what has no such order: a digest covers the digests
// of the needs.
func indexJobs(p *core.Pipeline) (map[string]core.JobSpec, []string, error) {
	const op = "plan"
	jobs := make(map[string]core.JobSpec, len(p.Jobs))
	for _, j := range p.Jobs {
		if _, dup := jobs[j.Name]; dup {
			return nil, nil, core.E(core.KindInvalid, op, "job %s is defined twice", j.Name)
		}
		jobs[j.Name] = j
	}
	order := pipeline.TopoOrder(p)
	placed := make(map[string]bool, len(order))
	for _, name := range order {
		for _, n := range jobs[name].Needs {
			if !placed[n] {
				if _, ok := jobs[n]; !ok {
					return nil, nil, core.E(core.KindInvalid, op, "job %s needs %s, which is not a job", name, n)
				}
				return nil, nil, core.E(core.KindInvalid, op, "job %s is on a cycle of needs through %s", name, n)
			}
		}
		for _, n := range jobs[name].InputsFrom {
			if !placed[n] {
				if _, ok := jobs[n]; !ok {
					return nil, nil, core.E(core.KindInvalid, op, "job %s takes inputs from %s, which is not a job", name, n)
				}
				return nil, nil, core.E(core.KindInvalid, op, "job %s is on a cycle of needs and inputs_from through %s", name, n)
			}
		}
		placed[name] = true
	}
	return jobs, order, nil
}

// changedPaths lists what changed from base to head and, for a local run,
// in the working tree, each path once. Without a base nothing is listed:
// everything runs anyway.
func changedPaths(ctx context.Context, dir string, base Base, head string, dirty []gitx.Change) ([]gitx.Change, error) {
	if base.None() {
		return nil, nil
	}
	var changes []gitx.Change
	if base.Commit != head && head != "" {
		var err error
		if changes, err = gitx.ChangedPaths(ctx, dir, base.Commit, head); err != nil {
			return nil, err
		}
	}
	if len(dirty) == 0 {
		return changes, nil
	}
	at := make(map[string]int, len(changes))
	for i, c := range changes {
		at[c.Path] = i
	}
	for _, c := range dirty {
		if i, ok := at[c.Path]; ok {
			changes[i].Status = combine(changes[i].Status, c.Status)
			continue
		}
		changes = append(changes, c)
	}
	slices.SortFunc(changes, func(a, b gitx.Change) int { return strings.Compare(a.Path, b.Path) })
	return changes, nil
}

// combine is the status of a path from the base to the working tree, from
// its status from the base to HEAD and from HEAD to the working tree.
func combine(committed, dirty gitx.ChangeStatus) gitx.ChangeStatus {
	switch {
	case committed == gitx.Added && dirty != gitx.Deleted:
		return gitx.Added // new since the base, whatever happened next
	case committed == gitx.Deleted && dirty != gitx.Deleted:
		return gitx.Modified // in the base, deleted, and back
	}
	return dirty
}

// jobDigests computes every job's digest in topological order.
func jobDigests(o Options, jobs map[string]core.JobSpec, order []string, in *inputs, tree *treeFiles) (map[string]string, error) {
	digests := make(map[string]string, len(order))
	// By input set, and whether the map has "i": shared by jobs with the
	// same inputs.
	type start struct {
		set  int
		from bool
	}
	started := make(map[start]hash.Cloner)
	for _, name := range order {
		j := jobs[name]
		def, err := encodeDefinition(newDefinition(j, o.Executor))
		if err != nil {
			return nil, err
		}
		var rest digestRest
		for _, n := range sortedSet(j.Needs) {
			rest.Needs = append(rest.Needs, need{Name: n, Digest: digests[n]})
		}
		for _, n := range sortedSet(j.InputsFrom) {
			rest.From = append(rest.From, need{Name: n, Digest: digests[n]})
		}
		set := in.jobSet[name]
		if in.rules != nil {
			rest.Locks = in.rules.locks[set]
		}
		key := start{set, len(rest.From) > 0}
		h, ok := started[key]
		if !ok {
			keys := 5
			if key.from {
				keys++
			}
			if len(rest.Locks) > 0 {
				keys++
			}
			h = hashFiles(&tree.entries, tree.sets[set], keys)
			started[key] = h
		}
		if digests[name], err = finishDigest(h, def, rest, o.Salt); err != nil {
			return nil, err
		}
	}
	return digests, nil
}

// decider makes the decision for each job, in topological order.
type decider struct {
	o       Options
	base    Base
	digests map[string]string
	matches map[string][]FileMatch // changed files per job
	decided map[string]Decision
	warned  map[string][]Reason // warnings per job, first in its explanation
	in      *inputs
	links   *followed
	caches  map[string]*Cache // by job; nil for a job without one
}

// decideAll decides every job in topological order into p.
func (d *decider) decideAll(p *Plan, jobs map[string]core.JobSpec, order []string) {
	for _, name := range order {
		job := d.decide(jobs[name])
		p.Jobs = append(p.Jobs, job)
		d.decided[name] = job.Decision
		switch job.Decision {
		case Run:
			p.Summary.Run++
		case Reuse:
			p.Summary.Reuse++
		case Skip:
			p.Summary.Skip++
		}
	}
}

func (d *decider) decide(j core.JobSpec) Job {
	job := Job{Name: j.Name, Digest: d.digests[j.Name], Needs: sortedSet(j.Needs), Why: append([]Reason{}, d.warned[j.Name]...),
		Hermetic: j.Hermetic, Cache: d.caches[j.Name]}
	if len(j.InputsFrom) > 0 {
		job.InputsFrom = sortedSet(j.InputsFrom)
	}
	job.Inferred = d.in.inferred(j.Name)
	job.Links, job.MoreLinks = d.links.jobLinks(d.in.jobSet[j.Name])
	if r, ok := d.filtered(j); ok {
		job.Decision, job.Why = Skip, append(job.Why, r)
		return job
	}
	job.Why = append(job.Why, d.causes(j)...)
	switch {
	case d.base.None():
		job.Decision = Run
		job.Why = append(job.Why, Reason{Code: ReasonNoBase, Text: d.base.Reason})
	case !j.Reuse:
		job.Decision = Run
		job.Why = append(job.Why, Reason{Code: ReasonReuseDisabled, Text: "reuse: false, so it always runs"})
	case d.o.NoReuse:
		job.Decision = Run
		job.Why = append(job.Why, Reason{Code: ReasonNoReuse, Text: "reuse is turned off for this run"})
	default:
		var res Result
		var ok bool
		if d.o.Lookup != nil {
			res, ok = d.o.Lookup(job.Digest)
		}
		if ok {
			job.Decision, job.ReusedFrom = Reuse, &res
			job.Why = append(job.Why, Reason{Code: ReasonReused,
				Text: fmt.Sprintf("reused from run %s attempt %d", res.RunID, res.Attempt)})
		} else {
			job.Decision = Run
			job.Why = append(job.Why, Reason{Code: ReasonNoResult, Text: "no recorded successful result for its input digest"})
		}
	}
	return job
}

// filtered reports the branch or event filter that skips j, or that a job
// it needs is skipped: its outputs will not exist.
func (d *decider) filtered(j core.JobSpec) (Reason, bool) {
	t := d.o.Trigger
	if len(j.Branches) > 0 && !matchesAny(j.Branches, t.Branch) {
		text := fmt.Sprintf("branch %s does not match branches %s", t.Branch, list(j.Branches))
		if t.Branch == "" {
			text = fmt.Sprintf("no branch (detached HEAD) to match branches %s", list(j.Branches))
		}
		return Reason{Code: ReasonFilteredBranch, Text: text}, true
	}
	if len(j.Events) > 0 && !slices.Contains(j.Events, t.Event()) {
		return Reason{Code: ReasonFilteredEvent,
			Text: fmt.Sprintf("event %s is not in events %s", t.Event(), list(j.Events))}, true
	}
	var skipped []string
	for _, n := range sortedSet(j.Needs) {
		if d.decided[n] == Skip {
			skipped = append(skipped, n)
		}
	}
	if len(skipped) > 0 {
		return Reason{Code: ReasonUpstreamSkipped, Jobs: skipped,
			Text: fmt.Sprintf("needs %s, which %s skipped", strings.Join(skipped, ", "), plural(len(skipped), "is", "are"))}, true
	}
	return Reason{}, false
}

func matchesAny(globs []string, branch string) bool {
	if branch == "" {
		return false
	}
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, branch); ok {
			return true
		}
	}
	return false
}

func list(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
