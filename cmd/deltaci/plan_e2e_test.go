package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deltaci/deltaci/internal/protocol"
)

// typoPipeline has a job whose inputs were meant to be src/**.
const typoPipeline = `version: 1
%sjobs:
  build:
    run: cat src/main.c
    inputs: ["scr/**", "Makefile"]
  docs:
    run: "true"
    inputs: ["docs/**"]
`

func typoRepo(t *testing.T, top string) string {
	t.Helper()
	return repo(t, map[string]string{
		".gitignore":   ".deltaci/\n",
		".deltaci.yml": strings.Replace(typoPipeline, "%s", top, 1),
		"src/main.c":   "int main(void) { return 0; }\n",
		"Makefile":     "all:\n",
		"docs/a.md":    "# a\n",
	})
}

// TestUnmatchedInputGlobIsCaught: inputs: ["scr/**"] for src/** would
// reuse build's result forever, whatever src/ holds. plan and run say so,
// with the path that was probably meant, and --strict or strict: true make
// it an error.
func TestUnmatchedInputGlobIsCaught(t *testing.T) {
	t.Parallel()
	const warning = `job build: input glob "scr/**" matches no file; did you mean src/?`
	dir := typoRepo(t, "")

	r := deltaci(t, dir, "plan")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: "+warning) {
		t.Errorf("plan: exit %d, want 0 and the warning on stderr:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "warning:") != 1 {
		t.Errorf("plan warns about a glob that matches:\n%s", r.stderr)
	}
	if r := deltaci(t, dir, "plan", "--explain"); !strings.Contains(r.stdout, `input glob "scr/**" matches no file; did you mean src/?`) {
		t.Errorf("plan --explain does not show the warning:\n%s", r.stdout)
	}

	r = deltaci(t, dir, "plan", "--json")
	var pl struct {
		Warnings []struct{ Code, Job, Glob, Nearest, Text string }
		Jobs     []struct {
			Name string
			Why  []struct{ Code, Text string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &pl); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, r.stdout)
	}
	if len(pl.Warnings) != 1 || pl.Warnings[0].Code != "unmatched_input" || pl.Warnings[0].Job != "build" ||
		pl.Warnings[0].Glob != "scr/**" || pl.Warnings[0].Nearest != "src/" {
		t.Errorf("plan --json warnings = %+v", pl.Warnings)
	}
	for _, j := range pl.Jobs {
		if j.Name == "build" && (len(j.Why) == 0 || j.Why[0].Code != "unmatched_input") {
			t.Errorf("build's reasons = %+v, want the warning first", j.Why)
		}
	}

	for _, cmd := range [][]string{{"plan", "--strict"}, {"run", "--strict"}} {
		r := deltaci(t, dir, cmd...)
		if r.code != 2 || !strings.Contains(r.stderr, warning) || !strings.Contains(r.stderr, "the plan is strict") {
			t.Errorf("%s: exit %d, want 2 and the warning as an error:\n%s%s", cmd, r.code, r.stdout, r.stderr)
		}
	}

	r = deltaci(t, dir, "run")
	if r.code != 0 || !strings.Contains(r.stdout, "deltaci: warning: "+warning) {
		t.Errorf("run: exit %d, want 0 and the warning:\n%s%s", r.code, r.stdout, r.stderr)
	}

	t.Run("StrictInTheFile", func(t *testing.T) {
		t.Parallel()
		dir := typoRepo(t, "strict: true\n")
		for _, cmd := range []string{"plan", "run"} {
			r := deltaci(t, dir, cmd)
			if r.code != 2 || !strings.Contains(r.stderr, warning) || !strings.Contains(r.stderr, "strict: true is set in .deltaci.yml") {
				t.Errorf("%s: exit %d, want 2 and the warning as an error:\n%s%s", cmd, r.code, r.stdout, r.stderr)
			}
		}
	})

	t.Run("FixedGlobIsSilent", func(t *testing.T) {
		t.Parallel()
		dir := typoRepo(t, "strict: true\n")
		write(t, dir, ".deltaci.yml", strings.Replace(strings.Replace(typoPipeline, "%s", "strict: true\n", 1), "scr/**", "src/**", 1))
		for _, cmd := range []string{"plan", "run"} {
			r := deltaci(t, dir, cmd)
			if r.code != 0 || strings.Contains(r.stdout+r.stderr, "warning") {
				t.Errorf("%s: exit %d, want 0 and no warning:\n%s%s", cmd, r.code, r.stdout, r.stderr)
			}
		}
	})
}

// gitShim puts a program named git first in PATH that logs each call to
// a file and then runs the real git, and returns the environment and the
// log's path.
func gitShim(t *testing.T) ([]string, string) {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "git.log")
	script := "#!/bin/sh\necho \"$*\" >> '" + log + "'\nexec '" + real + "' \"$@\"\n"
	// No fork while the script is open for writing: a child of a parallel
	// test would hold it open, and running it would fail as "text file busy".
	syscall.ForkLock.RLock()
	err = os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755)
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH")), log
}

