package planner

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// ReasonCode names a kind of reason, for machines.
type ReasonCode string

// The reasons. Warnings come first, then causes say what changed; each
// job not skipped also gets exactly one deciding reason, last: no_base,
// reuse_disabled, no_reuse, reused or no_result. A skipped job gets one
// filter reason.
const (
	// Warnings: one per input glob that matches no file (Plan.Warnings).
	ReasonUnmatchedInput ReasonCode = WarningUnmatchedInput

	// Causes.
	ReasonInputsChanged     ReasonCode = "inputs_changed"     // Files lists changed paths its inputs match
	ReasonDefinitionChanged ReasonCode = "definition_changed" // Fields lists what differs from the base pipeline
	ReasonNewJob            ReasonCode = "new_job"            // not in the base pipeline
	ReasonUpstreamRuns      ReasonCode = "upstream_runs"      // Jobs lists needs that will run
	ReasonInputsFromRuns    ReasonCode = "inputs_from_runs"   // Jobs lists inputs_from jobs that will run

	// Deciding reasons.
	ReasonNoBase        ReasonCode = "no_base"        // no base commit: everything runs
	ReasonReuseDisabled ReasonCode = "reuse_disabled" // the job says reuse: false
	ReasonNoReuse       ReasonCode = "no_reuse"       // the run was asked not to reuse
	ReasonReused        ReasonCode = "reused"         // a recorded success has the same digest
	ReasonNoResult      ReasonCode = "no_result"      // no recorded success has the same digest

	// Filters.
	ReasonFilteredBranch  ReasonCode = "filtered_branch"  // branches does not match the run's branch
	ReasonFilteredEvent   ReasonCode = "filtered_event"   // events does not list the run's event
	ReasonUpstreamSkipped ReasonCode = "upstream_skipped" // Jobs lists needs that are skipped
)

// MaxListedFiles caps the files an inputs_changed reason lists; the rest
// are counted in MoreFiles.
const MaxListedFiles = 20

// Reason is one line of a job's explanation.
type Reason struct {
	Code ReasonCode `json:"code"`
	// Text says it in one line for people.
	Text string `json:"text"`
	// Files are the first MaxListedFiles changed paths that the job's
	// inputs match, sorted by path (inputs_changed).
	Files []FileMatch `json:"files,omitempty"`
	// MoreFiles counts the matching changed paths not listed.
	MoreFiles int `json:"more_files,omitempty"`
	// Fields are the definition keys that differ from the base
	// (definition_changed): run, env, secrets, sandbox.network, hermetic, runs-on,
	// needs, inputs.
	Fields []string `json:"fields,omitempty"`
	// Jobs are the needs concerned (upstream_runs, upstream_skipped), or
	// the jobs it takes inputs from (inputs_from_runs).
	Jobs []string `json:"jobs,omitempty"`
}

// FileMatch is a changed path and the input glob that matched it.
type FileMatch struct {
	// Path is relative to the top of the repository. In JSON, bytes that
	// are not UTF-8 become U+FFFD, and PathBase64 holds the exact bytes.
	Path       string `json:"path"`
	PathBase64 string `json:"path_base64,omitempty"`
	// Status is added, deleted, modified, type_changed or unmerged.
	Status string `json:"status"`
	// Glob is the first of the job's inputs, in file order, that matches
	// the path (or the first link of Via); "" for a job without inputs,
	// which matches every path.
	Glob string `json:"glob"`
	// Via, when the inputs reach the path only through symlinks, are the
	// links followed: the first is one the inputs match, the last leads
	// to the path.
	Via []string `json:"via,omitempty"`
}

func newFileMatch(c gitx.Change) FileMatch {
	fm := FileMatch{Path: c.Path, Status: statusName(c.Status)}
	if !utf8.ValidString(c.Path) {
		fm.PathBase64 = base64.StdEncoding.EncodeToString([]byte(c.Path))
	}
	return fm
}

func statusName(s gitx.ChangeStatus) string {
	switch s {
	case gitx.Added:
		return "added"
	case gitx.Deleted:
		return "deleted"
	case gitx.TypeChanged:
		return "type_changed"
	case gitx.Unmerged:
		return "unmerged"
	}
	return "modified"
}

// Explain is the job's explanation on one line: its reasons' texts.
func (j Job) Explain() string {
	texts := make([]string, len(j.Why))
	for i, r := range j.Why {
		texts[i] = r.Text
	}
	return strings.Join(texts, "; ")
}

