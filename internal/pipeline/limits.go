package pipeline

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// MaxFileSize is the most bytes a pipeline file may have; callers that
// read one from elsewhere (git) read no more.
const MaxFileSize = 1 << 20

// Limits on a pipeline file, checked before the YAML parser reads it. The
// parser's memory or time grows with the square of some shapes of input,
// so a file of a few hundred kilobytes could otherwise take gigabytes or
// minutes. No real pipeline comes near these.
const (
	maxFileSize = MaxFileSize
	// maxDepth bounds collections open at once, block and flow: the
	// parser's memory grows with the square of nesting.
	maxDepth = 64
	// maxKeys bounds the keys of one block mapping: the parser recurses
	// once per key and copies the keys read so far at each level.
	maxKeys = 1000
	// maxPath bounds the bytes of the keys leading to a value, which the
	// parser stores in every value under them.
	maxPath = 256
	// maxBlankLines bounds a run of blank lines: the parser trims those
	// that end a block scalar one at a time, copying the scalar each time.
	maxBlankLines = 32
	// maxRereadWork bounds what the parser reads again: the rest of the
	// line at each tab in double quotes, the rest of a run of '<' at each
	// '<' (looking for a "<<" merge key).
	maxRereadWork = 1 << 23
)

// limitError is a limit the file goes past, at the byte where it does.
type limitError struct {
	offset    int
	msg, hint string
}

// checkLimits reports the first limit data goes past, at the place where it
// does, and returns whether data is within all of them. It reads data once.
func checkLimits(probs *problems, data []byte) bool {
	var err *limitError
	body := bytes.TrimPrefix(data, byteOrderMark)
	if len(data) > maxFileSize {
		err = &limitError{
			offset: maxFileSize - (len(data) - len(body)),
			msg:    fmt.Sprintf("the file is larger than 1 MiB (%d bytes), the most a pipeline file may be; it passes the limit here", maxFileSize),
			hint:   "move long scripts into files of the repository and run them from run:",
		}
	} else if err = checkLines(body); err == nil {
		err = measure(body, nil)
	}
	if err == nil {
		return true
	}
	probs.add(positionOf(body, err.offset), err.hint, "%s", err.msg)
	return false
}

// positionOf is the line and column (in characters) of data[offset].
func positionOf(data []byte, offset int) pos {
	at := pos{1, 1}
	for i := 0; i < offset && i < len(data); {
		switch c := data[i]; {
		case c == '\n' || c == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			at = pos{at.line + 1, 1}
			i++
		case c < utf8.RuneSelf:
			at.col++
			i++
		default:
			_, n := utf8.DecodeRune(data[i:])
			at.col++
			i += n
		}
	}
	return at
}

// checkLines bounds what costs the parser's tokenizer time whatever the
// characters around mean: runs of blank lines, tabs on long lines and long
// runs of '<'. It does not depend on reading the YAML right, because the
// tokenizer goes on after a syntax error, with a reading of the rest that
// can differ.
func checkLines(data []byte) *limitError {
	blank, work := 0, 0
	for start := 0; start < len(data); {
		end := bytes.IndexAny(data[start:], "\r\n")
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += start
			next = end + 1
		}
		line := data[start:end]
		if len(bytes.Trim(line, " \t")) == 0 {
			blank++
			if blank > maxBlankLines {
				return &limitError{
					offset: start,
					msg:    fmt.Sprintf("more than %d blank lines in a row", maxBlankLines),
					hint:   "remove blank lines here",
				}
			}
		} else {
			blank = 0
		}
		for i, c := range line {
			switch c {
			case '\t':
				if work += len(line) - i; work > maxRereadWork {
					return &limitError{
						offset: start + i,
						msg:    "too many tab characters on long lines: the YAML parser would take minutes to read them",
						hint:   "indent with spaces, and write tabs inside quoted text as \\t",
					}
				}
			case '<':
				if i > 0 && line[i-1] == '<' {
					continue // counted with the run's first
				}
				// The tokenizer reads the rest of the run at each '<'.
				run := len(line) - i - len(bytes.TrimLeft(line[i:], "<"))
				if work += run * (run + 1) / 2; work > maxRereadWork {
					return &limitError{
						offset: start + i,
						msg:    "too long a run of '<' characters: the YAML parser would take minutes to read it",
						hint:   "quote the text or write it in a file of the repository",
					}
				}
			}
		}
		start = next
	}
	return nil
}
