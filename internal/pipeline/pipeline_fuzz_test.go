package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
)

// FuzzParse checks that no input crashes the parser, that what it returns
// keeps its promises (a valid pipeline, or located invalid errors), and
// that no input within the limits costs more than a bounded amount of
// memory per byte. It calls parse, not Parse, so that a bug of this package
// is a crash here instead of being recovered.
//
// The input is head, then unit repeated n times, then tail, up to a little
// past maxFileSize: repeating lets the fuzzer reach the sizes where a cost
// growing faster than the input shows, which it does not reach by growing
// inputs a few bytes at a time.
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
		f.Add(data, []byte(nil), []byte(nil), uint32(0))
	}
	f.Fuzz(func(t *testing.T, head, unit, tail []byte, n uint32) {
		data := repeat(head, unit, tail, n)
		var before runtime.MemStats
		if len(data) > 16<<10 {
			runtime.ReadMemStats(&before)
		}
		p, err := parse("fuzz.yml", data)
		if len(data) > 16<<10 {
			checkAllocated(t, &before, len(data))
		}
		if err != nil {
			checkFuzzError(t, err)
		} else {
			checkFuzzPipeline(t, p)
		}
		if len(data) <= 64<<10 && checkLimits(&problems{}, data) {
			checkTokens(t, bytes.TrimPrefix(data, byteOrderMark))
		}
	})
}

// repeat is head, unit n times and tail, cut a little past maxFileSize.
func repeat(head, unit, tail []byte, n uint32) []byte {
	const most = maxFileSize + 64
	times := 0
	if len(unit) > 0 {
		times = max(0, min(int(n), (most-len(head)-len(tail))/len(unit)))
	}
	data := slices.Concat(head, bytes.Repeat(unit, times), tail)
	return data[:min(len(data), most)]
}

// checkAllocated fails when parsing allocated more than 2 KiB a byte of
// input, plus a fixed 64 MiB: the YAML parser's own cost for the worst
// shapes within the limits is under half of that.
func checkAllocated(t *testing.T, before *runtime.MemStats, size int) {
	t.Helper()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if got, most := after.TotalAlloc-before.TotalAlloc, uint64(size)*2048+64<<20; got > most {
		t.Fatalf("parsing %d bytes allocated %d MiB, more than %d MiB", size, got>>20, most>>20)
	}
}

// event is a token that makes structure: '[' and '{' at their column, '-'
// and '?' at theirs, and ':' at the column of the token before it.
type event struct {
	kind byte
	col  int
}

// tokenEvents reads data with the YAML parser's tokenizer, reporting
// whether it fails.
func tokenEvents(data []byte) (events []event, failed bool) {
	tokens := lexer.Tokenize(string(data))
	for i, tk := range tokens {
		switch tk.Type {
		case token.InvalidType:
			return events, true
		case token.SequenceStartType:
			events = append(events, event{'[', tk.Position.Column})
		case token.MappingStartType:
			events = append(events, event{'{', tk.Position.Column})
		case token.SequenceEntryType:
			events = append(events, event{'-', tk.Position.Column})
		case token.MappingKeyType:
			events = append(events, event{'?', tk.Position.Column})
		case token.MappingValueType:
			col := 0
			if i > 0 {
				col = tokens[i-1].Position.Column
			}
			// A block scalar's content follows its header (and the
			// header's comment): the parser groups them at the header's
			// column.
			if j := i - 1; j > 0 && tokens[j].Type == token.StringType {
				for j--; j > 0 && tokens[j].Type == token.CommentType; j-- {
				}
				if t := tokens[j].Type; t == token.LiteralType || t == token.FoldedType {
					col = tokens[j].Position.Column
				}
			}
			events = append(events, event{':', col})
		}
	}
	return events, false
}

// checkTokens checks that measure sees the structure the YAML parser's
// tokenizer sees: the same tokens at the same columns. Where the tokenizer
// fails the parser does not run, so what measure sees there does not
// matter.
func checkTokens(t *testing.T, data []byte) {
	t.Helper()
	want, failed := tokenEvents(data)
	var got []event
	limit, broken := measureTokens(data, func(kind byte, col int) { got = append(got, event{kind, col}) })
	if failed {
		return
	}
	if broken {
		t.Fatalf("measure takes %q for input the tokenizer fails on", data)
	}
	if limit != nil && len(got) < len(want) {
		// measure stops at the limit.
		want = want[:len(got)]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("measure sees other tokens than the tokenizer in %q:\n got %v\nwant %v", data, got, want)
	}
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
		for _, g := range j.Outputs {
			if msg, _ := pathGlobProblem(g); msg != "" {
				t.Fatalf("accepted glob %q: %s", g, msg)
			}
		}
		adds := false
		for _, s := range j.Inputs {
			in := core.ParseInput(s)
			adds = adds || in.Kind != core.InputExclude
			switch in.Kind {
			case core.InputGlob, core.InputExclude:
				if msg, _ := pathGlobProblem(in.Value); msg != "" {
					t.Fatalf("accepted input %q: %s", s, msg)
				}
			case core.InputGo:
				if d, msg := moduleDir(in.Value); msg != "" || d != in.Value {
					t.Fatalf("accepted input %q: %s", s, msg)
				}
			case core.InputWorkspace:
				if in.Value == "" {
					t.Fatalf("accepted input %q", s)
				}
			}
			if core.ParseInput(in.String()) != in {
				t.Fatalf("input %q does not round-trip", s)
			}
		}
		if len(j.Inputs) > 0 && !adds {
			t.Fatalf("accepted inputs %q that only exclude", j.Inputs)
		}
	}
	placed := map[string]bool{}
	order := TopoOrder(p)
	if len(order) != len(p.Jobs) {
		t.Fatalf("TopoOrder has %d jobs, want %d", len(order), len(p.Jobs))
	}
	for _, name := range order {
		j, _ := p.Job(name)
		for _, n := range slices.Concat(j.Needs, j.InputsFrom) {
			if !placed[n] {
				t.Fatalf("TopoOrder places %q before %q, which it needs or takes inputs from", name, n)
			}
		}
		placed[name] = true
	}
}
