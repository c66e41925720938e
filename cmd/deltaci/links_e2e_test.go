package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinkedConfigIsNotReusedStale: every package links the root lint
// configuration. A job that passed on the old rules is not reused once the
// rules change, uncommitted or committed, and plan --explain and --json say
// through which link.
func TestLinkedConfigIsNotReusedStale(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore": ".deltaci/\n",
		".deltaci.yml": `version: 1
jobs:
  a:
    run: "! grep -q forbid pkg/a/root.eslint.config.js"
    inputs: ["pkg/a/**"]
  b:
    run: "! grep -q forbid pkg/b/root.eslint.config.js"
    inputs: ["pkg/b/**"]
  docs:
    run: "true"
    inputs: ["docs/**"]
`,
		"eslint.config.js": "allow\n",
		"pkg/a/index.ts":   "a\n",
		"pkg/b/index.ts":   "b\n",
		"docs/a.md":        "# a\n",
	})
	for _, p := range []string{"a", "b"} {
		if err := os.Symlink("../../eslint.config.js", filepath.Join(dir, "pkg", p, "root.eslint.config.js")); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "links")
	if r := deltaci(t, dir, "run"); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	write(t, dir, "eslint.config.js", "forbid\n")
	r := deltaci(t, dir, "plan", "--explain")
	for _, want := range []string{
		"modified     pkg/a/root.eslint.config.js → eslint.config.js  matched pkg/a/**",
		"1 changed file matches its inputs (pkg/b/root.eslint.config.js → eslint.config.js changed)",
		"  symlinks among its inputs:\n      pkg/a/root.eslint.config.js → eslint.config.js\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --explain lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = deltaci(t, dir, "plan", "--json")
	var pl struct {
		Jobs []struct {
			Name, Decision string
			Links          []struct{ Path, Target, Kind string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &pl); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, r.stdout)
	}
	for _, j := range pl.Jobs {
		want := j.Name != "docs"
		if got := len(j.Links) == 1 && j.Links[0].Target == "eslint.config.js" && j.Links[0].Kind == "file"; got != want || (j.Decision == "run") != want {
			t.Errorf("plan --json: job %s: %s with links %+v", j.Name, j.Decision, j.Links)
		}
	}

	// Uncommitted, then committed: the packages run on the new rules and fail.
	r = deltaci(t, dir, "run")
	if got := summary(t, r.stdout); got["a"] != "failed|exit code 1|1" || got["b"] != "failed|exit code 1|1" || !strings.HasPrefix(got["docs"], "reused|") {
		t.Errorf("run on dirty rules: %v\n%s%s", got, r.stdout, r.stderr)
	}
	git(t, dir, "commit", "-q", "-am", "forbid")
	r = deltaci(t, dir, "run")
	if got := summary(t, r.stdout); got["a"] != "failed|exit code 1|1" || got["b"] != "failed|exit code 1|1" {
		t.Errorf("run on committed rules: %v\n%s%s", got, r.stdout, r.stderr)
	}
}
