package termsafe

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// safe writes chunks to a new Writer, closes it and returns its output.
func safe(t testing.TB, chunks ...[]byte) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out)
	for _, c := range chunks {
		if n, err := w.Write(c); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", c, n, err, len(c))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

var cases = []struct {
	name, in, want string
}{
	{"PlainText", "build ok: 3 packages\n", "build ok: 3 packages\n"},
	{"TabsAndUnicode", "name\tvalue\nκαλημέρα 👋\n", "name\tvalue\nκαλημέρα 👋\n"},
	{"ColourPasses", "\x1b[31mFAIL\x1b[0m x\n", "\x1b[31mFAIL\x1b[0m x\n"},
	{"ColourWithParameters", "\x1b[1;38;5;208mwarn\x1b[m\n", "\x1b[1;38;5;208mwarn\x1b[m\n"},
	{"ColourEndsWithTheLine", "\x1b[32mgreen\nnext\n", "\x1b[32mgreen\x1b[0m\nnext\n"},
	{"HiddenTextEndsWithTheLine", "\x1b[8mhidden\n", "\x1b[8mhidden\x1b[0m\n"},
	{"ColourAtTheEndIsReset", "\x1b[1mbold", "\x1b[1mbold\x1b[0m"},
	{"WindowTitle", "\x1b]0;pwned\x07after\n", `\x1b]0;pwned\x07after` + "\n"},
	{"ClipboardWrite", "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x1b\\\n", `\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x1b\` + "\n"},
	{"CursorUpAndEraseLine", "\x1b[1A\x1b[2K\x1b[32mtest | ok\x1b[0m\n", `\x1b[1A\x1b[2K` + "\x1b[32mtest | ok\x1b[0m\n"},
	{"CursorPosition", "\x1b[10;20H", `\x1b[10;20H`},
	{"PrivateMode", "\x1b[?25l\x1b[?1049h", `\x1b[?25l\x1b[?1049h`},
	{"KeyModifiersEndingInM", "\x1b[>4;1m", `\x1b[>4;1m`},
	{"ColonParameters", "\x1b[38:2:1:2:3m", `\x1b[38:2:1:2:3m`},
	{"DeviceControlString", "\x1bPq#0;2;0;0;0\x1b\\", `\x1bPq#0;2;0;0;0\x1b\`},
	{"ApplicationProgramCommand", "\x1b_payload\x1b\\", `\x1b_payload\x1b\`},
	{"PrivacyMessageAndStartOfString", "\x1b^pm\x1b\\\x1bXsos\x1b\\", `\x1b^pm\x1b\\x1bXsos\x1b\`},
	{"LoneEscape", "a\x1bb", `a\x1bb`},
	{"EscapeAtTheEnd", "a\x1b", `a\x1b`},
	{"EscapeBracketAtTheEnd", "a\x1b[12", `a\x1b[12`},
	{"OverlongColour", "\x1b[" + string(bytes.Repeat([]byte("1;"), 40)) + "m", `\x1b[` + string(bytes.Repeat([]byte("1;"), 40)) + "m"},
	{"CarriageReturnOverwrite", "FAILED\r ok | passed\n", `FAILED\x0d ok | passed` + "\n"},
	{"CarriageReturnAtTheEnd", "50%\r", `50%\x0d`},
	{"CRLFLineEnds", "one\r\ntwo\r\n", "one\ntwo\n"},
	{"Bell", "ding\x07\n", `ding\x07` + "\n"},
	{"BackspaceOverwrite", "FAIL\x08\x08\x08\x08PASS\n", `FAIL\x08\x08\x08\x08PASS` + "\n"},
	{"OtherC0", "\x00\x01\x0b\x0c\x0e\x1f\x7f", `\x00\x01\x0b\x0c\x0e\x1f\x7f`},
	{"RawC1ControlSequenceIntroducer", "a\x9b2Jb", `a\x9b2Jb`},
	{"RawC1OperatingSystemCommand", "\x9d0;t\x9c", `\x9d0;t\x9c`},
	{"UTF8C1", "a\u009b2J\u0085b", `a\u009b2J\u0085b`},
	{"InvalidUTF8", "caf\xe9 \xff\xfe ok\n", `caf\xe9 \xff\xfe ok` + "\n"},
	{"TruncatedUTF8AtTheEnd", "ok \xe2\x82", `ok \xe2\x82`},
	{"ReplacementCharacterPasses", "\ufffd\n", "\ufffd\n"},
}

func TestWriter(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := safe(t, []byte(tc.in)); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWriterAtEverySplit writes each case in two and three pieces, cut at
// every point: sequences and characters split across writes come out the
// same.
func TestWriterAtEverySplit(t *testing.T) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tc.in)
			for i := 0; i <= len(in); i++ {
				if got := safe(t, in[:i], in[i:]); got != tc.want {
					t.Fatalf("split at %d: got %q, want %q", i, got, tc.want)
				}
				for j := i; j <= len(in) && len(in) <= 100; j++ {
					if got := safe(t, in[:i], in[i:j], in[j:]); got != tc.want {
						t.Fatalf("split at %d and %d: got %q, want %q", i, j, got, tc.want)
					}
				}
			}
			var bytewise [][]byte
			for i := range in {
				bytewise = append(bytewise, in[i:i+1])
			}
			if got := safe(t, bytewise...); got != tc.want {
				t.Fatalf("byte by byte: got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriterHoldsBackLittle(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := NewWriter(&out)
	step := func(in, want string) {
		t.Helper()
		if _, err := w.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("after %q: output %q, want %q", in, out.String(), want)
		}
	}
	step("progress", "progress")
	step(" 50%\r", "progress 50%")
	step("\n", "progress 50%\n")
	step("\x1b[3", "progress 50%\n")
	step("1mred", "progress 50%\n\x1b[31mred")
	step("\xe2\x82", "progress 50%\n\x1b[31mred")
	step("\xac\n", "progress 50%\n\x1b[31mred€\x1b[0m\n")
	step("\x1b["+string(bytes.Repeat([]byte{'1'}, 70)), `progress 50%`+"\n\x1b[31mred€\x1b[0m\n"+`\x1b[`+string(bytes.Repeat([]byte{'1'}, 70)))
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	w := NewWriter(failWriter{boom})
	if n, err := w.Write([]byte("text\n")); n != 0 || !errors.Is(err, boom) {
		t.Errorf("Write = %d, %v; want 0, boom", n, err)
	}
	if n, err := w.Write([]byte("\x1b[")); n != 2 || err != nil {
		t.Errorf("Write of a held-back start = %d, %v; want 2, nil", n, err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want boom", err)
	}
}

// FuzzWriter checks, for any input cut in any pieces, that the output is
// the same as for the whole input, is valid UTF-8, has no ESC outside an
// SGR sequence, no C0 control but '\n' and '\t', and no C1 control, and
// that printable text passes unchanged.
func FuzzWriter(f *testing.F) {
	for _, tc := range cases {
		f.Add([]byte(tc.in), []byte{3, 1, 7})
	}
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		whole := safe(t, in)
		var chunks [][]byte
		rest := in
		for _, c := range cuts {
			n := min(int(c%16), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		if got := safe(t, append(chunks, rest)...); got != whole {
			t.Fatalf("in %d pieces: %q, whole: %q", len(chunks)+1, got, whole)
		}
		checkSafe(t, whole)
		if printable(in) && whole != string(in) {
			t.Fatalf("printable %q became %q", in, whole)
		}
	})
}

// checkSafe fails unless out is something a terminal can only print.
func checkSafe(t *testing.T, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("output is not UTF-8: %q", out)
	}
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		switch {
		case r == 0x1b:
			m, ok := sgr([]byte(out[i:]))
			if !ok || m == 0 {
				t.Fatalf("ESC outside an SGR sequence at %d: %q", i, out)
			}
			i += m
			continue
		case r < ' ' && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r <= 0x9f:
			t.Fatalf("control %U at %d: %q", r, i, out)
		}
		i += n
	}
}

// printable reports whether in is UTF-8 text of printable characters,
// newlines and tabs only: what must pass unchanged.
func printable(in []byte) bool {
	for _, r := range string(in) {
		if r == utf8.RuneError || r < ' ' && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f {
			return false
		}
	}
	return utf8.Valid(in)
}