// causes says what changed for j since the base: matching files, its
// definition, and needs that will run.
func (d *decider) causes(j core.JobSpec) []Reason {
	var why []Reason
	if files := d.matches[j.Name]; len(files) > 0 {
		r := Reason{Code: ReasonInputsChanged}
		r.Files = files[:min(len(files), MaxListedFiles)]
		r.MoreFiles = len(files) - len(r.Files)
		n := plural(len(files), "file", "files")
		if len(j.Inputs) == 0 {
			r.Text = fmt.Sprintf("%d changed %s, and without inputs it depends on the whole tree", len(files), n)
		} else {
			r.Text = fmt.Sprintf("%d changed %s %s its inputs", len(files), n, plural(len(files), "matches", "match"))
		}
		r.Text += throughLinks(files)
		why = append(why, r)
	}
	if d.o.BasePipeline != nil {
		if r := d.definitionChange(j); r.Code != "" {
			why = append(why, r)
		}
	}
	var running []string
	for _, n := range sortedSet(j.Needs) {
		if d.decided[n] == Run {
			running = append(running, n)
		}
	}
	if len(running) > 0 {
		why = append(why, Reason{Code: ReasonUpstreamRuns, Jobs: running,
			Text: fmt.Sprintf("upstream %s will run", strings.Join(running, ", "))})
	}
	var from []string
	for _, n := range sortedSet(j.InputsFrom) {
		if d.decided[n] == Run {
			from = append(from, n)
		}
	}
	if len(from) > 0 {
		why = append(why, Reason{Code: ReasonInputsFromRuns, Jobs: from,
			Text: fmt.Sprintf("it takes inputs from %s, which will run", strings.Join(from, ", "))})
	}
	return why
}

// definitionChange compares j with the job of the same name in the base
// pipeline.
func (d *decider) definitionChange(j core.JobSpec) Reason {
	old, ok := d.o.BasePipeline.Job(j.Name)
	if !ok {
		return Reason{Code: ReasonNewJob, Text: "new job: the base pipeline does not have it"}
	}
	var fields []string
	if old.Run != j.Run {
		fields = append(fields, "run")
	}
	if !maps.Equal(old.Env, j.Env) {
		fields = append(fields, "env")
	}
	if !slices.Equal(sortedSet(old.Secrets), sortedSet(j.Secrets)) {
		fields = append(fields, "secrets")
	}
	if old.Sandbox.Network != j.Sandbox.Network {
		fields = append(fields, "sandbox.network")
	}
	if old.Hermetic != j.Hermetic {
		fields = append(fields, "hermetic")
	}
	if !slices.Equal(sortedSet(old.RunsOn), sortedSet(j.RunsOn)) {
		fields = append(fields, "runs-on")
	}
	if !slices.Equal(sortedSet(old.Needs), sortedSet(j.Needs)) {
		fields = append(fields, "needs")
	}
	if !sameInputs(old.Inputs, j.Inputs) {
		fields = append(fields, "inputs")
	}
	if !slices.Equal(sortedSet(old.InputsFrom), sortedSet(j.InputsFrom)) {
		fields = append(fields, "inputs_from")
	}
	if len(fields) == 0 {
		return Reason{}
	}
	return Reason{Code: ReasonDefinitionChanged, Fields: fields,
		Text: "its definition changed: " + strings.Join(fields, ", ")}
}

// throughLinks names the first changed file reached through symlinks, and
// counts the others: " (a/link → file changed, and 2 more through links)".
func throughLinks(files []FileMatch) string {
	var first *FileMatch
	n := 0
	for i := range files {
		if len(files[i].Via) > 0 {
			if n++; first == nil {
				first = &files[i]
			}
		}
	}
	if first == nil {
		return ""
	}
	s := " (" + first.Chain() + " changed"
	if n > 1 {
		s += fmt.Sprintf(", and %d more through links", n-1)
	}
	return s + ")"
}

// Chain is the path as the job reaches it: its links, if any, then the
// path, joined by " → ".
func (f FileMatch) Chain() string {
	return strings.Join(append(slices.Clip(f.Via), f.Path), " → ")
}

// sameInputs compares inputs entries: as sets when both are globs only,
// else in order, which then matters.
func sameInputs(a, b []string) bool {
	glob := func(s string) bool { return core.ParseInput(s).Kind == core.InputGlob }
	if !slices.ContainsFunc(a, func(s string) bool { return !glob(s) }) && !slices.ContainsFunc(b, func(s string) bool { return !glob(s) }) {
		return slices.Equal(sortedSet(a), sortedSet(b))
	}
	return slices.Equal(a, b)
}
