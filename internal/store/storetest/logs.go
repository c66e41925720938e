package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// StartedAttempt opens a store with open and returns it with the fence of
// one running attempt, for tests outside this package (logstream).
func StartedAttempt(t *testing.T, open Opener) (*store.Store, store.Fence) {
	t.Helper()
	b := setup(t, open)
	_, _, a := startedAttempt(t, b)
	return b.s, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
}

// EndAttempt moves the fenced attempt to succeeded.
func EndAttempt(t *testing.T, s *store.Store, f store.Fence) {
	t.Helper()
	code := 0
	err := s.Update(t.Context(), "test", func(tx *store.Tx) error {
		_, err := tx.MoveLeased(t.Context(), f, core.AttemptSucceeded, "", &code)
		return err
	})
	if err != nil {
		t.Fatalf("end attempt: %v", err)
	}
}

func wantOffsetError(t *testing.T, err error, length int64) {
	t.Helper()
	var oe *store.LogOffsetError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want a *store.LogOffsetError", err)
	}
	if oe.Length != length {
		t.Fatalf("LogOffsetError.Length = %d, want %d", oe.Length, length)
	}
	wantKind(t, err, core.KindConflict)
}

func mustAppend(t *testing.T, s *store.Store, f store.Fence, offset int64, data string, want int64) {
	t.Helper()
	n, err := s.AppendLog(t.Context(), f, offset, []byte(data))
	if err != nil {
		t.Fatalf("AppendLog(%d, %q): %v", offset, data, err)
	}
	if n != want {
		t.Fatalf("AppendLog(%d, %q) = %d, want %d", offset, data, n, want)
	}
}

func readAll(t *testing.T, s *store.Store, id string, offset int64, max int) (string, int64) {
	t.Helper()
	b, n, err := s.ReadLog(t.Context(), id, offset, max)
	if err != nil {
		t.Fatalf("ReadLog(%d, %d): %v", offset, max, err)
	}
	return string(b), n
}

