package planner

import (
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/ecosystem"
)

// Affected returns, in the order of jobs, the jobs whose digest a change
// to paths can change: those whose inputs hold one of the paths (a job
// without inputs holds them all, and so does one with an inferred entry,
// whose expansion a change can move), and those that need or take inputs
// from one of them, directly or not. jobs names jobs of p.
func Affected(p *core.Pipeline, jobs []string, paths []string) []string {
	in := newInputs(p)
	hit := map[string]bool{}
	m := in.ix.matcher()
	// Without the tree, an inferred entry stands for the whole tree.
	whole := func(int, core.Input) (ecosystem.Expansion, error) {
		return ecosystem.Expansion{Include: []string{"."}}, nil
	}
	rules, _ := buildRules(in, whole, func(string) string { return "" })
	om, omt := rules.ix.matcher(), rules.newMatched(in.nsets)
	for _, path := range paths {
		m.match(path, func(g int32) {
			for _, set := range in.setsOf[g] {
				for _, j := range in.setJobs[set] {
					hit[j] = true
				}
			}
		})
		for _, set := range rules.match(om, omt, path, nil) {
			if ok, _ := rules.holds(omt, set); ok {
				for _, j := range in.setJobs[set] {
					hit[j] = true
				}
			}
		}
	}
	var affected func(name string, seen map[string]bool) bool
	affected = func(name string, seen map[string]bool) bool {
		if hit[name] {
			return true
		}
		if seen[name] {
			return false
		}
		seen[name] = true
		j, _ := p.Job(name)
		for _, n := range append(append([]string{}, j.Needs...), j.InputsFrom...) {
			if affected(n, seen) {
				hit[name] = true
				return true
			}
		}
		return false
	}
	var out []string
	for _, name := range jobs {
		if affected(name, map[string]bool{}) {
			out = append(out, name)
		}
	}
	return out
}
