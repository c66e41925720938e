package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Value shows in place of its content.
const Redacted = "[redacted]"

// Value is a secret string that cannot be printed, logged or encoded by
// accident: fmt, slog and encoding/json all see Redacted. Reveal is the one
// way to read it. The zero Value is empty. Values cannot be compared with
// ==; compare what Reveal returns.
//
// The string is captured by a closure: fmt prints a func as an address at
// any depth, and reflection cannot read what a closure captures, so even a
// Value in an unexported field (where fmt cannot call its methods) or
// printed with a verb fmt rejects does not show its content.
type Value struct {
	get func() string
}

// New wraps s as a secret Value.
func New(s string) Value { return Value{get: func() string { return s }} }

// Reveal returns the secret itself. Call it only where the value must leave
// the process: a job's environment, an authenticated request.
func (v Value) Reveal() string {
	if v.get == nil {
		return ""
	}
	return v.get()
}

// String returns Redacted.
func (v Value) String() string { return Redacted }

// GoString returns Redacted, for %#v.
func (v Value) GoString() string { return Redacted }

// Format writes Redacted for every verb, so %x or %q cannot bypass String.
func (v Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue returns Redacted, for log/slog.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes a Value as the JSON string "[redacted]". Redacting
// rather than failing keeps a log line or an error response that happens to
// hold a Value working; code that really must send the value has to put
// Reveal's result in a plain string field, which is explicit and greppable.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
