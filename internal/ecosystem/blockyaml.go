package ecosystem

import (
	"fmt"
	"strconv"
	"strings"
)

// The lockfiles of pnpm and of yarn 2 and later are YAML, written by the
// tools themselves in block style: one "key: value" per line, nested by
// indentation, flow collections on one line. A general YAML parser costs
// seconds on a lockfile of a few thousand packages (its cost grows faster
// than the file), so they are read here as what they are: a tree of lines.
// Only the keys and scalar values the slicing follows are decoded; every
// entry's digest is over its lines as written.

// lineNode is one "key: value" line and the lines indented under it.
type lineNode struct {
	key   string
	value string // after "key:", trimmed; a quoted scalar unquoted
	line  int    // from 1
	// first and last are the node's own line and its last line under it,
	// as indexes into the file's lines.
	first, last int
	indent      int
	children    []*lineNode
}

// blockDoc is a lockfile read as a tree of lines.
type blockDoc struct {
	lines []string
	root  *lineNode
}

// readBlockYAML reads data as block YAML. An error names the line.
func readBlockYAML(file string, data []byte) (*blockDoc, error) {
	d := &blockDoc{lines: strings.Split(string(data), "\n"), root: &lineNode{indent: -1, first: -1, last: -1}}
	stack := []*lineNode{d.root}
	for i, line := range d.lines {
		line = strings.TrimSuffix(line, "\r")
		d.lines[i] = line
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasPrefix(trimmed, "\t") {
			return nil, fmt.Errorf("%s:%d: a tab in the indentation", file, i+1)
		}
		indent := len(line) - len(trimmed)
		for len(stack) > 1 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1]
		if i == 0 && strings.HasPrefix(trimmed, "---") {
			continue
		}
		key, value, ok, err := splitKey(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, i+1, err)
		}
		if !ok {
			if parent == d.root {
				return nil, fmt.Errorf("%s:%d: a line that is not \"key: value\"", file, i+1)
			}
			// A flow collection or a scalar continued on this line.
			for _, n := range stack {
				n.last = i
			}
			continue
		}
		n := &lineNode{key: key, value: value, line: i + 1, first: i, last: i, indent: indent}
		parent.children = append(parent.children, n)
		for _, s := range stack {
			s.last = i
		}
		stack = append(stack, n)
	}
	return d, nil
}

// splitKey splits "key: value", "key:", "'quoted key': value" or
// "- item" (whose key is "-"). ok is false for a line of another shape.
func splitKey(s string) (key, value string, ok bool, err error) {
	if s == "-" || strings.HasPrefix(s, "- ") {
		return "-", strings.TrimSpace(s[1:]), true, nil
	}
	var rest string
	switch s[0] {
	case '"', '\'':
		end := closingQuoteOf(s)
		if end < 0 {
			return "", "", false, fmt.Errorf("unclosed quote in %.60q", s)
		}
		if key, err = unquoteYAML(s[:end+1]); err != nil {
			return "", "", false, err
		}
		rest = s[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return "", "", false, nil
		}
		rest = rest[1:]
	case '{', '[':
		return "", "", false, nil
	default:
		i := strings.Index(s, ": ")
		switch {
		case i >= 0:
			key, rest = s[:i], s[i+1:]
		case strings.HasSuffix(s, ":"):
			key, rest = s[:len(s)-1], ""
		default:
			return "", "", false, nil
		}
	}
	value = strings.TrimSpace(rest)
	if value != "" && (value[0] == '"' || value[0] == '\'') && closingQuoteOf(value) == len(value)-1 {
		if value, err = unquoteYAML(value); err != nil {
			return "", "", false, err
		}
	}
	return key, value, true, nil
}

// closingQuoteOf is the index of the quote closing the one s starts with.
func closingQuoteOf(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++ // '' is a quote inside single quotes
		case s[i] == q:
			return i
		}
	}
	return -1
}

func unquoteYAML(s string) (string, error) {
	if s[0] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	u, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("bad quoted string %.60s", s)
	}
	return u, nil
}

// child is n's child with key, or nil.
func (n *lineNode) child(key string) *lineNode {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.key == key {
			return c
		}
	}
	return nil
}

// text is n's lines as written.
func (d *blockDoc) text(n *lineNode) string {
	return strings.Join(d.lines[n.first:n.last+1], "\n")
}

// flowMap reads a one-line flow mapping of scalars, "{a: b, c: 'd'}".
func flowMap(s string) (map[string]string, bool) {
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, false
	}
	out := map[string]string{}
	body := strings.TrimSpace(s[1 : len(s)-1])
	for body != "" {
		var item string
		item, body = cutFlowItem(body)
		k, v, ok, err := splitKey(strings.TrimSpace(item))
		if err != nil || !ok {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// cutFlowItem cuts the first item of a flow collection's body at a comma
// outside quotes and brackets.
func cutFlowItem(s string) (string, string) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\'':
			if end := closingQuoteOf(s[i:]); end > 0 {
				i += end
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 0 {
				return s[:i], strings.TrimSpace(s[i+1:])
			}
		}
	}
	return s, ""
}

// depVersions lists the dependencies an entry of a lockfile names under
// the kinds given, with the version (pnpm) or range (yarn) of each: a
// scalar, a flow mapping's or a block mapping's "version".
func depVersions(n *lineNode, kinds ...string) ([][2]string, error) {
	var out [][2]string
	for _, kind := range kinds {
		for _, d := range n.child(kind).childrenOrNil() {
			v := d.value
			if m, ok := flowMap(v); ok {
				v = m["version"]
			} else if v == "" {
				if c := d.child("version"); c != nil {
					v = c.value
				}
			}
			if v == "" {
				return nil, fmt.Errorf("line %d: dependency %s has no version", d.line, d.key)
			}
			out = append(out, [2]string{d.key, v})
		}
	}
	return out, nil
}

func (n *lineNode) childrenOrNil() []*lineNode {
	if n == nil {
		return nil
	}
	return n.children
}
