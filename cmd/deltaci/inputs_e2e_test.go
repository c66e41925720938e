package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestInputsFromReRunsWithoutCascade: app takes its inputs from lib. A
// change to lib runs app again, and when lib fails, app still runs (no
// ordering, no upstream_failed), unlike a need.
func TestInputsFromReRunsWithoutCascade(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore": ".deltaci/\n",
		".deltaci.yml": `version: 1
jobs:
  lib:
    run: grep -q good lib/state.txt
    inputs: ["lib/**"]
  app:
    run: echo app ran
    inputs: ["app/**"]
    inputs_from: [lib]
  needer:
    run: echo needer ran
    inputs: ["app/**"]
    needs: [lib]
  docs:
    run: "true"
    inputs: ["docs/**"]
`,
		"lib/state.txt": "good\n",
		"app/main.txt":  "app\n",
		"docs/x.md":     "x\n",
	})
	if r := deltaci(t, dir, "run"); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := deltaci(t, dir, "run")
	if got := summary(t, r.stdout); !strings.HasPrefix(got["app"], "reused|") || !strings.HasPrefix(got["lib"], "reused|") {
		t.Errorf("second run: %v\n%s%s", got, r.stdout, r.stderr)
	}

	write(t, dir, "lib/state.txt", "bad\n")
	r = deltaci(t, dir, "plan", "--explain")
	if !strings.Contains(r.stdout, "it takes inputs from lib, which will run") {
		t.Errorf("plan --explain does not say why app runs:\n%s%s", r.stdout, r.stderr)
	}
	r = deltaci(t, dir, "run")
	got := summary(t, r.stdout)
	if r.code == 0 || got["lib"] != "failed|exit code 1|1" || got["app"] != "succeeded|-|1" ||
		!strings.HasPrefix(got["needer"], "upstream_failed|") || !strings.HasPrefix(got["docs"], "reused|") {
		t.Errorf("run with lib failing: exit %d, %v\n%s%s", r.code, got, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "app ran") {
		t.Errorf("app did not run:\n%s", r.stdout)
	}
}

// TestPlanShowsInferredInputs: plan --explain and --json show what a {go:}
// entry expanded to.
func TestPlanShowsInferredInputs(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore": ".deltaci/\n",
		".deltaci.yml": `version: 1
jobs:
  svc:
    run: "true"
    inputs: [{go: ./svc}]
`,
		"svc/go.mod":   "module example.com/svc\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n",
		"svc/main.go":  "package main\n",
		"svc/t/go.mod": "module example.com/t\n",
		"lib/go.mod":   "module example.com/lib\n",
		"lib/lib.go":   "package lib\n",
	})
	r := deltaci(t, dir, "plan", "--explain")
	for _, want := range []string{
		"  inputs {go: ./svc} expands to:\n      module example.com/svc in svc/\n      module example.com/lib in lib/\n      not svc/t/ (another module)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --explain lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = deltaci(t, dir, "plan", "--json")
	var pl struct {
		Jobs []struct {
			Name     string
			Inferred []struct {
				Input            string
				Include, Exclude []string
				Units            []struct{ Name, Dir string }
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &pl); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, r.stdout)
	}
	if len(pl.Jobs) != 1 || len(pl.Jobs[0].Inferred) != 1 {
		t.Fatalf("plan --json: %s", r.stdout)
	}
	x := pl.Jobs[0].Inferred[0]
	if x.Input != "{go: ./svc}" || strings.Join(x.Include, ",") != "lib,svc" || strings.Join(x.Exclude, ",") != "svc/t" || len(x.Units) != 2 {
		t.Errorf("inferred = %+v", x)
	}

	write(t, dir, "svc/go.mod", "module example.com/svc\n\nreplace example.com/lib => ../../lib\nrequire example.com/lib v0.0.0\n")
	r = deltaci(t, dir, "plan")
	if r.code != 2 || !strings.Contains(r.stderr, "job svc: inputs {go: ./svc}: svc/go.mod: replace example.com/lib => ../../lib leads outside the repository") {
		t.Errorf("plan with a replace outside: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestExampleLockfileChangeReusesLibraries: in a pnpm workspace, a
// lockfile change for an example app runs the example's job alone; the
// library's job is reused, and --explain says which lockfile slice moved.
func TestExampleLockfileChangeReusesLibraries(t *testing.T) {
	t.Parallel()
	lock := func(leftPad string) string {
		return `lockfileVersion: '9.0'

importers:

  .: {}

  apps/example:
    dependencies:
      '@shop/ui':
        specifier: workspace:*
        version: link:../../packages/ui
      left-pad:
        specifier: ^1.3.0
        version: ` + leftPad + `

  packages/ui:
    dependencies:
      lodash:
        specifier: ^4.17.0
        version: 4.17.21

packages:

  left-pad@` + leftPad + `:
    resolution: {integrity: sha512-x` + leftPad + `}

  lodash@4.17.21:
    resolution: {integrity: sha512-y}

snapshots:

  left-pad@` + leftPad + `: {}

  lodash@4.17.21: {}
`
	}
	dir := repo(t, map[string]string{
		".gitignore":                ".deltaci/\n",
		"package.json":              `{"name": "shop", "private": true}`,
		"pnpm-workspace.yaml":       "packages:\n  - \"packages/*\"\n  - \"apps/*\"\n",
		"pnpm-lock.yaml":            lock("1.3.0"),
		"packages/ui/package.json":  `{"name": "@shop/ui", "dependencies": {"lodash": "^4.17.0"}}`,
		"packages/ui/index.js":      "module.exports = 1\n",
		"apps/example/package.json": `{"name": "@shop/example", "dependencies": {"@shop/ui": "workspace:*", "left-pad": "^1.3.0"}}`,
		"apps/example/index.js":     "require('@shop/ui')\n",
		".deltaci.yml": `version: 1
jobs:
  ui:
    run: cat packages/ui/index.js
    inputs: [{workspace: "@shop/ui"}]
  example:
    run: cat apps/example/index.js
    inputs: [{workspace: "@shop/example"}]
`,
	})
	if r := deltaci(t, dir, "run"); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	write(t, dir, "pnpm-lock.yaml", lock("1.3.1"))
	r := deltaci(t, dir, "plan", "--explain")
	for _, want := range []string{
		"modified     pnpm-lock.yaml  matched {workspace: @shop/example}",
		"  inputs {workspace: @shop/ui} expands to:\n      package @shop/ui in packages/ui/\n      file package.json\n      file pnpm-workspace.yaml\n      pnpm-lock.yaml: the entries of these packages (sha256:",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --explain lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = deltaci(t, dir, "run")
	if got := summary(t, r.stdout); !strings.HasPrefix(got["ui"], "reused|") || got["example"] != "succeeded|-|1" {
		t.Errorf("run after the example's lockfile change: %v\n%s%s", got, r.stdout, r.stderr)
	}
}
