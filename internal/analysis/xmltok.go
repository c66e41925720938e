package analysis

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// xmlTokenizer reads the XML JUnit reports are written in, streaming, from
// large buffered blocks: elements with attributes, text and CDATA, with
// comments, processing instructions and the XML declaration skipped. It
// accepts and refuses what encoding/xml's Decoder does in Strict mode
// (FuzzTokenizerMatchesEncodingXML compares them), and checks what
// RawToken leaves to its caller: end tags match, every element is closed.
// It refuses more: any <!DOCTYPE or other declaration, nesting deeper than
// maxDepth and a tag past tagCap bytes. Each text run, CDATA section and
// attribute value keeps at most textCap bytes (cut on a rune boundary and
// marked with "…"); the rest is read, checked and dropped, so memory stays
// bounded whatever the input. Names are kept raw (prefix:local).
//
// The current token lives in buffers reused from token to token: what the
// parser keeps, it copies.
type xmlTokenizer struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64 // input offset of buf[0]
	rerr     error // the reader's error, once it returned one

	textCap, tagCap, maxDepth int

	name       []byte // the element's name, for tokStart and tokEnd
	attrBuf    []byte // attribute names and values, see xmlAttr
	attrs      []xmlAttr
	text       []byte
	pendingEnd bool // a self-closing element's end comes next
	tagLen     int

	open    []byte // names of the open elements, concatenated
	openEnd []int
	pi      []byte // an XML declaration's content
}

type xmlTokKind int

const (
	tokEOF xmlTokKind = iota
	tokStart
	tokEnd
	tokText
)

// xmlAttr locates one attribute's name and decoded value in attrBuf.
type xmlAttr struct{ nameStart, nameEnd, valEnd int }

func newXMLTokenizer(r io.Reader, textCap, tagCap, maxDepth int) *xmlTokenizer {
	return &xmlTokenizer{r: r, buf: make([]byte, 64<<10), textCap: textCap, tagCap: tagCap, maxDepth: maxDepth}
}

// fill reads more input after the unread bytes, which it moves to the
// buffer's start; false when nothing more came (z.rerr says why).
func (z *xmlTokenizer) fill() bool {
	if z.rerr != nil {
		return false
	}
	n := copy(z.buf, z.buf[z.pos:z.end])
	z.base += int64(z.pos)
	z.pos, z.end = 0, n
	for z.rerr == nil && z.end == n {
		m, err := z.r.Read(z.buf[z.end:])
		z.end += m
		z.rerr = err
	}
	return z.end > n
}

// more reports whether at least n unread bytes are buffered, reading if
// needed (n is small: a rune, an entity).
func (z *xmlTokenizer) more(n int) bool {
	for z.end-z.pos < n {
		if !z.fill() {
			return false
		}
	}
	return true
}

func (z *xmlTokenizer) offset() int64 { return z.base + int64(z.pos) }

func (z *xmlTokenizer) malformed(format string, args ...any) error {
	return fmt.Errorf("%w: not well-formed XML at byte %d: %s", ErrMalformed, z.offset(), fmt.Sprintf(format, args...))
}

// eof is the error of input that ends inside what.
func (z *xmlTokenizer) eof(what string) error {
	if z.rerr != nil && z.rerr != io.EOF {
		return z.rerr
	}
	return z.malformed("the report ends inside %s", what)
}

func (z *xmlTokenizer) depth() int { return len(z.openEnd) }

// local is the element name without its prefix, as encoding/xml splits it.
func (z *xmlTokenizer) local() []byte { return localName(z.name) }

func localName(n []byte) []byte {
	if i := bytes.IndexByte(n, ':'); i > 0 && i < len(n)-1 {
		return n[i+1:]
	}
	return n
}

// attr returns the value of the current element's first attribute whose
// local name is name.
func (z *xmlTokenizer) attr(name string) string { return string(z.attrBytes(name)) }

// attrBytes is attr in the tokenizer's buffer, valid until the next token.
func (z *xmlTokenizer) attrBytes(name string) []byte {
	for _, a := range z.attrs {
		if string(localName(z.attrBuf[a.nameStart:a.nameEnd])) == name {
			return z.attrBuf[a.nameEnd:a.valEnd]
		}
	}
	return nil
}

func (z *xmlTokenizer) top() []byte {
	n := len(z.openEnd)
	start := 0
	if n > 1 {
		start = z.openEnd[n-2]
	}
	return z.open[start:z.openEnd[n-1]]
}

