package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/gittest"
)

// TestEditDuringSnapshotRefusesTheRun: an input edited while deltaci
// copies the working tree would run the job, and record its result, under
// the digest of the content planned before; the run is refused instead,
// nothing runs or is recorded, and the next run goes ahead. An edit to
// the inputs of a job the run does not have changes nothing.
func TestEditDuringSnapshotRefusesTheRun(t *testing.T) {
	dir := gittest.Repo(t, map[string]string{
		".deltaci.yml": "version: 1\njobs:\n" +
			"  build:\n    inputs: [\"src/**\"]\n    run: \"cat src/a.txt\"\n" +
			"  docs:\n    inputs: [\"docs/**\"]\n    run: \"cat docs/d.md\"\n",
		".gitignore": ".deltaci/\n",
		"src/a.txt":  "one\n",
		"docs/d.md":  "one\n",
	})
	run := func(edit string, args ...string) (int, string) {
		t.Helper()
		afterSnapshot = func(top string) {
			if edit != "" {
				if err := os.WriteFile(filepath.Join(top, edit), []byte("edited "+edit+"\n"), 0o644); err != nil {
					t.Error(err)
				}
			}
		}
		defer func() { afterSnapshot = func(string) {} }()
		var out, errb bytes.Buffer
		code := Run(context.Background(), append([]string{"run", "--repo", dir}, args...), os.Environ(), &out, &errb)
		return code, out.String() + errb.String()
	}

	if code, out := run("docs/d.md", "--job", "build"); code != 0 || !strings.Contains(out, "1 to run") {
		t.Fatalf("--job build with docs edited: exit %d; want it to run:\n%s", code, out)
	}
	code, out := run("src/a.txt")
	if code != 1 || !strings.Contains(out, "the working tree changed while deltaci copied it (the inputs of build)") {
		t.Fatalf("exit %d; want 1 and a refusal naming build only:\n%s", code, out)
	}
	if strings.Contains(out, "JOB ") {
		t.Fatalf("jobs ran:\n%s", out)
	}
	// Nothing was recorded: build runs now, on the edited content, and its
	// result is reused by the run after.
	if code, out = run(""); code != 0 || !strings.Contains(out, "2 to run") {
		t.Fatalf("second run: exit %d; want both jobs run:\n%s", code, out)
	}
	if code, out = run(""); code != 0 || !strings.Contains(out, "2 reused") {
		t.Fatalf("third run: exit %d; want both reused:\n%s", code, out)
	}
}
