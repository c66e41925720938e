package planner

import (
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// globKind is how a glob is matched once the index has picked it as a
// candidate for a path.
type globKind uint8

const (
	// globLiteral has no meta character: it matches one path, itself.
	globLiteral globKind = iota
	// globSubtree is prefix + "**": every path below prefix (and a file
	// named like the directory, as doublestar matches "dir/**" against
	// "dir"), with no call to the matcher.
	globSubtree
	// globSuffix is prefix + "**/*" + tail with a literal tail: every path
	// below prefix whose base name ends with tail, such as "**/*.go".
	globSuffix
	// globBaseName is prefix + "**/" + tail with a tail free of "/": every
	// path below prefix whose base name matches tail.
	globBaseName
	// globGeneral is anything else: doublestar matches the whole path.
	globGeneral
)

// glob is one distinct input glob of the pipeline.
type glob struct {
	pattern string
	kind    globKind
	// prefix is the literal part before the first meta character, cut
	// after its last "/": "" or a directory such as "services/api/". Every
	// path the glob matches starts with it (or is it without the slash).
	prefix string
	tail   string // see globSuffix and globBaseName
}

const metaChars = `*?[{\`

func newGlob(pattern string) glob {
	g := glob{pattern: pattern}
	meta := strings.IndexAny(pattern, metaChars)
	if meta < 0 {
		g.kind, g.prefix = globLiteral, pattern
		return g
	}
	g.prefix = pattern[:strings.LastIndexByte(pattern[:meta], '/')+1]
	rest := pattern[len(g.prefix):]
	switch {
	case len(g.prefix) != meta:
		// A literal start of the last segment ("src/foo*"): general.
		g.kind = globGeneral
	case rest == "**":
		g.kind = globSubtree
	case strings.HasPrefix(rest, "**/") && !strings.ContainsRune(rest[3:], '/') && !strings.Contains(rest[3:], "**"):
		g.tail = rest[3:]
		if lit, ok := strings.CutPrefix(g.tail, "*"); ok && !strings.ContainsAny(lit, metaChars) {
			g.kind, g.tail = globSuffix, lit
		} else {
			g.kind = globBaseName
		}
	default:
		g.kind = globGeneral
	}
	return g
}

// globIndex finds the input globs that match a path while looking at few
// of them: a glob is a candidate only for paths below its literal prefix,
// so that each path meets only the globs of its own directories, and a
// glob over a whole subtree matches without running the matcher.
type globIndex struct {
	globs []glob
	// exact holds literal globs by the path they name.
	exact map[string][]int32
	// byPrefix holds the other globs by prefix ("" or "dir/sub/").
	byPrefix map[string][]int32
	// byDir holds the same by prefix without its final slash: "dir/**"
	// matches a file named "dir".
	byDir map[string][]int32
}

// newGlobIndex indexes patterns, which must be distinct.
func newGlobIndex(patterns []string) *globIndex {
	ix := &globIndex{
		globs:    make([]glob, len(patterns)),
		exact:    map[string][]int32{},
		byPrefix: map[string][]int32{},
		byDir:    map[string][]int32{},
	}
	for i, p := range patterns {
		g := newGlob(p)
		ix.globs[i] = g
		id := int32(i)
		if g.kind == globLiteral {
			ix.exact[g.prefix] = append(ix.exact[g.prefix], id)
			continue
		}
		ix.byPrefix[g.prefix] = append(ix.byPrefix[g.prefix], id)
		if g.prefix != "" {
			dir := g.prefix[:len(g.prefix)-1]
			ix.byDir[dir] = append(ix.byDir[dir], id)
		}
	}
	return ix
}

// matcher matches paths against an index, remembering the candidates of
// the last directory: tree listings come grouped by directory, so the
// prefix lookups are made once per directory, not once per file.
type matcher struct {
	ix       *globIndex
	dir      string
	dirValid bool
	cands    []int32
}

func (ix *globIndex) matcher() *matcher { return &matcher{ix: ix} }

// match calls hit once for each glob that matches path.
func (m *matcher) match(path string, hit func(glob int32)) {
	ix := m.ix
	for _, id := range ix.exact[path] {
		hit(id)
	}
	slash := strings.LastIndexByte(path, '/')
	dir, base := path[:slash+1], path[slash+1:]
	if !m.dirValid || dir != m.dir {
		m.dir, m.dirValid = dir, true
		m.cands = append(m.cands[:0], ix.byPrefix[""]...)
		for i := 0; i < len(dir); i++ {
			if dir[i] == '/' {
				m.cands = append(m.cands, ix.byPrefix[dir[:i+1]]...)
			}
		}
	}
	for _, id := range m.cands {
		g := &ix.globs[id]
		var ok bool
		switch g.kind {
		case globSubtree:
			ok = true
		case globSuffix:
			ok = strings.HasSuffix(base, g.tail)
		case globBaseName:
			ok, _ = doublestar.Match(g.tail, base)
		default:
			ok, _ = doublestar.Match(g.pattern, path)
		}
		if ok {
			hit(id)
		}
	}
	// The path names a directory prefix: only the full matcher knows
	// whether "dir/**/x" or "dir/{**,y}" matches the file "dir".
	for _, id := range ix.byDir[path] {
		g := &ix.globs[id]
		ok := g.kind == globSubtree
		if !ok {
			ok, _ = doublestar.Match(g.pattern, path)
		}
		if ok {
			hit(id)
		}
	}
}
