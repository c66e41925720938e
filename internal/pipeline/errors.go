package pipeline

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Error is one problem in a pipeline file, located at the YAML node that
// causes it. Line and Col are 1-based; both are 0 when the problem has no
// position (the parser crashed). Every *Error is of kind core.KindInvalid.
type Error struct {
	File string
	Line int
	Col  int
	Msg  string // what is wrong
	Hint string // how to fix it; may be empty
}

// Error formats the problem as "file:line:col: msg", followed by
// "\n  hint: ..." when there is a hint.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns a fresh core invalid error, so that core.KindOf and
// errors.Is(err, core.ErrInvalid) classify a bad file without knowing this
// package. A fresh value keeps callers from mutating the shared sentinel.
func (e *Error) Unwrap() error { return &core.Error{Kind: core.KindInvalid} }

// ErrorList is every problem found in one file, sorted by position. Parse
// returns it when there is more than one problem.
type ErrorList []*Error

// maxPrinted bounds the text of an ErrorList: past it, more problems are
// noise that hides the first ones.
const maxPrinted = 50

// Error prints one problem per line (each with its hint), at most 50.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == maxPrinted {
			fmt.Fprintf(&b, "\n... and %d more problems", len(l)-maxPrinted)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so errors.As finds the *Error values and
// core.KindOf reports core.KindInvalid.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// pos is a 1-based position in the file; the zero pos means unknown.
type pos struct{ line, col int }

// problems collects the errors of one file.
type problems struct {
	file string
	errs []*Error
	// A node reached through several aliases is checked once per alias;
	// its problem is reported once.
	seen map[Error]bool
	// suggestWork is what didYouMean has spent, against maxSuggestWork.
	suggestWork int
}

func (p *problems) add(at pos, hint, format string, args ...any) {
	e := Error{
		File: p.file,
		Line: at.line,
		Col:  at.col,
		Msg:  fmt.Sprintf(format, args...),
		Hint: hint,
	}
	if p.seen[e] {
		return
	}
	if p.seen == nil {
		p.seen = map[Error]bool{}
	}
	p.seen[e] = true
	p.errs = append(p.errs, &e)
}

// err returns nil, the only *Error, or an ErrorList sorted by position.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	list := slices.Clone(p.errs)
	slices.SortStableFunc(list, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), strings.Compare(a.Msg, b.Msg))
	})
	if len(list) == 1 {
		return list[0]
	}
	return ErrorList(list)
}
