package planner

import (
	"github.com/deltaci/deltaci/internal/core"
)

// Affected returns, in the order of jobs, the jobs whose digest a change
// to paths can change: those whose inputs match one of the paths (a job
// without inputs matches them all), and those that need one of them,
// directly or not. jobs names jobs of p.
func Affected(p *core.Pipeline, jobs []string, paths []string) []string {
	in := newInputs(p)
	hit := map[string]bool{}
	m := in.ix.matcher()
	for _, path := range paths {
		m.match(path, func(g int32) {
			for _, set := range in.setsOf[g] {
				for _, j := range in.setJobs[set] {
					hit[j] = true
				}
			}
		})
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
		for _, n := range j.Needs {
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
