package eventlog

import (
	"slices"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Role is what an API token may do within a namespace. Each role includes
// the ones before it: read < write < admin.
type Role string

// Roles of a scope.
const (
	// RoleRead may read refs, manifests and blobs; with AllNamespaces also
	// the event log and the audit trail.
	RoleRead Role = "read"
	// RoleWrite may also upload blobs, store manifests, and set, pin and
	// delete refs.
	RoleWrite Role = "write"
	// RoleAdmin may also set, delete and apply retention policies; with
	// AllNamespaces also run GC, verify the log and manage tokens.
	RoleAdmin Role = "admin"
)

// rank orders roles; an unknown role ranks below every known one.
func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Includes reports whether r allows everything other allows; nothing
// includes an unknown role.
func (r Role) Includes(other Role) bool { return other.rank() > 0 && r.rank() >= other.rank() }

// AllNamespaces, as a scope's namespace, covers every namespace and the
// operations that span them (the log, GC, verification, tokens).
const AllNamespaces = "*"

// Scope grants a role in one namespace, or in all of them. It is written
// NAMESPACE:ROLE, such as outputs:write or *:admin.
type Scope struct {
	Namespace string
	Role      Role
}

// String renders NAMESPACE:ROLE.
func (s Scope) String() string { return s.Namespace + ":" + string(s.Role) }

// maxScopes bounds the scopes of one token.
const maxScopes = 64

// ParseScope reads NAMESPACE:ROLE; NAMESPACE is a ref namespace or "*",
// ROLE is read, write or admin. Errors are core.KindInvalid.
func ParseScope(s string) (Scope, error) {
	ns, role, ok := strings.Cut(s, ":")
	bad := func(why string) (Scope, error) {
		return Scope{}, core.E(core.KindInvalid, "parse scope", "%.80q is not a scope (%s); write NAMESPACE:ROLE, such as outputs:write or *:admin", s, why)
	}
	if !ok {
		return bad("no ':'")
	}
	if ns != AllNamespaces && !segmentRE.MatchString(ns) {
		return bad("the namespace must be * or letters, digits, '.', '_' or '-'")
	}
	r := Role(role)
	if r.rank() == 0 {
		return bad("the role must be read, write or admin")
	}
	return Scope{Namespace: ns, Role: r}, nil
}

// Scopes is what one token may do. Its canonical form (Canonical) keeps
// one scope per namespace, the strongest, sorted by namespace.
type Scopes []Scope

// ParseScopes reads scopes separated by commas (spaces around them are
// allowed), such as "outputs:write,logs:read", and returns them in
// canonical form. At least one scope is required. Errors are
// core.KindInvalid.
func ParseScopes(s string) (Scopes, error) {
	var out Scopes
	for part := range strings.SplitSeq(s, ",") {
		sc, err := ParseScope(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out.Canonical()
}

// Canonical returns the scopes with one entry per namespace (the strongest
// role given for it), sorted by namespace with "*" first. It refuses an
// empty list, and more than 64 scopes, with core.KindInvalid.
func (ss Scopes) Canonical() (Scopes, error) {
	best := map[string]Role{}
	for _, s := range ss {
		if s.Role.rank() == 0 || (s.Namespace != AllNamespaces && !segmentRE.MatchString(s.Namespace)) {
			return nil, core.E(core.KindInvalid, "scopes", "%.80q is not a scope", s.String())
		}
		if s.Role.rank() > best[s.Namespace].rank() {
			best[s.Namespace] = s.Role
		}
	}
	switch {
	case len(best) == 0:
		return nil, core.E(core.KindInvalid, "scopes", "a token needs at least one scope, such as outputs:write or *:admin")
	case len(best) > maxScopes:
		return nil, core.E(core.KindInvalid, "scopes", "%d scopes; a token has at most %d", len(best), maxScopes)
	}
	out := make(Scopes, 0, len(best))
	for ns, r := range best {
		out = append(out, Scope{Namespace: ns, Role: r})
	}
	// "*" sorts before every namespace, which starts with a letter or digit.
	slices.SortFunc(out, func(a, b Scope) int { return strings.Compare(a.Namespace, b.Namespace) })
	return out, nil
}

// String renders the scopes separated by commas, as ParseScopes reads them.
func (ss Scopes) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// Allows reports whether the scopes grant role in namespace ns. With ns
// AllNamespaces (an operation that spans every namespace) only a "*"
// scope grants it.
func (ss Scopes) Allows(ns string, role Role) bool {
	for _, s := range ss {
		if (s.Namespace == AllNamespaces || s.Namespace == ns) && s.Role.Includes(role) {
			return true
		}
	}
	return false
}

// AllowsAny reports whether the scopes grant role in some namespace: what
// the content-addressed routes (blobs, manifests, uploads) need, since a
// blob belongs to no namespace.
func (ss Scopes) AllowsAny(role Role) bool {
	for _, s := range ss {
		if s.Role.Includes(role) {
			return true
		}
	}
	return false
}
