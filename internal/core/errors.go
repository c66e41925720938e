// Package core holds Delta CI's domain: runs, jobs and attempts, their state
// machines, failure reasons, the pipeline definition and the one error type.
// It imports nothing internal.
package core

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that adapters (HTTP, CLI exit codes) can map it
// without inspecting messages.
type Kind string

// The error kinds. Exactly one place per adapter maps them to statuses.
const (
	KindInvalid      Kind = "invalid"      // the caller sent something malformed
	KindNotFound     Kind = "not_found"    // the entity does not exist
	KindConflict     Kind = "conflict"     // illegal or stale state transition
	KindUnauthorized Kind = "unauthorized" // missing or bad credentials
	KindLeaseLost    Kind = "lease_lost"   // a fenced write with a stale lease token
	KindUnavailable  Kind = "unavailable"  // a dependency is down; retrying may help
	KindInternal     Kind = "internal"     // a bug or an unexpected failure
	KindCanceled     Kind = "canceled"     // the operation was canceled by the caller
)

// Error is the single error type of Delta CI. Op names the operation, Msg
// says what went wrong for a human, Err is the cause.
type Error struct {
	Kind Kind
	Op   string
	Msg  string
	Err  error
}

// Sentinels for errors.Is: a *Error matches a sentinel of the same Kind.
var (
	ErrInvalid      = &Error{Kind: KindInvalid}
	ErrNotFound     = &Error{Kind: KindNotFound}
	ErrConflict     = &Error{Kind: KindConflict}
	ErrUnauthorized = &Error{Kind: KindUnauthorized}
	ErrLeaseLost    = &Error{Kind: KindLeaseLost}
	ErrUnavailable  = &Error{Kind: KindUnavailable}
	ErrInternal     = &Error{Kind: KindInternal}
)

// E builds an *Error of the given kind with a formatted message.
func E(kind Kind, op, format string, args ...any) *Error {
	return &Error{Kind: kind, Op: op, Msg: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error of the given kind around a cause.
func Wrap(kind Kind, op string, err error) *Error {
	return &Error{Kind: kind, Op: op, Err: err}
}

func (e *Error) Error() string {
	var s string
	if e.Op != "" {
		s = e.Op + ": "
	}
	switch {
	case e.Msg != "" && e.Err != nil:
		s += e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		s += e.Msg
	case e.Err != nil:
		s += e.Err.Error()
	default:
		s += string(e.Kind)
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a sentinel (no Op, Msg or Err) of the same Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Op == "" && t.Msg == "" && t.Err == nil && t.Kind == e.Kind
}

// KindOf returns the Kind of the outermost *Error in err's chain, or
// KindInternal when there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
