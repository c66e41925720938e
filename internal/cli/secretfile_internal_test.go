package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFromEnvFiles: NAME_FILE fills an empty setting from its file, a flag
// still wins, and every bad file is refused with its reason.
func TestFromEnvFiles(t *testing.T) {
	t.Parallel()
	token := writeFile(t, "token", "s3cret\n")
	var got string
	if err := fromEnvFiles(env{vars: []string{"X_FILE=" + token}}, &got, "X"); err != nil || got != "s3cret" {
		t.Fatalf("got %q, %v; want s3cret", got, err)
	}
	flag := "from-flag"
	if err := fromEnvFiles(env{vars: []string{"X_FILE=" + token}}, &flag, "X"); err != nil || flag != "from-flag" {
		t.Fatalf("a flag must win: got %q, %v", flag, err)
	}
	crlf := writeFile(t, "crlf", "tok\r\n")
	got = ""
	if err := fromEnvFiles(env{vars: []string{"X_FILE=" + crlf}}, &got, "X"); err != nil || got != "tok" {
		t.Fatalf("CRLF: got %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		vars []string
		want string
	}{
		"both":      {[]string{"X=v", "X_FILE=" + token}, "both X and X_FILE are set"},
		"missing":   {[]string{"X_FILE=" + filepath.Join(t.TempDir(), "nope")}, "no such file"},
		"empty":     {[]string{"X_FILE=" + writeFile(t, "empty", "\n")}, "is empty"},
		"two lines": {[]string{"X_FILE=" + writeFile(t, "two", "a\nb\n")}, "more than one line"},
		"large":     {[]string{"X_FILE=" + writeFile(t, "large", strings.Repeat("a", maxSecretFile+1))}, "larger than"},
	} {
		var v string
		err := fromEnvFiles(env{vars: tc.vars}, &v, "X")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "X") {
			t.Errorf("%s: got %v, want an error naming X and saying %q", name, err, tc.want)
		}
	}
}

// TestMigrateDatabaseFile: deltaci migrate takes its database from
// DELTACI_DATABASE_FILE, as the Kubernetes migration Job gives it.
func TestMigrateDatabaseFile(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "state.db")
	var out, errOut bytes.Buffer
	code := Run(t.Context(), []string{"migrate"}, []string{"DELTACI_DATABASE_FILE=" + writeFile(t, "db", db+"\n")}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "applied migration") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the database named in the file was not made: %v", err)
	}
}

// FuzzReadSecretFile: whatever a secret file holds, the value read is its
// content less one line ending, one non-blank line, or an error.
func FuzzReadSecretFile(f *testing.F) {
	for _, s := range []string{"tok\n", "tok", "tok\r\n", "\n", "", "a\nb", " padded \n", "x\n\n"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(dir, "secret")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := readSecretFile(p)
		if err != nil {
			return
		}
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "\r\n") {
			t.Fatalf("read %q from %q: blank or more than one line", v, content)
		}
		if s := string(content); s != v && s != v+"\n" && s != v+"\r\n" {
			t.Fatalf("read %q from %q: not the content less one line ending", v, content)
		}
	})
}
