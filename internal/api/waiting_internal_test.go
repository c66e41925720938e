package api

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/store"
)

func TestWaitReason(t *testing.T) {
	shell := store.Runner{Name: "r1", Labels: []string{"executor:shell"}}
	gpu := store.Runner{Name: "r2", Labels: []string{"gpu", "executor:shell"}}
	cases := []struct {
		need []string
		live []store.Runner
		want string
	}{
		{[]string{"executor:shell"}, []store.Runner{shell}, ""},
		{[]string{"executor:shell", "gpu"}, []store.Runner{shell, gpu}, ""},
		{nil, []store.Runner{shell}, ""},
		{[]string{"executor:sandbox"}, []store.Runner{shell},
			"no live runner has executor:sandbox; live runners: r1 [executor:shell]"},
		{[]string{"gpu", "executor:sandbox"}, []store.Runner{shell, gpu},
			"no live runner has executor:sandbox; live runners: r1 [executor:shell], r2 [executor:shell gpu]"},
		{[]string{"gpu", "arm64"}, []store.Runner{gpu, {Name: "r3", Labels: []string{"arm64"}}},
			"no live runner has all of arm64, gpu; live runners: r2 [executor:shell gpu], r3 [arm64]"},
		{[]string{"executor:shell"}, nil,
			"no live runner: none was in touch in the last 1m30s; the job needs one with executor:shell"},
	}
	for _, c := range cases {
		if got := waitReason(c.need, c.live, 90*time.Second); got != c.want {
			t.Errorf("waitReason(%q, %v) = %q, want %q", c.need, c.live, got, c.want)
		}
	}
}

func TestWaitReasonIsBounded(t *testing.T) {
	var live []store.Runner
	for i := range 40 {
		live = append(live, store.Runner{Name: fmt.Sprintf("runner-%02d", i), Labels: []string{strings.Repeat("x", 100), "executor:shell"}})
	}
	got := waitReason([]string{"executor:sandbox"}, live, time.Minute)
	if len(got) > waitMaxLen || !strings.HasPrefix(got, "no live runner has executor:sandbox; live runners: runner-00 [") {
		t.Errorf("reason of %d bytes: %q", len(got), got)
	}
	if strings.Contains(got, "runner-05") {
		t.Errorf("the reason names more than %d runners: %q", waitListRunners, got)
	}
	few := waitReason([]string{"executor:sandbox"}, live[:7], time.Minute)
	if !strings.HasSuffix(few, " and 2 more") && !strings.HasSuffix(few, "...") {
		t.Errorf("seven runners: %q", few)
	}
	if s := bounded(strings.Repeat("é", 400)); len(s) > waitMaxLen || !strings.HasSuffix(s, "...") || strings.ContainsRune(s, '\uFFFD') {
		t.Errorf("bounded cuts inside a rune: %q", s)
	}
}
