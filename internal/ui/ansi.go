package ui

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// style is the SGR state of terminal output: colours as indexes of the
// 256-colour palette (-1 for the default), and the attributes a log
// viewer shows.
type style struct {
	fg, bg                       int
	bold, dim, italic, underline bool
}

var plain = style{fg: -1, bg: -1}

// class is the style as CSS classes of static/app.css and ansiCSS.
func (s style) class() string {
	var parts []string
	if s.fg >= 0 {
		parts = append(parts, "f"+strconv.Itoa(s.fg))
	}
	if s.bg >= 0 {
		parts = append(parts, "g"+strconv.Itoa(s.bg))
	}
	if s.bold {
		parts = append(parts, "ab")
	}
	if s.dim {
		parts = append(parts, "ad")
	}
	if s.italic {
		parts = append(parts, "ai")
	}
	if s.underline {
		parts = append(parts, "au")
	}
	return strings.Join(parts, " ")
}

// apply applies the parameters of one SGR sequence (ESC [ ... m).
func (s *style) apply(params string) {
	if params == "" {
		*s = plain
		return
	}
	ps := strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ':' })
	nums := make([]int, 0, len(ps))
	for _, p := range ps {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			n = -1 // ignored below
		}
		nums = append(nums, n)
	}
	for i := 0; i < len(nums); i++ {
		n := nums[i]
		switch {
		case n == 0:
			*s = plain
		case n == 1:
			s.bold = true
		case n == 2:
			s.dim = true
		case n == 3:
			s.italic = true
		case n == 4:
			s.underline = true
		case n == 22:
			s.bold, s.dim = false, false
		case n == 23:
			s.italic = false
		case n == 24:
			s.underline = false
		case n >= 30 && n <= 37:
			s.fg = n - 30
		case n == 39:
			s.fg = -1
		case n >= 40 && n <= 47:
			s.bg = n - 40
		case n == 49:
			s.bg = -1
		case n >= 90 && n <= 97:
			s.fg = n - 90 + 8
		case n >= 100 && n <= 107:
			s.bg = n - 100 + 8
		case n == 38 || n == 48:
			c, used := extendedColour(nums[i+1:])
			i += used
			if n == 38 {
				s.fg = c
			} else {
				s.bg = c
			}
		}
	}
}

// extendedColour reads the colour after 38 or 48: 5;n (the palette) or
// 2;r;g;b (true colour, shown as the nearest palette colour). It returns
// the colour (-1 when malformed) and how many numbers it used.
func extendedColour(rest []int) (int, int) {
	if len(rest) == 0 {
		return -1, 0
	}
	switch rest[0] {
	case 5:
		if len(rest) < 2 || rest[1] < 0 || rest[1] > 255 {
			return -1, len(rest[:min(2, len(rest))])
		}
		return rest[1], 2
	case 2:
		if len(rest) < 4 {
			return -1, len(rest)
		}
		r, g, b := rest[1], rest[2], rest[3]
		if r < 0 || r > 255 || g < 0 || g > 255 || b < 0 || b > 255 {
			return -1, 4
		}
		// The 6×6×6 cube of the palette.
		q := func(v int) int { return (v*5 + 127) / 255 }
		return 16 + 36*q(r) + 6*q(g) + q(b), 4
	}
	return -1, 1
}

// renderANSI appends the HTML of one line of terminal output to out: text
// escaped, SGR colours and attributes as spans, every other escape
// sequence and control character dropped. A carriage return starts the
// line over, as a terminal shows a progress bar. st carries the style
// from line to line.
func renderANSI(out *bytes.Buffer, line []byte, st *style) {
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		// The text before the last return is overwritten on a terminal;
		// its colour changes still count.
		var discard bytes.Buffer
		renderSegment(&discard, line[:i], st)
		line = line[i+1:]
	}
	renderSegment(out, line, st)
}

