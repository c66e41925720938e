package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hermeticPipeline = `version: 1
jobs:
  build:
    run: mkdir -p dist && cat src/*.txt > dist/app.txt
    inputs: ["src/**"]
    outputs: ["dist/**"]
  check:
    needs: [build]
    hermetic: true
    inputs: ["src/**"]
    run: |
      echo "a: $(cat src/a.txt)"
      echo "new: $(cat src/new.txt)"
      echo "cfg: $(cat src/cfg)"
      echo "app: $(cat dist/app.txt | tr '\n' ' ')"
      echo "top: $(ls -A | tr '\n' ' ')"
  leak:
    hermetic: true
    inputs: ["src/**"]
    run: cat docs/readme.md
  plain:
    inputs: ["src/**"]
    run: cat docs/readme.md
`

func hermeticRepo(t *testing.T) string {
	t.Helper()
	dir := repo(t, map[string]string{
		".gitignore":     ".deltaci/\n",
		".deltaci.yml":   hermeticPipeline,
		"src/a.txt":      "committed\n",
		"shared/cfg.txt": "shared config\n",
		"docs/readme.md": "not an input of check or leak\n",
	})
	if err := os.Symlink("../shared/cfg.txt", filepath.Join(dir, "src", "cfg")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "link")
	return dir
}

// TestHermeticLocalRun: in deltaci run, a hermetic job's workspace holds
// the files its inputs match as the working tree has them (an edit, an
// untracked file), what their symlinks lead to, and the outputs of its
// needs; reading another file of the repository fails as a missing file,
// which the same job, not hermetic, reads.
func TestHermeticLocalRun(t *testing.T) {
	t.Parallel()
	dir := hermeticRepo(t)
	write(t, dir, "src/a.txt", "edited\n")
	write(t, dir, "src/new.txt", "untracked\n")
	r := deltaci(t, dir, "run")
	got := summary(t, r.stdout)
	if got["build"] != "succeeded|-|1" || got["check"] != "succeeded|-|1" || got["plain"] != "succeeded|-|1" || got["leak"] != "failed|exit code 1|1" {
		t.Fatalf("summary %v\n%s%s", got, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"check | a: edited\n",
		"check | new: untracked\n",
		"check | cfg: shared config\n",
		"check | app: edited untracked \n",
		"check | top: dist shared src \n", // no .deltaci.yml, docs, .gitignore
		"leak  | cat: docs/readme.md: No such file or directory\n",
		"plain | not an input of check or leak\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = deltaci(t, dir, "plan", "--json")
	if !strings.Contains(r.stdout, `"hermetic": true`) {
		t.Errorf("plan --json does not say which jobs are hermetic:\n%s", r.stdout)
	}
}

// TestHermeticLinkOutsideIsAConfigError: a hermetic job whose inputs hold
// a symlink out of the repository is refused before anything runs, with
// the link named; exit status 2.
func TestHermeticLinkOutsideIsAConfigError(t *testing.T) {
	t.Parallel()
	dir := hermeticRepo(t)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "src", "host")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"run"}, {"plan"}} {
		r := deltaci(t, dir, args...)
		if r.code != 2 || !strings.Contains(r.stderr, `job check is hermetic, and symlink "src/host" among its inputs leads outside the repository ("/etc/hostname")`) {
			t.Errorf("deltaci %s: exit %d\n%s%s", args[0], r.code, r.stdout, r.stderr)
		}
	}
}
