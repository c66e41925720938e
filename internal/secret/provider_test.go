package secret

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// lookupCase is one Lookup and what the user sees: the value, or the kind
// of error and words its message must contain.
type lookupCase struct {
	name    string
	lookup  string
	want    string
	kind    core.Kind
	message []string
}

func runLookups(t *testing.T, p Provider, cases []lookupCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := p.Lookup(context.Background(), tc.lookup)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Lookup(%q): %v", tc.lookup, err)
				}
				if v.Reveal() != tc.want {
					t.Errorf("Lookup(%q) = %q, want %q", tc.lookup, v.Reveal(), tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Lookup(%q) = %q, want a %s error", tc.lookup, v.Reveal(), tc.kind)
			}
			if k := core.KindOf(err); k != tc.kind {
				t.Errorf("Lookup(%q) error kind = %s, want %s (%v)", tc.lookup, k, tc.kind, err)
			}
			for _, m := range tc.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Lookup(%q) error %q does not contain %q", tc.lookup, err, m)
				}
			}
		})
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"TOKEN": true, "_": true, "A1": true, "_9": true, "AWS_SECRET_ACCESS_KEY": true,
		"": false, "1A": false, "token": false, "A-B": false, "A B": false, "Ä": false, "A=B": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	env := NewEnv([]string{
		"PATH=/bin",
		"TOKEN=not-this-one",
		"DELTACI_SECRET_TOKEN=first",
		"DELTACI_SECRET_TOKEN=tok=en",
		"DELTACI_SECRET_EMPTY=",
		"DELTACI_SECRET_BLANK= \t ",
		"DELTACI_SECRET_SPACED= keep spaces ",
	})
	runLookups(t, env, []lookupCase{
		{name: "OK/LastEntryWins", lookup: "TOKEN", want: "tok=en"},
		{name: "OK/SpacesKept", lookup: "SPACED", want: " keep spaces "},
		{name: "ErrNotSet", lookup: "MISSING", kind: core.KindNotFound,
			message: []string{"secret MISSING", "export DELTACI_SECRET_MISSING"}},
		{name: "ErrEmpty", lookup: "EMPTY", kind: core.KindInvalid, message: []string{"DELTACI_SECRET_EMPTY", "empty"}},
		{name: "ErrBlank", lookup: "BLANK", kind: core.KindInvalid, message: []string{"DELTACI_SECRET_BLANK", "blank"}},
		{name: "ErrBadName", lookup: "token", kind: core.KindInvalid, message: []string{`"token"`, "upper-case"}},
	})
}

func TestLookupCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	for name, p := range map[string]Provider{
		"env": NewEnv([]string{"DELTACI_SECRET_A=x"}), "file": NewFile(filepath.Join(dir, "f")),
		"dir": NewDir(dir), "chain": Chain{NewEnv(nil)},
	} {
		if _, err := p.Lookup(ctx, "A"); core.KindOf(err) != core.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Lookup with a canceled context = %v, want canceled", name, err)
		}
	}
}