func (z *xmlTokenizer) pop() {
	n := len(z.openEnd)
	z.openEnd = z.openEnd[:n-1]
	if n > 1 {
		z.open = z.open[:z.openEnd[n-2]]
	} else {
		z.open = z.open[:0]
	}
}

// next reads the next token: a start tag (name, attrs), an end tag (name,
// also after a self-closing start tag), text (text) or the end of input.
func (z *xmlTokenizer) next() (xmlTokKind, error) {
	if z.pendingEnd {
		z.pendingEnd = false
		z.pop()
		return tokEnd, nil
	}
	for {
		if !z.more(1) {
			if z.rerr != io.EOF {
				return tokEOF, z.rerr
			}
			if len(z.openEnd) > 0 {
				return tokEOF, fmt.Errorf("%w: not well-formed XML: the report ends inside <%s>", ErrMalformed, z.top())
			}
			return tokEOF, nil
		}
		if z.buf[z.pos] != '<' {
			z.text = z.text[:0]
			if err := z.readText(0, false); err != nil {
				return tokEOF, err
			}
			return tokText, nil
		}
		z.pos++
		if !z.more(1) {
			return tokEOF, z.eof("a tag")
		}
		switch z.buf[z.pos] {
		case '/':
			z.pos++
			return tokEnd, z.endTag()
		case '?':
			z.pos++
			if err := z.procInst(); err != nil {
				return tokEOF, err
			}
		case '!':
			z.pos++
			cdata, err := z.bang()
			if err != nil {
				return tokEOF, err
			}
			if cdata {
				return tokText, nil
			}
		default:
			return tokStart, z.startTag()
		}
	}
}

// Bytes that may appear in names, as encoding/xml reads them: the ASCII
// name characters and any byte of a multi-byte rune (checked after).
var nameByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-' || c >= utf8.RuneSelf
	}
	return t
}()

// readName appends a name to dst; false when no name starts here.
func (z *xmlTokenizer) readName(dst []byte) ([]byte, bool, error) {
	start := len(dst)
	for {
		if z.pos == z.end && !z.fill() {
			if len(dst) == start {
				return dst, false, z.eof("a tag")
			}
			return dst, true, z.eof("a name")
		}
		i := z.pos
		for i < z.end && nameByte[z.buf[i]] {
			i++
		}
		dst = append(dst, z.buf[z.pos:i]...)
		z.tagLen += i - z.pos
		z.pos = i
		if z.tagLen > z.tagCap {
			return dst, false, fmt.Errorf("%w: a tag longer than %d bytes", ErrRefused, z.tagCap)
		}
		if i < z.end {
			break
		}
	}
	if len(dst) == start {
		return dst, false, nil
	}
	if !validName(dst[start:]) {
		return dst, false, z.malformed("invalid XML name %q", dst[start:])
	}
	return dst, true, nil
}

