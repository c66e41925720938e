package pipeline

import (
	"fmt"
	"path"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// inferKeys are the keys of an inputs entry written as a mapping.
var inferKeys = []string{"go", "workspace"}

const inputsHint = `list globs, "!" globs that exclude, {go: ./dir} or {workspace: name}, e.g. ["src/**", "!src/**/*_test.go"]`

// inputs reads a job's inputs: globs, "!" globs and {go: dir} or
// {workspace: name} mappings, in order, encoded as core.Input strings.
func (t *tree) inputs(v value) []string {
	vs, ok := t.list(v, "inputs", "globs")
	if !ok {
		return nil
	}
	if len(vs) == 0 {
		t.add(v.at, "remove inputs to depend on the whole repository, or list the globs this job reads", "inputs is empty")
		return nil
	}
	var out []string
	seen := map[string]bool{}
	adds := false
	for _, iv := range vs {
		in, ok := t.input(iv)
		if !ok {
			// Counted as adding, so that a bad entry is not reported twice.
			adds = true
			continue
		}
		s := in.String()
		if seen[s] {
			t.add(iv.at, "remove the repeated entry", "inputs lists %s twice", quoteInput(in))
			continue
		}
		seen[s] = true
		adds = adds || in.Kind != core.InputExclude
		out = append(out, s)
	}
	if !adds {
		t.add(v.at, `list what the job reads before what it leaves out, e.g. ["src/**", "!src/docs/**"]`,
			"inputs only exclude files, so they match nothing")
	}
	return out
}

func quoteInput(in core.Input) string {
	if in.Inferred() {
		return in.Display()
	}
	return fmt.Sprintf("%q", in.Display())
}

// input reads one entry of inputs.
func (t *tree) input(v value) (core.Input, bool) {
	switch k := v.kind(); k {
	case kindBad:
		return core.Input{}, false
	case kindString:
		s := v.text()
		in := core.Input{Kind: core.InputGlob, Value: s}
		what := "inputs"
		if rest, ok := strings.CutPrefix(s, "!"); ok {
			in = core.Input{Kind: core.InputExclude, Value: rest}
			what = "inputs exclusion"
		}
		if msg, hint := pathGlobProblem(in.Value); msg != "" {
			t.add(v.at, hint, "%s: %s", what, msg)
			return core.Input{}, false
		}
		return in, true
	case kindMap:
		return t.inferred(v)
	default:
		t.add(v.at, inputsHint, "each entry of inputs must be a glob or a mapping, got %s", k)
		return core.Input{}, false
	}
}

// inferred reads {go: ./dir} or {workspace: name}.
func (t *tree) inferred(v value) (core.Input, bool) {
	es := t.entries(v)
	if len(es) != 1 {
		t.add(v.at, "write one entry per mapping: {go: ./dir} or {workspace: name}",
			"an inputs mapping has one key, go or workspace, got %d", len(es))
		return core.Input{}, false
	}
	e := es[0]
	ev := t.value(e)
	switch e.key {
	case "go":
		s, ok := t.str(ev, "inputs go")
		if !ok {
			return core.Input{}, false
		}
		dir, msg := moduleDir(s)
		if msg != "" {
			t.add(ev.at, "write the module's directory from the top of the repository, e.g. {go: ./services/api}", "inputs go: %s", msg)
			return core.Input{}, false
		}
		return core.Input{Kind: core.InputGo, Value: dir}, true
	case "workspace":
		s, ok := t.str(ev, "inputs workspace")
		if !ok {
			return core.Input{}, false
		}
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			t.add(ev.at, `write the package's name from its package.json, e.g. {workspace: "@acme/web"}`,
				"inputs workspace: %q is not a package name", s)
			return core.Input{}, false
		}
		return core.Input{Kind: core.InputWorkspace, Value: s}, true
	default:
		t.unknownKey(e, "an inputs mapping", inferKeys)
		return core.Input{}, false
	}
}

// moduleDir cleans a module directory written relative to the top of the
// repository: "./svc/", "svc" and "svc/./" are "svc", "./" and "." are ".".
func moduleDir(s string) (string, string) {
	switch {
	case s == "":
		return "", "the directory is empty"
	case strings.HasPrefix(s, "/"):
		return "", fmt.Sprintf("%q is absolute", s)
	case strings.ContainsAny(s, "\x00\\"):
		return "", fmt.Sprintf("%q is not a directory of the repository", s)
	}
	dir := path.Clean(s)
	if dir == ".." || strings.HasPrefix(dir, "../") {
		return "", fmt.Sprintf("%q is outside the repository", s)
	}
	return dir, ""
}