// RunLogs runs the log chunk conformance tests against one engine.
func RunLogs(t *testing.T, open Opener) {
	t.Run("AppendInOrder", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		mustAppend(t, s, f, 0, "hello ", 6)
		mustAppend(t, s, f, 6, "world", 11)
		mustAppend(t, s, f, 11, "", 11)
		if got, n := readAll(t, s, f.AttemptID, 0, 100); got != "hello world" || n != 11 {
			t.Fatalf("ReadLog = %q, %d", got, n)
		}
		info, err := s.LogInfo(t.Context(), f.AttemptID)
		if err != nil || info.Length != 11 || info.Digest != "" {
			t.Fatalf("LogInfo = %+v, %v", info, err)
		}
	})

	t.Run("DuplicateIsNoOp", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		mustAppend(t, s, f, 0, "abc", 3)
		mustAppend(t, s, f, 3, "def", 6)
		mustAppend(t, s, f, 3, "def", 6) // a retried upload
		mustAppend(t, s, f, 0, "abc", 6)
		mustAppend(t, s, f, 1, "bc", 6) // inside what is held
		if got, _ := readAll(t, s, f.AttemptID, 0, 100); got != "abcdef" {
			t.Fatalf("ReadLog = %q", got)
		}
	})

	t.Run("GapAndOverlap", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		mustAppend(t, s, f, 0, "abc", 3)
		_, err := s.AppendLog(t.Context(), f, 5, []byte("x"))
		wantOffsetError(t, err, 3)
		_, err = s.AppendLog(t.Context(), f, 2, []byte("cdef"))
		wantOffsetError(t, err, 3)
		_, _, err = s.ReadLog(t.Context(), f.AttemptID, 4, 10)
		wantOffsetError(t, err, 3)
		if got, _ := readAll(t, s, f.AttemptID, 0, 100); got != "abc" {
			t.Fatalf("ReadLog = %q", got)
		}
	})

	t.Run("StaleLease", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		mustAppend(t, s, f, 0, "abc", 3)
		_, err := s.AppendLog(t.Context(), store.Fence{AttemptID: f.AttemptID, LeaseToken: "stale"}, 3, []byte("x"))
		wantKind(t, err, core.KindLeaseLost)
		EndAttempt(t, s, f)
		_, err = s.AppendLog(t.Context(), f, 3, []byte("x"))
		wantKind(t, err, core.KindLeaseLost)
		if got, n := readAll(t, s, f.AttemptID, 0, 100); got != "abc" || n != 3 {
			t.Fatalf("ReadLog = %q, %d", got, n)
		}
	})

	t.Run("ChunkTooBig", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		_, err := s.AppendLog(t.Context(), f, 0, make([]byte, store.MaxLogChunk+1))
		wantKind(t, err, core.KindInvalid)
		mustAppend(t, s, f, 0, string(make([]byte, store.MaxLogChunk)), store.MaxLogChunk)
	})

	t.Run("CapExceeded", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		s = s.With(store.WithLogCap(7))
		mustAppend(t, s, f, 0, "0123", 4)
		mustAppend(t, s, f, 4, "567", 7) // up to the cap exactly is allowed
		n, err := s.AppendLog(t.Context(), f, 7, []byte("7890"))
		wantKind(t, err, core.KindInvalid)
		if !errors.Is(err, store.ErrLogCapExceeded) {
			t.Fatalf("got %v, want ErrLogCapExceeded", err)
		}
		// The refused chunk is dropped and the log says why it ends, once.
		log, length := readAll(t, s, f.AttemptID, 0, 1<<20)
		if !strings.HasPrefix(log, "0123567\ndeltaci: the log reached its cap of 7 bytes") || length != n || int64(len(log)) != n {
			t.Fatalf("log after the cap: %q (length %d, AppendLog said %d)", log, length, n)
		}
		if _, err := s.AppendLog(t.Context(), f, n, []byte("more")); !errors.Is(err, store.ErrLogCapExceeded) {
			t.Fatalf("append after the cap note: got %v, want ErrLogCapExceeded", err)
		}
		if again, _ := readAll(t, s, f.AttemptID, 0, 1<<20); again != log {
			t.Fatalf("a second refusal changed the log: %q", again)
		}
	})

	t.Run("ReadMidChunk", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		var want bytes.Buffer
		for i := range 40 { // more chunks than one page of ListLogChunks
			chunk := bytes.Repeat([]byte{byte('a' + i%26)}, i+1)
			mustAppend(t, s, f, int64(want.Len()), string(chunk), int64(want.Len()+len(chunk)))
			want.Write(chunk)
		}
		all := want.String()
		for _, c := range []struct {
			off int64
			max int
		}{{0, 1 << 20}, {1, 2}, {2, 700}, {100, 5}, {int64(len(all)) - 3, 100}, {int64(len(all)), 10}} {
			got, n := readAll(t, s, f.AttemptID, c.off, c.max)
			end := min(int(c.off)+c.max, len(all))
			if got != all[c.off:end] || n != int64(len(all)) {
				t.Fatalf("ReadLog(%d, %d) = %q, %d; want %q, %d", c.off, c.max, got, n, all[c.off:end], len(all))
			}
		}
	})

	t.Run("Seal", func(t *testing.T) {
		t.Parallel()
		s, f := StartedAttempt(t, open)
		mustAppend(t, s, f, 0, "abc", 3)
		wantKind(t, s.SealLog(t.Context(), f.AttemptID, "sha256:x"), core.KindConflict) // still running
		EndAttempt(t, s, f)
		if err := s.SealLog(t.Context(), f.AttemptID, "sha256:x"); err != nil {
			t.Fatal(err)
		}
		if err := s.SealLog(t.Context(), f.AttemptID, "sha256:x"); err != nil {
			t.Fatalf("sealing again: %v", err)
		}
		wantKind(t, s.SealLog(t.Context(), f.AttemptID, "sha256:y"), core.KindConflict)
		info, err := s.LogInfo(t.Context(), f.AttemptID)
		if err != nil || info.Length != 3 || info.Digest != "sha256:x" {
			t.Fatalf("LogInfo = %+v, %v", info, err)
		}
		_, _, err = s.ReadLog(t.Context(), f.AttemptID, 0, 10)
		if !errors.Is(err, store.ErrLogSealed) {
			t.Fatalf("ReadLog after seal: %v, want ErrLogSealed", err)
		}
	})

	t.Run("Times", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, _, a := startedAttempt(t, b)
		s, f := b.s, store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken}
		t0 := b.clock.now()
		mustAppend(t, s, f, 0, "one\n", 4)
		b.clock.advance(1500 * time.Millisecond)
		mustAppend(t, s, f, 4, "two\nthr", 11)
		b.clock.advance(time.Second)
		mustAppend(t, s, f, 4, "two\nthr", 11) // a retry is not a new arrival
		mustAppend(t, s, f, 11, "ee\n", 14)
		want := []store.LogTime{{Offset: 0, At: t0}, {Offset: 4, At: t0.Add(1500 * time.Millisecond)}, {Offset: 11, At: t0.Add(2500 * time.Millisecond)}}
		check := func(from, to int64, want []store.LogTime) {
			t.Helper()
			got, err := s.LogTimes(t.Context(), f.AttemptID, from, to)
			if err != nil {
				t.Fatalf("LogTimes(%d, %d): %v", from, to, err)
			}
			if len(got) != len(want) {
				t.Fatalf("LogTimes(%d, %d) = %v, want %v", from, to, got, want)
			}
			for i := range got {
				if got[i].Offset != want[i].Offset || !got[i].At.Equal(want[i].At) {
					t.Fatalf("LogTimes(%d, %d) = %v, want %v", from, to, got, want)
				}
			}
		}
		check(0, 14, want)
		check(5, 11, want[1:2]) // inside the second chunk
		check(8, 14, want[1:])
		check(11, 11, nil)
		// The times outlive the chunks.
		EndAttempt(t, s, f)
		if err := s.SealLog(t.Context(), f.AttemptID, "sha256:x"); err != nil {
			t.Fatal(err)
		}
		check(0, 14, want)
		_, err := s.LogTimes(t.Context(), f.AttemptID, 5, 4)
		wantKind(t, err, core.KindInvalid)
	})
}
