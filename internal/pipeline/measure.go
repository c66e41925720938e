package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kinds of open collections.
const (
	kindRoot = 'r' // the document itself
	kindBMap = 'm' // block mapping
	kindBSeq = 's' // block sequence
	kindFMap = '{' // flow mapping
	kindFSeq = '[' // flow sequence
)

// none marks an offset or column not set.
const none = -1

// level is a collection open at the current point.
type level struct {
	kind  byte
	col   int // block collections: the column of their entries
	keys  int // block mappings: keys so far
	index int // sequences: entries so far
	// base is the length of the collection's path; cur that of its
	// current key or index, so a value in it has a path of base+cur.
	base, cur int
	// entry is the offset of the first token of a flow collection's
	// current entry, where a key that a ':' ends starts.
	entry int
	// explicit is the offset of the "? " that starts a complex key.
	explicit int
}

func (l *level) flow() bool { return l.kind == kindFMap || l.kind == kindFSeq }

// measure reads data as the YAML parser's tokenizer (goccy/go-yaml) does,
// as far as needed to measure nesting, keys and paths: which characters
// open collections, end keys and start sequence entries, and which are
// text inside quotes, block scalars, comments, tags or plain scalars. It
// follows the tokenizer's rules where they differ from the YAML
// specification, down to its column arithmetic, because a difference would
// be a way to hide structure from the measure; the fuzz test checks that
// both see the same tokens at the same columns.
//
// trace, when not nil, is told each token that makes structure: '[' and
// '{' with their column, '-' and '?' with theirs, and ':' with the column
// of the token before it.
func measure(data []byte, trace func(kind byte, col int)) *limitError {
	err, _ := measureTokens(data, trace)
	return err
}

// measureTokens is measure, also reporting whether the tokenizer fails on
// data (as far as measure read it), which the fuzz test checks.
func measureTokens(data []byte, trace func(kind byte, col int)) (err *limitError, broken bool) {
	m := &measurer{src: data, col: 1, first: true, entry: none, entryCol: none, lastKey: none, trace: trace}
	m.levels = append(m.levels, level{kind: kindRoot, col: none, entry: none, explicit: none})
	m.run()
	return m.err, m.broken
}

// measurer is the state of measure.
type measurer struct {
	src   []byte
	i     int
	col   int  // the tokenizer's column of src[i]
	first bool // only spaces and tabs so far on this line
	// lineFirst is set while step reads the first other character of a
	// line.
	lineFirst bool
	// stale is set when a block scalar of blank lines only ends: the
	// tokenizer then takes what follows for the rest of a plain scalar.
	stale bool
	// indent counts what the tokenizer takes for indentation on this line.
	indent int
	// lastDelim is the column of the last key, "- " or "? ", 0 if none: a
	// line that starts at or left of it ends a plain or block scalar.
	lastDelim int
	// seqs and maps count open flow collections as the tokenizer does; a
	// stray ']' makes seqs negative.
	seqs, maps int
	// anchor is set while an anchor's or alias's name is read, directive
	// on a directive's line: there a ':' is text and a space ends a token.
	anchor, directive bool
	lastTok           tokenKind
	lastCol           int // column of the last token

	// The plain scalar being read: the tokenizer's buffer.
	buf      bool
	bufStart int // offset of its first byte
	bufCol   int // column of its first character
	bufLen   int // characters in it, trailing blanks included
	bufTrail int // trailing blanks in bufLen
	// saved is the column the tokenizer gives a plain scalar spanning
	// lines, 0 if none; like the tokenizer's, it outlives a dropped scalar
	// until the next token is cut.
	saved int

	// entry and entryCol are the offset and column of the first token of
	// the current block entry: a key that a ':' ends starts there.
	entry, entryCol int
	// lastKey and lastKeyCol are those of the last token that the parser
	// makes a key when a ':' follows it, even on a later line (a scalar,
	// an alias, a tag); none after a token that cannot be a key.
	lastKey, lastKeyCol int

	levels []level
	// broken is set once the tokenizer would have failed: the parser
	// will not run, so nesting, keys and paths no longer matter.
	broken bool

	trace func(kind byte, col int)
	err   *limitError
}

