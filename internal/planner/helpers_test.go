package planner_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/pipeline"
	"github.com/deltaci/deltaci/internal/planner"
)

func TestMain(m *testing.M) {
	// The planner runs git with the process environment: keep the
	// developer's own git configuration out of the tests.
	os.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	goleak.VerifyTestMain(m)
}

// gitEnv isolates fixture commands from the user's configuration and
// fixes dates, so that commit ids are the same on every run.
var gitEnv = append(os.Environ(),
	"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
	"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
	"GIT_AUTHOR_DATE=2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2025-01-01T00:00:00Z",
)

// repo is a throwaway git repository built with the git CLI.
type repo struct {
	t   testing.TB
	dir string
}

func newRepo(t testing.TB) repo {
	t.Helper()
	r := repo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r repo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = gitEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r repo) path(rel string) string { return filepath.Join(r.dir, filepath.FromSlash(rel)) }

func (r repo) write(rel, content string) { r.writeMode(rel, content, 0o644) }

func (r repo) writeMode(rel, content string, perm os.FileMode) {
	r.t.Helper()
	p := r.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		r.t.Fatal(err)
	}
}

func (r repo) remove(rel string) {
	r.t.Helper()
	if err := os.Remove(r.path(rel)); err != nil {
		r.t.Fatal(err)
	}
}

// files writes each path with its content.
func (r repo) files(files map[string]string) {
	r.t.Helper()
	for p, c := range files {
		r.write(p, c)
	}
}

// commit commits everything and returns the new commit id.
func (r repo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// parse reads a pipeline, failing the test on error.
func parse(t testing.TB, yaml string) *core.Pipeline {
	t.Helper()
	p, err := pipeline.Parse(".deltaci.yml", []byte(yaml))
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return p
}

// store records successful results by digest, as the artifact store would.
type store struct {
	results map[string]planner.Result
	runs    int
}

func newStore() *store { return &store{results: map[string]planner.Result{}} }

func (s *store) lookup(d string) (planner.Result, bool) {
	r, ok := s.results[d]
	return r, ok
}

// record marks every job the plan runs as succeeded.
func (s *store) record(p *planner.Plan) {
	s.runs++
	for _, j := range p.Jobs {
		if j.Decision == planner.Run {
			s.results[j.Digest] = planner.Result{RunID: fmt.Sprintf("run-%d", s.runs), AttemptID: "att-" + j.Name, Attempt: 1}
		}
	}
}

func makePlan(t testing.TB, o planner.Options) *planner.Plan {
	t.Helper()
	if o.Executor == "" {
		o.Executor = planner.ExecutorSandbox
	}
	p, err := planner.Make(context.Background(), o)
	if err != nil {
		t.Fatalf("Make: %v", err)
	}
	return p
}

// decisions groups a plan's jobs by decision, each list sorted.
type decisions struct {
	Run, Reuse, Skip []string
}

func decided(p *planner.Plan) decisions {
	var d decisions
	for _, j := range p.Jobs {
		switch j.Decision {
		case planner.Run:
			d.Run = append(d.Run, j.Name)
		case planner.Reuse:
			d.Reuse = append(d.Reuse, j.Name)
		case planner.Skip:
			d.Skip = append(d.Skip, j.Name)
		}
	}
	slices.Sort(d.Run)
	slices.Sort(d.Reuse)
	slices.Sort(d.Skip)
	return d
}

func assertDecisions(t testing.TB, p *planner.Plan, want decisions) {
	t.Helper()
	for _, l := range []*[]string{&want.Run, &want.Reuse, &want.Skip} {
		slices.Sort(*l)
	}
	if diff := cmp.Diff(want, decided(p)); diff != "" {
		t.Errorf("decisions (-want +got):\n%s\nexplanations:\n%s", diff, explain(p))
	}
}

func explain(p *planner.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  base %.12s: %s (fallback: %s)\n", p.Base.Commit, p.Base.Reason, p.Base.Fallback)
	for _, j := range p.Jobs {
		fmt.Fprintf(&b, "  %s: %s: %s\n", j.Name, j.Decision, j.Explain())
	}
	return b.String()
}

// reason returns the job's reason with the code, failing when it has none.
func reason(t testing.TB, p *planner.Plan, job string, code planner.ReasonCode) planner.Reason {
	t.Helper()
	j, ok := p.Job(job)
	if !ok {
		t.Fatalf("no job %s in the plan", job)
	}
	for _, r := range j.Why {
		if r.Code == code {
			return r
		}
	}
	t.Fatalf("job %s has no %s reason:\n%s", job, code, explain(p))
	return planner.Reason{}
}
