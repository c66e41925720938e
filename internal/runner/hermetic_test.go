package runner_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
)

// TestRemoteHermeticCheckout: a remote runner gives a hermetic job a
// workspace of only the files its inputs match at the commit, with what
// their symlinks lead to in the repository, and the outputs of its needs;
// another file of the commit is missing, as is .git. A job that is not
// hermetic still gets the whole checkout.
func TestRemoteHermeticCheckout(t *testing.T) {
	c := newCluster(t)
	c.runner(2)
	dir := gittest.Repo(t, map[string]string{
		".deltaci.yml": `version: 1
jobs:
  build:
    run: mkdir -p out && echo "built" > out/artifact.txt
    outputs: ["out/**"]
  check:
    needs: [build]
    hermetic: true
    inputs: ["src/**"]
    run: |
      cat src/a.txt src/cfg out/artifact.txt
      ls -A
      test ! -e .git
      test ! -e .deltaci.yml
      test ! -e secret/other.txt
  leak:
    hermetic: true
    inputs: ["src/**"]
    run: cat secret/other.txt
  plain:
    run: cat secret/other.txt
`,
		"src/a.txt":        "from a\n",
		"shared/cfg.txt":   "from shared\n",
		"secret/other.txt": "not an input\n",
	})
	if err := os.Symlink("../shared/cfg.txt", filepath.Join(dir, "src", "cfg")); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, dir, "add", "-A")
	gittest.Git(t, dir, "commit", "-q", "-m", "link")
	run, err := c.createRun(t, protocol.CreateRunRequest{Repo: dir, Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	run = c.wait(run.ID)

	check := job(run, "check").Attempts[0]
	got := c.log(check)
	if check.State != string(core.AttemptSucceeded) {
		t.Fatalf("check: %s, log:\n%s", check.State, got)
	}
	for _, want := range []string{"from a\nfrom shared\nbuilt\n", "out\nshared\nsrc\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("check's log lacks %q:\n%s", want, got)
		}
	}
	leak := job(run, "leak").Attempts[0]
	if got := c.log(leak); leak.State != string(core.AttemptFailed) || !strings.Contains(got, "secret/other.txt: No such file or directory") {
		t.Errorf("leak, reading a file outside its inputs: %s, log:\n%s", leak.State, got)
	}
	plain := job(run, "plain").Attempts[0]
	if got := c.log(plain); plain.State != string(core.AttemptSucceeded) || !strings.Contains(got, "not an input") {
		t.Errorf("plain: %s, log:\n%s", plain.State, got)
	}
}
