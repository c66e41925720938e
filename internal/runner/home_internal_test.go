package runner

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltaci/deltaci/internal/gitx"
)

// TestStartRemovesHomesAKilledRunnerLeft: a runner killed mid-job leaves
// the job's home in its work area, with what Go leaves there (a module
// cache of read-only files and directories); the next start removes it.
func TestStartRemovesHomesAKilledRunnerLeft(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	root := filepath.Join(work, "ws", "attempt-left")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	home, err := newHome(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newHome(root); err == nil {
		t.Error("newHome made a home where there is one already")
	}
	mod := filepath.Join(home, "go", "pkg", "mod", "example.com", "dep@v1.0.0")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/dep\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{mod, filepath.Dir(mod)} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	r := &Remote{WorkDir: work, Mirrors: gitx.Mirrors{Dir: filepath.Join(work, "mirrors")}, Log: slog.New(slog.DiscardHandler)}
	r.cleanWorkspaces(context.Background())
	if entries, err := os.ReadDir(filepath.Join(work, "ws")); err != nil || len(entries) != 0 {
		t.Errorf("left in ws/ after the start: %v (%v)", entries, err)
	}
}