// tokenKind is what the last token was, where the tokenizer cares.
type tokenKind int

const (
	tokOther tokenKind = iota
	tokValue           // a ':'
	tokQuote           // a quoted scalar
)

func (m *measurer) flow() bool { return m.seqs > 0 || m.maps > 0 }

// inFlow reports whether tokens are entries of the flow collection on top.
func (m *measurer) inFlow() bool { return m.flow() && m.top().flow() }

func (m *measurer) top() *level { return &m.levels[len(m.levels)-1] }

// next moves past the character at m.i, adding width to the column; a
// line break is not read as one here.
func (m *measurer) next(width int) {
	if m.src[m.i] < utf8.RuneSelf {
		m.i++
	} else {
		_, n := utf8.DecodeRune(m.src[m.i:])
		m.i += n
	}
	m.col += width
}

// at is the byte at offset i, or 0 past the end.
func (m *measurer) at(i int) byte {
	if i < len(m.src) {
		return m.src[i]
	}
	return 0
}

func isBreak(c byte) bool { return c == '\n' || c == '\r' }
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func (m *measurer) fail(offset int, hint, format string, args ...any) {
	if m.err == nil && !m.broken {
		m.err = &limitError{offset: offset, msg: fmt.Sprintf(format, args...), hint: hint}
	}
}

func (m *measurer) run() {
	for m.i < len(m.src) && m.err == nil {
		c := m.src[m.i]
		if m.first {
			switch {
			case c == ' ':
				m.indent++
				m.next(1)
				continue
			case c == '\t':
				m.tab()
				continue
			case !isBreak(c):
				m.first, m.lineFirst = false, true
				if m.lastDelim != 0 && m.col <= m.lastDelim {
					// The line starts at or left of the last key: what
					// was being read ends with the line before.
					m.cut()
					m.entry, m.entryCol = none, none
				}
				if m.stale {
					m.stale = false
					m.buf = true
					m.bufStart, m.bufCol, m.bufLen, m.bufTrail = m.i, m.col, 0, 0
				}
			}
		}
		m.step(c)
		m.lineFirst = false
	}
	m.cut()
}

// token records a token the tokenizer makes at col, which cannot be a key.
func (m *measurer) token(kind tokenKind, col int) {
	m.lastTok, m.lastCol = kind, col
	m.lastKey = none
}

// keyToken records a token at offset and col that can be a key.
func (m *measurer) keyToken(kind tokenKind, offset, col int) {
	m.lastTok, m.lastCol = kind, col
	m.lastKey, m.lastKeyCol = offset, col
}

// startEntry records a token that may start a key.
func (m *measurer) startEntry(offset, col int) {
	if m.inFlow() {
		if t := m.top(); t.entry == none {
			t.entry = offset
		}
		return
	}
	if m.entry == none {
		m.entry, m.entryCol = offset, col
	}
}

