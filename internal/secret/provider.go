package secret

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Provider looks secret values up by name.
//
// Lookup returns a non-empty Value, or an error of kind core.KindNotFound
// when the provider has no value for name (its message says what to set),
// core.KindInvalid when name is not a valid secret name or the provider is
// misconfigured (a world-readable file, an empty value), and
// core.KindCanceled when ctx is done. Error messages never contain values.
type Provider interface {
	Lookup(ctx context.Context, name string) (Value, error)
}

// nameRule explains ValidName to users, in the words internal/pipeline uses.
const nameRule = "use upper-case letters, digits and '_', not starting with a digit"

// ValidName reports whether name is a valid secret name: [A-Z_][A-Z0-9_]*.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func lookupOp(name string) string { return "look up secret " + name }

// checkLookup does what every Lookup does first: honour ctx, then the name.
func checkLookup(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return core.Wrap(core.KindCanceled, "look up secret", err)
	}
	if !ValidName(name) {
		return core.E(core.KindInvalid, "look up secret", "secret name %q is not valid: %s", name, nameRule)
	}
	return nil
}

// blank reports whether s holds nothing but whitespace. Such a value is
// almost certainly a mistake, and masking it would blank out every space of
// the log.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// notSet is the cause of a KindNotFound error: which secrets are missing
// and, for each, what the operator can do. Chain and Resolve read it to
// merge the hints of several providers or names into one message.
type notSet struct {
	names []string
	hints []string // hints[i] says how to set names[i]
}

func (e *notSet) Error() string {
	if len(e.names) == 1 {
		return "not set: " + e.hints[0]
	}
	parts := make([]string, len(e.names))
	for i, n := range e.names {
		parts[i] = fmt.Sprintf("%s (%s)", n, e.hints[i])
	}
	return "not set: " + strings.Join(parts, "; ")
}

// missing builds the KindNotFound error for one name.
func missing(name, hint string) error {
	return &core.Error{Kind: core.KindNotFound, Op: lookupOp(name), Err: &notSet{names: []string{name}, hints: []string{hint}}}
}

// hintOf returns what to do about a KindNotFound error for name, whether it
// came from this package or from another Provider.
func hintOf(name string, err error) string {
	var ns *notSet
	if errors.As(err, &ns) && len(ns.names) == 1 && ns.names[0] == name {
		return ns.hints[0]
	}
	return err.Error()
}

// Chain asks its providers in order; the first that has the name wins.
// A KindNotFound from every provider becomes one KindNotFound listing every
// place the secret could be set. Any other error stops the search: a
// misconfigured provider must be fixed, not silently skipped.
type Chain []Provider

// Lookup implements Provider.
func (c Chain) Lookup(ctx context.Context, name string) (Value, error) {
	if err := checkLookup(ctx, name); err != nil {
		return Value{}, err
	}
	var hints []string
	for _, p := range c {
		v, err := p.Lookup(ctx, name)
		if err == nil {
			return v, nil
		}
		if core.KindOf(err) != core.KindNotFound {
			return Value{}, err
		}
		hints = append(hints, hintOf(name, err))
	}
	if len(hints) == 0 {
		return Value{}, missing(name, "no secret provider is configured")
	}
	return Value{}, missing(name, strings.Join(hints, ", or "))
}

// Resolve looks up every name (duplicates once) and returns the values by
// name. When some are not set, it returns a single KindNotFound error that
// names all of them with their hints, so the operator fixes them in one go.
// Any other error is returned as soon as it happens.
func Resolve(ctx context.Context, p Provider, names []string) (map[string]Value, error) {
	vals := make(map[string]Value, len(names))
	var ns notSet
	for _, name := range names {
		if _, done := vals[name]; done || slices.Contains(ns.names, name) {
			continue
		}
		v, err := p.Lookup(ctx, name)
		switch {
		case err == nil:
			vals[name] = v
		case core.KindOf(err) == core.KindNotFound:
			ns.names = append(ns.names, name)
			ns.hints = append(ns.hints, hintOf(name, err))
		default:
			return nil, err
		}
	}
	if len(ns.names) == 1 {
		return nil, missing(ns.names[0], ns.hints[0])
	}
	if len(ns.names) > 1 {
		return nil, &core.Error{Kind: core.KindNotFound, Op: "look up secrets", Err: &ns}
	}
	return vals, nil
}
