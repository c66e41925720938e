package analysis

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// xmlCapper sits between a report and encoding/xml's decoder, which buffers
// a whole text node, attribute, comment or tag before returning it: one
// 30 MB system-out would cost 30 MB. The capper passes at most textCap
// bytes of each text run, CDATA section, comment and attribute value
// (dropping the rest on a rune and entity boundary and marking the cut with
// "…"), refuses a tag or processing instruction longer than tagCap, and
// refuses declarations (<!DOCTYPE, <!ENTITY) outright, so no entity can be
// defined. Its output is well-formed XML whenever its input is (fuzzed).
type xmlCapper struct {
	r       io.Reader
	textCap int
	tagCap  int

	scratch []byte
	pending []byte
	err     error

	st    capState
	run   int  // bytes passed of the current run
	drop  bool // dropping the rest of the current run
	ent   int  // >0 inside an entity reference: bytes since '&'
	marks int  // trailing ']' in CDATA, '-' in a comment, '?' in a PI
	tag   int  // bytes of the current tag, attribute values included
	quote byte // the current attribute value's quote
	bang  []byte
}

type capState int

const (
	capText capState = iota
	capLT            // after '<'
	capBang          // after "<!"
	capTag
	capAttr
	capCDATA
	capComment
	capPI
)

func newXMLCapper(r io.Reader, textCap, tagCap int) *xmlCapper {
	return &xmlCapper{r: r, textCap: textCap, tagCap: tagCap, scratch: make([]byte, 32<<10)}
}

func (c *xmlCapper) Read(p []byte) (int, error) {
	for len(c.pending) == 0 && c.err == nil {
		n, err := c.r.Read(c.scratch)
		if perr := c.process(c.scratch[:n]); perr != nil {
			c.err = perr
		} else if err != nil {
			c.err = err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if n == 0 {
		return 0, c.err
	}
	return n, nil
}

func (c *xmlCapper) emit(b ...byte) { c.pending = append(c.pending, b...) }

func (c *xmlCapper) startRun(st capState) {
	c.st, c.run, c.drop, c.ent, c.marks = st, 0, false, 0, 0
}

// content passes or drops one byte of a capped run.
func (c *xmlCapper) content(b byte, entities bool) {
	if !c.drop && c.run >= c.textCap && c.ent == 0 && utf8.RuneStart(b) {
		c.drop = true
		c.emit([]byte("…")...)
	}
	if c.drop {
		return
	}
	c.emit(b)
	c.run++
	if !entities {
		return
	}
	switch {
	case b == '&':
		c.ent = 1
	case c.ent > 0 && b == ';', c.ent > 32: // past 32 bytes it is no entity; the decoder says so
		c.ent = 0
	case c.ent > 0:
		c.ent++
	}
}

// span passes a run of ordinary bytes at once, the common case, and
// returns how many; 0 leaves the next byte to process.
func (c *xmlCapper) span(rest []byte) int {
	var stop int
	switch c.st {
	case capText:
		stop = bytes.IndexByte(rest, '<')
	case capAttr:
		stop = bytes.IndexByte(rest, c.quote)
	case capTag:
		stop = indexTagEnd(rest)
	case capCDATA:
		if c.marks >= 2 { // a '>' now would end the section
			return 0
		}
		stop = bytes.IndexByte(rest, ']')
	default:
		return 0
	}
	if stop < 0 {
		stop = len(rest)
	}
	seg := rest[:stop]
	if len(seg) == 0 || c.tag+len(seg) > c.tagCap {
		return 0
	}
	switch {
	case c.st == capTag:
		c.tag += len(seg)
	case c.drop:
		if c.st == capCDATA {
			c.marks = 0
		}
		return len(seg)
	case c.ent > 0 || c.run+len(seg) > c.textCap:
		return 0 // near a cut: byte by byte
	case c.st == capCDATA:
		c.run += len(seg)
		c.marks = 0
	default:
		c.run += len(seg)
		if c.st == capAttr {
			c.tag += len(seg)
		}
		if a := bytes.LastIndexByte(seg, '&'); a > bytes.LastIndexByte(seg, ';') && len(seg)-a <= 32 {
			c.ent = len(seg) - a
		}
	}
	c.pending = append(c.pending, seg...)
	return len(seg)
}

// indexTagEnd finds the next quote or '>' (bytes.IndexAny builds a set on
// every call; tag names between them are short).
func indexTagEnd(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\'' || c == '>' {
			return i
		}
	}
	return -1
}

func (c *xmlCapper) process(in []byte) error {
	for i := 0; i < len(in); i++ {
		if n := c.span(in[i:]); n > 0 {
			i += n - 1
			continue
		}
		b := in[i]
		switch c.st {
		case capText:
			if b == '<' {
				c.emit(b)
				c.st = capLT
				continue
			}
			c.content(b, true)
		case capLT:
			c.emit(b)
			switch b {
			case '!':
				c.st, c.bang = capBang, c.bang[:0]
			case '?':
				c.startRun(capPI)
				c.tag = 2
			default:
				c.st, c.tag = capTag, 2
			}
		case capBang:
			c.emit(b)
			c.bang = append(c.bang, b)
			switch s := string(c.bang); {
			case s == "--":
				c.startRun(capComment)
			case s == "[CDATA[":
				c.startRun(capCDATA)
			case s == "-", len(s) < len("[CDATA[") && s == "[CDATA["[:len(s)]:
			default:
				return fmt.Errorf("%w: XML declarations such as <!DOCTYPE and <!ENTITY are not accepted in reports", ErrRefused)
			}
		case capTag:
			c.emit(b)
			c.tag++
			switch b {
			case '"', '\'':
				c.startRun(capAttr)
				c.quote = b
			case '>':
				c.startRun(capText)
			}
		case capAttr:
			if b == c.quote {
				c.emit(b)
				c.st = capTag
				c.tag++
			} else {
				before := len(c.pending)
				c.content(b, true)
				c.tag += len(c.pending) - before
			}
		case capCDATA:
			if b == '>' && c.marks >= 2 {
				c.endMarked("]]>")
				continue
			}
			c.mark(b, ']')
			c.content(b, false)
		case capComment:
			if b == '>' && c.marks >= 2 {
				// A space keeps a kept '-' from running into the "-->".
				c.endMarked(" -->")
				continue
			}
			c.mark(b, '-')
			c.content(b, false)
		case capPI:
			// A processing instruction is markup (the XML declaration
			// among them): never cut, refused past tagCap like a tag.
			c.emit(b)
			c.tag++
			if b == '>' && c.marks >= 1 {
				c.startRun(capText)
				continue
			}
			c.mark(b, '?')
		}
		if c.tag > c.tagCap {
			return fmt.Errorf("%w: a tag longer than %d bytes", ErrRefused, c.tagCap)
		}
	}
	return nil
}

func (c *xmlCapper) mark(b, m byte) {
	if b == m {
		c.marks++
	} else {
		c.marks = 0
	}
}

// endMarked ends a CDATA section, comment or PI: its terminator was passed
// unless the run was being dropped, and is written whole then.
func (c *xmlCapper) endMarked(term string) {
	if c.drop {
		c.emit([]byte(term)...)
	} else {
		c.emit('>')
	}
	c.startRun(capText)
}
