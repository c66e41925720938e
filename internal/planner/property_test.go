package planner_test

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
	"pgregory.net/rapid"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

// modelFile is a file of the model repository.
type modelFile struct {
	content string
	exec    bool
}

// Paths never clash: no file is named like a directory.
var (
	modelDirs  = []string{"", "a/", "b/", "a/c/"}
	modelNames = []string{"x.go", "y.md", "z", ".h", "sp ace"}
	modelGlobs = []string{"a/**", "b/**", "**/*.go", "a/c/z", "*.md", "**/y.md", "a/*", "{a,b}/c/**", "b/x.go", "**/.h", "z"}
)

func drawPath(t *rapid.T, label string) string {
	return rapid.SampledFrom(modelDirs).Draw(t, label+" dir") + rapid.SampledFrom(modelNames).Draw(t, label+" name")
}

func drawContent(t *rapid.T, label string) string {
	return rapid.SampledFrom([]string{"", "1", "2", "3\n"}).Draw(t, label)
}

// drawPipeline makes a random job graph: random input globs (none means the
// whole tree) and random needs on earlier jobs.
func drawPipeline(t *rapid.T) *core.Pipeline {
	n := rapid.IntRange(1, 6).Draw(t, "jobs")
	p := &core.Pipeline{Version: 1}
	for i := range n {
		j := core.JobSpec{Name: fmt.Sprintf("j%d", i), Run: "run", Reuse: true}
		j.Inputs = rapid.SliceOfNDistinct(rapid.SampledFrom(modelGlobs), 0, 3, rapid.ID).Draw(t, j.Name+" inputs")
		for k := range i {
			if rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("%s needs j%d", j.Name, k)) == 0 {
				j.Needs = append(j.Needs, fmt.Sprintf("j%d", k))
			}
		}
		p.Jobs = append(p.Jobs, j)
	}
	return p
}

// edit applies random additions, modifications, deletions, renames and
// mode changes to the model and to the working tree.
func edit(t *rapid.T, r repo, files map[string]modelFile) {
	for i := range rapid.IntRange(1, 4).Draw(t, "edits") {
		paths := slices.Sorted(maps.Keys(files))
		op := rapid.SampledFrom([]string{"add", "modify", "delete", "rename", "chmod"}).Draw(t, fmt.Sprintf("op %d", i))
		if len(paths) == 0 {
			op = "add"
		}
		switch op {
		case "add":
			p := drawPath(t, "add")
			files[p] = modelFile{content: drawContent(t, "content")}
		case "modify": // possibly to the same content: not a change
			p := rapid.SampledFrom(paths).Draw(t, "modify")
			files[p] = modelFile{content: drawContent(t, "content"), exec: files[p].exec}
		case "delete":
			delete(files, rapid.SampledFrom(paths).Draw(t, "delete"))
		case "rename":
			from := rapid.SampledFrom(paths).Draw(t, "rename from")
			to := drawPath(t, "rename to")
			f := files[from]
			delete(files, from)
			files[to] = f
		case "chmod":
			p := rapid.SampledFrom(paths).Draw(t, "chmod")
			f := files[p]
			f.exec = !f.exec
			files[p] = f
		}
	}
	syncTree(r, files)
}

// syncTree makes the working tree hold exactly files.
func syncTree(r repo, files map[string]modelFile) {
	for _, d := range modelDirs {
		for _, n := range modelNames {
			if _, ok := files[d+n]; !ok {
				if err := os.Remove(r.path(d + n)); err != nil && !os.IsNotExist(err) {
					r.t.Fatal(err)
				}
			}
		}
	}
	for p, f := range files {
		perm := os.FileMode(0o644)
		if f.exec {
			perm = 0o755
		}
		r.writeMode(p, f.content, perm)
	}
}

// matched is the model's answer: the files a job's inputs match, by path.
func matched(j core.JobSpec, files map[string]modelFile) map[string]modelFile {
	out := map[string]modelFile{}
	for p, f := range files {
		if len(j.Inputs) == 0 {
			out[p] = f
			continue
		}
		for _, g := range j.Inputs {
			if ok, _ := doublestar.Match(g, p); ok {
				out[p] = f
				break
			}
		}
	}
	return out
}

// TestPropertyReuseIsExact checks, on random repositories, edits and job
// graphs, that a job whose matched files, definition or upstream changed
// gets a new digest and runs, and that every other job keeps its digest
// and is reused. Half the time the edits stay uncommitted and the plan is a
// local run; then committing them must not change any digest.
func TestPropertyReuseIsExact(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		r := newRepo(t)
		before := map[string]modelFile{}
		for i := range rapid.IntRange(1, 8).Draw(rt, "files") {
			before[drawPath(rt, fmt.Sprint("file ", i))] = modelFile{content: drawContent(rt, "content")}
		}
		syncTree(r, before)
		c1 := r.commit("first")
		p1 := drawPipeline(rt)
		s := newStore()
		first := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p1, Trigger: planner.Trigger{Kind: planner.TriggerManual, Head: c1}})
		s.record(first)

		after := maps.Clone(before)
		edit(rt, r, after)
		p2 := p1
		if rapid.IntRange(0, 3).Draw(rt, "edit the definition") == 0 {
			p2 = &core.Pipeline{Version: 1, Jobs: slices.Clone(p1.Jobs)}
			i := rapid.IntRange(0, len(p2.Jobs)-1).Draw(rt, "edited job")
			p2.Jobs[i].Run = "run differently"
		}
		dirty := rapid.Bool().Draw(rt, "leave the edits uncommitted")
		var second *planner.Plan
		if dirty {
			second = makePlan(t, planner.Options{Dir: r.dir, Pipeline: p2, Lookup: s.lookup, Trigger: planner.Trigger{Kind: planner.TriggerLocal, Branch: "main"}})
		} else {
			c2 := r.commit("second")
			second = makePlan(t, planner.Options{Dir: r.dir, Pipeline: p2, Lookup: s.lookup, Trigger: push(c1, c2, "main")})
		}

		changed := map[string]bool{}
		for i, j := range p2.Jobs {
			c := !maps.Equal(matched(j, before), matched(j, after)) || j.Run != p1.Jobs[i].Run
			for _, n := range j.Needs {
				c = c || changed[n]
			}
			changed[j.Name] = c
			old, _ := first.Job(j.Name)
			now, _ := second.Job(j.Name)
			switch {
			case c && (now.Decision != planner.Run || now.Digest == old.Digest):
				rt.Fatalf("job %s changed but is %s with digest %s (was %s)\n%s", j.Name, now.Decision, now.Digest, old.Digest, explain(second))
			case !c && (now.Decision != planner.Reuse || now.Digest != old.Digest):
				rt.Fatalf("job %s did not change but is %s with digest %s (was %s)\n%s", j.Name, now.Decision, now.Digest, old.Digest, explain(second))
			}
		}

		if dirty {
			// The working tree's digests are the digests of its commit.
			c2 := r.commit("second")
			committed := makePlan(t, planner.Options{Dir: r.dir, Pipeline: p2, Trigger: push(c1, c2, "main")})
			for i, j := range committed.Jobs {
				if j.Digest != second.Jobs[i].Digest {
					rt.Fatalf("job %s: digest %s from the working tree, %s from its commit", j.Name, second.Jobs[i].Digest, j.Digest)
				}
			}
		}
	})
}
