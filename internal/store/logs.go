package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Log limits (DESIGN.md sections 6 and 10).
const (
	// MaxLogChunk is the largest chunk one AppendLog call accepts.
	MaxLogChunk = 1 << 20
	// LogCap is the default cap on one attempt's log.
	LogCap int64 = 1 << 30
)

// ErrLogCapExceeded is in the chain of the error AppendLog returns when a
// chunk would take the log past its cap. The error's Kind is
// core.KindInvalid; the caller fails the attempt with
// core.ReasonResourceLimit when errors.Is(err, ErrLogCapExceeded).
var ErrLogCapExceeded = errors.New("log cap exceeded")

// ErrLogSealed is in the chain of the error ReadLog returns once the log has
// been sealed and its chunks dropped: read it from the artifact store.
var ErrLogSealed = errors.New("log is sealed")

// LogOffsetError is AppendLog's answer to a chunk that neither starts at the
// log's length nor is already held (a gap, or a partial overlap), and
// ReadLog's to an offset past the end. Length is the log's current length,
// from which the writer resumes (HTTP 416). Its Kind is core.KindConflict.
type LogOffsetError struct {
	Length int64
}

func (e *LogOffsetError) Error() string {
	return fmt.Sprintf("log offset does not match: the log holds %d bytes", e.Length)
}

// Unwrap gives the error its Kind for core.KindOf and errors.Is.
func (e *LogOffsetError) Unwrap() error {
	return &core.Error{Kind: core.KindConflict, Op: "log", Msg: e.Error()}
}

// WithLogCap replaces LogCap, for tests of the cap.
func WithLogCap(n int64) Option { return func(s *Store) { s.logCapBytes = n } }

func (s *Store) logCap() int64 {
	if s.logCapBytes > 0 {
		return s.logCapBytes
	}
	return LogCap
}

// With returns a Store on the same driver with opts applied on top of s's.
// Closing either closes the driver.
func (s *Store) With(opts ...Option) *Store {
	c := *s
	for _, o := range opts {
		o(&c)
	}
	return &c
}

// AppendLog writes one chunk of an attempt's log on behalf of its lease
// holder and returns the log's length afterwards.
//   - offset equal to the length appends the chunk;
//   - a chunk already held entirely (a retry) changes nothing;
//   - any other offset returns a *LogOffsetError with the current length;
//   - a stale lease, or an attempt no longer leased or running, returns
//     core.KindLeaseLost;
//   - a chunk over MaxLogChunk is core.KindInvalid, and one that would take
//     the log past the cap wraps ErrLogCapExceeded.
func (s *Store) AppendLog(ctx context.Context, f Fence, offset int64, data []byte) (int64, error) {
	if len(data) > MaxLogChunk {
		return 0, core.E(core.KindInvalid, "append log", "chunk of %d bytes is over the %d-byte limit", len(data), MaxLogChunk)
	}
	if offset < 0 {
		return 0, core.E(core.KindInvalid, "append log", "negative offset %d", offset)
	}
	limit := s.logCap()
	if offset > limit+MaxLogChunk {
		// No log reaches this (the cap's note is short): refused before
		// offset+len is summed, which could overflow and pass for a chunk
		// already held.
		return 0, core.E(core.KindInvalid, "append log", "offset %d is past the log cap of %d bytes", offset, limit)
	}
	var length int64
	capped := false
	err := s.drv.Write(ctx, func(q Queries) error {
		st, err := q.GetLogState(ctx, f.AttemptID)
		if err != nil {
			return err
		}
		if st.LeaseToken != f.LeaseToken || (st.State != core.AttemptLeased && st.State != core.AttemptRunning) {
			return core.E(core.KindLeaseLost, "append log", "attempt %s: lease is no longer held (state %s)", f.AttemptID, st.State)
		}
		length = st.Length
		end := offset + int64(len(data))
		switch {
		case end <= st.Length:
			return nil // already held: a retried upload
		case offset != st.Length:
			return &LogOffsetError{Length: st.Length}
		case end > limit:
			// The kept log says why it ends: a note past the cap, once.
			capped = true
			length, err = capNote(ctx, q, f, st.Length, limit, s.Now())
			return err
		}
		// The fenced, length-conditional update goes first: it locks the
		// row, so a concurrent append of the same offset waits and then
		// finds the length moved instead of colliding on the chunk key.
		ok, err := q.AdvanceLog(ctx, f, st.Length, end)
		if err != nil {
			return err
		}
		if !ok {
			return core.E(core.KindConflict, "append log", "attempt %s: the log changed concurrently; retry", f.AttemptID)
		}
		if err := q.InsertLogChunk(ctx, f.AttemptID, offset, data); err != nil {
			return err
		}
		if err := q.InsertLogTime(ctx, f.AttemptID, offset, s.Now()); err != nil {
			return err
		}
		length = end
		return nil
	})
	if err != nil {
		return 0, err
	}
	if capped {
		return length, &core.Error{Kind: core.KindInvalid, Op: "append log",
			Msg: fmt.Sprintf("attempt %s: the log would pass its cap of %d bytes", f.AttemptID, limit), Err: ErrLogCapExceeded}
	}
	return length, nil
}

