package pipeline

import (
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/google/go-cmp/cmp"
)

func TestTopoOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		jobs [][]string // name, then its needs
		want []string
	}{
		{"Empty", nil, []string{}},
		{"FileOrderWithoutNeeds", [][]string{{"c"}, {"a"}, {"b"}}, []string{"c", "a", "b"}},
		{"NeedsFirst", [][]string{{"deploy", "test"}, {"test", "lint"}, {"lint"}}, []string{"lint", "test", "deploy"}},
		{"TiesByFileOrder", [][]string{{"lint"}, {"e2e", "build"}, {"unit", "lint"}, {"build"}},
			// After lint, unit is ready before build; e2e waits for build.
			[]string{"lint", "unit", "build", "e2e"}},
		{"Diamond", [][]string{{"d", "b", "c"}, {"c", "a"}, {"b", "a"}, {"a"}}, []string{"a", "c", "b", "d"}},
		{"UnknownNeedIgnored", [][]string{{"a", "ghost"}, {"b"}}, []string{"a", "b"}},
		{"CycleAppendedInFileOrder", [][]string{{"x", "y"}, {"y", "x"}, {"z"}}, []string{"z", "x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &core.Pipeline{Version: 1}
			for _, j := range tt.jobs {
				p.Jobs = append(p.Jobs, core.JobSpec{Name: j[0], Needs: j[1:]})
			}
			if diff := cmp.Diff(tt.want, TopoOrder(p)); diff != "" {
				t.Errorf("TopoOrder mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTopoOrderOfParsedFile(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, "testdata/full.yml")
	if diff := cmp.Diff([]string{"lint", "test-api", "deploy"}, TopoOrder(p)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
