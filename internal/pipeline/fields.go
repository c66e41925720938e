package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/goccy/go-yaml/ast"
)

// Typed readers for the schema. Each reports a problem at the value and
// returns ok=false when the value does not have the type it must have.

// item is one string of a list, with its position.
type item struct {
	s  string
	at pos
}

// quoteHint suggests quoting a scalar that YAML read as a number or boolean.
func quoteHint(v value) string {
	return fmt.Sprintf("quote it: %q", v.text())
}

// yamlString renders s for a hint: bare when YAML reads it back as the
// same string in a flow list, quoted otherwise.
func yamlString(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\r:#,[]{}&*!|>'\"%@`?\\") || strings.HasPrefix(s, "-") {
		return strconv.Quote(s)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.Quote(s)
	}
	switch strings.ToLower(s) {
	case "true", "false", "null", "~":
		return strconv.Quote(s)
	}
	return s
}

// str reads a string. what names the value in messages ("env CI").
func (t *tree) str(v value, what string) (string, bool) {
	switch k := v.kind(); k {
	case kindBad:
		return "", false
	case kindString:
		return v.text(), true
	case kindInt, kindFloat, kindBool:
		t.add(v.at, quoteHint(v), "%s must be a string, got %s", what, k)
	case kindNull:
		t.add(v.at, `write "" for an empty string`, "%s has no value", what)
	default:
		t.add(v.at, "", "%s must be a string, got %s", what, k)
	}
	return "", false
}

// boolean reads true or false.
func (t *tree) boolean(v value, what string) (bool, bool) {
	switch k := v.kind(); k {
	case kindBad:
	case kindBool:
		b, _ := v.node.(*ast.BoolNode)
		return b != nil && b.Value, true
	case kindString:
		t.add(v.at, "write true or false, without quotes", "%s must be true or false, got %q", what, v.text())
	default:
		t.add(v.at, "write true or false", "%s must be true or false, got %s", what, k)
	}
	return false, false
}

// integer reads an integer within [lo, hi].
func (t *tree) integer(v value, what string, lo, hi int) (int, bool) {
	k := v.kind()
	switch k {
	case kindBad:
		return 0, false
	case kindInt:
	case kindString:
		t.add(v.at, "write the number without quotes", "%s must be an integer, got %q", what, v.text())
		return 0, false
	default:
		t.add(v.at, "", "%s must be an integer, got %s", what, k)
		return 0, false
	}
	n, _ := v.node.(*ast.IntegerNode)
	var i int
	ok := false
	if n != nil {
		switch x := n.Value.(type) {
		case int64:
			i, ok = int(x), true
		case uint64:
			i, ok = int(x), x <= math.MaxInt64
		}
	}
	if !ok || i < lo || i > hi {
		t.add(v.at, "", "%s must be between %d and %d, got %s", what, lo, hi, v.text())
		return 0, false
	}
	return i, true
}

// list checks that v is a list (an empty value counts as an empty one).
// itemDesc says what the list holds, for the message.
func (t *tree) list(v value, what, itemDesc string) ([]value, bool) {
	switch k := v.kind(); k {
	case kindBad:
		return nil, false
	case kindNull:
		return nil, true
	case kindList:
		return t.items(v), true
	case kindString, kindInt, kindFloat, kindBool:
		t.add(v.at, fmt.Sprintf("write %s: [%s]", what, yamlString(v.text())), "%s must be a list of %s, got %s", what, itemDesc, k)
	default:
		t.add(v.at, "", "%s must be a list of %s, got %s", what, itemDesc, k)
	}
	return nil, false
}

// stringList reads a list of strings, checking each with check (which may be
// nil) and reporting entries listed twice.
func (t *tree) stringList(v value, what, itemDesc string, check func(item) bool) ([]item, bool) {
	vs, ok := t.list(v, what, itemDesc)
	if !ok {
		return nil, false
	}
	out := make([]item, 0, len(vs))
	seen := map[string]bool{}
	for _, iv := range vs {
		s, sok := t.str(iv, "each entry of "+what)
		if !sok {
			ok = false
			continue
		}
		it := item{s: s, at: iv.at}
		if seen[s] {
			t.add(it.at, "remove the repeated entry", "%s lists %q twice", what, s)
			ok = false
			continue
		}
		seen[s] = true
		if check != nil && !check(it) {
			ok = false
			continue
		}
		out = append(out, it)
	}
	return out, ok
}

func texts(items []item) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.s
	}
	return out
}

// A name rule is a pattern with its human wording.
type nameRule struct {
	re   *regexp.Regexp
	max  int
	rule string
}