// step reads the token or character at m.i; the cases follow the
// tokenizer's, in its order.
func (m *measurer) step(c byte) {
	start, col := m.i, m.col
	switch c {
	case '\n', '\r':
		m.newline()
		return
	case '\t':
		m.tab()
		return
	case ' ':
		if m.anchor || m.directive {
			m.cut()
			m.anchor = false
		}
	case '{', '[':
		if m.buf && !m.flow() {
			break
		}
		m.cut()
		if c == '[' {
			m.seqs++
		} else {
			m.maps++
		}
		m.token(tokOther, col)
		m.open(c, start, col)
		m.next(1)
		return
	case '}', ']':
		if c == ']' && m.buf && m.seqs <= 0 || c == '}' && m.maps <= 0 {
			break
		}
		m.cut()
		if c == ']' {
			m.seqs--
		} else {
			m.maps--
		}
		m.token(tokOther, col)
		m.close(c)
		m.next(1)
		return
	case ',':
		if !m.flow() {
			break
		}
		m.cut()
		m.token(tokOther, col)
		m.flowEntry(start)
		m.next(1)
		return
	case ':':
		if m.delim(start) {
			return
		}
	case '.', '-':
		if m.indent == 0 && col == 1 && m.documentMarker(c) {
			return
		}
		if c == '-' && m.buf && m.lineFirst && m.lastDelim != 0 {
			m.rawFolded(col)
			return
		}
		if n := m.at(m.i + 1); c == '.' || m.buf || n != 0 && !isBlank(n) && !isBreak(n) {
			break
		}
		m.cut()
		m.token(tokOther, col)
		m.lastDelim = col
		m.sequenceEntry(start, col)
		m.next(1)
		return
	case '?':
		if m.buf || !isBlank(m.at(m.i+1)) {
			break
		}
		m.token(tokOther, col)
		m.lastDelim = col
		m.explicitKey(start, col)
		m.next(1)
		return
	case '<':
		if !m.mergeKey() {
			break
		}
		// The tokenizer drops a plain scalar before "<<".
		m.buf = false
		m.keyToken(tokOther, start, col)
		m.startEntry(start, col)
		m.lastDelim = col
		m.next(1)
		m.next(1)
		return
	case '|', '>':
		if m.buf {
			break
		}
		m.keyToken(tokOther, start, col)
		m.blockScalar(col)
		return
	case '"', '\'':
		if m.buf {
			break
		}
		m.startEntry(start, col)
		m.quoted(c)
		m.keyToken(tokQuote, start, col)
		return
	case '#':
		if m.buf && !isBlank(m.src[m.i-1]) && !isBreak(m.src[m.i-1]) {
			break
		}
		m.cut()
		m.token(tokOther, col)
		for m.i < len(m.src) && !isBreak(m.src[m.i]) {
			m.next(1)
		}
		if !m.inFlow() {
			m.entry, m.entryCol = none, none
		}
		if m.i < len(m.src) {
			// The tokenizer takes the line break with the comment,
			// skipping what it does at other line breaks.
			m.breakLine()
		}
		return
	case '!':
		if m.buf || m.directive {
			break
		}
		m.startEntry(start, col)
		m.keyToken(tokOther, start, col)
		m.tag()
		return
	case '%':
		if m.buf || m.indent != 0 {
			break
		}
		m.cut()
		m.token(tokOther, col)
		m.directive = true
		m.next(1)
		return
	case '@', '`':
		if !m.buf {
			// The tokenizer fails on these reserved characters.
			m.broken = true
		}
	case '&', '*':
		if m.buf {
			break
		}
		m.cut()
		m.startEntry(start, col)
		m.keyToken(tokOther, start, col)
		m.anchor = true
		m.next(1)
		return
	}
	m.text(c)
}

// text adds the character at m.i to the plain scalar being read.
func (m *measurer) text(c byte) {
	switch {
	case !isBlank(c):
		if !m.buf {
			m.buf = true
			m.bufStart, m.bufCol, m.bufLen, m.bufTrail = m.i, m.col, 0, 0
		}
		m.bufLen++
		m.bufTrail = 0
	case m.buf:
		m.bufLen++
		m.bufTrail++
	}
	m.next(1)
}

// tab reads a tab as the tokenizer does: where it could be indentation, it
// is neither text nor a column.
func (m *measurer) tab() {
	if m.buf && m.lastDelim == 0 || m.lastDelim < m.col {
		m.indent++
		m.next(0)
		return
	}
	if m.first && !m.flow() {
		// The tokenizer fails on a tab it cannot take for indentation.
		m.broken = true
	}
	m.text('\t')
}

