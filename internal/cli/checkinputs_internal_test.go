package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

// TestCompareVerdicts: each pair of states, without hermetic and hermetic,
// gets its verdict; only the jobs named are judged, in the plan's order.
func TestCompareVerdicts(t *testing.T) {
	t.Parallel()
	pl := &planner.Plan{Jobs: []planner.Job{
		{Name: "ok"}, {Name: "broken"}, {Name: "filtered", Why: []planner.Reason{{Text: "event manual is not in events [push]"}}},
		{Name: "after-broken"}, {Name: "after-sloppy"}, {Name: "unnamed"},
	}}
	plain := checkPass{plan: pl, states: map[string]core.JobState{
		"ok": core.JobSucceeded, "broken": core.JobFailed, "filtered": core.JobSkipped,
		"after-broken": core.JobUpstreamFailed, "after-sloppy": core.JobSucceeded, "unnamed": core.JobFailed,
	}}
	herm := checkPass{plan: pl, states: map[string]core.JobState{
		"ok": core.JobSucceeded, "broken": core.JobFailed, "filtered": core.JobSkipped,
		"after-broken": core.JobUpstreamFailed, "after-sloppy": core.JobUpstreamFailed, "unnamed": core.JobFailed,
	}}
	got, err := compare([]string{"after-sloppy", "after-broken", "filtered", "broken", "ok"}, plain, herm, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := InputCheck{Version: 1, Summary: map[string]int{VerdictOK: 1, VerdictHermeticOnly: 0, VerdictFails: 1, VerdictNotChecked: 3},
		Jobs: []CheckedJob{
			{Name: "ok", Verdict: VerdictOK, Plain: "succeeded", Hermetic: "succeeded"},
			{Name: "broken", Verdict: VerdictFails, Plain: "failed", Hermetic: "failed"},
			{Name: "filtered", Verdict: VerdictNotChecked, Plain: "skipped", Hermetic: "skipped", Why: "skipped by its filters: event manual is not in events [push]"},
			{Name: "after-broken", Verdict: VerdictNotChecked, Plain: "upstream_failed", Hermetic: "upstream_failed", Why: "a job it needs failed without hermetic"},
			{Name: "after-sloppy", Verdict: VerdictNotChecked, Plain: "succeeded", Hermetic: "upstream_failed", Why: "a job it needs failed hermetic: check that one first"},
		}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("compare (-want +got):\n%s", diff)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	t.Parallel()
	b := &tailBuffer{max: 8}
	for _, s := range []string{"0123456789", "abcdefghij", "XYZ"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := string(b.bytes()); got != "fghijXYZ" {
		t.Errorf("kept %q, want the last 8 bytes", got)
	}
}