// TestReusedRunStartsFewGitProcesses: a run whose every job is reused
// makes one plan, with at most 8 git processes, on the default branch and
// on a feature branch, with and without uncommitted changes. (A run that
// runs jobs also copies the tree and checks the copy: internal/cli tests
// that part.)
func TestReusedRunStartsFewGitProcesses(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore":   ".deltaci/\n",
		".deltaci.yml": "version: 1\njobs:\n  build:\n    run: cat src/main.c\n    inputs: [\"src/**\"]\n  test:\n    needs: [build]\n    run: \"true\"\n    inputs: [\"src/**\", \"test/**\"]\n",
		"src/main.c":   "int main(void) { return 0; }\n",
		"test/t.sh":    "true\n",
	})
	env, log := gitShim(t)
	for _, step := range []struct {
		name string
		prep func()
		max  int
	}{
		{"DefaultBranch", func() {}, 8},
		{"DirtyDefaultBranch", func() { write(t, dir, "src/new.c", "int x;\n") }, 8},
		{"FeatureBranch", func() {
			git(t, dir, "checkout", "-q", "-b", "feature")
			git(t, dir, "add", "-A")
			git(t, dir, "commit", "-q", "-m", "new.c")
		}, 8},
		{"DirtyFeatureBranch", func() { write(t, dir, "test/t.sh", "true # dirty\n") }, 8},
		// The pipeline file differs from the base's, which is read too.
		{"DirtyFeatureBranchWithNewPipeline", func() {
			write(t, dir, ".deltaci.yml", "version: 1\njobs:\n  build:\n    run: cat src/main.c src/new.c\n    inputs: [\"src/**\"]\n  test:\n    needs: [build]\n    run: \"true\"\n    inputs: [\"src/**\", \"test/**\"]\n")
			git(t, dir, "commit", "-q", "-m", "pipeline", ".deltaci.yml")
		}, 8},
	} {
		step.prep()
		if r := deltaci(t, dir, "run"); r.code != 0 {
			t.Fatalf("%s: first run: exit %d\n%s%s", step.name, r.code, r.stdout, r.stderr)
		}
		if err := os.Remove(log); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		cmd := command(dir, "run")
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: reused run: %v\n%s", step.name, err, out.String())
		}
		if !strings.Contains(out.String(), "(0 to run, 2 reused, 0 skipped)") {
			t.Fatalf("%s: the second run is not fully reused:\n%s", step.name, out.String())
		}
		calls, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(calls), "\n"); n > step.max || n == 0 {
			t.Errorf("%s: a reused run started %d git processes, want at most %d:\n%s", step.name, n, step.max, calls)
		}
	}
}

// TestRunSetsTheRunnersEnvironment: a job under deltaci run sees CI,
// DELTACI_COMMIT and DELTACI_REF as it would on a runner, and cannot
// override them.
func TestRunSetsTheRunnersEnvironment(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore": ".deltaci/\n",
		".deltaci.yml": `version: 1
jobs:
  env:
    run: echo "CI=$CI DELTACI=$DELTACI COMMIT=$DELTACI_COMMIT REF=$DELTACI_REF JOB=$DELTACI_JOB ATTEMPT=$DELTACI_ATTEMPT RUN=$DELTACI_RUN_ID"
    env: {CI: "no", DELTACI_REF: mine}
    reuse: false
`,
	})
	head := strings.TrimSpace(git(t, dir, "rev-parse", "HEAD"))
	check := func(ref string) {
		t.Helper()
		r := deltaci(t, dir, "run")
		want := "CI=true DELTACI=true COMMIT=" + head + " REF=" + ref + " JOB=env ATTEMPT=1 RUN="
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("exit %d, want a line with %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
		if i := strings.Index(r.stdout, "RUN="); i < 0 || strings.HasPrefix(r.stdout[i+4:], "\n") {
			t.Errorf("DELTACI_RUN_ID is empty:\n%s", r.stdout)
		}
	}
	check("refs/heads/main")
	git(t, dir, "checkout", "-q", "--detach")
	check("")
}

// TestServerRunShowsUnmatchedInput: a run the server plans carries the
// warning in the job's explanation, and strict: true refuses the run.
func TestServerRunShowsUnmatchedInput(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	dir := typoRepo(t, "")
	run := srv.createRun(t, dir, "main")
	if got := job(t, run, "build").Explain; !strings.HasPrefix(got, `input glob "scr/**" matches no file; did you mean src/?; `) {
		t.Errorf("build's explanation = %q, want the warning first", got)
	}
	if got := job(t, run, "docs").Explain; strings.Contains(got, "matches no file") {
		t.Errorf("docs's explanation = %q, want no warning", got)
	}

	strict := typoRepo(t, "strict: true\n")
	_, err := srv.api.CreateRun(t.Context(), protocol.CreateRunRequest{Project: srv.project(t, strict), Ref: "main"})
	if err == nil || !strings.Contains(err.Error(), `job build: input glob "scr/**" matches no file`) {
		t.Errorf("a strict pipeline with an unmatched glob: err = %v, want it refused with the warning", err)
	}
}