// cut makes the plain scalar being read a token, as the tokenizer does
// before most other tokens.
func (m *measurer) cut() {
	saved := m.saved
	m.saved = 0
	if !m.buf {
		return
	}
	m.buf = false
	col := m.bufCol
	if saved != 0 {
		col = saved
	}
	if m.anchor {
		// An anchor's or alias's name: the '&' or '*' stays the key.
		m.lastTok, m.lastCol = tokOther, col
	} else {
		m.keyToken(tokOther, m.bufStart, col)
	}
	m.startEntry(m.bufStart, col)
}

// newline reads a line break outside quotes and block scalars.
func (m *measurer) newline() {
	if m.buf && m.saved == 0 {
		// A plain scalar spanning lines gets the column it had at its
		// first line break, less its length without trailing blanks.
		m.saved = m.col - (m.bufLen - m.bufTrail)
	}
	end := m.i + 1
	if m.src[m.i] == '\r' && m.at(end) == '\n' {
		end++
	}
	if end >= len(m.src) || m.anchor || m.directive {
		m.cut()
	}
	if !m.buf && !m.inFlow() {
		m.entry, m.entryCol = none, none
	}
	m.breakLine()
}

// breakLine moves past a line break, "\r\n" being one.
func (m *measurer) breakLine() {
	if m.src[m.i] == '\r' && m.at(m.i+1) == '\n' {
		m.i++
	}
	m.i++
	m.col, m.indent, m.first = 1, 0, true
	m.anchor, m.directive = false, false
}

// documentMarker reads a "---" or "..." line start, which the tokenizer
// knows by exactly three of c, a "---" being followed by a blank.
func (m *measurer) documentMarker(c byte) bool {
	rest := m.src[m.i:]
	if len(rest) < 3 || rest[0] != c || rest[1] != c || rest[2] != c || m.at(m.i+3) == c {
		return false
	}
	if n := m.at(m.i + 3); c == '-' && m.i+3 < len(m.src) && !isBlank(n) && !isBreak(n) {
		return false
	}
	m.cut()
	m.token(tokOther, 1)
	m.i += 3
	m.col += 3
	m.entry, m.entryCol = none, none
	if c == '-' {
		m.lastDelim, m.indent = 0, 0
		if !m.flow() {
			// A new document: the parser reads it on its own.
			m.levels = m.levels[:1]
		}
	}
	return true
}

// mergeKey reports whether m.i starts a "<<" key as the tokenizer sees it:
// exactly two '<', then spaces and colons up to a ':' before a space or a
// line break.
func (m *measurer) mergeKey() bool {
	if m.at(m.i+1) != '<' || m.at(m.i+2) == '<' {
		return false
	}
	for j := m.i + 2; j < len(m.src); j++ {
		switch m.src[j] {
		case ' ':
		case ':':
			if n := m.at(j + 1); j+1 < len(m.src) && (n == ' ' || isBreak(n)) {
				return true
			}
		default:
			return false
		}
	}
	return false
}

// delim reads a ':' and reports whether the tokenizer takes it for a
// mapping's value indicator rather than text.
func (m *measurer) delim(colon int) bool {
	n := m.at(m.i + 1)
	switch {
	case m.anchor || m.directive:
		return false
	case m.maps <= 0 && !isBlank(n) && !isBreak(n) && m.i+1 < len(m.src):
		return false
	case m.maps > 0 && (n == '/' || m.lastTok == tokValue):
		return false
	}
	hadText := m.buf
	m.cut()
	if hadText || m.lastTok == tokQuote {
		m.lastDelim = m.lastCol
	}
	if m.trace != nil {
		m.trace(':', m.lastCol)
	}
	if m.inFlow() {
		m.flowKey(colon)
	} else if !m.flow() {
		m.blockKey(colon)
	}
	m.token(tokValue, m.col)
	m.next(1)
	return true
}

// path is the length of the path of a value in l.
func (l *level) path() int { return l.base + l.cur }

// indexLen is the length of "[i]" in a path.
func indexLen(i int) int { return len(fmt.Sprint(i)) + 2 }

