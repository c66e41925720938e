package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

var (
	buildFlags []string
	binary     string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e tests skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "deltaci-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "deltaci")
	args := append([]string{"build", "-o", binary}, buildFlags...)
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building deltaci: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repo creates a git repository with the given files committed.
func repo(t *testing.T, files map[string]string) string { return gittest.Repo(t, files) }

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func git(t *testing.T, dir string, args ...string) string { return gittest.Git(t, dir, args...) }

type result struct {
	code           int
	stdout, stderr string
}

func command(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	return cmd
}

func deltaci(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := command(dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// summary parses the final table into job → "status|reason|attempt".
func summary(t *testing.T, out string) map[string]string {
	t.Helper()
	i := strings.LastIndex(out, "JOB ")
	if i < 0 {
		t.Fatalf("no summary table in output:\n%s", out)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out[i:], "\n")[1:] {
		f := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if len(f) < 5 {
			break
		}
		rows[f[0]] = f[1] + "|" + f[2] + "|" + f[4]
	}
	return rows
}

func TestPassingDAG(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  a:
    run: echo hello from a
  b:
    needs: [a]
    run: echo "b saw $DELTACI_JOB"
  c:
    needs: [b]
    run: printf 'no newline at end'
`})
	r := deltaci(t, dir, "run", "--jobs", "2")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"a | hello from a\n", "b | b saw b\n", "c | no newline at end\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Index(r.stdout, "a | hello") > strings.Index(r.stdout, "b | b saw") {
		t.Errorf("b ran before a:\n%s", r.stdout)
	}
	got := summary(t, r.stdout)
	for _, j := range []string{"a", "b", "c"} {
		if got[j] != "succeeded|-|1" {
			t.Errorf("job %s: %q", j, got[j])
		}
	}
	// The events table holds one row per transition of the run.
	s := openState(t, dir)
	runID := regexp.MustCompile(`run (\S+) succeeded`).FindStringSubmatch(r.stdout)[1]
	evs, err := s.Events(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	var runMoves []string
	for _, e := range evs {
		if e.Entity == core.EntityRun {
			runMoves = append(runMoves, e.From+">"+e.To)
		}
	}
	if strings.Join(runMoves, " ") != ">queued queued>planning planning>running running>succeeded" {
		t.Errorf("run events: %v", runMoves)
	}
	// Each job: created, queued, running, succeeded; each attempt: created, leased, running, succeeded.
	if len(evs) != 4+3*4+3*4 {
		t.Errorf("%d events, want %d", len(evs), 4+3*4+3*4)
	}
}

func openState(t *testing.T, dir string) *store.Store {
	t.Helper()
	drv, err := sqlite.Open(context.Background(), filepath.Join(dir, ".deltaci", "state.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(drv)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFailingMiddleJob(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  first:
    run: "true"
  middle:
    needs: [first]
    run: echo about to fail; exit 3
  last:
    needs: [middle]
    run: echo LAST RAN
`})
	r := deltaci(t, dir, "run")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	got := summary(t, r.stdout)
	want := map[string]string{
		"first":  "succeeded|-|1",
		"middle": "failed|exit code 3|1",
		"last":   "upstream_failed|upstream_failed|-",
	}
	for j, w := range want {
		if got[j] != w {
			t.Errorf("job %s: %q, want %q", j, got[j], w)
		}
	}
	if strings.Contains(r.stdout, "LAST RAN") {
		t.Error("dependent of a failed job ran")
	}
}

func TestConfigErrorExit2(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  lint:
    rnu: go vet ./...
`})
	r := deltaci(t, dir, "run")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`\.deltaci\.yml:4:5: .*rnu`).MatchString(r.stderr) || !strings.Contains(r.stderr, `"run"`) {
		t.Errorf("stderr lacks file:line:col and a suggestion:\n%s", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: \"true\"\n"})
	for _, args := range [][]string{{"run", "--job", "nope"}, {"run", "--jobs", "0"}, {"run", "--bogus"}, {"bogus"},
		{"runner", "--server", "http://127.0.0.1:1", "--workspace-limit", "ten gigs"}, {"runner", "--tmp-size", "-1G"}} {
		if r := deltaci(t, dir, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
	if r := deltaci(t, t.TempDir(), "run"); r.code != 2 || !strings.Contains(r.stderr, "not a git repository") {
		t.Errorf("outside a repository: exit %d\n%s", r.code, r.stderr)
	}
	if r := deltaci(t, repo(t, map[string]string{"x": "y"}), "run"); r.code != 2 || !strings.Contains(r.stderr, ".deltaci.yml") {
		t.Errorf("no config: exit %d\n%s", r.code, r.stderr)
	}
}

func TestJobSelectionIncludesNeeds(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  base:
    run: "true"
  app:
    needs: [base]
    run: "true"
  other:
    run: "true"
`})
	r := deltaci(t, dir, "run", "--job", "app")
	got := summary(t, r.stdout)
	if r.code != 0 || len(got) != 2 || got["base"] == "" || got["app"] == "" {
		t.Errorf("exit %d, jobs %v", r.code, got)
	}
}