// writeFile writes a secret file with the given mode (umask aside).
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "secrets")
	writeFile(t, good, "# deploy keys\n\n  # indented comment\nTOKEN=abc=def#not-a-comment\nDSN=postgres://u:p@h/db?x=1\r\nSPACED= a b \n", 0o600)
	runLookups(t, NewFile(good), []lookupCase{
		{name: "OK/EqualsAndHash", lookup: "TOKEN", want: "abc=def#not-a-comment"},
		{name: "OK/CRLF", lookup: "DSN", want: "postgres://u:p@h/db?x=1"},
		{name: "OK/SpacesKept", lookup: "SPACED", want: " a b "},
		{name: "ErrNotSet", lookup: "MISSING", kind: core.KindNotFound,
			message: []string{"secret MISSING", "add MISSING=<value> to " + good}},
		{name: "ErrBadName", lookup: "a-b", kind: core.KindInvalid, message: []string{"not valid"}},
	})

	open := filepath.Join(dir, "open")
	writeFile(t, open, "TOKEN=abc\n", 0o644)
	group := filepath.Join(dir, "group")
	writeFile(t, group, "TOKEN=abc\n", 0o640)
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "TOKEN=abc\nthe-secret-itself\n", 0o600)
	big := filepath.Join(dir, "big")
	writeFile(t, big, "TOKEN="+strings.Repeat("x", maxFileSize)+"\n", 0o600)
	for _, tc := range []struct {
		name, path string
		message    []string
	}{
		{"ErrWorldReadable", open, []string{"mode 0644", "chmod 600 " + open}},
		{"ErrGroupReadable", group, []string{"mode 0640", "chmod 600 " + group}},
		{"ErrMissingFile", filepath.Join(dir, "nope"), []string{filepath.Join(dir, "nope"), "does not exist"}},
		{"ErrDirectory", dir, []string{"not a regular file"}},
		{"ErrSyntax", bad, []string{bad, "line 2: expected NAME=value"}},
		{"ErrTooBig", big, []string{"larger than 1 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLookups(t, NewFile(tc.path), []lookupCase{{name: "TOKEN", lookup: "TOKEN", kind: core.KindInvalid, message: tc.message}})
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, data, want string
	}{
		{"NoEquals", "A=1\nsup3r-s3cret\n", "line 2: expected NAME=value"},
		{"BadName", "tok3n-value=sup3r-s3cret", "line 1: the text before '=' is not a valid secret name"},
		{"SpaceAroundName", " TOKEN=sup3r-s3cret", "line 1: the text before '=' is not a valid secret name"},
		{"ExportPrefix", "export TOKEN=sup3r-s3cret", "line 1: the text before '=' is not a valid secret name"},
		{"Empty", "TOKEN=", "line 1: TOKEN is empty or blank"},
		{"Blank", "TOKEN= \t\r\n", "line 1: TOKEN is empty or blank"},
		{"Duplicate", "TOKEN=sup3r-s3cret\n#\nTOKEN=sup3r-s3cret", "line 3: TOKEN is set again (first on line 1)"},
		{"NUL", "TOKEN=sup3r\x00s3cret", "line 1: TOKEN contains a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseFile([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseFile error = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tok3n") {
				t.Errorf("the error shows the line's content: %v", err)
			}
		})
	}
}

func TestDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"KEY":    "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		"TWO_NL": "value\n\n",
		"CRLF":   "value\r\n",
		"BARE":   "value",
		"EMPTY":  "",
		"BLANK":  " \n\t\n",
		"NUL":    "a\x00b\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content, 0o600)
	}
	writeFile(t, filepath.Join(dir, "OPEN"), "value\n", 0o604)
	if err := os.Mkdir(filepath.Join(dir, "SUBDIR"), 0o700); err != nil {
		t.Fatal(err)
	}
	runLookups(t, NewDir(dir), []lookupCase{
		{name: "OK/MultiLine", lookup: "KEY", want: "-----BEGIN KEY-----\nabc\n-----END KEY-----"},
		{name: "OK/OneNewlineTrimmed", lookup: "TWO_NL", want: "value\n"},
		{name: "OK/CRLF", lookup: "CRLF", want: "value"},
		{name: "OK/NoNewline", lookup: "BARE", want: "value"},
		{name: "ErrNotSet", lookup: "MISSING", kind: core.KindNotFound,
			message: []string{"secret MISSING", "create " + filepath.Join(dir, "MISSING") + " with mode 600"}},
		{name: "ErrEmpty", lookup: "EMPTY", kind: core.KindInvalid, message: []string{"EMPTY is empty or blank"}},
		{name: "ErrBlank", lookup: "BLANK", kind: core.KindInvalid, message: []string{"BLANK is empty or blank"}},
		{name: "ErrNUL", lookup: "NUL", kind: core.KindInvalid, message: []string{"NUL byte"}},
		{name: "ErrWorldReadable", lookup: "OPEN", kind: core.KindInvalid,
			message: []string{"mode 0604", "chmod 600 " + filepath.Join(dir, "OPEN")}},
		{name: "ErrDirectory", lookup: "SUBDIR", kind: core.KindInvalid, message: []string{"not a regular file"}},
		{name: "ErrBadName", lookup: "../KEY", kind: core.KindInvalid, message: []string{"not valid"}},
	})
	runLookups(t, NewDir(filepath.Join(dir, "nope")), []lookupCase{
		{name: "ErrMissingDir", lookup: "KEY", kind: core.KindInvalid, message: []string{filepath.Join(dir, "nope") + " does not exist"}},
	})
}