var (
	jobName = nameRule{
		re:   regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`),
		max:  100,
		rule: "use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 100 characters",
	}
	envName = nameRule{
		re:   regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`),
		rule: "use letters, digits and '_', not starting with a digit",
	}
	secretName = nameRule{
		re:   regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`),
		rule: "use upper-case letters, digits and '_', not starting with a digit",
	}
)

func (r nameRule) ok(s string) bool {
	return (r.max == 0 || len(s) <= r.max) && r.re.MatchString(s)
}

// pathGlob checks a glob matched against repository paths: relative,
// slash-separated, without "." or ".." segments, and valid for doublestar.
func (t *tree) pathGlob(what string) func(item) bool {
	return func(it item) bool {
		msg, hint := pathGlobProblem(it.s)
		if msg != "" {
			t.add(it.at, hint, "%s: %s", what, msg)
		}
		return msg == ""
	}
}

func pathGlobProblem(g string) (msg, hint string) {
	if g == "" {
		return "empty glob", `write a glob such as "src/**"`
	}
	if strings.HasPrefix(g, "/") {
		return fmt.Sprintf("glob %q is absolute", g),
			fmt.Sprintf("globs are relative to the repository root: write %q", strings.TrimLeft(g, "/"))
	}
	if strings.HasSuffix(g, "/") {
		return fmt.Sprintf("glob %q ends with /, so it matches no file", g),
			fmt.Sprintf("write %q to match everything under it", g+"**")
	}
	for _, seg := range strings.Split(g, "/") {
		switch seg {
		case "..":
			return fmt.Sprintf("glob %q has a \"..\" segment", g), "globs cannot reach outside the repository"
		case ".":
			return fmt.Sprintf("glob %q has a \".\" segment", g), "paths have no \"./\": write the path from the repository root"
		case "":
			return fmt.Sprintf("glob %q has an empty segment (//)", g), "use a single / between directories"
		}
	}
	if !doublestar.ValidatePattern(g) {
		return fmt.Sprintf("bad glob %q: %v", g, doublestar.ErrBadPattern), globHint
	}
	if alternatives(g) > maxAlternatives {
		return alternativesProblem(g)
	}
	return "", ""
}

const globHint = `close every [ and {, and escape a literal *, ?, [ or { with \`

// maxAlternatives bounds the combinations of a glob's {a,b} groups: the
// matcher tries them one after the other for each path, so that 30 groups
// of two took minutes a path.
const maxAlternatives = 256

func alternativesProblem(g string) (msg, hint string) {
	return fmt.Sprintf("glob %q has more than %d combinations of {} alternatives", g, maxAlternatives),
		"use fewer {a,b} groups, or several globs"
}

// alternatives returns how many combinations of alternatives g's brace
// groups make ("{a,b}/{c,d,e}" makes 6), or maxAlternatives+1 if more. It
// reads g once, without recursion, as groups nest without limit.
func alternatives(g string) int {
	const most = maxAlternatives + 1
	// A group's count is the sum of its alternatives', an alternative's
	// the product of its groups'.
	type group struct{ sum, prod int }
	stack := []group{{prod: 1}}
	for i := 0; i < len(g); i++ {
		top := &stack[len(stack)-1]
		switch g[i] {
		case '\\':
			i++
		case '{':
			stack = append(stack, group{prod: 1})
		case ',':
			if len(stack) > 1 {
				top.sum, top.prod = min(top.sum+top.prod, most), 1
			}
		case '}':
			if len(stack) > 1 {
				n := min(top.sum+top.prod, most)
				stack = stack[:len(stack)-1]
				outer := &stack[len(stack)-1]
				outer.prod = min(outer.prod*n, most)
			}
		}
	}
	return stack[0].prod
}

// glob checks a glob matched against something else than a path (a
// branch name), where only doublestar's syntax applies.
func (t *tree) glob(what string) func(item) bool {
	return func(it item) bool {
		switch {
		case it.s == "":
			t.add(it.at, `write a glob such as "release/*"`, "%s: empty glob", what)
		case !doublestar.ValidatePattern(it.s):
			t.add(it.at, globHint, "%s: bad glob %q: %v", what, it.s, doublestar.ErrBadPattern)
		case alternatives(it.s) > maxAlternatives:
			msg, hint := alternativesProblem(it.s)
			t.add(it.at, hint, "%s: %s", what, msg)
		default:
			return true
		}
		return false
	}
}

// unknownKey reports a key that is not valid where it is.
func (t *tree) unknownKey(e entry, where string, valid []string) {
	t.add(e.keyAt, t.didYouMean(e.key, valid, "valid keys"), "unknown key %q in %s", e.key, where)
}
