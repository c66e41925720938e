// Package retention decides which refs retention policies keep. It is pure:
// given refs, policies and a time, it returns a plan with a reason for every
// ref it would delete, and the registry applies the plan.
//
// A policy applies to the refs of its namespace whose "name:tag" matches its
// selector (a doublestar glob). A ref is kept when any applicable policy
// keeps it: it is among that policy's KeepLast most recently updated refs,
// it was updated within KeepWithin, or it is pinned and KeepPinned is set.
// Refs no policy applies to are always kept.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
)

// Decision is the verdict on one ref.
type Decision struct {
	Ref    eventlog.Ref
	Keep   bool
	Reason string // why it is kept, or why it goes
}

// Plan evaluates policies over refs at now. Decisions come in ref order.
func Plan(refs []eventlog.Ref, policies []eventlog.Policy, now time.Time) []Decision {
	// Rank refs per policy: newest first, ties broken by name for stability.
	keptBy := map[int][]string{}
	applies := map[int][]int{} // ref index → policy indexes
	for pi, p := range policies {
		var idx []int
		for ri, r := range refs {
			if r.Namespace == p.Namespace && match(p.Selector, r) {
				idx = append(idx, ri)
				applies[ri] = append(applies[ri], pi)
			}
		}
		sort.SliceStable(idx, func(a, b int) bool {
			ra, rb := refs[idx[a]], refs[idx[b]]
			if !ra.UpdatedAt.Equal(rb.UpdatedAt) {
				return ra.UpdatedAt.After(rb.UpdatedAt)
			}
			return ra.String() < rb.String()
		})
		for rank, ri := range idx {
			r := refs[ri]
			var why []string
			if rank < p.KeepLast {
				why = append(why, fmt.Sprintf("among the %d newest of %s %q", p.KeepLast, p.Namespace, p.Selector))
			}
			if p.KeepWithin > 0 && now.Sub(r.UpdatedAt) < p.KeepWithin {
				why = append(why, fmt.Sprintf("updated within %s", p.KeepWithin))
			}
			if p.KeepPinned && r.Pinned {
				why = append(why, "pinned")
			}
			if len(why) > 0 {
				keptBy[ri] = append(keptBy[ri], why...)
			}
		}
	}
	out := make([]Decision, len(refs))
	for ri, r := range refs {
		switch {
		case len(applies[ri]) == 0:
			out[ri] = Decision{Ref: r, Keep: true, Reason: "no retention policy applies"}
		case len(keptBy[ri]) > 0:
			out[ri] = Decision{Ref: r, Keep: true, Reason: "kept: " + strings.Join(keptBy[ri], "; ")}
		default:
			var rules []string
			for _, pi := range applies[ri] {
				rules = append(rules, describe(policies[pi]))
			}
			out[ri] = Decision{Ref: r, Keep: false, Reason: fmt.Sprintf("updated %s ago; kept by none of: %s",
				now.Sub(r.UpdatedAt).Round(time.Second), strings.Join(rules, "; "))}
		}
	}
	return out
}

func match(selector string, r eventlog.Ref) bool {
	ok, err := doublestar.Match(selector, r.Name+":"+r.Tag)
	return err == nil && ok
}

// describe renders a policy as people write it.
func describe(p eventlog.Policy) string {
	var parts []string
	if p.KeepLast > 0 {
		parts = append(parts, fmt.Sprintf("keep_last %d", p.KeepLast))
	}
	if p.KeepWithin > 0 {
		parts = append(parts, fmt.Sprintf("keep_within %s", p.KeepWithin))
	}
	if p.KeepPinned {
		parts = append(parts, "keep_pinned")
	}
	return fmt.Sprintf("%s %q (%s)", p.Namespace, p.Selector, strings.Join(parts, ", "))
}
