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
// nothing runs or is recorded, and the next run goes ahead.
func TestEditDuringSnapshotRefusesTheRun(t *testing.T) {
	dir := gittest.Repo(t, map[string]string{
		".deltaci.yml": "version: 1\njobs:\n  build:\n    inputs: [\"src/**\"]\n    run: \"cat src/a.txt >> ran.txt\"\n",
		".gitignore":   ".deltaci/\n",
		"src/a.txt":    "one\n",
	})
	run := func() (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Run(context.Background(), []string{"run", "--repo", dir}, os.Environ(), &out, &errb)
		return code, out.String() + errb.String()
	}
	edited := false
	afterSnapshot = func(top string) {
		if !edited {
			edited = true
			if err := os.WriteFile(filepath.Join(top, "src", "a.txt"), []byte("two\n"), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { afterSnapshot = func(string) {} })

	code, out := run()
	if code == 0 || !strings.Contains(out, "the working tree changed while deltaci copied it (the inputs of build)") {
		t.Fatalf("exit %d; want a refusal naming build:\n%s", code, out)
	}
	if strings.Contains(out, "build  succeeded") {
		t.Fatalf("the job ran:\n%s", out)
	}
	// Nothing was recorded: the job runs now, on the edited content, and
	// its result is reused by the run after.
	if code, out = run(); code != 0 || !strings.Contains(out, "1 to run") {
		t.Fatalf("second run: exit %d:\n%s", code, out)
	}
	if code, out = run(); code != 0 || !strings.Contains(out, "1 reused") {
		t.Fatalf("third run: exit %d; want build reused:\n%s", code, out)
	}
}
