package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSandboxRunToolsCacheInTheJobsHome: deltaci run --executor sandbox
// gives each job a writable home of its own, so that go build and npm work
// with their default caches (they failed on the read-only root before:
// "failed to initialize build cache ... read-only file system"). With the
// shell executor, jobs keep the user's own HOME.
func TestSandboxRunToolsCacheInTheJobsHome(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bubblewrap is required under CI=true")
		}
		t.Skip("!!! SKIPPING: bubblewrap is not installed")
	}
	goBin, err := exec.LookPath("go")
	if err != nil || !strings.HasPrefix(goBin, "/usr/") {
		t.Skipf("!!! SKIPPING: no go command under /usr, where the sandbox sees it (%q, %v)", goBin, err)
	}
	npm := "echo npm is not installed"
	if _, err := exec.LookPath("npm"); err == nil {
		npm = `cd pkg && npm pack --offline --silent && npm cache add ./tiny-1.0.0.tgz --offline
      test -n "$(ls "$HOME/.npm/_cacache/content-v2")" && echo "npm cached in $HOME/.npm"`
	}
	dir := repo(t, map[string]string{
		"go.mod":           "module example.com/tiny\n\ngo 1.22\n",
		"main.go":          "package main\n\nfunc main() { println(\"tiny ran\") }\n",
		"pkg/package.json": `{"name": "tiny", "version": "1.0.0"}`,
		".deltaci.yml": `version: 1
jobs:
  go:
    timeout: 5m
    run: |
      go build -o tiny . && ./tiny
      test -n "$(ls "$(go env GOCACHE)")" && echo "go cached in $(go env GOCACHE)"
  npm:
    timeout: 5m
    run: |
      ` + npm + `
  where:
    run: echo "home=$HOME cache=${XDG_CACHE_HOME-unset}"
`,
	})
	r := deltaci(t, dir, "run", "--executor", "sandbox")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A job's lines are its name, padded, then " | ".
	printed := func(out, job, line string) bool {
		return regexp.MustCompile(`(?m)^` + job + ` *\| ` + regexp.QuoteMeta(line) + `$`).MatchString(out)
	}
	m := regexp.MustCompile(`(?m)^where *\| home=(\S+) cache=(\S+)$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the job's home is not in the output:\n%s", r.stdout)
	}
	home := m[1]
	// In the run's work area, beside the job's workspace, never the user's.
	if !regexp.MustCompile(`/deltaci-run-[^/]+/ws/where-1/home$`).MatchString(home) || m[2] != home+"/.cache" || home == os.Getenv("HOME") {
		t.Errorf("HOME=%s XDG_CACHE_HOME=%s, want a home of the job's own in its work area", home, m[2])
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the job's home is still there after the run (stat: %v)", err)
	}
	goHome := strings.Replace(home, "/where-1/", "/go-1/", 1)
	for _, want := range []string{"tiny ran", "go cached in " + goHome + "/.cache/go-build"} {
		if !printed(r.stdout, "go", want) {
			t.Errorf("go's output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(npm, "not installed") {
		if want := "npm cached in " + strings.Replace(home, "/where-1/", "/npm-1/", 1) + "/.npm"; !printed(r.stdout, "npm", want) {
			t.Errorf("npm's output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The user's tree is the snapshot's source, never written.
	for _, name := range []string{"tiny", ".cache", "go", "pkg/tiny-1.0.0.tgz"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s appeared in the working tree (stat: %v)", name, err)
		}
	}

	// On the user's own machine with the shell, jobs use the user's home,
	// with its configuration and warm caches.
	r = deltaci(t, dir, "run", "--executor", "shell", "--job", "where")
	want := "home=" + os.Getenv("HOME") + " cache=" + envOr("XDG_CACHE_HOME", "unset")
	if r.code != 0 || !printed(r.stdout, "where", want) {
		t.Errorf("--executor shell: exit %d, want %q in:\n%s\n%s", r.code, want, r.stdout, r.stderr)
	}
}

// envOr is the test's environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