func TestWorkspaceIsolationAndDirtyTree(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".deltaci.yml": `version: 1
jobs:
  scribble:
    run: |
      grep -q uncommitted tracked.txt
      test -f untracked.txt
      test ! -e ignored.log
      echo overwritten > tracked.txt
      rm untracked.txt
      echo new > created.txt
      mkdir -p newdir && touch newdir/f
`,
		"tracked.txt": "committed\n",
		".gitignore":  "*.log\n.deltaci/\n",
	})
	write(t, dir, "tracked.txt", "uncommitted\n")
	write(t, dir, "untracked.txt", "u\n")
	write(t, dir, "ignored.log", "i\n")
	before := git(t, dir, "status", "--porcelain")
	r := deltaci(t, dir, "run")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if after := git(t, dir, "status", "--porcelain"); after != before {
		t.Errorf("git status changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "tracked.txt"))
	if string(b) != "uncommitted\n" {
		t.Errorf("tracked.txt = %q", b)
	}
	for _, f := range []string{"untracked.txt", "ignored.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"created.txt", "newdir"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s leaked into the user's tree", f)
		}
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  slow:
    timeout: 1s
    run: |
      sleep 300 &
      echo $! > %s
      wait
`, pidFile)})
	r := deltaci(t, dir, "run", "--grace", "500ms")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := summary(t, r.stdout)["slow"]; got != "failed|timeout|1" {
		t.Errorf("slow: %q", got)
	}
	assertDead(t, readPid(t, pidFile))
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// assertDead waits briefly for pid to be gone (or a zombie awaiting its reaper).
func assertDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("process %d is still alive", pid)
}

func TestInterruptCancels(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	pidFile, childFile := filepath.Join(tmp, "pid"), filepath.Join(tmp, "child")
	dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  sleeper:
    run: |
      sleep 300 &
      echo $! > %s
      echo $$ > %s.tmp && mv %s.tmp %s
      wait
  after:
    needs: [sleeper]
    run: echo AFTER RAN
`, childFile, pidFile, pidFile, pidFile)})
	cmd := command(dir, "run", "--grace", "2s")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if ctx.Err() != nil {
			cmd.Process.Kill()
			t.Fatalf("job never started:\n%s", stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		t.Fatalf("deltaci did not exit after SIGINT:\n%s", stdout.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130\n%s", code, stdout.String())
	}
	got := summary(t, stdout.String())
	if got["sleeper"] != "canceled|canceled|1" || got["after"] != "canceled|canceled|-" {
		t.Errorf("summary %v\n%s", got, stdout.String())
	}
	assertDead(t, readPid(t, pidFile))
	assertDead(t, readPid(t, childFile))
}

func TestPostgresDatabase(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: echo on postgres\n"})
	if r := deltaci(t, dir, "migrate", "--database", url); r.code != 0 || !strings.Contains(r.stdout, "applied migration 00001") {
		t.Fatalf("migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := deltaci(t, dir, "migrate", "--database", url); r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("second migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := deltaci(t, dir, "run", "--database", url)
	if r.code != 0 || summary(t, r.stdout)["a"] != "succeeded|-|1" {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".deltaci", "state.db")); err == nil {
		t.Error("a PostgreSQL run wrote .deltaci/state.db")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := deltaci(t, t.TempDir(), "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "deltaci ") {
		t.Errorf("exit %d: %q", r.code, r.stdout)
	}
}

func TestSecretsFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  deploy:
    secrets: [API_TOKEN]
    run: test "$API_TOKEN" = s3cr3t-value && echo token ok && echo "leak $API_TOKEN" && printf %s "$API_TOKEN" | base64
`})
	cmd := command(dir, "run")
	cmd.Env = append(os.Environ(), "DELTACI_SECRET_API_TOKEN=s3cr3t-value")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deploy | token ok") || !strings.Contains(string(out), "deploy | leak ***") {
		t.Fatalf("with the secret set: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "s3cr3t-value") || strings.Contains(string(out), "czNjcjN0LXZhbHVl") {
		t.Errorf("the secret or its base64 reached the output:\n%s", out)
	}
	r := deltaci(t, dir, "run", "--no-reuse")
	if r.code != 1 || summary(t, r.stdout)["deploy"] != "failed|infra_error|1" ||
		!strings.Contains(r.stdout, "export DELTACI_SECRET_API_TOKEN") {
		t.Fatalf("without the secret: exit %d\n%s", r.code, r.stdout)
	}
}

// TestKilledRunIsRecovered kills deltaci with SIGKILL mid-job; the next run
// in the same repository ends the abandoned run instead of leaving it running.
func TestKilledRunIsRecovered(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  slow:
    run: echo $$ > %s.tmp && mv %s.tmp %s && sleep 300
`, pidFile, pidFile, pidFile)})
	cmd := command(dir, "run")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("job never started:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// A SIGKILLed parent cannot stop its job; end it here (kill the group).
	syscall.Kill(-readPid(t, pidFile), syscall.SIGKILL)
	killedRun := regexp.MustCompile(`run (\S+) at`).FindStringSubmatch(out.String())
	if killedRun == nil {
		t.Fatalf("no run id in output:\n%s", out.String())
	}

	next := command(dir, "run", "--job", "slow")
	next.Env = append(os.Environ(), "DELTACI_ABANDON_AFTER=1ms")
	// The lease (20 s) must run out before the run counts as abandoned.
	time.Sleep(21 * time.Second)
	write(t, dir, ".deltaci.yml", "version: 1\njobs:\n  slow:\n    run: \"true\"\n")
	b, err := next.CombinedOutput()
	if err != nil {
		t.Fatalf("next run: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "run "+killedRun[1]+" was abandoned") {
		t.Errorf("next run did not report the abandoned run:\n%s", b)
	}
	s := openState(t, dir)
	r, err := s.Run(context.Background(), killedRun[1])
	if err != nil {
		t.Fatal(err)
	}
	atts, _ := s.Attempts(context.Background(), r.ID)
	if r.State != core.RunCanceled || len(atts) != 1 || atts[0].State != core.AttemptLost {
		t.Errorf("abandoned run %s, attempts %+v", r.State, atts)
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), "deltaci-run-"+r.ID)); !os.IsNotExist(err) {
		t.Errorf("workspace of the abandoned run was not removed: %v", err)
	}
}

