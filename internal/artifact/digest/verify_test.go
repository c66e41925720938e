package digest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/deltaci/deltaci/internal/core"
)

var (
	abc    = MustParse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	abd, _ = FromBytes(SHA256, []byte("abd"))
	ab, _  = FromBytes(SHA256, []byte("ab"))
)

func TestVerifyingReaderOK(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{3, -1} {
		vr := NewVerifyingReader(iotest.OneByteReader(strings.NewReader("abc")), abc, size)
		got, err := io.ReadAll(vr)
		if err != nil || string(got) != "abc" || vr.N() != 3 {
			t.Errorf("size %d: ReadAll = %q, %v, N=%d", size, got, err, vr.N())
		}
		// The verdict is sticky.
		if n, err := vr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("size %d: Read after EOF = %d, %v", size, n, err)
		}
	}
}

func TestVerifyingReaderConformsToIOReader(t *testing.T) {
	t.Parallel()
	data := blake3Input(5000)
	want, _ := FromBytes(BLAKE3, data)
	if err := iotest.TestReader(NewVerifyingReader(bytes.NewReader(data), want, 5000), data); err != nil {
		t.Error(err)
	}
}

func TestVerifyingReaderMismatch(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{3, -1} {
		vr := NewVerifyingReader(strings.NewReader("abd"), abc, size)
		got, err := io.ReadAll(vr)
		var mm *MismatchError
		if !errors.As(err, &mm) {
			t.Fatalf("size %d: ReadAll error = %v, want *MismatchError", size, err)
		}
		if mm.Expected != abc || mm.Actual != abd {
			t.Errorf("MismatchError = %+v, want {%v %v}", mm, abc, abd)
		}
		if string(got) != "abd" {
			t.Errorf("bytes read = %q", got)
		}
		assertInvalid(t, err)
		if _, again := vr.Read(make([]byte, 8)); again != err {
			t.Errorf("verdict not sticky: %v", again)
		}
	}
}

func TestVerifyingReaderShortRead(t *testing.T) {
	t.Parallel()
	// "ab" is what a truncated download of "abc" looks like.
	vr := NewVerifyingReader(strings.NewReader("ab"), abc, 3)
	_, err := io.ReadAll(vr)
	var se *SizeError
	if !errors.As(err, &se) || se.Expected != 3 || se.Actual != 2 {
		t.Fatalf("error = %v, want SizeError{3, 2}", err)
	}
	assertInvalid(t, err)
	if !strings.Contains(err.Error(), "short") {
		t.Errorf("message %q does not say short", err)
	}
}

func TestVerifyingReaderTooLong(t *testing.T) {
	t.Parallel()
	// Unbounded input must be refused as soon as it passes the size.
	vr := NewVerifyingReader(iotest.OneByteReader(strings.NewReader("abcdef")), abc, 3)
	got, err := io.ReadAll(vr)
	var se *SizeError
	if !errors.As(err, &se) || se.Expected != 3 || se.Actual != 4 {
		t.Fatalf("error = %v, want SizeError{3, 4}", err)
	}
	if string(got) != "abc" {
		t.Errorf("passed through %q, want only the first 3 bytes", got)
	}
}

func TestVerifyingReaderSizeRightContentWrong(t *testing.T) {
	t.Parallel()
	_, err := io.ReadAll(NewVerifyingReader(strings.NewReader("ab"), abc, 2))
	var mm *MismatchError
	if !errors.As(err, &mm) || mm.Actual != ab {
		t.Errorf("error = %v, want mismatch with actual %v", err, ab)
	}
}

func TestVerifyingReaderPassesReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := io.ReadAll(NewVerifyingReader(io.MultiReader(strings.NewReader("a"), iotest.ErrReader(boom)), abc, 3))
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want boom", err)
	}
}

func TestVerifyingReaderZeroWant(t *testing.T) {
	t.Parallel()
	_, err := io.ReadAll(NewVerifyingReader(strings.NewReader("abc"), Digest{}, -1))
	assertInvalid(t, err)
}

func TestVerifyingWriter(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		vw := NewVerifyingWriter(&buf, abc, 3)
		for _, s := range []string{"a", "", "bc"} {
			if _, err := io.WriteString(vw, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := vw.Verify(); err != nil || buf.String() != "abc" || vw.N() != 3 {
			t.Errorf("Verify = %v, wrote %q, N=%d", err, buf.String(), vw.N())
		}
	})
	t.Run("NilWriterHashesOnly", func(t *testing.T) {
		t.Parallel()
		vw := NewVerifyingWriter(nil, abc, -1)
		_, _ = io.WriteString(vw, "abc")
		if err := vw.Verify(); err != nil {
			t.Error(err)
		}
	})
	t.Run("Mismatch", func(t *testing.T) {
		t.Parallel()
		vw := NewVerifyingWriter(io.Discard, abc, 3)
		_, _ = io.WriteString(vw, "abd")
		var mm *MismatchError
		if err := vw.Verify(); !errors.As(err, &mm) || mm.Actual != abd {
			t.Errorf("Verify = %v, want mismatch", err)
		}
	})
	t.Run("Short", func(t *testing.T) {
		t.Parallel()
		vw := NewVerifyingWriter(io.Discard, abc, 3)
		_, _ = io.WriteString(vw, "ab")
		var se *SizeError
		if err := vw.Verify(); !errors.As(err, &se) || se.Actual != 2 {
			t.Errorf("Verify = %v, want SizeError actual 2", err)
		}
	})
	t.Run("TooLongRefusedBeforeWriting", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		vw := NewVerifyingWriter(&buf, abc, 3)
		_, _ = io.WriteString(vw, "ab")
		n, err := io.WriteString(vw, "cd")
		var se *SizeError
		if n != 0 || !errors.As(err, &se) || se.Actual != 4 {
			t.Errorf("Write = %d, %v; want 0, SizeError actual 4", n, err)
		}
		if buf.String() != "ab" {
			t.Errorf("underlying writer got %q, want \"ab\"", buf.String())
		}
		if vw.Verify() != err {
			t.Errorf("Verify did not keep the size error")
		}
	})
	t.Run("ShortWriteHashesOnlyAccepted", func(t *testing.T) {
		t.Parallel()
		vw := NewVerifyingWriter(&limitWriter{n: 2}, ab, -1)
		n, err := io.WriteString(vw, "abc")
		if n != 2 || !errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if err := vw.Verify(); err != nil {
			t.Errorf("Verify = %v; the hash should cover exactly the accepted bytes", err)
		}
	})
	t.Run("ZeroWant", func(t *testing.T) {
		t.Parallel()
		vw := NewVerifyingWriter(io.Discard, Digest{}, -1)
		_, err := vw.Write([]byte("x"))
		assertInvalid(t, err)
		assertInvalid(t, vw.Verify())
	})
}

type limitWriter struct{ n int }

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, io.ErrShortWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func assertInvalid(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, core.ErrInvalid) || core.KindOf(err) != core.KindInvalid {
		t.Errorf("error %v: want errors.Is core.ErrInvalid and KindOf = invalid", err)
	}
	// An adapter that only knows *core.Error still gets the whole message.
	var ce *core.Error
	if errors.As(err, &ce) && ce.Error() != err.Error() {
		t.Errorf("*core.Error in the chain says %q, want %q", ce.Error(), err.Error())
	}
}
