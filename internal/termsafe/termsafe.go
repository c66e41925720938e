// Package termsafe makes untrusted text safe to print on a terminal.
//
// A job's output is written by code the operator does not control. Copied
// to a terminal as is, it can set the window title, write the clipboard
// (OSC 52), move the cursor and redraw lines above, or draw a fake
// "succeeded" over a failure. Writer passes on printable text, newlines,
// tabs and colours, and shows every other control character as visible
// text instead, so that the operator sees that something was attempted:
//
//   - SGR sequences (ESC '[' digits and ';' 'm', at most 64 bytes) pass,
//     since colours are common and harmless; so that a colour, or hidden
//     text, cannot reach lines printed after, a line that changed them ends
//     with a reset (ESC "[0m").
//   - Every other ESC is shown as \x1b, and what follows it as text: a
//     clipboard write shows as "\x1b]52;c;aGk=\x07", a cursor move as
//     "\x1b[2A". Without its ESC no sequence starts, so OSC, DCS, APC, PM,
//     SOS and other CSI sequences need no parsing of their own.
//   - C0 control bytes other than '\n' and '\t', and DEL, are shown as
//     \xNN. That includes '\r', which progress bars use: a carriage return
//     moves the cursor back over the start of the line, where the CLI puts
//     the job's name, so the rest of the line could pose as another job's
//     output or the CLI's own. Jobs' output is rarely drawn for a terminal
//     (it goes to a pipe), and "\r\n" line ends lose their '\r' quietly.
//   - C1 controls are shown too: as \xNN when they come as raw bytes
//     0x80-0x9f, which are not UTF-8 but which terminals in 8-bit modes
//     read as ESC sequences, and as \u0080 to \u009f when UTF-8 encoded.
//   - Any other byte that is not valid UTF-8 is shown as \xNN, so that the
//     output is valid UTF-8.
//
// The escaping is for reading, not reversible: a backslash in the text
// passes as is, so a job can print text that looks like an escape.
package termsafe

import (
	"bytes"
	"io"
	"strconv"
	"unicode/utf8"
)

// maxSGR bounds the SGR sequence that passes, and so the bytes a Writer
// holds back while it is not yet known whether a sequence is one.
const maxSGR = 64

const reset = "\x1b[0m"

// Writer passes what is written to it on to another writer, with terminal
// control sequences shown as text (see the package comment). Its output
// does not depend on how the input is split into writes: it holds back an
// unfinished UTF-8 character, SGR sequence or "\r" (at most maxSGR bytes)
// until the next write, or Close, decides it. A Writer is not safe for
// concurrent use.
type Writer struct {
	w       io.Writer
	held    []byte // the start of a sequence or character not yet decided
	styled  bool   // an SGR other than a reset passed since the last newline
	scratch []byte
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write passes p on, neutralized. It returns len(p) unless w fails.
func (t *Writer) Write(p []byte) (int, error) {
	in := p
	if len(t.held) > 0 {
		// What was held is decided with the new bytes.
		in = append(t.held, p...)
		t.held = nil
	}
	out, rest := t.convert(t.scratch[:0], in, false)
	t.held = append(t.held, rest...)
	t.scratch = out[:0]
	if len(out) == 0 {
		return len(p), nil
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close passes on what is held back, as text, and resets colours a last
// line without a newline changed. It does not close the underlying writer.
func (t *Writer) Close() error {
	out, _ := t.convert(t.scratch[:0], t.held, true)
	t.held = nil
	if t.styled {
		out = append(out, reset...)
		t.styled = false
	}
	if len(out) == 0 {
		return nil
	}
	_, err := t.w.Write(out)
	return err
}

// convert appends the neutralized form of in to out. Unless final, it
// stops at an incomplete sequence or character at the end of in and
// returns it as rest.
func (t *Writer) convert(out, in []byte, final bool) (_, rest []byte) {
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '\n':
			if t.styled {
				out = append(out, reset...)
				t.styled = false
			}
			out = append(out, '\n')
			i++
		case c == '\t' || c >= ' ' && c < 0x7f:
			out = append(out, c)
			i++
		case c == '\r':
			if i+1 == len(in) && !final {
				return out, in[i:]
			}
			if i+1 < len(in) && in[i+1] == '\n' {
				i++ // a CRLF line end: the newline is enough
				continue
			}
			out = escapeByte(out, c)
			i++
		case c == 0x1b:
			n, complete := sgr(in[i:])
			if !complete && !final {
				return out, in[i:]
			}
			if n == 0 {
				out = escapeByte(out, c)
				i++
				continue
			}
			out = append(out, in[i:i+n]...)
			t.styled = n > len("\x1b[m") && string(in[i:i+n]) != reset
			i += n
		case c < utf8.RuneSelf:
			out = escapeByte(out, c) // C0 controls and DEL
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n <= 1 {
				if !final && !utf8.FullRune(in[i:]) {
					return out, in[i:]
				}
				out = escapeByte(out, c)
				i++
				continue
			}
			if r >= 0x80 && r <= 0x9f {
				out = append(out, `\u00`...)
				out = appendHex(out, byte(r))
			} else {
				out = append(out, in[i:i+n]...)
			}
			i += n
		}
	}
	return out, nil
}

// String returns s as a Writer prints it on its own, for text printed
// apart from a stream, like a table cell.
func String(s string) string {
	var b bytes.Buffer
	w := NewWriter(&b)
	_, _ = w.Write([]byte(s)) // a bytes.Buffer does not fail
	_ = w.Close()
	return b.String()
}

// sgr reports the length of the SGR sequence that p starts with, 0 if it
// does not start with one, and whether that is known: a prefix of an SGR
// sequence at the end of p is not yet complete.
func sgr(p []byte) (n int, complete bool) {
	if len(p) < 2 {
		return 0, false
	}
	if p[1] != '[' {
		return 0, true
	}
	for i := 2; i < len(p) && i < maxSGR; i++ {
		switch c := p[i]; {
		case c == 'm':
			return i + 1, true
		case c >= '0' && c <= '9' || c == ';':
		default:
			return 0, true
		}
	}
	return 0, len(p) >= maxSGR
}

func escapeByte(out []byte, c byte) []byte {
	return appendHex(append(out, `\x`...), c)
}

func appendHex(out []byte, c byte) []byte {
	if c < 0x10 {
		out = append(out, '0')
	}
	return strconv.AppendUint(out, uint64(c), 16)
}
