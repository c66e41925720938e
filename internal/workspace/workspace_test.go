package workspace_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
	"github.com/deltaci/deltaci/internal/treehash"
	"github.com/deltaci/deltaci/internal/workspace"
)

// builders returns a Builder of each method that works here, checked in
// t's temporary directory. Where an overlay cannot be mounted the test
// says so loudly, and fails under CI=true, which must cover them: the
// kernel's overlayfs needs root, fuse-overlayfs its package and /dev/fuse.
func builders(t *testing.T) map[workspace.Method]*workspace.Builder {
	t.Helper()
	dir := t.TempDir()
	out := map[workspace.Method]*workspace.Builder{workspace.MethodCopy: workspace.Copying()}
	for _, m := range []workspace.Method{workspace.MethodOverlay, workspace.MethodFuse} {
		b, err := workspace.New(t.Context(), nil, m, dir)
		switch {
		case err == nil:
			out[m] = b
		case os.Getenv("CI") == "true" && (m == workspace.MethodFuse || os.Geteuid() == 0):
			t.Fatalf("CI must cover workspaces of method %s: %v", m, err)
		default:
			t.Logf("!!! NOT TESTING WORKSPACES OF METHOD %s: %v", m, err)
		}
	}
	return out
}

func write(t testing.TB, p, content string, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// baseTree writes the tree the jobs start from.
func baseTree(t *testing.T, dir string) {
	t.Helper()
	for name, content := range map[string]string{
		"append.txt": "one\n", "inplace.txt": "0123456789\n", "trunc.txt": "long content\n",
		"shrink.txt": "long content\n", "gone.txt": "bye\n", "old.txt": "moved\n", "mode.txt": "mode\n",
		"dir/a.txt": "a\n", "dir/sub/b.txt": "b\n", "tree/c.txt": "c\n", "script.sh": "#!/bin/sh\necho hi\n",
	} {
		perm := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			perm = 0o755
		}
		write(t, filepath.Join(dir, name), content, perm)
	}
	if err := os.Symlink("dir/a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// mutate is what a job does to its workspace: every way of changing a
// file that would reach a tree shared by hard links, and more.
const mutate = `
echo two >> append.txt
printf 'AB' | dd of=inplace.txt bs=1 seek=2 conv=notrunc 2>/dev/null
: > trunc.txt
truncate -s 4 shrink.txt
rm gone.txt
mv old.txt new.txt
mv dir renamed-dir || { cp -R dir renamed-dir && rm -r dir; }
chmod 600 mode.txt
rm -r tree
ln -sf gone-target link
echo fresh > fresh.txt
echo hacked > script.sh
`

// checkMutated checks that the workspace shows what mutate did.
func checkMutated(t *testing.T, ws string) {
	t.Helper()
	want := map[string]string{
		"append.txt": "one\ntwo\n", "inplace.txt": "01AB456789\n", "trunc.txt": "", "shrink.txt": "long",
		"new.txt": "moved\n", "renamed-dir/a.txt": "a\n", "renamed-dir/sub/b.txt": "b\n", "fresh.txt": "fresh\n",
		"script.sh": "hacked\n",
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(ws, name))
		if err != nil || string(b) != content {
			t.Errorf("%s in the workspace = %q, %v; want %q", name, b, err, content)
		}
	}
	for _, gone := range []string{"gone.txt", "old.txt", "dir", "tree"} {
		if _, err := os.Lstat(filepath.Join(ws, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still in the workspace: %v", gone, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(ws, "mode.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode.txt: %v, %v; want mode 600", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(ws, "link")); err != nil || target != "gone-target" {
		t.Errorf("link -> %q, %v; want gone-target", target, err)
	}
}

type runner struct {
	name string
	exec executor.Executor
}

func executors(t *testing.T) []runner {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	out := []runner{{"shell", executor.NewShell(log)}}
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bwrap is not installed, and CI must run the sandbox tests")
		}
		t.Log("!!! NOT TESTING THE SANDBOX EXECUTOR: bwrap is not installed")
		return out
	}
	sb, err := executor.NewSandbox(log, executor.SandboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, runner{"sandbox", sb})
}

func run(t *testing.T, ex executor.Executor, dir, script string) string {
	t.Helper()
	var out bytes.Buffer
	res, err := ex.Run(t.Context(), executor.Spec{Script: script, Dir: dir, Timeout: time.Minute, Grace: time.Second,
		Env: []string{"PATH=" + os.Getenv("PATH")}}, &out)
	if err != nil || res.State != core.AttemptSucceeded {
		t.Fatalf("job: %v %+v\n%s", err, res, out.String())
	}
	return out.String()
}

// TestJobWritesLeaveTheBaseIntact runs a job that writes, appends,
// overwrites in place, truncates, deletes, renames and re-links files of
// its workspace, under each executor and with each method: the base tree
// and a second workspace over it keep every byte, and the job's workspace
// shows all of it.
func TestJobWritesLeaveTheBaseIntact(t *testing.T) {
	t.Parallel()
	bs := builders(t)
	for _, ex := range executors(t) {
		for m, b := range bs {
			t.Run(ex.name+"/"+string(m), func(t *testing.T) {
				t.Parallel()
				box := t.TempDir()
				base := filepath.Join(box, "base")
				baseTree(t, base)
				before := treehash.Of(t, base)
				w1, err := b.Create(t.Context(), base, filepath.Join(box, "w1"))
				if err != nil {
					t.Fatal(err)
				}
				w2, err := b.Create(t.Context(), base, filepath.Join(box, "w2"))
				if err != nil {
					t.Fatal(err)
				}
				if got := treehash.Of(t, w2.Dir); got != before {
					t.Fatal("a new workspace does not show the base tree as it is")
				}
				run(t, ex.exec, w1.Dir, mutate)
				checkMutated(t, w1.Dir)
				if got := treehash.Of(t, base); got != before {
					t.Error("the job's writes changed the base tree")
				}
				if got := treehash.Of(t, w2.Dir); got != before {
					t.Error("the job's writes reached another workspace over the same base")
				}
				if out := run(t, ex.exec, w2.Dir, "cat append.txt; ./script.sh"); out != "one\nhi\n" {
					t.Errorf("a second job saw %q", out)
				}
				for _, w := range []*workspace.Workspace{w1, w2} {
					if err := w.Remove(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				if got := treehash.Of(t, base); got != before {
					t.Error("removing the workspaces changed the base tree")
				}
				for _, d := range []string{"w1", "w2"} {
					if _, err := os.Lstat(filepath.Join(box, d)); !os.IsNotExist(err) {
						t.Errorf("%s is still there after Remove: %v", d, err)
					}
				}
			})
		}
	}
}

// TestRemoveAllUnmountsWhatAKilledProcessLeft leaves workspaces mounted,
// as a runner killed mid-job does, with a job's files in them, one of
// them a directory the job made unreadable: RemoveAll of the directory
// above them unmounts them all and removes them, and the base is intact.
func TestRemoveAllUnmountsWhatAKilledProcessLeft(t *testing.T) {
	t.Parallel()
	for m, b := range builders(t) {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			box := t.TempDir()
			base := filepath.Join(box, "base")
			baseTree(t, base)
			before := treehash.Of(t, base)
			work := filepath.Join(box, "work")
			if err := os.Mkdir(work, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"a", "b"} {
				w, err := b.Create(t.Context(), base, filepath.Join(work, name))
				if err != nil {
					t.Fatal(err)
				}
				write(t, filepath.Join(w.Dir, "locked/f"), "x", 0o644)
				if err := os.Remove(filepath.Join(w.Dir, "gone.txt")); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(w.Dir, "locked"), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := workspace.RemoveAll(t.Context(), work); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(work); !os.IsNotExist(err) {
				t.Errorf("the work directory is still there: %v", err)
			}
			if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(b, []byte(work)) {
				t.Errorf("a mount is left under %s:\n%s", work, b)
			}
			if got := treehash.Of(t, base); got != before {
				t.Error("RemoveAll changed the base tree")
			}
		})
	}
}

// An overlay's options cannot carry a comma or a colon: such a path is
// refused with its name, not mounted as another layer.
func TestCreateRefusesPathsOverlayOptionsCannotCarry(t *testing.T) {
	t.Parallel()
	for m, b := range builders(t) {
		if m == workspace.MethodCopy {
			continue
		}
		t.Run(string(m), func(t *testing.T) {
			box := t.TempDir()
			base := filepath.Join(box, "base,upperdir=/etc")
			write(t, filepath.Join(base, "f"), "f", 0o644)
			_, err := b.Create(t.Context(), base, filepath.Join(box, "w"))
			if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), "base,upperdir=/etc") {
				t.Fatalf("err = %v, want KindInvalid naming the path", err)
			}
			if _, err := os.Lstat(filepath.Join(box, "w")); !os.IsNotExist(err) {
				t.Errorf("the refused workspace was left behind: %v", err)
			}
		})
	}
}