// push opens a collection in the one on top, failing past maxDepth.
func (m *measurer) push(l level, offset int) {
	l.base = m.top().path()
	l.entry, l.explicit = none, none
	m.levels = append(m.levels, l)
	if len(m.levels)-1 > maxDepth {
		m.tooDeep(offset)
	}
}

func (m *measurer) tooDeep(offset int) {
	m.fail(offset, "a pipeline nests a few levels deep: check for brackets left open, or flatten this value",
		"values nest more than %d levels deep here, the most a pipeline file may", maxDepth)
}

// checkPath fails when the path of a value in the collection on top is
// longer than maxPath.
func (m *measurer) checkPath(offset int) {
	if p := m.top().path(); p > maxPath {
		m.fail(offset, "shorten the names (of jobs, variables, ...) on the way to this value",
			"the keys leading to this value are %d bytes long together, more than the limit of %d", p, maxPath)
	}
}

// leaveFlow drops flow collections the tokenizer no longer counts as open
// (a ']' closing a '{', say): they are then read as block context.
func (m *measurer) leaveFlow() {
	for m.top().flow() {
		m.levels = m.levels[:len(m.levels)-1]
	}
}

// block makes the block collection of kind at col the one on top: it
// closes those nested deeper, and opens it unless it is open. It reports
// whether it opened it.
func (m *measurer) block(kind byte, col, offset int) bool {
	m.leaveFlow()
	for t := m.top(); t.kind != kindRoot && t.col > col; t = m.top() {
		m.levels = m.levels[:len(m.levels)-1]
	}
	if t := m.top(); kind == kindBMap && t.kind == kindBSeq && t.col == col {
		// A key at the column of a sequence's dashes ends the sequence.
		m.levels = m.levels[:len(m.levels)-1]
	}
	if t := m.top(); t.kind == kind && t.col == col {
		return false
	}
	m.push(level{kind: kind, col: col}, offset)
	return true
}

// blockKey reads the ':' at offset colon, ending a key of a block mapping.
func (m *measurer) blockKey(colon int) {
	if m.broken {
		return
	}
	offset, col := m.entry, m.entryCol
	if offset == none {
		// A ':' first on its line gives the value of a "? " key, or
		// makes the token before it, on an earlier line, a key.
		m.leaveFlow()
		for t := m.top(); t.kind != kindRoot && t.col > m.col; t = m.top() {
			m.levels = m.levels[:len(m.levels)-1]
		}
		if t := m.top(); t.kind == kindBMap && t.col == m.col && t.explicit != none {
			t.cur = colon - t.explicit + 1
			t.explicit = none
			m.checkPath(colon)
			return
		}
		if m.lastKey == none {
			return
		}
		offset, col = m.lastKey, m.lastKeyCol
	}
	if !m.block(kindBMap, col, offset) {
		m.top().keys++
	} else {
		m.top().keys = 1
	}
	if t := m.top(); t.keys > maxKeys {
		m.fail(offset, "split this mapping: no part of a pipeline needs this many keys",
			"a mapping has more than %d keys here, the most a pipeline file may", maxKeys)
	}
	m.top().cur = colon - offset + 1
	m.checkPath(offset)
	m.entry, m.entryCol = none, none
}

// flowKey reads the ':' at offset colon inside a flow collection.
func (m *measurer) flowKey(colon int) {
	t := m.top()
	if m.broken {
		return
	}
	from := t.entry
	if t.explicit != none {
		from = t.explicit
	}
	if from != none {
		t.cur = colon - from + 1
		if t.kind == kindFSeq {
			t.cur += indexLen(t.index)
		}
		m.checkPath(from)
	}
	t.entry, t.explicit = none, none
}

// sequenceEntry reads a "- " at col.
func (m *measurer) sequenceEntry(offset, col int) {
	if m.trace != nil {
		m.trace('-', col)
	}
	m.entry, m.entryCol = none, none
	if m.broken {
		return
	}
	if m.flow() {
		// The parser rejects it, after nesting it once.
		if len(m.levels) > maxDepth {
			m.tooDeep(offset)
		}
		return
	}
	if !m.block(kindBSeq, col, offset) {
		m.top().index++
	}
	t := m.top()
	t.cur = indexLen(t.index)
	m.checkPath(offset)
}

