package gitx_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// repo is a throwaway git repository built with the git CLI.
type repo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) repo {
	t.Helper()
	r := repo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

// git runs git in the repository, isolated from the user's configuration so
// that their hooks or signing settings cannot break the fixture.
func (r repo) git(args ...string) string {
	r.t.Helper()
	out, err := execGit(r.dir, args...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// execGit is the command repo.git runs.
func execGit(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
	)
	return cmd
}

func (r repo) commitAll(msg string) {
	r.t.Helper()
	r.git("add", "-A")
	r.git("-c", "commit.gpgsign=false", "commit", "-q", "-m", msg)
}

func (r repo) path(rel string) string { return filepath.Join(r.dir, filepath.FromSlash(rel)) }

func (r repo) write(rel, content string, perm os.FileMode) {
	r.t.Helper()
	p := r.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		r.t.Fatal(err)
	}
	// WriteFile keeps the mode of an existing file and applies the umask.
	if err := os.Chmod(p, perm); err != nil {
		r.t.Fatal(err)
	}
}

func (r repo) symlink(target, rel string) {
	r.t.Helper()
	if err := os.Symlink(target, r.path(rel)); err != nil {
		r.t.Fatal(err)
	}
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	rp, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func TestTopLevel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("FromSubdirectory", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		r.write("a/b/file", "x", 0o644)
		got, err := gitx.TopLevel(ctx, r.path("a/b"))
		if err != nil {
			t.Fatal(err)
		}
		if want := realPath(t, r.dir); realPath(t, got) != want {
			t.Errorf("TopLevel = %q, want %q", got, want)
		}
	})

	t.Run("ErrNotARepository", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, err := gitx.TopLevel(ctx, dir)
		if !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err = %v, want KindInvalid", err)
		}
		for _, want := range []string{"not a git repository: " + dir, "--repo"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})

	t.Run("ErrNoSuchDirectory", func(t *testing.T) {
		t.Parallel()
		_, err := gitx.TopLevel(ctx, filepath.Join(t.TempDir(), "missing"))
		if !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err = %v, want KindInvalid", err)
		}
	})

	t.Run("ErrCanceled", func(t *testing.T) {
		t.Parallel()
		r := newRepo(t)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := gitx.TopLevel(ctx, r.dir)
		if core.KindOf(err) != core.KindCanceled {
			t.Fatalf("err = %v, want KindCanceled", err)
		}
	})
}

func TestHeadAndBranch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRepo(t)

	head, err := gitx.Head(ctx, r.dir)
	if err != nil || head != "" {
		t.Fatalf("Head on an empty repo = %q, %v; want \"\", nil", head, err)
	}
	branch, err := gitx.CurrentBranch(ctx, r.dir)
	if err != nil || branch != "main" {
		t.Fatalf("CurrentBranch on an empty repo = %q, %v; want main", branch, err)
	}

	r.write("f", "1", 0o644)
	r.commitAll("first")
	want := r.git("rev-parse", "HEAD")
	if head, err = gitx.Head(ctx, r.dir); err != nil || head != want {
		t.Errorf("Head = %q, %v; want %q", head, err, want)
	}

	r.git("checkout", "-q", "-b", "feature/x")
	if branch, err = gitx.CurrentBranch(ctx, r.dir); err != nil || branch != "feature/x" {
		t.Errorf("CurrentBranch = %q, %v; want feature/x", branch, err)
	}

	r.git("checkout", "-q", "--detach")
	if branch, err = gitx.CurrentBranch(ctx, r.dir); err != nil || branch != "" {
		t.Errorf("CurrentBranch detached = %q, %v; want \"\"", branch, err)
	}
	if head, err = gitx.Head(ctx, r.dir); err != nil || head != want {
		t.Errorf("Head detached = %q, %v; want %q", head, err, want)
	}

	if _, err := gitx.Head(ctx, t.TempDir()); err == nil {
		t.Error("Head outside a repository: want an error")
	}
}
