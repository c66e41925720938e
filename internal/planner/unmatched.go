package planner

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/pipeline"
)

// WarningUnmatchedInput is the code of a Warning about an input glob that
// matches no file of the planned tree.
const WarningUnmatchedInput = "unmatched_input"

// Warning is a problem of the pipeline that the plan found and that does
// not stop it, unless the pipeline says strict: true or Options.Strict is
// set. A glob of inputs that matches nothing is the usual one: the job then
// never runs again for the files it was meant to cover.
type Warning struct {
	// Code says what kind of problem: WarningUnmatchedInput.
	Code string `json:"code"`
	// Job is the job whose inputs hold Glob.
	Job  string `json:"job"`
	Glob string `json:"glob"`
	// Nearest is the existing path (a directory ends with "/") nearest to
	// the glob by edit distance, "" when none is close enough to be what
	// was meant.
	Nearest string `json:"nearest,omitempty"`
	// Text says it in one line for people, without the job's name.
	Text string `json:"text"`
}

// String is the warning on one line, with the job's name.
func (w Warning) String() string { return "job " + w.Job + ": " + w.Text }

// maxChildren bounds the names kept per directory when looking for the
// nearest path, so that a directory of a million files costs little.
const maxChildren = 10000

// unmatchedInputs lists, in pipeline order, every input glob of a job that
// matched no file of t. Jobs without inputs match the whole tree and are
// never listed.
func unmatchedInputs(p *core.Pipeline, in *inputs, t *treeFiles) []Warning {
	var ws []Warning
	for _, j := range p.Jobs {
		if in.noInputs[j.Name] {
			continue
		}
		if entries := in.ordered[in.jobSet[j.Name]]; entries != nil {
			for _, e := range entries {
				if !e.Inferred() && !in.rules.hit[in.rules.globID[e.Value]] {
					ws = append(ws, Warning{Code: WarningUnmatchedInput, Job: j.Name, Glob: e.String()})
				}
			}
			continue
		}
		for _, g := range in.jobGlobs[j.Name] {
			if !t.hit[g] {
				ws = append(ws, Warning{Code: WarningUnmatchedInput, Job: j.Name, Glob: in.ix.globs[g].pattern})
			}
		}
	}
	if len(ws) == 0 {
		return nil
	}
	n := newNeighbours(ws, &t.entries)
	for i := range ws {
		w := &ws[i]
		w.Nearest = n.nearest(strings.TrimPrefix(w.Glob, "!"))
		w.Text = fmt.Sprintf("input glob %q matches no file", w.Glob)
		if w.Nearest != "" {
			w.Text += "; did you mean " + w.Nearest + "?"
		}
	}
	return ws
}

// stem splits a glob's literal start: the directories before its first
// special character, and the literal rest of the next path segment.
// "src/api/ma*.go" gives [src api], "ma", false; "go.mod" gives [], "go.mod",
// true.
func stem(pattern string) (dirs []string, rest string, literal bool) {
	lit := pattern
	meta := strings.IndexAny(pattern, metaChars)
	if meta >= 0 {
		lit = pattern[:meta]
	}
	parts := strings.Split(lit, "/")
	return parts[:len(parts)-1], parts[len(parts)-1], meta < 0
}

// neighbours holds the names found in the directories that the unmatched
// globs lead through: "src/" holds "main.c" and "lib/".
type neighbours map[string][]string

func newNeighbours(ws []Warning, e *entries) neighbours {
	kids := map[string]map[string]bool{}
	for _, w := range ws {
		dirs, _, _ := stem(strings.TrimPrefix(w.Glob, "!"))
		prefix := ""
		kids[prefix] = map[string]bool{}
		for _, d := range dirs {
			prefix += d + "/"
			kids[prefix] = map[string]bool{}
		}
	}
	add := func(dir, rest string) {
		set, ok := kids[dir]
		if !ok || len(set) >= maxChildren {
			return
		}
		name := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name = rest[:i+1]
		}
		set[name] = true
	}
	for i := range e.n {
		p := e.at(int32(i)).Path
		add("", p)
		for j := 0; j < len(p); j++ {
			if p[j] == '/' {
				add(p[:j+1], p[j+1:])
			}
		}
	}
	n := neighbours{}
	for dir, set := range kids {
		names := make([]string, 0, len(set))
		for name := range set {
			names = append(names, name)
		}
		slices.Sort(names)
		n[dir] = names
	}
	return n
}

// nearest is the existing path closest to what pattern names: the first
// directory of its literal start that does not exist is compared with its
// neighbours; when all exist, the literal rest is compared with the names
// in the last one.
func (n neighbours) nearest(pattern string) string {
	dirs, rest, literal := stem(pattern)
	prefix := ""
	for _, d := range dirs {
		names := n[prefix]
		if _, ok := slices.BinarySearch(names, d+"/"); ok {
			prefix += d + "/"
			continue
		}
		var sub []string
		for _, name := range names {
			if strings.HasSuffix(name, "/") {
				sub = append(sub, name)
			}
		}
		if c := pipeline.Closest(d+"/", sub); c != "" {
			return prefix + c
		}
		return ""
	}
	if rest == "" {
		return ""
	}
	names := n[prefix]
	cands := make([]string, len(names))
	for i, name := range names {
		name = strings.TrimSuffix(name, "/")
		if !literal {
			// "ma*" can only name the start of a name: compare starts.
			name = prefixRunes(name, utf8.RuneCountInString(rest))
		}
		cands[i] = name
	}
	c := pipeline.Closest(rest, cands)
	if c == "" {
		return ""
	}
	name := names[slices.Index(cands, c)]
	if literal && c == rest {
		return prefix + name + "**" // "src" names a directory, not its files
	}
	return prefix + name
}

func prefixRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// warningsByJob turns warnings into the first reasons of each job's
// explanation.
func warningsByJob(ws []Warning) map[string][]Reason {
	out := map[string][]Reason{}
	for _, w := range ws {
		out[w.Job] = append(out[w.Job], Reason{Code: ReasonUnmatchedInput, Text: w.Text})
	}
	return out
}

// strictError is the error of a strict plan with warnings.
func strictError(ws []Warning, why string) error {
	lines := make([]string, len(ws))
	for i, w := range ws {
		lines[i] = w.String()
	}
	return core.E(core.KindInvalid, "plan", "%s, so %s: %s",
		why, plural(len(ws), "this warning is an error", "these warnings are errors"), strings.Join(lines, "; "))
}
