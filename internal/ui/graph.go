package ui

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/deltaci/deltaci/internal/protocol"
)

// Sizes of the job graph, in SVG units.
const (
	nodeW, nodeH = 180, 40
	gapX, gapY   = 56, 14
	pad          = 8
)

// graphNode is a job placed in the graph.
type graphNode struct {
	Name, State, Label, Href string
	X, Y, Layer              int
	TextX, TextY, StateY     int
}

// graphEdge is a need drawn from the job needed to the job needing it.
type graphEdge struct {
	From, To string
	Path     string
}

// graph is a run's jobs laid out as a DAG: each job in the layer after
// the deepest job it needs, left to right.
type graph struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
}

// layout places the jobs of a run (in pipeline order) in layers: a job
// with no needs in layer 0, any other one layer after the deepest job it
// needs. Within a layer jobs are ordered by the mean row of the jobs they
// need, which keeps edges short and crossings few, then by pipeline order.
func layout(runID string, jobs []protocol.Job) graph {
	idx := make(map[string]int, len(jobs))
	for i, j := range jobs {
		idx[j.Name] = i
	}
	layer := make([]int, len(jobs))
	done := make([]bool, len(jobs))
	var depth func(i int, seen map[int]bool) int
	depth = func(i int, seen map[int]bool) int {
		if done[i] {
			return layer[i]
		}
		if seen[i] { // a cycle: the planner refuses them; never loop
			return 0
		}
		seen[i] = true
		d := 0
		for _, n := range jobs[i].Needs {
			if k, ok := idx[n]; ok {
				d = max(d, depth(k, seen)+1)
			}
		}
		delete(seen, i)
		layer[i], done[i] = d, true
		return d
	}
	layers := 0
	for i := range jobs {
		layers = max(layers, depth(i, map[int]bool{})+1)
	}
	byLayer := make([][]int, layers)
	for i := range jobs {
		byLayer[layer[i]] = append(byLayer[layer[i]], i)
	}
	row := make([]float64, len(jobs))
	tall := 0
	for l, members := range byLayer {
		if l > 0 {
			key := make(map[int]float64, len(members))
			for _, i := range members {
				sum, n := 0.0, 0
				for _, need := range jobs[i].Needs {
					if k, ok := idx[need]; ok {
						sum += row[k]
						n++
					}
				}
				key[i] = sum / float64(max(n, 1))
			}
			sort.SliceStable(members, func(a, b int) bool { return key[members[a]] < key[members[b]] })
		}
		for r, i := range members {
			row[i] = float64(r)
		}
		tall = max(tall, len(members))
	}
	g := graph{
		Width:  pad*2 + layers*nodeW + max(layers-1, 0)*gapX,
		Height: pad*2 + tall*nodeH + max(tall-1, 0)*gapY,
	}
	pos := make([][2]int, len(jobs))
	for i, j := range jobs {
		x := pad + layer[i]*(nodeW+gapX)
		y := pad + int(row[i])*(nodeH+gapY)
		pos[i] = [2]int{x, y}
		g.Nodes = append(g.Nodes, graphNode{
			Name: j.Name, State: j.State, Label: shorten(j.Name, 22), Href: jobHref(runID, j.Name),
			X: x, Y: y, Layer: layer[i], TextX: x + 10, TextY: y + 17, StateY: y + 32,
		})
	}
	for i, j := range jobs {
		for _, n := range j.Needs {
			k, ok := idx[n]
			if !ok {
				continue
			}
			x1, y1 := pos[k][0]+nodeW, pos[k][1]+nodeH/2
			x2, y2 := pos[i][0], pos[i][1]+nodeH/2
			mx := (x1 + x2) / 2
			g.Edges = append(g.Edges, graphEdge{From: n, To: j.Name,
				Path: fmt.Sprintf("M%d %dC%d %d %d %d %d %d", x1, y1, mx, y1, mx, y2, x2, y2)})
		}
	}
	return g
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func jobHref(runID, job string) string {
	return "/runs/" + url.PathEscape(runID) + "/jobs/" + url.PathEscape(job)
}

// Sizes of the waterfall, in SVG units.
const (
	fallLabel = 200
	fallBar   = 640
	fallRow   = 22
)

// fallBarSeg is one segment of a job's row: a wait in the queue or a run
// of one attempt.
type fallBarSeg struct {
	X, W  int
	Kind  string // "wait" or "run"
	State string
	Title string
}

// fallRowData is one job's row of the waterfall.
type fallRowData struct {
	Name, Href, Note string
	Y, TextY         int
	Critical         bool
	Segs             []fallBarSeg
}

// waterfall is each job's queue wait and run time on one time axis from
// the run's creation, with the critical path (the chain of needs that
// ended last) marked.
type waterfall struct {
	Width, Height int
	Span          string
	Rows          []fallRowData
	Ticks         []fallTick
}

type fallTick struct {
	X     int
	Label string
}

func makeWaterfall(run protocol.Run, now time.Time) waterfall {
	start := run.CreatedAt
	end := start
	if run.FinishedAt != nil {
		end = *run.FinishedAt
	}
	for _, j := range run.Jobs {
		for _, a := range j.Attempts {
			for _, t := range []*time.Time{a.StartedAt, a.FinishedAt} {
				if t != nil && t.After(end) {
					end = *t
				}
			}
			if a.FinishedAt == nil && now.After(end) {
				end = now
			}
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Millisecond
	}
	x := func(t time.Time) int {
		return fallLabel + int(float64(fallBar)*float64(t.Sub(start))/float64(span))
	}
	crit := criticalPath(run)
	w := waterfall{Width: fallLabel + fallBar + 40, Span: fmtDuration(span)}
	for i := 0; i <= 4; i++ {
		w.Ticks = append(w.Ticks, fallTick{X: fallLabel + fallBar*i/4, Label: fmtDuration(span * time.Duration(i) / 4)})
	}
	y := 24
	for _, j := range run.Jobs {
		r := fallRowData{Name: shorten(j.Name, 26), Href: jobHref(run.ID, j.Name), Y: y, TextY: y + 15, Critical: crit[j.Name]}
		if len(j.Attempts) == 0 {
			r.Note = j.State
		}
		for _, a := range j.Attempts {
			began := now
			if a.StartedAt != nil {
				began = *a.StartedAt
			}
			if began.After(a.QueuedAt) {
				r.Segs = append(r.Segs, fallBarSeg{X: x(a.QueuedAt), W: max(x(began)-x(a.QueuedAt), 1), Kind: "wait",
					Title: fmt.Sprintf("attempt %d waited %s in the queue", a.Number, fmtDuration(began.Sub(a.QueuedAt)))})
			}
			if a.StartedAt != nil {
				ended := now
				if a.FinishedAt != nil {
					ended = *a.FinishedAt
				}
				r.Segs = append(r.Segs, fallBarSeg{X: x(*a.StartedAt), W: max(x(ended)-x(*a.StartedAt), 2), Kind: "run", State: a.State,
					Title: fmt.Sprintf("attempt %d ran %s (%s)", a.Number, fmtDuration(ended.Sub(*a.StartedAt)), a.State)})
			}
		}
		w.Rows = append(w.Rows, r)
		y += fallRow
	}
	w.Height = y + pad
	return w
}

// criticalPath is the chain of jobs that decided when the run ended: from
// the job that finished last, back through the need of each that finished
// last.
func criticalPath(run protocol.Run) map[string]bool {
	byName := make(map[string]protocol.Job, len(run.Jobs))
	for _, j := range run.Jobs {
		byName[j.Name] = j
	}
	finished := func(j protocol.Job) time.Time {
		if j.FinishedAt != nil {
			return *j.FinishedAt
		}
		return time.Time{}
	}
	var last *protocol.Job
	for i := range run.Jobs {
		j := &run.Jobs[i]
		if len(j.Attempts) > 0 && j.FinishedAt != nil && (last == nil || finished(*j).After(finished(*last))) {
			last = j
		}
	}
	out := map[string]bool{}
	for last != nil && !out[last.Name] {
		out[last.Name] = true
		var next *protocol.Job
		for _, n := range last.Needs {
			if up, ok := byName[n]; ok && len(up.Attempts) > 0 && (next == nil || finished(up).After(finished(*next))) {
				next = &up
			}
		}
		last = next
	}
	return out
}

// fmtDuration shows a duration to a sensible precision.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
