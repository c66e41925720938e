package ui

import (
	"bytes"
	"sort"
	"strconv"

	"github.com/deltaci/deltaci/internal/store"
)

// lineKind is what a log line is to the viewer: text, or a line that
// opens or closes a foldable section.
type lineKind int

const (
	lineText lineKind = iota
	// lineGroup opens a group (::group::name, as GitHub Actions writes it),
	// folded at first; lineEndGroup (::endgroup::) closes it.
	lineGroup
	lineEndGroup
	// lineSection is a Buildkite header: "--- name" and "~~~ name" fold
	// what follows up to the next header, "+++ name" too but open.
	lineSection
	lineSectionOpen
)

// classify tells what a line (without its newline, ANSI sequences
// stripped) is, and for a header, its name.
func classify(text []byte) (lineKind, []byte) {
	switch {
	case bytes.HasPrefix(text, []byte("::group::")):
		return lineGroup, text[len("::group::"):]
	case bytes.Equal(bytes.TrimRight(text, " \t"), []byte("::endgroup::")):
		return lineEndGroup, nil
	case bytes.HasPrefix(text, []byte("--- ")) || bytes.HasPrefix(text, []byte("~~~ ")):
		return lineSection, text[4:]
	case bytes.HasPrefix(text, []byte("+++ ")):
		return lineSectionOpen, text[4:]
	}
	return lineText, nil
}

// arrivals is when the log's chunks reached the server, by offset.
type arrivals []store.LogTime

// at is when the byte at off arrived, as the line's stamp (UTC, to the
// millisecond), or "" when that is not known.
func (a arrivals) at(off int64) string {
	i := sort.Search(len(a), func(i int) bool { return a[i].Offset > off })
	if i == 0 {
		return ""
	}
	return a[i-1].At.UTC().Format("15:04:05.000")
}

// renderLines appends the HTML of the log lines in data, whose first byte
// is at offset base in the log. Each line is a div whose id is "o" and
// the byte offset where it starts, with a link to itself; a final line
// without its newline is rendered too. Each line is stamped with when its
// first byte arrived, where times says.
func renderLines(out *bytes.Buffer, data []byte, base int64, times arrivals) {
	st := plain
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			end += off
			next = end + 1
		} else {
			end = len(data)
		}
		line := bytes.TrimSuffix(data[off:end], []byte("\r"))
		renderLine(out, line, base+int64(off), times.at(base+int64(off)), &st)
		off = next
	}
}

func renderLine(out *bytes.Buffer, line []byte, at int64, stamp string, st *style) {
	id := "o" + strconv.FormatInt(at, 10)
	kind, name := classify(stripANSI(line))
	out.WriteString(`<div class="l`)
	switch kind {
	case lineGroup:
		out.WriteString(` h hg`)
	case lineEndGroup:
		out.WriteString(` he`)
	case lineSection:
		out.WriteString(` h hs`)
	case lineSectionOpen:
		out.WriteString(` h hs ho`)
	}
	out.WriteString(`" id="`)
	out.WriteString(id)
	if stamp != "" {
		out.WriteString(`" data-at="`)
		out.WriteString(stamp)
	}
	out.WriteString(`"><a class="n" href="#`)
	out.WriteString(id)
	out.WriteString(`">`)
	out.WriteString(strconv.FormatInt(at, 10))
	out.WriteString(`</a><span class="t">`)
	switch kind {
	case lineGroup, lineSection, lineSectionOpen:
		// The header's name is its button; script folds what follows.
		out.WriteString(`<button type="button" class="fold" aria-expanded="true">`)
		escapeTo(out, name)
		out.WriteString(`</button>`)
		var discard bytes.Buffer
		renderANSI(&discard, line, st) // keeps the colour state
	default:
		renderANSI(out, line, st)
	}
	out.WriteString("</span></div>\n")
}

// lineStart returns the offset of the first line that starts at or after
// from within data (whose first byte is at base): from itself at the log's
// start or after a newline, else just after the next newline. ok is false
// when data has no newline to start at.
func lineStart(data []byte, base, from int64) (int64, bool) {
	if from == 0 {
		return 0, true
	}
	i := from - base
	if i > 0 && i <= int64(len(data)) && data[i-1] == '\n' {
		return from, true
	}
	j := bytes.IndexByte(data[max(i, 0):], '\n')
	if j < 0 {
		return 0, false
	}
	return base + max(i, 0) + int64(j) + 1, true
}
