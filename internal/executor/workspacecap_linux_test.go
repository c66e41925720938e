package executor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDiskUsageCountsAsDuDoes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const mib = 1 << 20
	empty := diskUsage([]string{dir}, 1<<40)

	write(filepath.Join(dir, "a", "b", "data"), mib)
	for _, link := range []string{"link1", "link2"} {
		if err := os.Link(filepath.Join(dir, "a", "b", "data"), filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	// Not counted: a sparse file's hole, and what a symbolic link points to.
	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	sparse.Close()
	outside := filepath.Join(t.TempDir(), "big")
	write(outside, 8*mib)
	if err := os.Symlink(outside, filepath.Join(dir, "symlink")); err != nil {
		t.Fatal(err)
	}
	// A directory the job locked away from its owner still counts.
	write(filepath.Join(dir, "locked", "data"), mib)
	if err := os.Chmod(filepath.Join(dir, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "locked"), 0o755) })

	got := diskUsage([]string{dir}, 1<<40) - empty
	// Two MiB of data, plus the directories' and the link's own blocks.
	if got < 2*mib || got > 2*mib+256<<10 {
		t.Errorf("diskUsage = %d bytes, want about %d", got, 2*mib)
	}
	if partial := diskUsage([]string{dir}, mib/2); partial <= mib/2 || partial > got+empty {
		t.Errorf("diskUsage stopping at %d = %d, want past it and at most the total %d", mib/2, partial, got+empty)
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{
		512:              "512 bytes",
		4 << 20:          "4 MiB",
		10 << 30:         "10 GiB",
		3 << 19:          "1.5 MiB",
		(10 << 30) + 100: "10 GiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// The job's home and workspace are measured as one: their sizes add up, and
// a file hard-linked from one into the other counts once.
func TestDiskUsageOfSeveralDirs(t *testing.T) {
	t.Parallel()
	ws, home := t.TempDir(), t.TempDir()
	const mib = 1 << 20
	empty := diskUsage([]string{ws, home}, 1<<40)
	for _, name := range []string{filepath.Join(ws, "a"), filepath.Join(home, "b")} {
		if err := os.WriteFile(name, make([]byte, mib), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(ws, "a"), filepath.Join(home, "a-again")); err != nil {
		t.Fatal(err)
	}
	got := diskUsage([]string{ws, home}, 1<<40) - empty
	if got < 2*mib || got > 2*mib+64<<10 {
		t.Errorf("diskUsage of the workspace and home = %d bytes, want about %d", got, 2*mib)
	}
	if one := diskUsage([]string{ws}, 1<<40); one >= got {
		t.Errorf("diskUsage of the workspace alone = %d, not less than with the home (%d)", one, got)
	}
}
