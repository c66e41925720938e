package secret

import (
	"errors"
	"io"
	"sync"
)

// Mask replaces each masked stretch of output.
const Mask = "***"

// ErrClosed is returned by Write and Flush after Close.
var ErrClosed = errors.New("secret: write to a closed Masker")

// chunk bounds the output buffer: a large Write is processed and passed on
// in pieces of this size.
const chunk = 64 << 10

// Masker is an io.Writer that passes a stream on to another writer with
// every occurrence of the given secrets, and of their derived forms (see
// MinFormLen), replaced by Mask. Where occurrences overlap or touch, their
// union becomes a single Mask. Unless Flush is called, the output does not
// depend on how the input was split into writes.
//
// A secret split across Write calls is still masked: Masker holds back the
// shortest tail that could still turn into a match (at most the longest
// pattern less one byte) and writes everything before it at once, so output
// is delayed only while it looks like the start of a secret. Call Close at
// the end of the stream to write the held-back tail.
//
// A Masker is safe for concurrent use; each Write is handled whole.
type Masker struct {
	mu      sync.Mutex
	w       io.Writer
	m       *matcher // nil when there is nothing to mask
	state   int32
	pos     int64  // stream position after the last byte written to the Masker
	held    []byte // stream bytes [pos-len(held), pos), not yet passed on
	spans   []span // pending ranges to mask, sorted, ending after pos-len(held)
	masking bool   // the last byte passed on was masked: a touching range adds no new Mask
	out     []byte
	err     error // sticky: the first error from w, or ErrClosed
}

// NewMasker returns a Masker writing to w that masks values. Empty values
// are ignored; any other is masked verbatim whatever its length, even a
// single byte or blanks (providers refuse blank values, so only a caller
// building one itself can pass it). The Masker builds its automaton once,
// here: about a millisecond for 20 typical secrets.
func NewMasker(w io.Writer, values []Value) *Masker {
	var patterns []string
	for _, v := range values {
		patterns = append(patterns, forms(v.Reveal())...)
	}
	return &Masker{w: w, m: newMatcher(dedupe(patterns), denseCells)}
}

// Write masks p and passes on what can no longer be part of a secret. It
// returns len(p) on success, whatever the length of the masked output.
// After an error from the underlying writer, every call returns that error
// and 0.
func (k *Masker) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return 0, k.err
	}
	if k.m == nil {
		return k.pass(p)
	}
	for i := 0; i < len(p); i += chunk {
		if err := k.write(p[i:min(i+chunk, len(p))]); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (k *Masker) pass(p []byte) (int, error) {
	if err := k.emit(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (k *Masker) write(p []byte) error {
	k.state, k.spans = k.m.scan(k.state, k.pos, p, k.spans)
	start, end := k.pos-int64(len(k.held)), k.pos+int64(len(p))
	// After a Flush the automaton may be deeper than what is held: what
	// was flushed stays flushed.
	final := max(end-int64(k.m.keep[k.state]), start)
	k.out = k.render(k.out[:0], p, final)

	// Keep [final, end) for the next call; it may start inside held.
	if final < k.pos {
		k.held = append(k.held[:0], k.held[final-start:]...)
		k.held = append(k.held, p...)
	} else {
		k.held = append(k.held[:0], p[final-k.pos:]...)
	}
	k.pos = end
	return k.emit(k.out)
}

// render appends to out the stream from the first byte not yet passed on up
// to position final, held first and then p, masking the pending spans, and
// drops the spans it has finished.
func (k *Masker) render(out, p []byte, final int64) []byte {
	start := k.pos - int64(len(k.held))
	raw := func(out []byte, a, b int64) []byte {
		if a >= b {
			return out
		}
		k.masking = false
		if a < k.pos {
			out = append(out, k.held[a-start:min(b, k.pos)-start]...)
			a = k.pos
		}
		if a < b {
			out = append(out, p[a-k.pos:b-k.pos]...)
		}
		return out
	}
	a, done := start, 0
	for _, s := range k.spans {
		if s.start >= final {
			break
		}
		out = raw(out, a, s.start)
		if !k.masking {
			out = append(out, Mask...)
			k.masking = true
		}
		a = max(a, min(s.end, final))
		if s.end > final {
			break
		}
		done++
	}
	out = raw(out, a, final)
	k.spans = k.spans[:copy(k.spans, k.spans[done:])]
	return out
}

// Flush passes on the held-back tail now, for a caller that must show all
// output so far (a prompt waiting for input). The tail is, by construction,
// the start of a secret or of one of its forms; so that flushes cannot
// reveal a useful part of a secret, the tail is written as Mask once that
// start is MinFormLen bytes or longer, and as is while it is shorter.
// Matching goes on across the flush: the rest of a secret that was cut is
// masked when it arrives. So at most MinFormLen-1 bytes of a secret can
// show, and only when it is cut by a Flush.
// Flush does not flush the underlying writer.
func (k *Masker) Flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	if len(k.held) > 0 && k.m.keep[k.state] >= MinFormLen {
		k.spans = addSpan(k.spans, span{k.pos - int64(len(k.held)), k.pos})
	}
	return k.drain()
}

// Close passes on the held-back tail, which at the end of the stream is
// known not to be a secret, and makes later writes fail with ErrClosed. It
// does not close the underlying writer. Closing twice returns nil.
func (k *Masker) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if errors.Is(k.err, ErrClosed) {
		return nil
	}
	if k.err != nil {
		return k.err
	}
	err := k.drain()
	if err == nil {
		k.err = ErrClosed
	}
	return err
}

// drain passes on everything held.
func (k *Masker) drain() error {
	if len(k.held) == 0 {
		return nil
	}
	k.out = k.render(k.out[:0], nil, k.pos)
	k.held = k.held[:0]
	return k.emit(k.out)
}

func (k *Masker) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := k.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		k.err = err
	}
	return err
}

// addSpan adds s, which ends at or after every span in spans, merging it
// with the spans it overlaps or touches.
func addSpan(spans []span, s span) []span {
	for len(spans) > 0 && spans[len(spans)-1].end >= s.start {
		s.start = min(s.start, spans[len(spans)-1].start)
		spans = spans[:len(spans)-1]
	}
	return append(spans, s)
}
