package pipeline

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// The YAML layer: goccy/go-yaml gives a syntax tree with positions but
// leaves anchors, aliases, tags and merge keys unresolved. This file turns
// nodes into values the schema code can check, reporting what YAML allows
// but a pipeline file should not contain.

// kind is what a value is, as the schema sees it.
type kind int

const (
	kindBad    kind = iota // already reported; check nothing more
	kindNull               // empty value, ~ or null
	kindString             // plain, quoted, block scalar, or tagged !!str
	kindInt
	kindFloat
	kindBool
	kindList
	kindMap
	kindOther // a node the schema has no use for, such as a bare <<
)

// String is the phrase used in "got ..." messages.
func (k kind) String() string {
	switch k {
	case kindNull:
		return "an empty value"
	case kindString:
		return "a string"
	case kindInt:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindBool:
		return "a boolean"
	case kindList:
		return "a list"
	case kindMap:
		return "a mapping"
	}
	return "an unsupported value"
}

// value is a node with anchors, aliases and tags resolved.
type value struct {
	node ast.Node // never an anchor, alias or tag
	at   pos      // where the value is written (the alias, if any)
	str  bool     // tagged !!str: read a scalar as a string
	bad  bool     // a problem was already reported
}

func (v value) kind() kind {
	if v.bad {
		return kindBad
	}
	var k kind
	switch v.node.(type) {
	case nil, *ast.NullNode:
		k = kindNull
	case *ast.StringNode, *ast.LiteralNode:
		return kindString
	case *ast.IntegerNode:
		k = kindInt
	case *ast.BoolNode:
		k = kindBool
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		k = kindFloat
	case *ast.SequenceNode:
		return kindList
	case *ast.MappingNode, *ast.MappingValueNode:
		return kindMap
	default:
		return kindOther
	}
	if v.str {
		return kindString
	}
	return k
}