func TestArtifactsSubcommand(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: \"true\"\n", "dist/app": "binary"})
	r := deltaci(t, dir, "artifacts", "push", "dist", "--ref", "outputs/app:1")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sha256:") {
		t.Fatalf("push: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".deltaci", "store", "blobs")); err != nil {
		t.Errorf("deltaci artifacts does not default to .deltaci/store: %v", err)
	}
	if r := deltaci(t, filepath.Join(dir, "dist"), "artifacts", "ls"); r.code != 0 || !strings.Contains(r.stdout, "outputs/app:1") {
		t.Errorf("ls from a subdirectory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The CI tables and the artifact tables share .deltaci/state.db.
	if r := deltaci(t, dir, "run"); r.code != 0 {
		t.Errorf("run after artifacts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestOutputsReachDependents(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  build:
    run: mkdir -p out && echo built-by-build > out/app && echo scratch > junk
    outputs: ["out/**"]
  test:
    needs: [build]
    run: cat out/app && test ! -e junk
  unrelated:
    run: test ! -e out/app
`})
	r := deltaci(t, dir, "run")
	if r.code != 0 || !strings.Contains(r.stdout, "test      | built-by-build") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestReuseAcrossRuns(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore": ".deltaci/\n",
		".deltaci.yml": `version: 1
jobs:
  api:
    run: echo RAN api
    inputs: ["api/**"]
  web:
    run: echo RAN web
    inputs: ["web/**"]
  e2e:
    needs: [api, web]
    run: echo RAN e2e
    inputs: ["e2e/**"]
  flaky:
    run: test -f web/ok || exit 1
    inputs: ["web/**"]
`,
		"api/main.go": "package api\n", "web/index.html": "<p>\n", "e2e/t.sh": "true\n",
	})
	first := deltaci(t, dir, "run")
	if first.code != 1 || summary(t, first.stdout)["flaky"] != "failed|exit code 1|1" {
		t.Fatalf("first run: exit %d\n%s", first.code, first.stdout)
	}
	// Every attempt's log is kept in the artifact store.
	if ls := deltaci(t, dir, "artifacts", "ls", "logs"); strings.Count(ls.stdout, "logs/") != 4 {
		t.Errorf("kept logs after the first run:\n%s%s", ls.stdout, ls.stderr)
	}
	second := deltaci(t, dir, "run")
	got := summary(t, second.stdout)
	for _, j := range []string{"api", "web", "e2e"} {
		if !strings.HasPrefix(got[j], "reused|") {
			t.Errorf("second run: %s = %q, want reused", j, got[j])
		}
	}
	if strings.Contains(second.stdout, "RAN ") {
		t.Errorf("second run executed a reusable job:\n%s", second.stdout)
	}
	if !strings.HasPrefix(got["flaky"], "failed|") {
		t.Errorf("a failed job was reused: %q", got["flaky"])
	}
	// Edit one file: only the jobs whose inputs match it, and their dependents, run.
	write(t, dir, "web/index.html", "<p>changed\n")
	write(t, dir, "web/ok", "")
	third := deltaci(t, dir, "run")
	got = summary(t, third.stdout)
	want := map[string]string{"api": "reused", "web": "succeeded", "e2e": "succeeded", "flaky": "succeeded"}
	for j, w := range want {
		if !strings.HasPrefix(got[j], w+"|") {
			t.Errorf("after editing web/: %s = %q, want %s\n%s", j, got[j], w, third.stdout)
		}
	}
	if third.code != 0 {
		t.Errorf("third run exit %d", third.code)
	}
	// Everything recorded now: a fourth run executes nothing and exits 0.
	fourth := deltaci(t, dir, "run")
	if fourth.code != 0 || strings.Contains(fourth.stdout, "RAN ") || !strings.Contains(fourth.stdout, "(0 to run, 4 reused, 0 skipped)") {
		t.Errorf("fourth run: exit %d\n%s", fourth.code, fourth.stdout)
	}
	if r := deltaci(t, dir, "run", "--no-reuse", "--job", "api"); !strings.Contains(r.stdout, "api | RAN api") {
		t.Errorf("--no-reuse did not run api:\n%s", r.stdout)
	}
}

func TestPlanJSON(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore":   ".deltaci/\n",
		".deltaci.yml": "version: 1\njobs:\n  a:\n    run: \"true\"\n    inputs: [\"a/**\"]\n  b:\n    run: \"true\"\n    inputs: [\"b/**\"]\n    branches: [release]\n",
		"a/x":          "1", "b/y": "2",
	})
	write(t, dir, "a/x", "changed")
	r := deltaci(t, dir, "plan", "--json")
	if r.code != 0 {
		t.Fatalf("plan: exit %d\n%s", r.code, r.stderr)
	}
	var pl struct {
		Jobs []struct {
			Name, Decision string
			Why            []struct{ Code string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &pl); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, j := range pl.Jobs {
		got[j.Name] = j.Decision
	}
	if got["a"] != "run" || got["b"] != "skip" {
		t.Errorf("decisions = %v\n%s", got, r.stdout)
	}
	ex := deltaci(t, dir, "plan", "--explain")
	if ex.code != 0 || !strings.Contains(ex.stdout, "a/x") || !strings.Contains(ex.stdout, "a/**") {
		t.Errorf("plan --explain does not name the file and glob:\n%s", ex.stdout)
	}
	// Planning in a repository deltaci run never ran in leaves no state.
	if _, err := os.Stat(filepath.Join(dir, ".deltaci")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plan made .deltaci/: %v", err)
	}
	// After a run, plan reads the results it recorded.
	if r := deltaci(t, dir, "run"); r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := deltaci(t, dir, "plan"); r.code != 0 || !strings.Contains(r.stdout, "1 reused") {
		t.Errorf("plan after a run reuses nothing:\n%s%s", r.stdout, r.stderr)
	}
}

func TestSandboxExecutor(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bubblewrap is required under CI=true")
		}
		t.Skip("bubblewrap not installed")
	}
	outside := t.TempDir()
	dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  confined:
    run: |
      echo inside > in-workspace
      if echo x > %s/escaped 2>/dev/null; then echo ESCAPED; fi
      echo done
`, outside)})
	r := deltaci(t, dir, "run", "--executor", "sandbox")
	if r.code != 0 || !strings.Contains(r.stdout, "confined | done") || strings.Contains(r.stdout, "ESCAPED") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(outside, "escaped")); err == nil {
		t.Error("a sandboxed job wrote outside its workspace")
	}
	if r := deltaci(t, dir, "run", "--executor", "vm"); r.code != 2 {
		t.Errorf("--executor vm: exit %d", r.code)
	}
}

