package analysis

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// boundedText keeps the head and the tail of what is written to it, at most
// max bytes in all: a failure's assertion is usually at the start of its
// text and a panic or the last log lines at the end.
type boundedText struct {
	max     int
	head    []byte
	tail    []byte // the last bytes written after head filled; compacted lazily
	omitted int64
}

const omittedMarkerMax = 48 // room for "\n… 1234567890123456789 bytes omitted …\n"

func newBoundedText(max int) *boundedText { return &boundedText{max: max} }

func (b *boundedText) headCap() int {
	if b.max < 2*omittedMarkerMax { // too small for a tail: the head and the marker
		return max(0, b.max-omittedMarkerMax)
	}
	return b.max / 2
}

func (b *boundedText) tailCap() int { return max(0, b.max-b.headCap()-omittedMarkerMax) }

func (b *boundedText) WriteString(s string) {
	if n := b.headCap() - len(b.head); n > 0 {
		if n > len(s) {
			n = len(s)
		}
		b.head = append(b.head, s[:n]...)
		s = s[n:]
	}
	if s == "" {
		return
	}
	tc := b.tailCap()
	if len(s) >= tc {
		b.omitted += int64(len(b.tail) + len(s) - tc)
		b.tail = append(b.tail[:0], s[len(s)-tc:]...)
		return
	}
	b.tail = append(b.tail, s...)
	// Compact only when twice over, so that appends stay amortised O(1).
	if len(b.tail) > 2*tc {
		drop := len(b.tail) - tc
		b.omitted += int64(drop)
		b.tail = append(b.tail[:0], b.tail[drop:]...)
	}
}

// reset empties b, keeping its buffers.
func (b *boundedText) reset() { b.head, b.tail, b.omitted = b.head[:0], b.tail[:0], 0 }

func (b *boundedText) Len() int { return len(b.head) + len(b.tail) }

func (b *boundedText) String() string {
	tail := b.tail
	omitted := b.omitted
	if tc := b.tailCap(); len(tail) > tc {
		omitted += int64(len(tail) - tc)
		tail = tail[len(tail)-tc:]
	}
	var sb strings.Builder
	sb.Write(b.head)
	if omitted > 0 {
		// Cut partial runes at the seam rather than leave invalid UTF-8.
		for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
			tail = tail[1:]
		}
		fmt.Fprintf(&sb, "\n… %d bytes omitted …\n", omitted)
	}
	sb.Write(tail)
	return strings.ToValidUTF8(sb.String(), "\uFFFD")
}

// truncate cuts s to at most max bytes on a rune boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// stripANSI removes terminal escape sequences (CSI such as colours, OSC
// such as hyperlinks and titles, and two-byte escapes) and other control
// characters but tab.
func stripANSI(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != 0x1b {
			if !isControl(rune(c)) {
				sb.WriteByte(c)
			}
			i++
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch s[i] {
		case '[': // CSI: parameters and intermediates, then a final byte @ to ~
			i++
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) && s[i] >= 0x20 {
				i++
			}
			if i < len(s) {
				i++
			}
		case ']', 'P', '_', '^': // OSC, DCS, APC, PM: until BEL or ESC \
			i++
			for i < len(s) && s[i] != 0x07 && s[i] != 0x1b {
				i++
			}
			if i < len(s) && s[i] == 0x07 {
				i++
			} else if i+1 < len(s) && s[i+1] == '\\' {
				i += 2
			}
		default:
			i++
		}
	}
	return sb.String()
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r == 0x7f }