// validName checks a name against XML 1.0's letters and name characters.
// Non-ASCII names, which reports do not use, are left to encoding/xml's
// tables (as the target of a processing instruction, a plain name).
func validName(n []byte) bool {
	for i, c := range n {
		if c >= utf8.RuneSelf {
			_, err := xml.NewDecoder(bytes.NewReader(append(append([]byte("<?"), n...), "?>"...))).RawToken()
			return err == nil
		}
		if i == 0 && ('0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return len(n) > 0
}

// qualified checks the colons of an element or attribute name:
// encoding/xml refuses more than one.
func qualified(n []byte) bool {
	i := bytes.IndexByte(n, ':')
	return i < 0 || bytes.IndexByte(n[i+1:], ':') < 0
}

// space skips white space.
func (z *xmlTokenizer) space() {
	for {
		if z.pos == z.end && !z.fill() {
			return
		}
		switch z.buf[z.pos] {
		case ' ', '\r', '\n', '\t':
			z.pos++
			z.tagLen++
		default:
			return
		}
	}
}

// getc returns the next byte; false at the end of input.
func (z *xmlTokenizer) getc() (byte, bool) {
	if z.pos == z.end && !z.fill() {
		return 0, false
	}
	c := z.buf[z.pos]
	z.pos++
	z.tagLen++
	return c, true
}

func (z *xmlTokenizer) startTag() error {
	z.tagLen = 1
	var ok bool
	var err error
	z.name, ok, err = z.readName(z.name[:0])
	if err != nil {
		return err
	}
	if !ok || !qualified(z.name) {
		return z.malformed("expected an element name after <")
	}
	if len(z.openEnd) == z.maxDepth {
		return fmt.Errorf("%w: elements nested deeper than %d", ErrRefused, z.maxDepth)
	}
	z.attrBuf, z.attrs = z.attrBuf[:0], z.attrs[:0]
	for {
		z.space()
		c, ok := z.getc()
		if !ok {
			return z.eof("a tag")
		}
		if c == '/' {
			if c, ok = z.getc(); !ok {
				return z.eof("a tag")
			}
			if c != '>' {
				return z.malformed("expected /> in <%s>", z.name)
			}
			z.pendingEnd = true
			break
		}
		if c == '>' {
			break
		}
		z.pos--
		z.tagLen--
		a := xmlAttr{nameStart: len(z.attrBuf)}
		if z.attrBuf, ok, err = z.readName(z.attrBuf); err != nil {
			return err
		}
		a.nameEnd = len(z.attrBuf)
		if !ok || !qualified(z.attrBuf[a.nameStart:]) {
			return z.malformed("expected an attribute name in <%s>", z.name)
		}
		z.space()
		if c, ok = z.getc(); !ok {
			return z.eof("a tag")
		}
		if c != '=' {
			return z.malformed("attribute %s without = in <%s>", z.attrBuf[a.nameStart:a.nameEnd], z.name)
		}
		z.space()
		if c, ok = z.getc(); !ok {
			return z.eof("a tag")
		}
		if c != '"' && c != '\'' {
			return z.malformed("unquoted or missing value of attribute %s in <%s>", z.attrBuf[a.nameStart:a.nameEnd], z.name)
		}
		saved := z.text
		z.text = z.attrBuf
		err := z.readText(c, false)
		z.attrBuf, z.text = z.text, saved
		if err != nil {
			return err
		}
		z.tagLen += len(z.attrBuf) - a.nameEnd
		if z.tagLen > z.tagCap {
			return fmt.Errorf("%w: a tag longer than %d bytes", ErrRefused, z.tagCap)
		}
		a.valEnd = len(z.attrBuf)
		z.attrs = append(z.attrs, a)
	}
	z.open = append(z.open, z.name...)
	z.openEnd = append(z.openEnd, len(z.open))
	return nil
}

func (z *xmlTokenizer) endTag() error {
	z.tagLen = 2
	var ok bool
	var err error
	z.name, ok, err = z.readName(z.name[:0])
	if err != nil {
		return err
	}
	if !ok || !qualified(z.name) {
		return z.malformed("expected an element name after </")
	}
	z.space()
	c, ok := z.getc()
	if !ok {
		return z.eof("a tag")
	}
	if c != '>' {
		return z.malformed("invalid characters between </%s and >", z.name)
	}
	if len(z.openEnd) == 0 || !bytes.Equal(z.top(), z.name) {
		return fmt.Errorf("%w: not well-formed XML at byte %d: </%s> closes no open element", ErrMalformed, z.offset(), z.name)
	}
	z.pop()
	return nil
}

// procInst skips a processing instruction after its "<?"; the XML
// declaration's version and encoding are checked as encoding/xml does, and
// ISO-8859-1 input is converted from there on.
func (z *xmlTokenizer) procInst() error {
	z.tagLen = 2
	target, ok, err := z.readName(z.name[:0])
	z.name = target
	if err != nil {
		return err
	}
	if !ok {
		return z.malformed("expected a target name after <?")
	}
	isDecl := string(target) == "xml"
	z.space()
	z.pi = z.pi[:0]
	for {
		if !z.more(2) {
			if !z.more(1) {
				return z.eof("a processing instruction")
			}
			if isDecl {
				z.pi = append(z.pi, z.buf[z.pos])
			}
			z.pos++
			z.tagLen++
			continue
		}
		i := bytes.Index(z.buf[z.pos:z.end], []byte("?>"))
		n := i
		if i < 0 {
			n = z.end - z.pos - 1 // the last byte may start "?>"
		}
		if isDecl {
			z.pi = append(z.pi, z.buf[z.pos:z.pos+n]...)
		}
		z.pos += n
		z.tagLen += n
		if z.tagLen > z.tagCap {
			return fmt.Errorf("%w: a tag longer than %d bytes", ErrRefused, z.tagCap)
		}
		if i >= 0 {
			z.pos += 2
			break
		}
	}
	if !isDecl {
		return nil
	}
	content := string(z.pi)
	if v := declParam("version", content); v != "" && v != "1.0" {
		return z.malformed("XML version %q, not 1.0", v)
	}
	enc := declParam("encoding", content)
	if enc == "" || strings.EqualFold(enc, "utf-8") {
		return nil
	}
	r, err := charsetReader(enc, nil)
	if err != nil {
		return err
	}
	// What is buffered is read again through the conversion.
	rest := bytes.Clone(z.buf[z.pos:z.end])
	r.(*latin1Reader).r = io.MultiReader(bytes.NewReader(rest), z.r)
	z.r, z.rerr = r, nil
	z.base += int64(z.pos)
	z.pos, z.end = 0, 0
	return nil
}

// declParam finds param's value in an XML declaration as encoding/xml
// does: the first param= directly followed by a quote, up to the next
// same quote.
func declParam(param, s string) string {
	key := param + "="
	for i := 0; ; {
		k := strings.Index(s[i:], key)
		if k < 0 {
			return ""
		}
		j := i + k + len(key)
		if j >= len(s) {
			return ""
		}
		if q := s[j]; q == '"' || q == '\'' {
			e := strings.IndexByte(s[j+1:], q)
			if e < 0 {
				return ""
			}
			return s[j+1 : j+1+e]
		}
		i = j + 1
	}
}

// bang reads what follows "<!": a comment (skipped), a CDATA section
// (read into text: true) or a declaration (refused).
func (z *xmlTokenizer) bang() (bool, error) {
	c, ok := z.getc()
	if !ok {
		return false, z.eof("a tag")
	}
	switch c {
	case '-':
		if c, ok = z.getc(); !ok {
			return false, z.eof("a comment")
		}
		if c != '-' {
			return false, z.malformed("<!- that does not start a comment")
		}
		return false, z.comment()
	case '[':
		if !z.more(6) {
			return false, z.eof("a CDATA section")
		}
		if string(z.buf[z.pos:z.pos+6]) != "CDATA[" {
			return false, z.malformed("<![ that does not start a CDATA section")
		}
		z.pos += 6
		z.text = z.text[:0]
		return true, z.readText(0, true)
	}
	return false, fmt.Errorf("%w: XML declarations such as <!DOCTYPE are not accepted in reports", ErrRefused)
}

// comment skips a comment's content and its "-->": the first "--" in it
// must end it.
func (z *xmlTokenizer) comment() error {
	for {
		if z.pos == z.end && !z.fill() {
			return z.eof("a comment")
		}
		i := bytes.IndexByte(z.buf[z.pos:z.end], '-')
		if i < 0 {
			z.pos = z.end
			continue
		}
		z.pos += i
		if !z.more(2) {
			return z.eof("a comment")
		}
		if z.buf[z.pos+1] != '-' {
			z.pos++
			continue
		}
		if !z.more(3) {
			return z.eof("a comment")
		}
		if z.buf[z.pos+2] != '>' {
			return z.malformed(`"--" inside a comment`)
		}
		z.pos += 3
		return nil
	}
}

// Bytes each kind of text stops at: markup, entities, the "]]>" check,
// line ends to normalise, and bytes to check (controls, multi-byte runes).
var textStop, cdataStop, dquoteStop, squoteStop = stopTable("<&]>\r"), stopTable("]>\r"), stopTable("<&\r\""), stopTable("<&\r'")

func stopTable(special string) (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c < 0x20 && c != '\t' && c != '\n' || c >= utf8.RuneSelf || strings.IndexByte(special, byte(c)) >= 0
	}
	return t
}

// readText reads character data into z.text (appending: attribute values
// follow their names in attrBuf) as encoding/xml's Strict decoder does:
// text up to '<' (quote 0, cdata false), an attribute value up to its
// quote, or a CDATA section up to "]]>"; entities and character references
// decoded, \r\n and \r turned into \n, every rune checked to be XML
// character. Past textCap bytes the rest is checked and dropped.
func (z *xmlTokenizer) readText(quote byte, cdata bool) error {
	stop := &textStop
	what := "text"
	switch {
	case cdata:
		stop, what = &cdataStop, "a CDATA section"
	case quote == '"':
		stop, what = &dquoteStop, "an attribute value"
	case quote == '\'':
		stop, what = &squoteStop, "an attribute value"
	}
	start := len(z.text)
	limit := start + z.textCap
	cut := false
	put := func(b []byte) {
		if room := limit - len(z.text); len(b) > room {
			b, cut = b[:max(room, 0)], true
		}
		z.text = append(z.text, b...)
	}
	brackets := 0 // consecutive ']' just read
	for {
		if z.pos == z.end && !z.fill() {
			if quote != 0 || cdata {
				return z.eof(what)
			}
			if z.rerr != io.EOF {
				return z.rerr
			}
			break
		}
		i := z.pos
		for i < z.end && !stop[z.buf[i]] {
			i++
		}
		if i > z.pos {
			for ; cdata && brackets > 0; brackets-- {
				put([]byte("]"))
			}
			put(z.buf[z.pos:i])
			z.pos = i
			brackets = 0
			continue
		}
		c := z.buf[z.pos]
		switch {
		case c == ']':
			brackets++
			z.pos++
			if !cdata {
				put([]byte("]"))
			}
			continue
		case c == '>' && brackets >= 2:
			if !cdata {
				return z.malformed("]]> outside a CDATA section")
			}
			z.pos++
			for ; brackets > 2; brackets-- {
				put([]byte("]"))
			}
			return z.endText(start, cut)
		}
		if cdata {
			for ; brackets > 0; brackets-- {
				put([]byte("]"))
			}
		}
		brackets = 0
		switch {
		case c == '>':
			put([]byte(">"))
			z.pos++
		case c == '<' && quote == 0 && !cdata:
			return z.endText(start, cut)
		case c == '<':
			return z.malformed("< inside an attribute value")
		case quote != 0 && c == quote:
			z.pos++
			return z.endText(start, cut)
		case c == '&':
			r, err := z.entity()
			if err != nil {
				return err
			}
			var b [utf8.UTFMax]byte
			put(b[:utf8.EncodeRune(b[:], r)])
		case c == '\r':
			put([]byte("\n"))
			z.pos++
			if z.more(1) && z.buf[z.pos] == '\n' {
				z.pos++
			}
		case c < utf8.RuneSelf:
			return z.malformed("illegal character code %U", rune(c))
		default:
			if !z.more(utf8.UTFMax) {
				z.more(1)
			}
			r, size := utf8.DecodeRune(z.buf[z.pos:z.end])
			if r == utf8.RuneError && size == 1 {
				return z.malformed("invalid UTF-8")
			}
			if !xmlChar(r) {
				return z.malformed("illegal character code %U", r)
			}
			put(z.buf[z.pos : z.pos+size])
			z.pos += size
		}
	}
	return z.endText(start, cut)
}

// endText marks a cut run: its kept part ends on a rune boundary.
func (z *xmlTokenizer) endText(start int, cut bool) error {
	if !cut {
		return nil
	}
	t := z.text[start:]
	for j := len(t) - 1; j >= 0 && j >= len(t)-utf8.UTFMax; j-- {
		if utf8.RuneStart(t[j]) {
			if !utf8.FullRune(t[j:]) {
				t = t[:j]
			}
			break
		}
	}
	z.text = append(z.text[:start+len(t)], "…"...)
	return nil
}

var predefined = []struct {
	ref string
	r   rune
}{{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"apos;", '\''}, {"quot;", '"'}}

// entity reads an entity or character reference at '&': only the five
// predefined entities exist, no document may declare more.
func (z *xmlTokenizer) entity() (rune, error) {
	at := z.offset()
	bad := func() (rune, error) {
		if z.rerr != nil && z.rerr != io.EOF {
			return 0, z.rerr
		}
		return 0, fmt.Errorf("%w: not well-formed XML at byte %d: an invalid or undeclared character entity", ErrMalformed, at)
	}
	z.pos++
	z.more(6)
	rest := z.buf[z.pos:z.end]
	if len(rest) > 0 && rest[0] == '#' {
		z.pos++
		base := rune(10)
		if z.more(1) && z.buf[z.pos] == 'x' {
			base = 16
			z.pos++
		}
		var n rune
		digits := 0
		for z.more(1) {
			c := z.buf[z.pos]
			var d rune
			switch {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			case c == ';' && digits > 0:
				z.pos++
				if !utf8.ValidRune(n) {
					n = utf8.RuneError // as string(rune(n)) does
				}
				if !xmlChar(n) {
					return 0, z.malformed("illegal character code %U", n)
				}
				return n, nil
			default:
				return bad()
			}
			if n = n*base + d; n > utf8.MaxRune {
				return bad()
			}
			digits++
			z.pos++
		}
		return bad()
	}
	for _, p := range predefined {
		if bytes.HasPrefix(rest, []byte(p.ref)) {
			z.pos += len(p.ref)
			return p.r, nil
		}
	}
	return bad()
}

// xmlChar reports whether r is in XML 1.0's Char production.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
