package main_test

import (
	"encoding/json"
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

// TestCheckInputsNamesTheMissingFile: plan --check-inputs runs each job
// without hermetic, then hermetic, and names the jobs that fail only
// hermetic with the file of the repository their inputs miss, exit status
// 1; a job that fails either way and one whose inputs are right are told
// apart; --json says the same; naming a job checks only that one.
func TestCheckInputsNamesTheMissingFile(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore": ".deltaci/\n",
		".deltaci.yml": `version: 1
jobs:
  build:
    run: mkdir -p dist && cat src/*.txt > dist/app.txt
    inputs: ["src/**"]
    outputs: ["dist/**"]
  good:
    needs: [build]
    run: cat src/a.txt dist/app.txt
    inputs: ["src/**"]
  sloppy:
    needs: [build]
    run: |
      cat src/a.txt dist/app.txt
      ./tools/lint.sh
    inputs: ["src/**"]
  broken:
    run: "false"
    inputs: ["src/**"]
  linked:
    run: cat links/host
    inputs: ["links/**"]
`,
		"src/a.txt":      "a\n",
		"tools/lint.sh":  "#!/bin/sh\necho linted\n",
		"docs/readme.md": "docs\n",
	})
	if err := os.Chmod(filepath.Join(dir, "tools/lint.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A link out of the repository: the job cannot be made hermetic.
	if err := os.MkdirAll(filepath.Join(dir, "links"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "links", "host")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "executable")

	r := deltaci(t, dir, "plan", "--check-inputs")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"build   succeeded         succeeded  ok: its inputs hold what it reads\n",
		"good    succeeded         succeeded  ok: its inputs hold what it reads\n",
		"sloppy  succeeded         failed     fails only hermetic: missing tools/lint.sh\n",
		"broken  failed            failed     fails without hermetic too: not a question of inputs\n",
		"sloppy: fails only hermetic\n  files of the repository it read that its inputs do not match (add them to inputs):\n      tools/lint.sh\n",
		"tools/lint.sh: not found",
		"linked  succeeded         reused     not checked: cannot be made hermetic: symlink \"links/host\" among its inputs leads outside the repository (\"/etc/hostname\")\n",
		"2 ok, 1 fail only hermetic, 1 fail without hermetic too, 1 not checked\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	r = deltaci(t, dir, "plan", "--check-inputs", "--json", "sloppy", "good")
	var check struct {
		Version int
		Summary map[string]int
		Jobs    []struct {
			Name, Verdict, Plain, Hermetic string
			Missing                        []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &check); err != nil || r.code != 1 {
		t.Fatalf("--json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(check.Jobs) != 2 || check.Jobs[0].Name != "good" || check.Jobs[0].Verdict != "ok" ||
		check.Jobs[1].Name != "sloppy" || check.Jobs[1].Verdict != "hermetic_only" || check.Jobs[1].Plain != "succeeded" ||
		check.Jobs[1].Hermetic != "failed" || len(check.Jobs[1].Missing) != 1 || check.Jobs[1].Missing[0] != "tools/lint.sh" {
		t.Errorf("--json: %+v", check)
	}

	// With the file among its inputs, the job passes the check.
	write(t, dir, ".deltaci.yml", strings.Replace(readFile(t, dir, ".deltaci.yml"), `./tools/lint.sh
    inputs: ["src/**"]`, `./tools/lint.sh
    inputs: ["src/**", "tools/**"]`, 1))
	if r := deltaci(t, dir, "plan", "--check-inputs", "sloppy"); r.code != 0 || !strings.Contains(r.stdout, "1 ok, 0 fail only hermetic") {
		t.Errorf("after the fix: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".deltaci")); !os.IsNotExist(err) {
		t.Errorf("the check left state in the repository: %v", err)
	}
	if r := deltaci(t, dir, "plan", "--check-inputs", "nope"); r.code != 2 || !strings.Contains(r.stderr, "job nope: no such job") {
		t.Errorf("unknown job: exit %d\n%s", r.code, r.stderr)
	}
	if r := deltaci(t, dir, "plan", "sloppy"); r.code != 2 || !strings.Contains(r.stderr, "job names only with --check-inputs") {
		t.Errorf("job names without --check-inputs: exit %d\n%s", r.code, r.stderr)
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
