package runner

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/gitx"
)

// commits makes a repository of n commits and returns it with their ids.
func commits(t *testing.T, n int) (string, []string) {
	t.Helper()
	repo := gittest.Repo(t, map[string]string{"f.txt": "0\n"})
	ids := []string{strings.TrimSpace(gittest.Git(t, repo, "rev-parse", "HEAD"))}
	for i := 1; i < n; i++ {
		if err := os.WriteFile(filepath.Join(repo, "f.txt"), []byte{byte('0' + i), '\n'}, 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, repo, "commit", "-qam", "next")
		ids = append(ids, strings.TrimSpace(gittest.Git(t, repo, "rev-parse", "HEAD")))
	}
	return repo, ids
}

// Attempts of one commit, at once, share one checkout made once; a
// runner keeps keepCheckouts of the idle ones, the most recently used,
// and removes the rest, from disk and from the mirror's worktrees.
func TestCheckoutsAreSharedAndBounded(t *testing.T) {
	t.Parallel()
	repo, ids := commits(t, keepCheckouts+2)
	work := t.TempDir()
	c := newCheckouts(gitx.Mirrors{Dir: filepath.Join(work, "mirrors")}, filepath.Join(work, checkoutsDir), slog.New(slog.DiscardHandler))

	var wg sync.WaitGroup
	got := make([]*checkout, 4)
	for i := range got {
		wg.Go(func() {
			co, err := c.acquire(t.Context(), repo, ids[0])
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = co
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, co := range got[1:] {
		if co != got[0] {
			t.Fatal("concurrent attempts of one commit got different checkouts")
		}
	}
	if b, err := os.ReadFile(filepath.Join(got[0].path, "f.txt")); err != nil || string(b) != "0\n" {
		t.Fatalf("the checkout holds %q, %v", b, err)
	}
	for _, co := range got {
		c.release(t.Context(), co)
	}
	for _, id := range ids[1:] {
		co, err := c.acquire(t.Context(), repo, id)
		if err != nil {
			t.Fatal(err)
		}
		c.release(t.Context(), co)
	}
	entries, err := os.ReadDir(filepath.Join(work, checkoutsDir))
	if err != nil || len(entries) != keepCheckouts {
		t.Fatalf("kept %d checkouts (%v), want %d", len(entries), err, keepCheckouts)
	}
	if _, err := os.Stat(got[0].path); !os.IsNotExist(err) {
		t.Errorf("the least recently used checkout is still there: %v", err)
	}
	worktrees := gittest.Git(t, got[0].mirror, "worktree", "list")
	if n := strings.Count(worktrees, "\n"); n != keepCheckouts+1 { // and the mirror itself
		t.Errorf("the mirror lists %d worktrees, want %d:\n%s", n-1, keepCheckouts, worktrees)
	}
	c.close(t.Context())
	if entries, _ := os.ReadDir(filepath.Join(work, checkoutsDir)); len(entries) > 0 {
		t.Errorf("close left %v", entries)
	}
}

// A commit the repository does not have fails every attempt waiting for
// it, and leaves nothing behind.
func TestCheckoutOfAMissingCommitFails(t *testing.T) {
	t.Parallel()
	repo, _ := commits(t, 1)
	work := t.TempDir()
	c := newCheckouts(gitx.Mirrors{Dir: filepath.Join(work, "mirrors")}, filepath.Join(work, checkoutsDir), slog.New(slog.DiscardHandler))
	_, err := c.acquire(t.Context(), repo, strings.Repeat("ab", 20))
	if err == nil || !strings.Contains(err.Error(), "cannot fetch") {
		t.Fatalf("err = %v", err)
	}
	if len(c.byKey) != 0 {
		t.Errorf("the failed checkout is remembered: %v", c.byKey)
	}
	if entries, _ := os.ReadDir(filepath.Join(work, checkoutsDir)); len(entries) > 0 {
		t.Errorf("left %v", entries)
	}
}
