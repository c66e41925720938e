package registry_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/treehash"
)

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// commitManifest stores a manifest of the given symlinks (path -> target)
// and files (path -> content) as the attacker would, through the API.
func commitManifest(t *testing.T, b bundle, links, files map[string]string) digest.Digest {
	t.Helper()
	var m manifest.Manifest
	for p, target := range links {
		m.Entries = append(m.Entries, manifest.Entry{Path: p, Mode: manifest.ModeSymlink | manifest.ModePerm, Target: target})
	}
	for p, content := range files {
		d, err := digest.FromBytes(digest.SHA256, []byte(content))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.reg.Data.Upload(b.ctx, "mallory", digest.SHA256, d, bytes.NewReader([]byte(content)), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		m.Entries = append(m.Entries, manifest.Entry{Path: p, Mode: manifest.ModeRegular | 0o644, Digest: d, Size: int64(len(content))})
	}
	manifest.SortEntries(m.Entries)
	d, _, err := b.reg.CommitManifest(b.ctx, "mallory", m)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantRefused checks that err is a refusal naming every one of names.
func wantRefused(t *testing.T, err error, names ...string) {
	t.Helper()
	if core.KindOf(err) != core.KindInvalid {
		t.Fatalf("err = %v, want a refusal (KindInvalid)", err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("err = %v, want it to name %s", err, n)
		}
	}
}

// A job's workspace is a checkout of the attacker's branch, which commits
// dist as a symlink to the runner's own directories. The outputs of an
// earlier job, restored into it, must not be written through the link.
func TestRestoreRefusesSymlinkOutOfWorkspace(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		// Stands for the runner's work directory, next to the workspaces.
		runnerDir := filepath.Join(b.dir, "runner")
		writeTree(t, runnerDir, map[string]string{
			"mirrors/other.git/HEAD":   "ref: refs/heads/main\n",
			"mirrors/other.git/config": "[core]\n\tbare = true\n",
		})
		before := treehash.Of(t, runnerDir)

		// An earlier job of the attacker's run produced dist/mirrors/x/HEAD.
		build := filepath.Join(b.dir, "build")
		writeTree(t, build, map[string]string{"dist/mirrors/x/HEAD": "planted\n"})
		if _, err := b.reg.Push(b.ctx, "ci", build, "outputs/build:1", registry.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		tr := &registry.Transfer{Data: b.reg.Data, Catalog: b.reg}

		for name, target := range map[string]string{"Absolute": runnerDir, "Relative": "../runner"} {
			repo := gittest.Repo(t, map[string]string{"README": "hello\n"})
			symlink(t, target, filepath.Join(repo, "dist"))
			gittest.Git(t, repo, "add", "dist")
			gittest.Git(t, repo, "commit", "-q", "-m", "dist points at the runner")
			ws := filepath.Join(b.dir, "ws-"+name)
			gittest.Git(t, b.dir, "clone", "-q", repo, ws)

			_, err := tr.PullInto(b.ctx, "outputs/build:1", ws)
			wantRefused(t, err, `"dist/mirrors/x/HEAD"`, `symlink "dist"`)
			if after := treehash.Of(t, runnerDir); after != before {
				t.Errorf("%s: the restore changed the runner's directory", name)
			}
			if got, err := os.Readlink(filepath.Join(ws, "dist")); err != nil || got != target {
				t.Errorf("%s: dist = %q, %v; want the committed link left alone", name, got, err)
			}
		}
	})
}

// A manifest's symlinks, alone or with what the destination already holds,
// must not lead a pull, or whoever reads the pulled tree, outside it.
func TestPullRefusesSymlinkChainEscape(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e engine) {
		b := setup(t, e)
		tr := &registry.Transfer{Data: b.reg.Data, Catalog: b.reg}
		// box holds the destination and something to protect next to it.
		newBox := func(t *testing.T) (box, dest string) {
			box = t.TempDir()
			writeTree(t, box, map[string]string{"secret/key": "do not touch"})
			return box, filepath.Join(box, "dest")
		}

		t.Run("Chain", func(t *testing.T) {
			box, dest := newBox(t)
			before := treehash.Of(t, box)
			m := commitManifest(t, b, map[string]string{"a": "b/..", "b": "."}, map[string]string{"c": "fine"})
			_, err := b.reg.Pull(b.ctx, m.String(), dest, nil)
			wantRefused(t, err, `symlink "a" -> "b/.."`, "outside the destination", `through the symlink "b"`)
			if after := treehash.Of(t, box); after != before {
				t.Error("a refused pull changed the directory around the destination")
			}
		})

		t.Run("ChainInWorkspaceThenFileBelow", func(t *testing.T) {
			// The chain is committed to the branch; the outputs write a/evil/file.
			box, ws := newBox(t)
			repo := gittest.Repo(t, map[string]string{"README": "hello\n"})
			symlink(t, "b/..", filepath.Join(repo, "a"))
			symlink(t, ".", filepath.Join(repo, "b"))
			gittest.Git(t, repo, "add", "a", "b")
			gittest.Git(t, repo, "commit", "-q", "-m", "chain")
			gittest.Git(t, box, "clone", "-q", repo, ws)
			before := treehash.Of(t, box, ws)
			m := commitManifest(t, b, nil, map[string]string{"a/evil/file": "planted"})
			_, err := tr.PullInto(b.ctx, m.String(), ws)
			wantRefused(t, err, `"a/evil/file"`, `symlink "a"`)
			if after := treehash.Of(t, box, ws); after != before {
				t.Error("the pull wrote outside the workspace")
			}
		})

		t.Run("ChainThroughExistingLink", func(t *testing.T) {
			box, dest := newBox(t)
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, ".", filepath.Join(dest, "b"))
			before := treehash.Of(t, box, dest)
			m := commitManifest(t, b, map[string]string{"a": "b/.."}, nil)
			_, err := tr.PullInto(b.ctx, m.String(), dest)
			wantRefused(t, err, `symlink "a" -> "b/.."`, `through the symlink "b"`)
			if _, err := os.Lstat(filepath.Join(dest, "a")); err == nil {
				t.Error("the refused link was created")
			}
			if after := treehash.Of(t, box, dest); after != before {
				t.Error("the pull wrote outside the destination")
			}
		})

		t.Run("AbsoluteTarget", func(t *testing.T) {
			box, dest := newBox(t)
			before := treehash.Of(t, box)
			m := commitManifest(t, b, map[string]string{"abs": filepath.Join(box, "secret")}, nil)
			_, err := b.reg.Pull(b.ctx, m.String(), dest, nil)
			wantRefused(t, err, `symlink "abs"`, "absolute")
			if after := treehash.Of(t, box); after != before {
				t.Error("a refused pull changed the directory around the destination")
			}
		})

		t.Run("ThroughSymlinkedDirInside", func(t *testing.T) {
			// Even a link that stays inside is never written through.
			box, dest := newBox(t)
			writeTree(t, dest, map[string]string{"real/keep": "kept"})
			symlink(t, "real", filepath.Join(dest, "d"))
			before := treehash.Of(t, box)
			m := commitManifest(t, b, nil, map[string]string{"d/new/keep": "planted"})
			_, err := tr.PullInto(b.ctx, m.String(), dest)
			wantRefused(t, err, `"d/new/keep"`, `symlink "d"`)
			if after := treehash.Of(t, box); after != before {
				t.Error("a refused pull changed the tree")
			}
		})

		t.Run("Loop", func(t *testing.T) {
			_, dest := newBox(t)
			m := commitManifest(t, b, map[string]string{"x": "y", "y": "x"}, nil)
			_, err := b.reg.Pull(b.ctx, m.String(), dest, nil)
			wantRefused(t, err, "more than 40 symlinks")
		})

		t.Run("DotDotPathNeverStored", func(t *testing.T) {
			// Such manifests cannot be stored; Pull checks again anyway.
			for _, entries := range [][]manifest.Entry{
				{{Path: "../evil", Mode: manifest.ModeSymlink | manifest.ModePerm, Target: "x"}},
				{{Path: "sub/../../evil", Mode: manifest.ModeSymlink | manifest.ModePerm, Target: "x"}},
				{{Path: "/evil", Mode: manifest.ModeSymlink | manifest.ModePerm, Target: "x"}},
				{
					{Path: "a", Mode: manifest.ModeSymlink | manifest.ModePerm, Target: "."},
					{Path: "a/evil", Mode: manifest.ModeSymlink | manifest.ModePerm, Target: "x"},
				},
			} {
				_, _, err := b.reg.CommitManifest(b.ctx, "mallory", manifest.Manifest{Entries: entries})
				wantRefused(t, err, fmt.Sprintf("%q", entries[len(entries)-1].Path))
			}
		})

		t.Run("InsideLinksStillPull", func(t *testing.T) {
			_, dest := newBox(t)
			m := commitManifest(t, b,
				map[string]string{"bin/tool": "../lib/tool", "lib/tool": "real/tool", "up": "lib/.."},
				map[string]string{"lib/real/tool": "#!/bin/sh\n"})
			if _, err := b.reg.Pull(b.ctx, m.String(), dest, nil); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(dest, "bin/tool")); err != nil || string(got) != "#!/bin/sh\n" {
				t.Errorf("bin/tool = %q, %v", got, err)
			}
		})
	})
}
