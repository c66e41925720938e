package retention_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/retention"
)

var now = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func ref(ns, name, tag string, age time.Duration, pinned bool) eventlog.Ref {
	d, _ := digest.FromBytes(digest.SHA256, []byte(name+tag))
	return eventlog.Ref{RefName: eventlog.RefName{Namespace: ns, Name: name, Tag: tag}, Manifest: d,
		Pinned: pinned, UpdatedAt: now.Add(-age)}
}

func verdicts(ds []retention.Decision) map[string]bool {
	m := map[string]bool{}
	for _, d := range ds {
		m[d.Ref.String()] = d.Keep
	}
	return m
}

func TestPlan(t *testing.T) {
	t.Parallel()
	refs := []eventlog.Ref{
		ref("logs", "a", "1", 1*time.Hour, false),
		ref("logs", "a", "2", 50*time.Hour, false),
		ref("logs", "a", "3", 100*time.Hour, true),
		ref("logs", "a", "4", 200*time.Hour, false),
		ref("logs", "b", "1", 300*time.Hour, false),
		ref("outputs", "a", "1", 900*time.Hour, false),
	}
	tests := []struct {
		name     string
		policies []eventlog.Policy
		want     map[string]bool
	}{
		{"NoPolicyKeepsAll", nil, map[string]bool{"logs/a:1": true, "logs/a:2": true, "logs/a:3": true, "logs/a:4": true, "logs/b:1": true, "outputs/a:1": true}},
		{"KeepLast", []eventlog.Policy{{Namespace: "logs", Selector: "**", KeepLast: 2}},
			map[string]bool{"logs/a:1": true, "logs/a:2": true, "logs/a:3": false, "logs/a:4": false, "logs/b:1": false, "outputs/a:1": true}},
		{"KeepWithin", []eventlog.Policy{{Namespace: "logs", Selector: "**", KeepWithin: 72 * time.Hour}},
			map[string]bool{"logs/a:1": true, "logs/a:2": true, "logs/a:3": false, "logs/a:4": false, "logs/b:1": false, "outputs/a:1": true}},
		{"UnionWithPinned", []eventlog.Policy{{Namespace: "logs", Selector: "**", KeepLast: 1, KeepPinned: true}},
			map[string]bool{"logs/a:1": true, "logs/a:2": false, "logs/a:3": true, "logs/a:4": false, "logs/b:1": false, "outputs/a:1": true}},
		{"SelectorScopes", []eventlog.Policy{{Namespace: "logs", Selector: "a:*", KeepLast: 1}},
			map[string]bool{"logs/a:1": true, "logs/a:2": false, "logs/a:3": false, "logs/a:4": false, "logs/b:1": true, "outputs/a:1": true}},
		{"UnionOfPolicies", []eventlog.Policy{
			{Namespace: "logs", Selector: "**", KeepLast: 1},
			{Namespace: "logs", Selector: "b:*", KeepWithin: 400 * time.Hour},
		}, map[string]bool{"logs/a:1": true, "logs/a:2": false, "logs/a:3": false, "logs/a:4": false, "logs/b:1": true, "outputs/a:1": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ds := retention.Plan(refs, tt.policies, now)
			got := verdicts(ds)
			for r, keep := range tt.want {
				if got[r] != keep {
					t.Errorf("%s: keep = %v, want %v", r, got[r], keep)
				}
			}
			for _, d := range ds {
				if d.Reason == "" {
					t.Errorf("%s has no reason", d.Ref)
				}
			}
		})
	}
}

func TestPlanReasonsNameTheRule(t *testing.T) {
	t.Parallel()
	ds := retention.Plan([]eventlog.Ref{ref("logs", "a", "1", 100*time.Hour, false)},
		[]eventlog.Policy{{Namespace: "logs", Selector: "**", KeepWithin: 72 * time.Hour}}, now)
	if ds[0].Keep || !strings.Contains(ds[0].Reason, `logs "**" (keep_within 72h0m0s)`) || !strings.Contains(ds[0].Reason, "100h0m0s ago") {
		t.Errorf("decision = %+v", ds[0])
	}
}