func TestCreateRefusesAnExistingDirectory(t *testing.T) {
	t.Parallel()
	box := t.TempDir()
	write(t, filepath.Join(box, "base/f"), "f", 0o644)
	write(t, filepath.Join(box, "w/keep"), "keep", 0o644)
	_, err := workspace.Copying().Create(context.Background(), filepath.Join(box, "base"), filepath.Join(box, "w"))
	if core.KindOf(err) != core.KindInvalid {
		t.Fatalf("err = %v, want KindInvalid", err)
	}
	if b, err := os.ReadFile(filepath.Join(box, "w/keep")); err != nil || string(b) != "keep" {
		t.Errorf("the existing directory was touched: %q, %v", b, err)
	}
}

func TestParseMethod(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]workspace.Method{"": workspace.MethodAuto, "auto": workspace.MethodAuto,
		"overlay": workspace.MethodOverlay, "fuse-overlayfs": workspace.MethodFuse, "copy": workspace.MethodCopy} {
		if got, err := workspace.ParseMethod(in); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := workspace.ParseMethod("hardlink")
	if core.KindOf(err) != core.KindInvalid || !strings.Contains(err.Error(), `"hardlink"`) {
		t.Errorf("ParseMethod(hardlink): %v", err)
	}
}

// A named method that cannot work here is an error, never a copy instead.
func TestNewRefusesAnUnusableMethod(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no fuse-overlayfs
	_, err := workspace.New(t.Context(), nil, workspace.MethodFuse, t.TempDir())
	if core.KindOf(err) != core.KindUnavailable || !strings.Contains(err.Error(), "install the fuse-overlayfs package") {
		t.Fatalf("err = %v", err)
	}
}

