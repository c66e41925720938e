// Package pipeline reads a .deltaci.yml into a validated core.Pipeline.
//
// The file is data, not a program: there is no expression language. Every
// problem is reported at the file, line and column of the YAML node that
// causes it, with what is wrong and how to fix it, and all problems of a
// file are reported at once. Parse never panics, whatever the input.
package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Parse reads the pipeline in data; filename is only used in errors.
// On failure it returns a *Error when there is one problem and an
// ErrorList when there are several; either is of kind core.KindInvalid.
//
// Before the YAML parser reads data, Parse refuses a file larger than
// 1 MiB, nested more than 64 levels deep, with a block mapping of more
// than 1000 keys, with keys leading to a value longer than 256 bytes
// together, with more than 32 blank lines in a row, or with many tabs on
// long lines or long runs of '<': shapes whose cost to the parser grows
// faster than the file.
// It reports the first such problem alone, where the limit is passed.
func Parse(filename string, data []byte) (*core.Pipeline, error) {
	// A bug here must not take down the server that parses a pushed file.
	return safely(filename, func() (*core.Pipeline, error) { return parse(filename, data) })
}

// Load reads and parses the file at path. A missing file is an error of
// kind core.KindNotFound.
func Load(path string) (*core.Pipeline, error) {
	data, err := readFile(path)
	if err != nil {
		kind := core.KindInternal
		if errors.Is(err, fs.ErrNotExist) {
			kind = core.KindNotFound
		}
		return nil, core.Wrap(kind, "load pipeline", err)
	}
	return Parse(path, data)
}

// readFile reads the file at path, but no more of it than Parse needs to
// refuse it as too large.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}

// parse is Parse without the safety net for this package's own bugs, so
// that fuzzing finds them.
func parse(filename string, data []byte) (*core.Pipeline, error) {
	probs := &problems{file: filename}
	if !checkLimits(probs, data) {
		return nil, probs.err()
	}
	p := decode(probs, data)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// safely runs f, turning a panic into an *Error about the file.
func safely[T any](filename string, f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, &Error{
				File: filename,
				Msg:  fmt.Sprintf("cannot read the file: the YAML parser failed (%v)", r),
				Hint: "check the file's YAML syntax, and please report this file to the Delta CI developers",
			}
		}
	}()
	return f()
}

// readYAML parses data; a panic of the YAML library becomes an *Error.
func readYAML(filename string, data []byte) (*ast.File, error) {
	return safely(filename, func() (*ast.File, error) {
		// Duplicate keys are reported by this package, with both
		// positions and without stopping at the first.
		return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	})
}

var byteOrderMark = []byte("\ufeff")

const emptyHint = "a pipeline file starts with version: 1 followed by a jobs: mapping"

func decode(probs *problems, data []byte) *core.Pipeline {
	// goccy/go-yaml reads a byte order mark as part of the first key.
	data = bytes.TrimPrefix(data, byteOrderMark)
	f, err := readYAML(probs.file, data)
	if err != nil {
		var crash *Error
		if errors.As(err, &crash) {
			probs.errs = append(probs.errs, crash)
		} else {
			syntaxProblem(probs, err)
		}
		return nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		switch d.Body.(type) {
		case nil, *ast.DirectiveNode, *ast.CommentGroupNode, *ast.CommentNode:
			// Nothing a pipeline could be made of.
		default:
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		probs.add(pos{1, 1}, emptyHint, "the file is empty")
		return nil
	}
	if len(docs) > 1 {
		at := posOf(docs[1].Body)
		if s := docs[1].Start; s != nil && s.Position != nil {
			at = pos{s.Position.Line, s.Position.Column}
		}
		probs.add(at, "a pipeline file holds one YAML document: remove the --- line and the document after it",
			"a second YAML document starts here")
	}
	t := newTree(probs, docs[0].Body)
	return t.pipeline(t.resolve(docs[0].Body))
}

// syntaxProblem reports a parse error at the position the parser gives.
func syntaxProblem(probs *problems, err error) {
	var msg string
	var at pos
	var ye yaml.Error
	if errors.As(err, &ye) {
		// Not ye.Error(): it quotes the source around the error, in time
		// growing with the square of the tokens on the line.
		msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			at = pos{tk.Position.Line, tk.Position.Column}
		}
	} else {
		msg = err.Error()
	}
	hint := "check the indentation of this line and the lines above it, and quote values that contain \": \" or start with a special character"
	switch {
	case strings.Contains(msg, "end token"):
		hint = "close the bracket or quote that opens here"
	case strings.Contains(msg, "'\t'"):
		hint = "indent with spaces: YAML does not allow tabs"
		msg = strings.ReplaceAll(msg, "\t", `\t`)
	}
	probs.add(at, hint, "YAML syntax error: %s", msg)
}

