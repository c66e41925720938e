package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/gittest"
)

// TestRunCacheWarmsTheNextRun: deltaci run keeps a job's workspace cache
// paths in the repository's own store; the second run restores them by
// the exact key, and plan --explain shows the key.
func TestRunCacheWarmsTheNextRun(t *testing.T) {
	t.Parallel()
	dir := gittest.Repo(t, map[string]string{
		".deltaci.yml": `version: 1
jobs:
  build:
    reuse: false
    cache:
      key: [deps.lock]
      restore-keys: [build-]
      paths: [dep-cache, "~/.cache/never-touched"]
    run: |
      echo "cache holds: $(cat dep-cache/state 2>/dev/null || echo nothing)"
      mkdir -p dep-cache && echo "from an earlier run" > dep-cache/state
`,
		".gitignore": ".deltaci/\n",
		"deps.lock":  "a 1\n",
	})
	run := func() string {
		t.Helper()
		var out bytes.Buffer
		if code := Run(context.Background(), []string{"run", "--repo", dir}, os.Environ(), &out, &out); code != 0 {
			t.Fatalf("deltaci run: exit %d:\n%s", code, out.String())
		}
		return out.String()
	}
	first := run()
	key := regexp.MustCompile(`cache cold \(no entry for key (build-[0-9a-f]{24})\)`).FindStringSubmatch(first)
	if key == nil || !strings.Contains(first, "cache holds: nothing") || !strings.Contains(first, "cache saved (key "+key[1]+", 1 files") ||
		!strings.Contains(first, "cache paths under ~/ are your own home's") {
		t.Fatalf("first run:\n%s", first)
	}
	if !regexp.MustCompile(`build\s+` + key[1] + `\s+cold\s+20 B \(20 B uploaded\)`).MatchString(first) {
		t.Errorf("first run's summary lacks the cache line:\n%s", first)
	}
	second := run()
	for _, want := range []string{"cache restored (exact key " + key[1] + ", 20 B)", "cache holds: from an earlier run", "cache unchanged, not saved"} {
		if !strings.Contains(second, want) {
			t.Errorf("second run lacks %q:\n%s", want, second)
		}
	}
	if !regexp.MustCompile(`build\s+` + key[1] + `\s+exact \(` + key[1] + `, 20 B\)\s+unchanged`).MatchString(second) {
		t.Errorf("second run's summary lacks the cache line:\n%s", second)
	}

	var out bytes.Buffer
	if code := Run(context.Background(), []string{"plan", "--repo", dir, "--explain"}, os.Environ(), &out, &out); code != 0 {
		t.Fatalf("plan: %s", out.String())
	}
	if !strings.Contains(out.String(), "cache key "+key[1]+" (1 file of the key; paths dep-cache, ~/.cache/never-touched)") ||
		!strings.Contains(out.String(), "else the newest entry whose key starts with build-") {
		t.Errorf("plan --explain:\n%s", out.String())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"plan", "--repo", dir, "--json"}, os.Environ(), &out, &out); code != 0 {
		t.Fatalf("plan --json: %s", out.String())
	}
	if !strings.Contains(out.String(), `"cache":{"key":"`+key[1]+`"`) && !strings.Contains(out.String(), `"key": "`+key[1]+`"`) {
		t.Errorf("plan --json lacks the cache key:\n%s", out.String())
	}
}

// TestRunSandboxCacheFillsTheJobsHome: with the sandbox executor each job
// has a home of its own, and deltaci run restores "~/" cache paths into it.
func TestRunSandboxCacheFillsTheJobsHome(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bwrap (bubblewrap) is required under CI=true")
		}
		t.Skip("!!! SKIPPING the sandboxed cache test: bwrap (bubblewrap) is not installed")
	}
	dir := gittest.Repo(t, map[string]string{
		".deltaci.yml": `version: 1
jobs:
  build:
    reuse: false
    cache:
      paths: ["~/.cache/tool"]
    run: |
      echo "home cache: $(cat "$XDG_CACHE_HOME/tool/state" 2>/dev/null || echo nothing)"
      mkdir -p "$XDG_CACHE_HOME/tool" && echo "kept in the home" > "$XDG_CACHE_HOME/tool/state"
`,
		".gitignore": ".deltaci/\n",
	})
	run := func() string {
		t.Helper()
		var out bytes.Buffer
		if code := Run(context.Background(), []string{"run", "--repo", dir, "--executor", "sandbox"}, os.Environ(), &out, &out); code != 0 {
			t.Fatalf("deltaci run: exit %d:\n%s", code, out.String())
		}
		return out.String()
	}
	if first := run(); !strings.Contains(first, "home cache: nothing") || !strings.Contains(first, "cache saved (key build-") {
		t.Fatalf("first run:\n%s", first)
	}
	if second := run(); !strings.Contains(second, "home cache: kept in the home") || !strings.Contains(second, "cache restored (exact key build-") {
		t.Errorf("second run:\n%s", second)
	}
}