// capNote appends, once, the line that tells a reader of the log that it
// was cut at its cap, and returns the log's length.
func capNote(ctx context.Context, q Queries, f Fence, length, limit int64, now time.Time) (int64, error) {
	note := []byte(fmt.Sprintf("\ndeltaci: the log reached its cap of %d bytes; the job is stopped (resource_limit)\n", limit))
	if length >= int64(len(note)) {
		last, err := q.ListLogChunks(ctx, f.AttemptID, length-1, 1)
		if err != nil {
			return 0, err
		}
		if len(last) == 1 && bytes.HasSuffix(last[0].Data, note) {
			return length, nil
		}
	}
	ok, err := q.AdvanceLog(ctx, f, length, length+int64(len(note)))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, core.E(core.KindConflict, "append log", "attempt %s: the log changed concurrently; retry", f.AttemptID)
	}
	if err := q.InsertLogChunk(ctx, f.AttemptID, length, note); err != nil {
		return 0, err
	}
	if err := q.InsertLogTime(ctx, f.AttemptID, length, now); err != nil {
		return 0, err
	}
	return length + int64(len(note)), nil
}

// LogInfo is what the store knows of an attempt's log.
type LogInfo struct {
	Length int64
	Digest string // the sealed log's digest; empty while chunks are kept
}

// LogInfo returns an attempt's log length and, once sealed, its digest.
func (s *Store) LogInfo(ctx context.Context, attemptID string) (LogInfo, error) {
	st, err := s.drv.Read().GetLogState(ctx, attemptID)
	if err != nil {
		return LogInfo{}, err
	}
	return LogInfo{Length: st.Length, Digest: st.Digest}, nil
}

// LogTimes returns when the log's bytes [from, to) reached the server, as
// the arrival of each chunk that holds some of them, by offset; a byte
// arrived with the last chunk at or before it. They outlive the chunks: a
// sealed log keeps its times. A log written before they were recorded has
// none.
func (s *Store) LogTimes(ctx context.Context, attemptID string, from, to int64) ([]LogTime, error) {
	if from < 0 || to < from {
		return nil, core.E(core.KindInvalid, "log times", "bad range: [%d, %d)", from, to)
	}
	return s.drv.Read().ListLogTimes(ctx, attemptID, from, to)
}

// ReadLog returns up to max bytes of an unsealed log from offset (which may
// fall inside a chunk) and the log's length. At the end it returns no
// bytes; past it, a *LogOffsetError. A sealed log's error wraps ErrLogSealed.
func (s *Store) ReadLog(ctx context.Context, attemptID string, offset int64, max int) ([]byte, int64, error) {
	if offset < 0 || max <= 0 {
		return nil, 0, core.E(core.KindInvalid, "read log", "bad range: offset %d, max %d", offset, max)
	}
	q := s.drv.Read()
	st, err := q.GetLogState(ctx, attemptID)
	if err != nil {
		return nil, 0, err
	}
	if st.Digest != "" {
		return nil, st.Length, &core.Error{Kind: core.KindConflict, Op: "read log", Msg: "attempt " + attemptID, Err: ErrLogSealed}
	}
	if offset > st.Length {
		return nil, st.Length, &LogOffsetError{Length: st.Length}
	}
	// Stop at the length read above: later chunks are picked up next call.
	want := min(int64(max), st.Length-offset)
	out := make([]byte, 0, want)
	pos := offset
	for int64(len(out)) < want {
		chunks, err := q.ListLogChunks(ctx, attemptID, pos, 16)
		if err != nil {
			return nil, 0, err
		}
		progressed := false
		for _, c := range chunks {
			if c.Offset > pos || c.Offset+int64(len(c.Data)) <= pos {
				continue
			}
			part := c.Data[pos-c.Offset:]
			part = part[:min(int64(len(part)), want-int64(len(out)))]
			out = append(out, part...)
			pos += int64(len(part))
			if len(part) > 0 {
				progressed = true
			}
			if int64(len(out)) == want {
				break
			}
		}
		if !progressed {
			// The chunks were dropped under us by a concurrent seal.
			return nil, st.Length, &core.Error{Kind: core.KindConflict, Op: "read log", Msg: "attempt " + attemptID, Err: ErrLogSealed}
		}
	}
	return out, st.Length, nil
}

// SealLog records the digest of an ended attempt's log, kept in the artifact
// store, and drops its chunks, in one transaction. Sealing again with the
// same digest is a no-op; a different one is core.KindConflict.
func (s *Store) SealLog(ctx context.Context, attemptID, digest string) error {
	if digest == "" {
		return core.E(core.KindInvalid, "seal log", "digest is required")
	}
	return s.drv.Write(ctx, func(q Queries) error {
		a, err := q.GetAttempt(ctx, attemptID)
		if err != nil {
			return err
		}
		if !a.State.Terminal() {
			return core.E(core.KindConflict, "seal log", "attempt %s is %s, not ended", attemptID, a.State)
		}
		ok, err := q.SetLogDigest(ctx, attemptID, digest)
		if err != nil {
			return err
		}
		if !ok {
			st, err := q.GetLogState(ctx, attemptID)
			if err != nil {
				return err
			}
			if st.Digest != digest {
				return core.E(core.KindConflict, "seal log", "attempt %s is already sealed as %s", attemptID, st.Digest)
			}
		}
		return q.DeleteLogChunks(ctx, attemptID)
	})
}