// explicitKey reads a "? " at col, which starts a complex key.
func (m *measurer) explicitKey(offset, col int) {
	if m.trace != nil {
		m.trace('?', col)
	}
	m.entry, m.entryCol = none, none
	if m.broken {
		return
	}
	if m.flow() {
		if m.inFlow() {
			m.top().explicit = offset
		}
		return
	}
	if !m.block(kindBMap, col, offset) {
		m.top().keys++
	} else {
		m.top().keys = 1
	}
	if m.top().keys > maxKeys {
		m.fail(offset, "split this mapping: no part of a pipeline needs this many keys",
			"a mapping has more than %d keys here, the most a pipeline file may", maxKeys)
	}
	m.top().explicit = offset
}

// open reads a '[' or '{' at col.
func (m *measurer) open(c byte, offset, col int) {
	if m.trace != nil {
		m.trace(c, col)
	}
	if m.broken {
		return
	}
	if t := m.top(); t.flow() {
		if t.entry == none {
			t.entry = offset
		}
	} else {
		m.entry, m.entryCol = none, none
	}
	l := level{kind: c}
	if c == kindFSeq {
		l.cur = indexLen(0)
	}
	m.push(l, offset)
}

// close reads a ']' or '}' that the tokenizer takes for one.
func (m *measurer) close(c byte) {
	if !m.flow() {
		m.leaveFlow()
		return
	}
	if t := m.top(); t.kind == kindFSeq && c == ']' || t.kind == kindFMap && c == '}' {
		m.levels = m.levels[:len(m.levels)-1]
	}
}

// flowEntry reads a ',' in a flow collection at offset.
func (m *measurer) flowEntry(offset int) {
	t := m.top()
	if !m.inFlow() || m.broken {
		return
	}
	t.entry, t.explicit = none, none
	if t.kind == kindFSeq {
		t.index++
		t.cur = indexLen(t.index)
		m.checkPath(offset)
	} else {
		t.cur = 0
	}
}

// tag reads a tag starting at m.i ('!'), which the tokenizer ends at a
// space, a line break, or a ',' in a flow collection. It counts the tag's
// column once less than its characters, as the tokenizer does.
func (m *measurer) tag() {
	col := m.col
	n := 0
	for m.i < len(m.src) {
		c := m.src[m.i]
		if c == ' ' {
			m.i++
			break
		}
		if isBreak(c) || c == ',' && m.flow() {
			n--
			break
		}
		if c == '{' || c == '}' {
			// The tokenizer fails here.
			m.broken = true
			n++
			m.next(0)
			break
		}
		n++
		m.next(0)
	}
	m.col = col + n
}

// quoted reads a quoted scalar starting at m.i (its opening quote q),
// counting columns as the tokenizer does.
func (m *measurer) quoted(q byte) {
	m.next(1)
	lineStart := false // after a line break, before any text
	// skip counts the tabs counted twice, extra those since the last line
	// break, which resets the column.
	skip, extra := 0, 0
	for m.i < len(m.src) {
		c := m.src[m.i]
		switch {
		case isBreak(c):
			// The tokenizer starts a line here, and after the closing
			// quote reads the rest of it as a line's start.
			m.breakLine()
			lineStart, extra = true, 0
			if m.i < len(m.src) && documentSeparator(m.src[m.i:]) {
				// The tokenizer fails here.
				m.broken = true
			}
			continue
		case lineStart && c == ' ':
		case lineStart && c == '\t':
			if m.lastDelim >= m.col {
				// The tokenizer fails on a tab indenting quoted text.
				m.broken = true
			}
		case c == q && q == '\'' && m.at(m.i+1) == '\'':
			m.next(1)
			lineStart = false
		case c == q:
			m.next(1)
			// The tokenizer, having moved one character too far for
			// each tab counted twice, goes on that many characters
			// after the quote, without reading them.
			m.col += extra
			for ; skip > 0 && m.i < len(m.src); skip-- {
				m.next(0)
			}
			return
		case c == '\\' && q == '"':
			m.escape()
			lineStart = false
			continue
		case c == '\t' && q == '"':
			// A tab before more text on the line, unless a quote follows
			// it, is counted twice.
			j := m.i + 1
			for j < len(m.src) && isBlank(m.src[j]) {
				j++
			}
			if j < len(m.src) && !isBreak(m.src[j]) && m.src[m.i+1] != '"' {
				skip++
				extra++
			}
			lineStart = false
		default:
			lineStart = false
		}
		m.next(1)
	}
	// Unterminated: the tokenizer fails, having read to the end.
	m.broken = true
}