// text is a scalar's string value: the unquoted text, a block scalar's
// content, or the literal source of a number or boolean.
func (v value) text() string {
	switch n := v.node.(type) {
	case nil, *ast.NullNode:
		return ""
	case *ast.StringNode:
		return n.Value
	case *ast.LiteralNode:
		if n.Value == nil {
			return ""
		}
		return n.Value.Value
	}
	if tk := v.node.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// posOf is where n starts; a block mapping's own token is its first colon,
// so its first key is used instead.
func posOf(n ast.Node) pos {
	switch m := n.(type) {
	case nil:
		return pos{}
	case *ast.MappingNode:
		if len(m.Values) > 0 && m.Values[0] != nil && m.Values[0].Key != nil && !m.IsFlowStyle {
			return posOf(m.Values[0].Key)
		}
	case *ast.MappingValueNode:
		if m.Key != nil {
			return posOf(m.Key)
		}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

func before(a, b pos) bool {
	return a.line < b.line || a.line == b.line && a.col < b.col
}

// anchor is one &name in the document.
type anchor struct {
	name string
	at   pos
	node ast.Node
}

// maxSteps bounds the work of resolving aliases: a small file whose
// aliases refer to lists of aliases would otherwise expand exponentially.
const maxSteps = 1 << 20

// tree resolves the nodes of one YAML document.
type tree struct {
	*problems
	anchors   []anchor
	merged    map[ast.Node][]entry // memo of mapping entries, merges applied
	steps     int
	exhausted bool
}

func newTree(p *problems, body ast.Node) *tree {
	t := &tree{problems: p, merged: map[ast.Node][]entry{}}
	t.collectAnchors(body)
	return t
}

// collectAnchors records anchors in document order, which is the order
// in which YAML lets an alias refer to them.
func (t *tree) collectAnchors(n ast.Node) {
	switch n := n.(type) {
	case *ast.AnchorNode:
		if n.Name != nil && n.Name.GetToken() != nil {
			t.anchors = append(t.anchors, anchor{name: n.Name.GetToken().Value, at: posOf(n), node: n.Value})
		}
		t.collectAnchors(n.Value)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			t.collectAnchors(mv)
		}
	case *ast.MappingValueNode:
		if n != nil {
			t.collectAnchors(n.Key)
			t.collectAnchors(n.Value)
		}
	case *ast.MappingKeyNode:
		t.collectAnchors(n.Value)
	case *ast.SequenceNode:
		for _, e := range n.Values {
			t.collectAnchors(e)
		}
	case *ast.TagNode:
		t.collectAnchors(n.Value)
	}
}

// lookup finds the anchor an alias at refers to: the last one of that
// name defined before it.
func (t *tree) lookup(name string, at pos) (ast.Node, bool) {
	for i := len(t.anchors) - 1; i >= 0; i-- {
		a := t.anchors[i]
		if a.name == name && before(a.at, at) {
			return a.node, true
		}
	}
	return nil, false
}

// resolve follows anchors, aliases and tags down to the node they stand for.
func (t *tree) resolve(n ast.Node) value {
	v := value{node: n, at: posOf(n)}
	for {
		t.steps++
		if t.steps > maxSteps {
			if !t.exhausted {
				t.exhausted = true
				t.add(v.at, "use fewer nested aliases", "the file expands to too many values")
			}
			v.bad = true
			return v
		}
		switch n := v.node.(type) {
		case *ast.AnchorNode:
			v.node = n.Value
		case *ast.AliasNode:
			name := ""
			if n.Value != nil && n.Value.GetToken() != nil {
				name = n.Value.GetToken().Value
			}
			target, ok := t.lookup(name, posOf(n))
			if !ok {
				t.add(posOf(n), fmt.Sprintf("define the anchor &%s before this alias", name), "unknown alias *%s", name)
				v.bad = true
				return v
			}
			v.node = target
		case *ast.TagNode:
			tag := ""
			if n.Start != nil {
				tag = n.Start.Value
			}
			switch strings.TrimPrefix(tag, "!!") {
			case "str":
				v.str = true
			case "int", "float", "bool", "null", "seq", "map":
				// Harmless: the schema checks the value's type anyway.
			default:
				t.add(posOf(n), "remove the tag and write the value as plain YAML", "YAML tag %s is not supported in a pipeline file", tag)
				v.bad = true
				return v
			}
			v.node = n.Value
		default:
			return v
		}
	}
}

// entry is one key of a mapping.
type entry struct {
	key   string
	keyAt pos
	node  ast.Node // unresolved value
}

// value resolves the entry's value. An empty value has no token of its
// own worth pointing at, so it is reported at its key.
func (t *tree) value(e entry) value {
	v := t.resolve(e.node)
	if v.kind() == kindNull || v.at == (pos{}) {
		v.at = e.keyAt
	}
	return v
}

// entries lists a mapping's keys in file order, with merge keys (<<)
// expanded and duplicate keys reported. v must be of kindMap.
func (t *tree) entries(v value) []entry {
	return t.entriesOf(v.node, map[ast.Node]bool{})
}

func (t *tree) entriesOf(n ast.Node, open map[ast.Node]bool) []entry {
	if es, ok := t.merged[n]; ok {
		return es
	}
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	open[n] = true
	defer delete(open, n)

	// Explicit keys win over merged ones wherever they appear, so find
	// them first.
	first := map[string]*ast.MappingValueNode{}
	for _, mv := range values {
		if mv == nil || isMerge(mv) {
			continue
		}
		key, ok := t.key(mv.Key)
		if !ok {
			continue
		}
		if prev, dup := first[key]; dup {
			p := posOf(prev.Key)
			t.add(posOf(mv.Key), "remove one of them", "duplicate key %q (first defined at line %d, column %d)", key, p.line, p.col)
			continue
		}
		first[key] = mv
	}
	var out []entry
	seen := map[string]bool{}
	for _, mv := range values {
		if mv == nil {
			continue
		}
		if isMerge(mv) {
			for _, e := range t.mergeSources(mv, open) {
				if first[e.key] == nil && !seen[e.key] {
					seen[e.key] = true
					out = append(out, e)
				}
			}
			continue
		}
		key, ok := t.keyText(mv.Key)
		if !ok || first[key] != mv {
			continue
		}
		seen[key] = true
		out = append(out, entry{key: key, keyAt: posOf(mv.Key), node: mv.Value})
	}
	t.merged[n] = out
	return out
}

func isMerge(mv *ast.MappingValueNode) bool {
	return mv.Key != nil && mv.Key.IsMergeKey()
}

// mergeSources returns the entries a "<<" key brings in: one mapping, or a
// list of them where earlier ones win.
func (t *tree) mergeSources(mv *ast.MappingValueNode, open map[ast.Node]bool) []entry {
	const hint = "merge a mapping, usually through an alias: <<: *name"
	v := t.resolve(mv.Value)
	var maps []value
	switch v.kind() {
	case kindBad:
		return nil
	case kindMap:
		maps = append(maps, v)
	case kindList:
		for _, item := range t.items(v) {
			switch item.kind() {
			case kindBad:
			case kindMap:
				maps = append(maps, item)
			default:
				t.add(item.at, hint, "<< must merge mappings, got %s", item.kind())
			}
		}
	default:
		t.add(v.at, hint, "<< must merge a mapping, got %s", v.kind())
		return nil
	}
	var out []entry
	for _, m := range maps {
		if open[m.node] {
			t.add(posOf(mv.Key), "an alias cannot merge the mapping that contains it", "merge key refers to its own mapping")
			continue
		}
		out = append(out, t.entriesOf(m.node, open)...)
	}
	return out
}

// key returns a mapping key's text, reporting keys that are not scalars.
func (t *tree) key(k ast.MapKeyNode) (string, bool) {
	s, ok := t.keyText(k)
	if !ok && k != nil {
		t.add(posOf(k), "use a plain name as the key", "this kind of mapping key is not supported here")
	}
	return s, ok
}

func (t *tree) keyText(k ast.MapKeyNode) (string, bool) {
	switch k := k.(type) {
	case *ast.StringNode:
		return k.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		// A job may well be named 1 or 2024; keep the text as written.
		if tk := k.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// items resolves a list's elements. v must be of kindList.
func (t *tree) items(v value) []value {
	seq, _ := v.node.(*ast.SequenceNode)
	if seq == nil {
		return nil
	}
	out := make([]value, 0, len(seq.Values))
	for _, n := range seq.Values {
		item := t.resolve(n)
		if item.at == (pos{}) {
			item.at = v.at
		}
		out = append(out, item)
	}
	return out
}
