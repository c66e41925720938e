package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/deltaci/deltaci/internal/termsafe"
)

// console writes job output line by line, each line prefixed with its job
// name, so parallel jobs never interleave within a line.
//
// All it prints goes through termsafe: a job's output comes from code the
// operator may not control, and must not set the terminal's title, write
// its clipboard or redraw lines, so escape sequences other than colours
// and control characters show as text. That holds when stdout is not a
// terminal too, since a pipe often ends on one (tee, less -R). The job's
// stored log keeps what it printed unchanged.
type console struct {
	mu     sync.Mutex
	w      io.Writer // a termsafe.Writer, written whole lines at a time
	color  bool
	width  int
	colors map[string]int
}

// ANSI colours that read on both dark and light terminals.
var palette = []int{36, 33, 35, 32, 34, 31, 96, 93, 95, 92, 94}

func newConsole(w io.Writer, jobs []string) *console {
	c := &console{w: termsafe.NewWriter(w), color: isTerminal(w), colors: map[string]int{}}
	for i, j := range jobs {
		c.colors[j] = palette[i%len(palette)]
		c.width = max(c.width, len(j))
	}
	return c
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (c *console) prefix(job string) string {
	p := fmt.Sprintf("%-*s | ", c.width, job)
	if c.color {
		return fmt.Sprintf("\x1b[%dm%s\x1b[0m", c.colors[job], p)
	}
	return p
}

// job returns a writer for one attempt of a job.
func (c *console) job(name string) io.WriteCloser {
	return &lineWriter{c: c, prefix: c.prefix(name)}
}

// printf writes a whole line outside any job.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, format, args...)
}

type lineWriter struct {
	c      *console
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	i := bytes.LastIndexByte(l.buf, '\n')
	if i < 0 {
		return len(p), nil
	}
	l.emit(l.buf[:i+1])
	l.buf = append(l.buf[:0], l.buf[i+1:]...)
	return len(p), nil
}

func (l *lineWriter) emit(b []byte) {
	var out bytes.Buffer
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		out.WriteString(l.prefix)
		out.Write(line)
	}
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	_, _ = l.c.w.Write(out.Bytes())
}

// Close flushes a last line that had no newline.
func (l *lineWriter) Close() error {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
	return nil
}