func renderSegment(out *bytes.Buffer, line []byte, st *style) {
	open := false
	cur := ""
	write := func(text []byte) {
		if len(text) == 0 {
			return
		}
		if c := st.class(); c != cur || !open {
			if open {
				out.WriteString("</span>")
				open = false
			}
			cur = c
			if c != "" {
				out.WriteString(`<span class="`)
				out.WriteString(c)
				out.WriteString(`">`)
				open = true
			}
		}
		escapeTo(out, text)
	}
	for i := 0; i < len(line); {
		// The run of text up to the next escape or control character.
		j := i
		for j < len(line) && (line[j] >= 0x20 && line[j] != 0x7f || line[j] == '\t') {
			j++
		}
		write(line[i:j])
		if j == len(line) {
			break
		}
		if line[j] == 0x1b {
			j += skipEscape(line[j:], st)
		} else {
			j++ // a control character is dropped
		}
		i = j
	}
	if open {
		out.WriteString("</span>")
	}
}

// skipEscape applies an SGR sequence at the start of b to st, skips any
// other escape sequence, and returns the bytes used (at least one).
func skipEscape(b []byte, st *style) int {
	if len(b) < 2 {
		return len(b)
	}
	switch b[1] {
	case '[': // CSI: parameters, intermediates, one final byte
		for j := 2; j < len(b); j++ {
			c := b[j]
			if c >= 0x40 && c <= 0x7e {
				if c == 'm' {
					st.apply(string(b[2:j]))
				}
				return j + 1
			}
			if c < 0x20 || c > 0x3f {
				return j // malformed: drop what was read
			}
		}
		return len(b)
	case ']', 'P', '_', '^': // OSC, DCS, APC, PM: to BEL or ST
		for j := 2; j < len(b); j++ {
			if b[j] == 0x07 {
				return j + 1
			}
			if b[j] == 0x1b && j+1 < len(b) && b[j+1] == '\\' {
				return j + 2
			}
		}
		return len(b)
	}
	return 2
}

// escapeTo writes b as HTML text, invalid UTF-8 as U+FFFD. Runs of bytes
// that need nothing are written whole.
func escapeTo(out *bytes.Buffer, b []byte) {
	done := 0
	for i := 0; i < len(b); {
		c := b[i]
		var rep string
		switch {
		case c == '<':
			rep = "&lt;"
		case c == '>':
			rep = "&gt;"
		case c == '&':
			rep = "&amp;"
		case c == '"':
			rep = "&#34;"
		case c == '\'':
			rep = "&#39;"
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r != utf8.RuneError || size > 1 {
				i += size
				continue
			}
			rep = "\uFFFD"
		default:
			i++
			continue
		}
		out.Write(b[done:i])
		out.WriteString(rep)
		i++
		done = i
	}
	out.Write(b[done:])
}

// stripANSI returns the text of a line as renderANSI shows it, without
// markup: what search matches.
func stripANSI(line []byte) []byte {
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	if bytes.IndexByte(line, 0x1b) < 0 {
		return line
	}
	out := make([]byte, 0, len(line))
	var st style
	for i := 0; i < len(line); {
		if line[i] == 0x1b {
			i += skipEscape(line[i:], &st)
			continue
		}
		out = append(out, line[i])
		i++
	}
	return out
}

// ansiCSS is the stylesheet of the 256 palette colours, foreground (f<n>)
// and background (g<n>): the 16 named ones in shades readable on the
// log's dark background,
// the 6×6×6 cube and the grey ramp.
func ansiCSS() []byte {
	// Chosen to keep a contrast of 4.5:1 on the log's dark background,
	// black and blue included.
	base := []string{
		"#8b949e", "#ff7b72", "#3fb950", "#d29922", "#58a6ff", "#bc8cff", "#39c5cf", "#b1bac4",
		"#a5adb6", "#ffa198", "#56d364", "#e3b341", "#79c0ff", "#d2a8ff", "#56d4dd", "#ffffff",
	}
	var b bytes.Buffer
	colour := func(i int) string {
		switch {
		case i < 16:
			return base[i]
		case i < 232:
			i -= 16
			lv := []int{0, 95, 135, 175, 215, 255}
			return fmt.Sprintf("#%02x%02x%02x", lv[i/36], lv[i/6%6], lv[i%6])
		}
		v := 8 + (i-232)*10
		return fmt.Sprintf("#%02x%02x%02x", v, v, v)
	}
	for i := 0; i < 256; i++ {
		fmt.Fprintf(&b, ".f%d{color:%s}.g%d{background:%s}\n", i, colour(i), i, colour(i))
	}
	return b.Bytes()
}
