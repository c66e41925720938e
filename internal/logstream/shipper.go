package logstream

import (
	"context"
	"errors"
	"os"
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

// Sink receives a log's chunks: store.Store.AppendLog on the server, the
// log upload endpoint on a runner. It returns the log's length afterwards,
// or a *store.LogOffsetError carrying it when offset does not fit.
type Sink interface {
	Append(ctx context.Context, offset int64, data []byte) (length int64, err error)
}

// Shipper is an io.Writer that keeps a job's output in a spool file and
// ships it to a Sink from a goroutine of its own: every FlushInterval, and
// as soon as FlushSize bytes wait, in chunks of at most store.MaxLogChunk.
//
// The job writes at the speed of the disk and is never held by the sink:
// a slow or unreachable server delays the log, not the job. Every byte
// stays in the spool until the sink has it; the spool is removed by Close.
type Shipper struct {
	sink  Sink
	ctx   context.Context
	spool *os.File

	send sync.Mutex // one flush at a time, so chunks go out in order

	mu      sync.Mutex
	written int64 // bytes in the spool
	shipped int64 // bytes the sink is known to hold
	err     error // a shipping failure retrying cannot cure (lease lost, cap)
	werr    error // the spool could not be written (disk full)

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	failed chan struct{} // closed when shipping fails for good
	buf    []byte        // one chunk, reused by flush
}

// NewShipper starts a Shipper whose spool file is made in dir (the system's
// temporary directory when ""); it ships to sink until Close. ctx bounds
// every Append.
func NewShipper(ctx context.Context, sink Sink, dir string) (*Shipper, error) {
	return newShipper(ctx, sink, dir, FlushInterval)
}

func newShipper(ctx context.Context, sink Sink, dir string, every time.Duration) (*Shipper, error) {
	f, err := os.CreateTemp(dir, "deltaci-log-*")
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "log spool", err)
	}
	s := &Shipper{
		sink: sink, ctx: ctx, spool: f,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), failed: make(chan struct{}),
	}
	go s.loop(every)
	return s, nil
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
		case <-s.kick:
		}
		_ = s.flush() // a transient failure is retried on the next tick
	}
}

// Write appends p to the spool. It fails only once shipping has failed
// for good (the lease is lost, the log reached its cap) or the disk did.
func (s *Shipper) Write(p []byte) (int, error) {
	s.mu.Lock()
	if err := errors.Join(s.err, s.werr); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	off := s.written
	s.mu.Unlock()
	// Only Write moves written, and writes come one at a time (io.Writer),
	// so the spool's tail is ours without holding mu during the I/O.
	n, err := s.spool.WriteAt(p, off)
	s.mu.Lock()
	s.written += int64(n)
	if err != nil {
		// What was spooled still ships; the job's later output cannot be kept.
		s.werr = core.Wrap(core.KindInternal, "log spool", err)
	}
	waiting := s.written - s.shipped
	err = errors.Join(s.err, s.werr)
	s.mu.Unlock()
	if waiting >= FlushSize {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return n, err
}

// Shipped returns how many bytes the sink is known to hold.
func (s *Shipper) Shipped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shipped
}

// Flush ships what is spooled now. After Close failed on a transient
// error, a runner calls Flush until it succeeds, or gives up with Discard.
func (s *Shipper) Flush() error {
	err := s.flush()
	if s.stopped() && (err == nil || s.errNow() != nil) {
		s.remove()
	}
	return err
}

// Close stops the background shipping and ships what is left. The spool
// is removed unless the failure was transient (see Flush).
func (s *Shipper) Close() error {
	if !s.stopped() {
		close(s.stop)
	}
	<-s.done
	return s.Flush()
}

// Discard removes the spool of a Shipper whose log will not be shipped.
func (s *Shipper) Discard() {
	if !s.stopped() {
		close(s.stop)
		<-s.done
	}
	s.remove()
}

func (s *Shipper) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Shipper) remove() {
	s.send.Lock()
	defer s.send.Unlock()
	if s.spool != nil {
		name := s.spool.Name()
		_ = s.spool.Close()
		_ = os.Remove(name)
		s.spool = nil
	}
}

// flush ships everything spooled, or fails.
func (s *Shipper) flush() error {
	s.send.Lock()
	defer s.send.Unlock()
	if s.spool == nil {
		return nil // closed and removed: everything was shipped
	}
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		off, n := s.shipped, min(s.written-s.shipped, store.MaxLogChunk)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		if cap(s.buf) < int(n) {
			s.buf = make([]byte, store.MaxLogChunk)
		}
		chunk := s.buf[:n]
		if _, err := s.spool.ReadAt(chunk, off); err != nil {
			s.fail(core.Wrap(core.KindInternal, "log spool", err))
			return s.errNow()
		}
		length, err := s.sink.Append(s.ctx, off, chunk)
		var oe *store.LogOffsetError
		if errors.As(err, &oe) {
			// Resync: the sink holds a different amount than we thought
			// (an earlier append committed but its answer was lost).
			length, err = oe.Length, nil
		}
		if err == nil && length <= off {
			// The sink is missing bytes it acknowledged: nothing here can
			// fill that gap, and retrying would spin.
			err = core.E(core.KindInternal, "ship log", "the log holds %d bytes, but %d were acknowledged", length, off)
		}
		if err == nil && length > off+n && length > s.writtenNow() {
			err = core.E(core.KindInternal, "ship log", "the log holds %d bytes, more than the %d written", length, s.writtenNow())
		}
		if err != nil {
			if k := core.KindOf(err); k == core.KindLeaseLost || k == core.KindInvalid || k == core.KindInternal {
				s.fail(err)
			}
			return err
		}
		s.mu.Lock()
		s.shipped = length
		s.mu.Unlock()
	}
}

func (s *Shipper) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		close(s.failed)
	}
	s.mu.Unlock()
}

// Failed is closed when shipping has failed for good; Err then says why
// (the lease is lost, the log reached its cap).
func (s *Shipper) Failed() <-chan struct{} { return s.failed }

// Err is the failure that stopped shipping, or nil.
func (s *Shipper) Err() error { return s.errNow() }

func (s *Shipper) errNow() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Shipper) writtenNow() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}
