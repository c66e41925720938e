package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// FuzzParse checks that no input crashes the parser and that what it
// returns keeps its promises: a valid pipeline, or located invalid errors.
// It calls parse, not Parse, so that a bug of this package is a crash here
// instead of being recovered.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse("fuzz.yml", data)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		checkFuzzPipeline(t, p)
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if p := (*Error)(nil); !errors.As(err, &p) {
		t.Fatalf("error %T is not a *Error: %v", err, err)
	}
	if k := core.KindOf(err); k != core.KindInvalid {
		t.Fatalf("KindOf = %q, want invalid: %v", k, err)
	}
	var list []*Error
	switch e := err.(type) {
	case *Error:
		list = []*Error{e}
	case ErrorList:
		if len(e) < 2 {
			t.Fatalf("ErrorList of %d problems", len(e))
		}
		list = e
	default:
		t.Fatalf("error of type %T", err)
	}
	for i, e := range list {
		if e.File != "fuzz.yml" || e.Msg == "" || e.Line < 0 || e.Col < 0 {
			t.Fatalf("malformed problem %#v", e)
		}
		if i > 0 && before(pos{e.Line, e.Col}, pos{list[i-1].Line, list[i-1].Col}) {
			t.Fatalf("problems out of order: %v", err)
		}
	}
}

func checkFuzzPipeline(t *testing.T, p *core.Pipeline) {
	t.Helper()
	if p.Version != 1 || len(p.Jobs) == 0 {
		t.Fatalf("accepted a pipeline with version %d and %d jobs", p.Version, len(p.Jobs))
	}
	names := map[string]bool{}
	for _, j := range p.Jobs {
		if names[j.Name] || !jobName.ok(j.Name) {
			t.Fatalf("accepted job name %q", j.Name)
		}
		names[j.Name] = true
		if j.Run == "" || j.Timeout <= 0 || j.Timeout > maxTimeout {
			t.Fatalf("accepted job %#v", j)
		}
		for _, g := range slices.Concat(j.Inputs, j.Outputs) {
			if msg, _ := pathGlobProblem(g); msg != "" {
				t.Fatalf("accepted glob %q: %s", g, msg)
			}
		}
	}
	placed := map[string]bool{}
	order := TopoOrder(p)
	if len(order) != len(p.Jobs) {
		t.Fatalf("TopoOrder has %d jobs, want %d", len(order), len(p.Jobs))
	}
	for _, name := range order {
		j, _ := p.Job(name)
		for _, n := range j.Needs {
			if !placed[n] {
				t.Fatalf("TopoOrder places %q before its need %q", name, n)
			}
		}
		placed[name] = true
	}
}