// escape reads a backslash escape in double quotes at m.i as the tokenizer
// does: it skips a fixed number of characters after \x, \u and \U without
// checking them, line breaks included.
func (m *measurer) escape() {
	r := m.runes(12)
	if len(r) < 2 {
		// A backslash ending the file is text.
		m.next(1)
		return
	}
	skip := 1
	switch r[1] {
	case '0', 'a', 'b', 't', 'n', 'v', 'f', 'r', 'e', ' ', '"', '/', '\\', 'N', '_', 'L', 'P', '\t':
	case 'x':
		if len(r) > 3 {
			skip = 3
		}
	case 'u':
		skip = 5
		if len(r) <= 5 {
			m.broken = true
		} else if hi := hexValue(r[2:6]); hi >= 0xD800 && hi <= 0xDBFF {
			skip = 11
			if len(r) <= 11 || r[6] != '\\' || r[7] != 'u' {
				m.broken = true
			} else if lo := hexValue(r[8:12]); lo < 0xDC00 || lo > 0xDFFF {
				m.broken = true
			}
		}
	case 'U':
		skip = 9
		if len(r) <= 9 {
			m.broken = true
		}
	case '\n':
		m.next(1)
		m.breakLine()
		return
	case '\r':
		// The tokenizer starts a line, then counts the line break's
		// characters as columns of the new line.
		m.next(1)
		width := 1
		if m.at(m.i+1) == '\n' {
			width = 2
		}
		m.breakLine()
		m.col += width
		return
	default:
		m.broken = true
	}
	m.next(1)
	for ; skip > 0 && m.i < len(m.src); skip-- {
		m.next(1)
	}
}

// runes decodes up to n characters from m.i, as the tokenizer sees them.
func (m *measurer) runes(n int) []rune {
	r := make([]rune, 0, n)
	for i := m.i; i < len(m.src) && len(r) < n; {
		c, size := utf8.DecodeRune(m.src[i:])
		r = append(r, c)
		i += size
	}
	return r
}