// In a view, the sandbox's workspace cap counts what the job writes, not
// the shared tree under it: a tree twice the cap is read freely, and a
// job writing past the cap is still killed.
func TestSandboxCapCountsWhatTheJobWrites(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bwrap is not installed, and CI must run the sandbox tests")
		}
		t.Skip("!!! NOT TESTING THE SANDBOX EXECUTOR: bwrap is not installed")
	}
	sb, err := executor.NewSandbox(slog.New(slog.DiscardHandler), executor.SandboxOptions{Limits: executor.Limits{WorkspaceSize: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	for m, b := range builders(t) {
		if m == workspace.MethodCopy {
			continue // a copy is the job's own: all of it counts
		}
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			box := t.TempDir()
			base := filepath.Join(box, "base")
			write(t, filepath.Join(base, "big"), strings.Repeat("x", 8<<20), 0o644)
			w, err := b.Create(t.Context(), base, filepath.Join(box, "w"))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Remove(context.WithoutCancel(t.Context()))
			spec := executor.Spec{Dir: w.Dir, WrittenDir: w.Written, Timeout: time.Minute, Grace: time.Hour,
				Env: []string{"PATH=" + os.Getenv("PATH")}}
			var out bytes.Buffer
			// Long enough for the cap to be measured: the first time at once.
			spec.Script = "wc -c < big; sleep 1; wc -c < big"
			res, err := sb.Run(t.Context(), spec, &out)
			if err != nil || res.State != core.AttemptSucceeded || out.String() != "8388608\n8388608\n" {
				t.Fatalf("reading the tree: %v %+v %q", err, res, out.String())
			}
			spec.Script = "head -c 16777216 /dev/zero > written; while :; do sleep 1; done"
			out.Reset()
			res, err = sb.Run(t.Context(), spec, &out)
			if err != nil || res.Reason != core.ReasonResourceLimit {
				t.Fatalf("writing past the cap: %v %+v %q", err, res, out.String())
			}
		})
	}
}

// A job of a root runner may mount something in its workspace and leave
// it: Remove unmounts that too, rather than deleting through it or
// failing on it.
func TestRemoveUnmountsWhatTheJobMounted(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root mounts here")
	}
	for m, b := range builders(t) {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			box := t.TempDir()
			base := filepath.Join(box, "base")
			baseTree(t, base)
			before := treehash.Of(t, base)
			w, err := b.Create(t.Context(), base, filepath.Join(box, "w"))
			if err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", filepath.Join(w.Dir, "dir")).CombinedOutput(); err != nil {
				t.Fatalf("mount: %v %s", err, out)
			}
			write(t, filepath.Join(w.Dir, "dir/in-tmpfs"), "x", 0o644)
			if err := w.Remove(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(box, "w")); !os.IsNotExist(err) {
				t.Errorf("the workspace is still there: %v", err)
			}
			if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(b, []byte(box)) {
				t.Errorf("a mount is left under %s", box)
			}
			if got := treehash.Of(t, base); got != before {
				t.Error("Remove changed the base tree")
			}
		})
	}
}