// TestJobOutputCannotDriveTheTerminal runs a job that tries to write the
// operator's clipboard (OSC 52), set the terminal's title, and move the
// cursor up to draw "ok" over its own failure. deltaci run must print those
// sequences as visible text, and keep them unchanged in the stored log.
func TestJobOutputCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  evil:
    run: |
      printf 'clipboard \033]52;c;Y3VybCBldmlsIHwgc2g=\007\n'
      printf 'title \033]0;deltaci: all green\033\\\n'
      printf 'FAILED\n\033[1A\033[2K\r\033[32mevil | ok\033[0m\n'
      exit 1
`})
	r := deltaci(t, dir, "run")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`evil | clipboard \x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07` + "\n",
		`evil | title \x1b]0;deltaci: all green\x1b\` + "\n",
		"evil | FAILED\n",
		`evil | \x1b[1A\x1b[2K\x0d` + "\x1b[32mevil | ok\x1b[0m\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%q", want, r.stdout)
		}
	}
	// Colours may pass; no other sequence and no other control character.
	rest := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(r.stdout, "")
	if i := strings.IndexFunc(rest, func(c rune) bool { return c < ' ' && c != '\n' && c != '\t' }); i >= 0 {
		t.Errorf("control character %q reached the output: %q", rest[i], rest[max(0, i-20):min(len(rest), i+20)])
	}

	logs := deltaci(t, dir, "artifacts", "ls", "logs")
	ref, _, _ := strings.Cut(strings.TrimSpace(logs.stdout), " ")
	dest := t.TempDir()
	if r := deltaci(t, dir, "artifacts", "pull", ref, dest); r.code != 0 {
		t.Fatalf("pull %q: exit %d\n%s%s", ref, r.code, r.stdout, r.stderr)
	}
	stored, err := os.ReadFile(filepath.Join(dest, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "clipboard \x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07\n"; !strings.Contains(string(stored), want) {
		t.Errorf("the stored log lacks the bytes as printed, %q:\n%q", want, stored)
	}
}