// hexValue reads hex digits as the tokenizer does, without checking them.
func hexValue(digits []rune) int {
	v := 0
	for _, c := range digits {
		switch {
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		v = v<<4 + int(c)
	}
	return v
}

// documentSeparator reports whether a line starting with rest is a "---"
// or "..." line, as the tokenizer checks inside quotes and block scalars.
func documentSeparator(rest []byte) bool {
	if len(rest) < 3 {
		return false
	}
	marker := string(rest[:3])
	if marker != "---" && marker != "..." {
		return false
	}
	return len(rest) == 3 || isBlank(rest[3]) || isBreak(rest[3])
}

// rawFolded reads what the tokenizer makes of a '-' at col that starts a
// line continuing a plain scalar: the start of a folded block scalar, part
// of the plain one, made of the rest of the line and of the lines after
// it that start right of the last key, then (once the scalar has a
// character other than a tab after the '-') at or right of the '-'.
func (m *measurer) rawFolded(col int) {
	m.text('-')
	for ; m.i < len(m.src) && !isBreak(m.src[m.i]); m.next(1) {
		if m.src[m.i] != '\t' {
			m.lastDelim = col - 1
		}
	}
	for m.i < len(m.src) {
		m.breakLine()
		if m.i < len(m.src) && documentSeparator(m.src[m.i:]) {
			return
		}
		for m.i < len(m.src) && isBlank(m.src[m.i]) {
			if m.src[m.i] == ' ' {
				m.indent++
			}
			m.next(1)
		}
		if m.i == len(m.src) || isBreak(m.src[m.i]) {
			continue
		}
		if m.lastDelim != 0 && m.col <= m.lastDelim {
			// The line ends the scalar: run reads it.
			return
		}
		m.lastDelim = col - 1
		for m.i < len(m.src) && !isBreak(m.src[m.i]) {
			m.next(1)
		}
	}
}

// blockScalar reads a block scalar whose header ('|' or '>') is at m.i:
// the header's line, then every line that is blank or starts right of the
// last key's column, as the tokenizer does. The tokenizer then moves that
// column to one left of where the content starts: of the header's
// indentation indicator, or else of its first line.
func (m *measurer) blockScalar(col int) {
	start := m.i + 1
	for m.i < len(m.src) && !isBreak(m.src[m.i]) {
		m.next(1)
	}
	if col == 1 {
		m.lastDelim = 1
	}
	header := m.src[start:m.i]
	if m.i == len(m.src) && len(header) > 0 {
		// Without a line break after it, the tokenizer leaves the
		// header's last character out.
		_, n := utf8.DecodeLastRune(header)
		header = header[:len(header)-n]
	}
	indent, keep, ok := headerIndent(string(header))
	if !ok {
		// The tokenizer fails on this header.
		m.broken = true
	}
	first := 0 // the column where content starts, once known
	if indent > 0 {
		first = m.lastDelim + indent
	}
	// The tokenizer keeps the line breaks after the header's, and tabs
	// not at a line's start, as content.
	breaks, content := -1, false
	for m.i < len(m.src) {
		m.breakLine()
		breaks++
		// The tokenizer looks for "---" and "..." at the line breaks it
		// reads in the scalar, not at the header's.
		if breaks > 0 && m.i < len(m.src) && documentSeparator(m.src[m.i:]) {
			return
		}
		for m.i < len(m.src) && isBlank(m.src[m.i]) {
			if m.src[m.i] == ' ' {
				m.indent++
			} else if m.col > 1 {
				content = true
			}
			m.next(1)
		}
		if m.i == len(m.src) || isBreak(m.src[m.i]) {
			continue
		}
		if m.lastDelim != 0 && m.col <= m.lastDelim {
			// The line ends the scalar: run reads it. Of a scalar of
			// line breaks only, the tokenizer leaves a stale buffer.
			m.stale = breaks > 0 && !content && !keep
			return
		}
		content = true
		if first == 0 {
			first = m.col
		}
		if first > 1 {
			m.lastDelim = first - 1
		}
		for m.i < len(m.src) && !isBreak(m.src[m.i]) {
			m.next(1)
		}
	}
}

// headerIndent reads the indentation indicator of a block scalar's header
// (what follows its '|' or '>' on the line) as the tokenizer does, whether
// it keeps the scalar's last line breaks ('+'), and whether the tokenizer
// accepts the header.
func headerIndent(header string) (indent int, keep, valid bool) {
	opt := strings.TrimRight(header, " ")
	if k := strings.IndexByte(opt, '#'); k > 0 {
		opt = opt[:k]
	}
	opt = strings.TrimRight(opt, " \t")
	keep = strings.HasPrefix(opt, "+") || strings.HasSuffix(opt, "+")
	digits := strings.TrimPrefix(strings.TrimPrefix(opt, "-"), "+")
	digits = strings.TrimSuffix(strings.TrimSuffix(digits, "-"), "+")
	if digits == "" {
		return 0, keep, true
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || digits == "0" || n > 9 {
		return 0, keep, false
	}
	return int(n), keep, true
}
