package main_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestAssumeUnchangedIsNeverReusedStale is the reproduction of a stale
// reuse through a file marked assume-unchanged, with the real binary. The
// job reads src/a.txt; the commit says bad. Marked and edited to good, the
// file still counts as committed, for the digest and for the job alike, so
// the job fails again instead of succeeding on content its digest does not
// describe, and the clean checkout after it is not reused as a success.
// Cleared of the flag with the edit kept, the edit is a change like any
// other. A fully reused run in that state starts no more git processes
// than one without flags.
func TestAssumeUnchangedIsNeverReusedStale(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{
		".gitignore":   ".deltaci/\n",
		".deltaci.yml": "version: 1\njobs:\n  check:\n    run: \"echo saw $(cat src/a.txt); grep -q good src/a.txt\"\n    inputs: [\"src/**\"]\n",
		"src/a.txt":    "bad\n",
		"src/b.txt":    "other\n",
	})
	step := func(n int, wantCode int, header, status, saw string) {
		t.Helper()
		r := deltaci(t, dir, "run")
		if r.code != wantCode || !strings.Contains(r.stdout, header) {
			t.Fatalf("run %d: exit %d, want %d and %s:\n%s%s", n, r.code, wantCode, header, r.stdout, r.stderr)
		}
		if got := summary(t, r.stdout)["check"]; got != status {
			t.Errorf("run %d: check %s, want %s:\n%s", n, got, status, r.stdout)
		}
		if saw != "" && !strings.Contains(r.stdout, "check | saw "+saw+"\n") {
			t.Errorf("run %d: the job did not see %s:\n%s", n, saw, r.stdout)
		}
	}
	const runs = "(1 to run, 0 reused, 0 skipped)"

	step(1, 1, runs, "failed|exit code 1|1", "bad")
	git(t, dir, "update-index", "--assume-unchanged", "src/a.txt")
	write(t, dir, "src/a.txt", "good\n")
	step(2, 1, runs, "failed|exit code 1|1", "bad")
	if r := deltaci(t, dir, "plan"); r.code != 0 || !strings.Contains(r.stdout, "plan of main@") || strings.Contains(r.stdout, "uncommitted") {
		t.Errorf("plan: exit %d, want a plan of the clean commit:\n%s%s", r.code, r.stdout, r.stderr)
	}
	git(t, dir, "update-index", "--no-assume-unchanged", "src/a.txt")
	git(t, dir, "checkout", "--", "src/a.txt")
	step(3, 1, runs, "failed|exit code 1|1", "bad")

	// The flag cleared with the edit in place: the job sees it, and its
	// success is reused for that content only.
	write(t, dir, "src/a.txt", "good\n")
	step(4, 0, runs, "succeeded|-|1", "good")
	step(5, 0, "(0 to run, 1 reused, 0 skipped)", "reused|-|-", "")
	git(t, dir, "checkout", "--", "src/a.txt")
	step(6, 1, runs, "failed|exit code 1|1", "bad")

	// Flags on other files, and a reused run: no more git processes.
	write(t, dir, "src/a.txt", "good\n")
	git(t, dir, "update-index", "--assume-unchanged", "src/b.txt")
	write(t, dir, "src/b.txt", "edited, flagged\n")
	env, log := gitShim(t)
	cmd := command(dir, "run")
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "(0 to run, 1 reused, 0 skipped)") {
		t.Fatalf("reused run: %v, want check reused from run 4:\n%s", err, out.String())
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(calls), "\n"); n > 8 {
		t.Errorf("a reused run with a flagged file started %d git processes, want at most 8:\n%s", n, calls)
	}
}
