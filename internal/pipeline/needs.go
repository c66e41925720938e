package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// checkNeeds reports needs and inputs_from that name no job, a job naming
// itself, and cycles, one per group of jobs that depend on each other:
// a digest covers the digests of both.
func (t *tree) checkNeeds(jobs []*jobDecl) {
	index := make(map[string]int, len(jobs))
	names := make([]string, 0, len(jobs))
	for i, j := range jobs {
		// Invalid names count too, so one mistake is not reported twice.
		index[j.name] = i
		names = append(names, j.name)
	}
	edges := make([][]int, len(jobs))
	// from marks the edges that come from inputs_from, by job and target.
	from := map[[2]int]bool{}
	for i, j := range jobs {
		for _, n := range j.needs {
			k, ok := index[n.s]
			switch {
			case n.s == j.name:
				t.add(n.at, fmt.Sprintf("remove %q from its needs", n.s), "job %q needs itself", j.name)
			case !ok:
				t.add(n.at, t.didYouMean(n.s, names, "jobs are"), "job %q needs %q, which is not a job", j.name, n.s)
			default:
				edges[i] = append(edges[i], k)
			}
		}
		for _, n := range j.inputsFrom {
			k, ok := index[n.s]
			switch {
			case n.s == j.name:
				t.add(n.at, fmt.Sprintf("remove %q from its inputs_from", n.s), "job %q takes inputs from itself", j.name)
			case !ok:
				t.add(n.at, t.didYouMean(n.s, names, "jobs are"), "job %q takes inputs from %q, which is not a job", j.name, n.s)
			case slices.ContainsFunc(j.needs, func(it item) bool { return it.s == n.s }):
				t.add(n.at, fmt.Sprintf("needs already puts the digest of %q in this job's: remove it from inputs_from", n.s),
					"job %q lists %q in both needs and inputs_from", j.name, n.s)
			default:
				edges[i] = append(edges[i], k)
				from[[2]int{i, k}] = true
			}
		}
	}
	for _, scc := range components(edges) {
		if len(scc) < 2 {
			continue
		}
		cycle := shortestCycle(edges, scc)
		path := make([]string, len(cycle)+1)
		viaFrom := false
		for i, k := range cycle {
			path[i] = jobs[k].name
			viaFrom = viaFrom || from[[2]int{k, cycle[(i+1)%len(cycle)]}]
		}
		path[len(cycle)] = path[0]
		// Point at the entry that starts the cycle, in its earliest job.
		first := jobs[cycle[0]]
		at := first.at
		for _, n := range slices.Concat(first.needs, first.inputsFrom) {
			if n.s == jobs[cycle[1]].name {
				at = n.at
				break
			}
		}
		if viaFrom {
			t.add(at, "a job's digest cannot depend on itself through other jobs: remove one of these needs or inputs_from",
				"cycle in needs and inputs_from: %s", strings.Join(path, " → "))
			continue
		}
		t.add(at, "a job cannot need itself through other jobs: remove one of these needs",
			"cycle in needs: %s", strings.Join(path, " → "))
	}
}

// components returns the strongly connected components of the graph
// (Tarjan's algorithm), each with its vertices ascending.
func components(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var scc []int
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			scc = append(scc, w)
			if w == v {
				break
			}
		}
		slices.Sort(scc)
		out = append(out, scc)
	}
	for v := range n {
		if index[v] < 0 {
			visit(v)
		}
	}
	return out
}

// shortestCycle returns the shortest cycle through the first vertex of
// scc, staying inside scc: the easiest one for a person to read.
func shortestCycle(edges [][]int, scc []int) []int {
	in := make(map[int]bool, len(scc))
	for _, v := range scc {
		in[v] = true
	}
	start := scc[0]
	prev := map[int]int{start: -1}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range edges[v] {
			if w == start {
				var cycle []int
				for u := v; u != -1; u = prev[u] {
					cycle = append(cycle, u)
				}
				slices.Reverse(cycle)
				return cycle
			}
			if _, seen := prev[w]; !seen && in[w] {
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start} // unreachable for a component of two or more
}
