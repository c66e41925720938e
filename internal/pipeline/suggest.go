package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// synonyms maps keys that other CI systems use to ours, because a
// misspelling search cannot get from "depends_on" to "needs".
var synonyms = map[string]string{
	"depends_on":      "needs",
	"depends-on":      "needs",
	"dependencies":    "needs",
	"requires":        "needs",
	"script":          "run",
	"steps":           "run",
	"command":         "run",
	"commands":        "run",
	"cmd":             "run",
	"environment":     "env",
	"variables":       "env",
	"vars":            "env",
	"paths":           "inputs",
	"changes":         "inputs",
	"files":           "inputs",
	"artifacts":       "outputs",
	"timeout-minutes": "timeout",
	"timeout_minutes": "timeout",
	"runs_on":         "runs-on",
	"tags":            "runs-on",
	"only":            "branches",
	"on":              "events",
	"retries":         "retry",
}

// suggest returns the candidate closest to s, or "" when none is close
// enough to be a plausible typo. Ties go to the earlier candidate.
func suggest(s string, candidates []string) string {
	if t, ok := synonyms[strings.ToLower(s)]; ok {
		if slices.Contains(candidates, t) {
			return t
		}
		return "" // a known word for a key not valid here, not a typo ("script" is not "strict")
	}
	return Closest(s, candidates)
}

// Closest returns the candidate nearest to s by edit distance, ignoring
// case, or "" when none is close enough to be a plausible typo: within a
// third of the candidate's length, at least 1. Ties go to the earlier
// candidate. Strings longer than 100 bytes are never compared, which bounds
// the cost per candidate.
func Closest(s string, candidates []string) string {
	// Long strings are not typos, and the distance is quadratic in length.
	const maxLen = 100
	ls := strings.ToLower(s)
	if len(ls) > maxLen {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		if len(c) > maxLen {
			continue
		}
		// A third of the length allows one typo in short names and a few in
		// long ones, without proposing unrelated words.
		limit := max(1, utf8.RuneCountInString(c)/3)
		// The distance is at least the difference in length: most
		// candidates of a long list are refused without computing it.
		if n, m := utf8.RuneCountInString(ls), utf8.RuneCountInString(c); n-m > limit || m-n > limit {
			continue
		}
		d := distance(ls, strings.ToLower(c))
		if d > limit {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// maxSuggestWork bounds, per file, the characters compared to find close
// names (about 50 ms of work): a file of thousands of unknown needs among
// a thousand jobs would otherwise take minutes. Past it, hints list the
// candidates without a closest one; only the first problems are printed.
const maxSuggestWork = 1 << 24

// didYouMean is a hint naming the closest candidate, or listing them all
// when none is close (and there are few enough to read).
func (p *problems) didYouMean(s string, candidates []string, what string) string {
	work := 0
	for _, c := range candidates {
		work += len(s) * len(c)
	}
	if p.suggestWork += work; p.suggestWork <= maxSuggestWork {
		if c := suggest(s, candidates); c != "" {
			return fmt.Sprintf("did you mean %q?", c)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	if len(candidates) > 20 {
		return fmt.Sprintf("%s include %s, ...", what, quoteList(candidates[:20]))
	}
	return fmt.Sprintf("%s: %s", what, quoteList(candidates))
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent runes each cost
// one. Transpositions matter because "evn" for "env" is the common typo.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows suffice: the transposition looks back two rows.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