// stub is a Provider from elsewhere: it has one value and otherwise says
// its own thing.
type stub struct{ name, value string }

func (s stub) Lookup(_ context.Context, name string) (Value, error) {
	if name == s.name {
		return New(s.value), nil
	}
	return Value{}, core.E(core.KindNotFound, "vault", "no %s in vault", name)
}

func TestChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets")
	writeFile(t, file, "A=from-file\nB=from-file\n", 0o600)
	open := filepath.Join(dir, "open")
	writeFile(t, open, "A=from-open-file\n", 0o644)
	env := NewEnv([]string{"DELTACI_SECRET_A=from-env", "DELTACI_SECRET_C=from-env"})
	runLookups(t, Chain{env, NewFile(file), stub{"D", "from-vault"}}, []lookupCase{
		{name: "OK/FirstWins", lookup: "A", want: "from-env"},
		{name: "OK/Second", lookup: "B", want: "from-file"},
		{name: "OK/Foreign", lookup: "D", want: "from-vault"},
		{name: "ErrNotSetAnywhere", lookup: "E", kind: core.KindNotFound, message: []string{
			"look up secret E: not set: export DELTACI_SECRET_E, or add E=<value> to " + file + ", or vault: no E in vault"}},
	})
	runLookups(t, Chain{NewFile(open), env}, []lookupCase{
		{name: "ErrMisconfiguredStops", lookup: "C", kind: core.KindInvalid, message: []string{"chmod 600"}},
	})
	runLookups(t, Chain{}, []lookupCase{
		{name: "ErrEmptyChain", lookup: "A", kind: core.KindNotFound, message: []string{"no secret provider"}},
	})
}

func TestResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := NewEnv([]string{"DELTACI_SECRET_A=a-value", "DELTACI_SECRET_B=b-value", "DELTACI_SECRET_BAD="})
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		got, err := Resolve(ctx, env, []string{"A", "B", "A"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["A"].Reveal() != "a-value" || got["B"].Reveal() != "b-value" {
			t.Errorf("Resolve = %v, want A and B", got)
		}
	})
	t.Run("ErrAllMissingAtOnce", func(t *testing.T) {
		t.Parallel()
		got, err := Resolve(ctx, env, []string{"X", "A", "Y", "X"})
		if core.KindOf(err) != core.KindNotFound || got != nil {
			t.Fatalf("Resolve = %v, %v; want a not-found error", got, err)
		}
		want := "look up secrets: not set: X (export DELTACI_SECRET_X); Y (export DELTACI_SECRET_Y)"
		if err.Error() != want {
			t.Errorf("error = %q\nwant    %q", err, want)
		}
	})
	t.Run("ErrOneMissing", func(t *testing.T) {
		t.Parallel()
		_, err := Resolve(ctx, env, []string{"A", "X"})
		if want := "look up secret X: not set: export DELTACI_SECRET_X"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})
	t.Run("ErrInvalidStops", func(t *testing.T) {
		t.Parallel()
		_, err := Resolve(ctx, env, []string{"X", "BAD"})
		if core.KindOf(err) != core.KindInvalid {
			t.Errorf("error = %v, want invalid", err)
		}
	})
}
