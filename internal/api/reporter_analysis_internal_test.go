package api

import (
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

func TestFailedTestsText(t *testing.T) {
	t.Parallel()
	fail := func(names ...string) []core.TestFailure {
		var out []core.TestFailure
		for _, n := range names {
			out = append(out, core.TestFailure{ID: "pkg::" + n, Name: n})
		}
		return out
	}
	long := "TestAVeryLongNameThatGoesOnAndOnPastFortyRunes"
	tests := []struct {
		name string
		a    core.Analysis
		want string
	}{
		{"NoReport", core.Analysis{}, ""},
		{"One", core.Analysis{Totals: core.TestTotals{Failed: 1}, Failures: fail("TestA")}, "1 test failed: TestA"},
		{"Two", core.Analysis{Totals: core.TestTotals{Failed: 1, Errored: 1}, Failures: fail("TestA", "TestB")}, "2 tests failed: TestA, TestB"},
		{"Three", core.Analysis{Totals: core.TestTotals{Failed: 3}, Failures: fail("TestA", "TestB", "TestC")}, "3 tests failed: TestA, TestB, +1"},
		{"MoreThanKept", core.Analysis{Totals: core.TestTotals{Failed: 1200}, Failures: fail("TestA")}, "1200 tests failed: TestA, +1199"},
		{"LongName", core.Analysis{Totals: core.TestTotals{Failed: 1}, Failures: fail(long)}, "1 test failed: " + string([]rune(long)[:39]) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := failedTestsText(tt.a); got != tt.want {
				t.Errorf("failedTestsText = %q, want %q", got, tt.want)
			}
		})
	}
}
