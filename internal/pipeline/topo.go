package pipeline

import (
	"container/heap"
	"slices"

	"github.com/deltaci/deltaci/internal/core"
)

// TopoOrder returns the job names of p such that every job comes after the
// jobs it needs and the jobs it takes inputs from (whose digests its own
// covers). Among jobs whose needs are all placed, the one earlier in
// the file comes first, so the order is stable across runs.
//
// For a pipeline that Parse did not validate, needs or inputs_from naming no job are
// ignored and jobs on a cycle are appended in file order, so every job
// appears exactly once.
func TopoOrder(p *core.Pipeline) []string {
	n := len(p.Jobs)
	index := make(map[string]int, n)
	for i, j := range p.Jobs {
		if _, dup := index[j.Name]; !dup {
			index[j.Name] = i
		}
	}
	waiting := make([]int, n)      // needs not yet placed
	dependents := make([][]int, n) // jobs that need job i
	for i, j := range p.Jobs {
		seen := map[int]bool{}
		for _, need := range slices.Concat(j.Needs, j.InputsFrom) {
			k, ok := index[need]
			if !ok || k == i || seen[k] {
				continue
			}
			seen[k] = true
			waiting[i]++
			dependents[k] = append(dependents[k], i)
		}
	}
	ready := &intHeap{}
	for i := range n {
		if waiting[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]string, 0, n)
	placed := make([]bool, n)
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		placed[i] = true
		order = append(order, p.Jobs[i].Name)
		for _, d := range dependents[i] {
			if waiting[d]--; waiting[d] == 0 {
				heap.Push(ready, d)
			}
		}
	}
	for i := range n {
		if !placed[i] {
			order = append(order, p.Jobs[i].Name)
		}
	}
	return order
}

// intHeap is a min-heap of job indexes: the earliest ready job first.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
