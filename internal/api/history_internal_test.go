package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// rerunFixture is a run's jobs in pipeline order, each "name=state" with
// its needs after a colon ("b=upstream_failed:a"); a succeeded job has a
// succeeded attempt "att-NAME".
func rerunFixture(specs ...string) ([]core.Job, []core.Attempt) {
	var jobs []core.Job
	var attempts []core.Attempt
	for _, s := range specs {
		def, needs, _ := strings.Cut(s, ":")
		name, state, _ := strings.Cut(def, "=")
		j := core.Job{ID: "job-" + name, Name: name, State: core.JobState(state), Explain: "planned", Digest: "sha256:" + name}
		j.Spec.Name = name
		if needs != "" {
			j.Spec.Needs = strings.Split(needs, ",")
		}
		switch j.State {
		case core.JobSucceeded:
			attempts = append(attempts, core.Attempt{ID: "att-" + name, JobID: j.ID, Number: 1, State: core.AttemptSucceeded})
		case core.JobFailed:
			attempts = append(attempts, core.Attempt{ID: "bad-" + name, JobID: j.ID, Number: 1, State: core.AttemptFailed})
		case core.JobReused:
			j.ReusedFrom = "old-" + name
		}
		jobs = append(jobs, j)
	}
	return jobs, attempts
}

func TestRerunJobs(t *testing.T) {
	t.Parallel()
	orig := core.Run{ID: "r1", State: core.RunFailed}
	dag := []string{"a=failed", "b=upstream_failed:a", "c=succeeded", "d=reused", "e=skipped", "f=succeeded:c"}
	for _, c := range []struct {
		name  string
		jobs  []string
		only  string
		want  string // each job as "name=run", "name=reused<from>" or "name=skipped"
		err   core.Kind
		names string // what the error must say
	}{
		{name: "Failed", jobs: dag, want: "a=run b=run c=reused<att-c> d=reused<old-d> e=skipped f=reused<att-f>"},
		{name: "OneFailed", jobs: dag, only: "a", want: "a=run b=run c=reused<att-c> d=reused<old-d> e=skipped f=reused<att-f>"},
		{name: "OneSucceeded", jobs: dag, only: "c", want: "a=failed b=failed c=run d=reused<old-d> e=skipped f=reused<att-f>"},
		{name: "OneReused", jobs: dag, only: "d", want: "a=failed b=failed c=reused<att-c> d=run e=skipped f=reused<att-f>"},
		{name: "DependentsThatFailed", jobs: []string{"a=succeeded", "b=failed:a", "c=upstream_failed:b", "d=succeeded:a"}, only: "a",
			want: "a=run b=run c=run d=reused<att-d>"},
		{name: "ErrNeedFailed", jobs: dag, only: "b", err: core.KindConflict, names: "job b needs a, which ended failed in run r1"},
		{name: "ErrDependentsOtherNeedFailed", jobs: []string{"a=failed", "x=failed", "d=upstream_failed:a,x"}, only: "a",
			err: core.KindConflict, names: "job d needs x"},
		{name: "ErrNothingFailed", jobs: []string{"a=succeeded", "b=reused"}, err: core.KindConflict, names: "every job of run r1 succeeded"},
		{name: "ErrNoJobs", err: core.KindConflict, names: "run r1 has no jobs"},
		{name: "ErrUnknownJob", jobs: dag, only: "zz", err: core.KindNotFound, names: `no job "zz" (its jobs: a, b, c, d, e, f)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			jobs, attempts := rerunFixture(c.jobs...)
			got, err := rerunJobs(orig, jobs, attempts, c.only)
			if c.err != "" {
				if core.KindOf(err) != c.err || !strings.Contains(fmt.Sprint(err), c.names) {
					t.Fatalf("rerunJobs = %v, want a %s error saying %q", err, c.err, c.names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for _, nj := range got {
				switch nj.Decision {
				case "":
					plan = append(plan, nj.Spec.Name+"=run")
				case core.JobReused:
					plan = append(plan, fmt.Sprintf("%s=reused<%s>", nj.Spec.Name, nj.ReusedFrom))
				default:
					plan = append(plan, nj.Spec.Name+"="+string(nj.Decision))
				}
				if nj.Digest != "sha256:"+nj.Spec.Name || !strings.Contains(nj.Explain, "r1") {
					t.Errorf("job %s: digest %q, explain %q", nj.Spec.Name, nj.Digest, nj.Explain)
				}
			}
			if g := strings.Join(plan, " "); g != c.want {
				t.Errorf("plan = %s\nwant   %s", g, c.want)
			}
			if !slices.EqualFunc(got, jobs, func(nj store.NewJob, j core.Job) bool { return nj.Spec.Name == j.Name }) {
				t.Error("the rerun's jobs are not the original's, in its order")
			}
		})
	}
}
