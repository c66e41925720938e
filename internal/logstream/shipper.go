package logstream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// Shipping defaults (DESIGN.md section 10).
const (
	FlushInterval = time.Second
	FlushSize     = 256 << 10
)

// maxBuffered bounds what a Shipper holds while its sink is failing (a
// variable so tests can make it small).
var maxBuffered = 64 << 20

// Sink receives a log's chunks: store.Store.AppendLog on the server, the
// log upload endpoint on a runner. It returns the log's length afterwards,
// or a *store.LogOffsetError carrying it when offset does not fit.
type Sink interface {
	Append(ctx context.Context, offset int64, data []byte) (length int64, err error)
}

// Shipper is an io.Writer that buffers a job's output and ships it to a Sink
// every FlushInterval, or sooner once FlushSize bytes wait, in chunks of at
// most store.MaxLogChunk. It keeps every byte until the sink has it.
type Shipper struct {
	sink Sink
	ctx  context.Context

	send sync.Mutex // one flush at a time, so chunks go out in order

	mu   sync.Mutex
	buf  []byte // the bytes from base on that the sink does not hold yet
	base int64
	err  error // a failure retrying cannot cure (lease lost, cap)

	stop chan struct{}
	done chan struct{}
}

// NewShipper starts a Shipper that ships to sink until Close. ctx bounds
// every Append.
func NewShipper(ctx context.Context, sink Sink) *Shipper {
	return newShipper(ctx, sink, FlushInterval)
}

func newShipper(ctx context.Context, sink Sink, every time.Duration) *Shipper {
	s := &Shipper{sink: sink, ctx: ctx, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop(every)
	return s
}

func (s *Shipper) loop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.flush() // a transient failure is retried on the next tick
		}
	}
}

// Write buffers p. It ships synchronously once FlushSize bytes wait, which
// slows a chatty job down to the sink's pace instead of growing memory.
func (s *Shipper) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return 0, s.err
	}
	s.buf = append(s.buf, p...)
	full := len(s.buf) >= FlushSize
	s.mu.Unlock()
	if !full {
		return len(p), nil
	}
	err := s.flush()
	// Past maxBuffered, the writer waits for the sink instead of memory
	// growing: a job whose log cannot be shipped is held on its output.
	for err != nil && s.buffered() > maxBuffered {
		select {
		case <-s.ctx.Done():
			return len(p), err
		case <-time.After(retryWait):
		}
		err = s.flush()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return len(p), s.err
	}
	return len(p), nil
}

// retryWait is how long a held writer waits between shipping attempts.
var retryWait = time.Second

func (s *Shipper) buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0 // a final failure: nothing more will ship, stop holding
	}
	return len(s.buf)
}

// Shipped returns how many bytes the sink is known to hold.
func (s *Shipper) Shipped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// Flush ships what is buffered now; a runner retries it after a transient
// failure before it reports the attempt's end.
func (s *Shipper) Flush() error { return s.flush() }

// Close stops the timer and ships what is buffered.
func (s *Shipper) Close() error {
	close(s.stop)
	<-s.done
	return s.flush()
}

// flush ships the whole buffer, or fails.
func (s *Shipper) flush() error {
	s.send.Lock()
	defer s.send.Unlock()
	for {
		s.mu.Lock()
		if s.err != nil {
			s.mu.Unlock()
			return s.err
		}
		off, n := s.base, min(len(s.buf), store.MaxLogChunk)
		// Appends to buf write past n, so this slice stays intact while it
		// is sent without holding mu.
		chunk := s.buf[:n:n]
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		length, err := s.sink.Append(s.ctx, off, chunk)
		var oe *store.LogOffsetError
		if errors.As(err, &oe) {
			// Resync: the sink holds a different amount than we thought
			// (an earlier append committed but its answer was lost).
			length, err = oe.Length, nil
		}
		if err == nil && length <= off {
			// The sink is missing bytes it acknowledged: nothing left here
			// can fill that gap, and retrying would spin.
			err = core.E(core.KindInternal, "ship log", "the log holds %d bytes, but %d were acknowledged", length, off)
		}
		s.mu.Lock()
		if err != nil {
			if k := core.KindOf(err); k == core.KindLeaseLost || k == core.KindInvalid || k == core.KindInternal {
				s.err = err
			}
			s.mu.Unlock()
			return err
		}
		s.drop(length)
		s.mu.Unlock()
	}
}

// drop forgets the buffered bytes below length, which the sink holds.
func (s *Shipper) drop(length int64) {
	k := int(min(length-s.base, int64(len(s.buf))))
	// Copy rather than reslice so the array does not grow for ever.
	s.buf = append([]byte(nil), s.buf[k:]...)
	s.base += int64(k)
}