func (t *tree) pipeline(root value) *core.Pipeline {
	switch k := root.kind(); k {
	case kindMap:
	case kindBad:
		return nil
	default:
		t.add(root.at, emptyHint, "the top level must be a mapping with version and jobs, got %s", k)
		return nil
	}
	hasVersion, hasJobs, strict := false, false, false
	defs := &settings{}
	var jobs []*jobDecl
	for _, e := range t.entries(root) {
		v := t.value(e)
		switch e.key {
		case "version":
			hasVersion = true
			t.version(v)
		case "strict":
			strict, _ = t.boolean(v, "strict")
		case "defaults":
			t.defaults(v, defs)
		case "jobs":
			hasJobs = true
			jobs = t.jobs(v)
		default:
			hint := t.didYouMean(e.key, topKeys, "valid keys")
			if t.looksLikeJob(v) {
				hint = fmt.Sprintf("jobs go under the jobs: key; indent %q below jobs:", e.key)
			}
			t.add(e.keyAt, hint, "unknown top-level key %q", e.key)
		}
	}
	if !hasVersion {
		t.add(root.at, "add version: 1 as the first line", "missing version")
	}
	if !hasJobs {
		t.add(root.at, "add a jobs: mapping, e.g. jobs: {test: {run: go test ./...}}", "missing jobs")
	}
	t.checkNeeds(jobs)
	if len(t.errs) > 0 {
		return nil
	}
	p := &core.Pipeline{Version: 1, Strict: strict, Jobs: make([]core.JobSpec, len(jobs))}
	for i, j := range jobs {
		p.Jobs[i] = j.build(defs)
	}
	return p
}

func (t *tree) version(v value) {
	switch k := v.kind(); k {
	case kindBad:
	case kindInt:
		if n, _ := v.node.(*ast.IntegerNode); n == nil || (n.Value != int64(1) && n.Value != uint64(1)) {
			t.add(v.at, "this Delta CI reads version: 1", "version %s is not supported", v.text())
		}
	case kindString:
		t.add(v.at, "write version: 1 without quotes", "version must be the number 1, got %q", v.text())
	default:
		t.add(v.at, "write version: 1", "version must be 1, got %s", k)
	}
}

func (t *tree) defaults(v value, defs *settings) {
	if !t.mapping(v, "defaults", "{timeout: 30m, runs-on: [linux]}") {
		return
	}
	for _, e := range t.entries(v) {
		if t.setting(e, defs) {
			continue
		}
		hint := t.didYouMean(e.key, settingKeys, "valid keys")
		for _, k := range jobKeys {
			if k == e.key {
				hint = fmt.Sprintf("%s can only be set on a job, not in defaults", k)
			}
		}
		t.add(e.keyAt, hint, "unknown key %q in defaults", e.key)
	}
}

func (t *tree) jobs(v value) []*jobDecl {
	const example = "e.g. jobs: {test: {run: go test ./...}}"
	switch k := v.kind(); k {
	case kindMap:
	case kindBad:
		return nil
	case kindNull:
		t.add(v.at, "define at least one job, "+example, "jobs is empty")
		return nil
	case kindList:
		t.add(v.at, "write each job as its name followed by a colon and its settings, not as a - list item",
			"jobs must be a mapping from job name to job, got a list")
		return nil
	default:
		t.add(v.at, example, "jobs must be a mapping from job name to job, got %s", k)
		return nil
	}
	entries := t.entries(v)
	if len(entries) == 0 {
		t.add(v.at, "define at least one job, "+example, "jobs is empty")
	}
	jobs := make([]*jobDecl, 0, len(entries))
	for _, e := range entries {
		jobs = append(jobs, t.job(e))
	}
	return jobs
}

// looksLikeJob reports whether v is a mapping with a run key: a job
// written outside jobs:.
func (t *tree) looksLikeJob(v value) bool {
	if v.kind() != kindMap {
		return false
	}
	for _, e := range t.entries(v) {
		if e.key == "run" {
			return true
		}
	}
	return false
}

// FileName is the pipeline file at the root of a repository.
const FileName = ".deltaci.yml"
