package planner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/ecosystem"
	"github.com/deltaci/deltaci/internal/gitx"
)

// maxBuildFile bounds the size of a go.mod, package.json or lockfile the
// plan reads to expand inferred inputs.
const maxBuildFile = 64 << 20

// orderedRules are the entries of the ordered input sets made into globs
// of one index: a glob entry is one rule, an inferred entry one rule per
// directory of its expansion, deepest last, so that the innermost
// directory around a path decides whether the entry holds it.
type orderedRules struct {
	ix *globIndex
	// setsOf lists, per glob of ix, the ordered sets that use it.
	setsOf [][]int
	// groups holds, per set, one group per entry, in order (nil for a
	// simple set).
	groups [][]group
	// inferred holds, per set, the expansions of its inferred entries.
	inferred [][]Inferred
	// locks holds, per set, the lockfile parts in its digest, by path.
	locks [][]lockPart
	// hit marks, per glob of ix, whether it matched a file.
	hit []bool
	// globID is the id in ix of each pattern.
	globID map[string]int32
	// wholeLocks holds, by path, the lockfiles that count whole: per set,
	// the inferred entry that reads it.
	wholeLocks map[string]map[int]string
	// repo expanded the inferred entries; nil when there are none.
	repo *ecosystem.Repo
}

// group is one entry of an ordered set: it holds a path when its last
// rule that matches the path includes it.
type group struct {
	exclude bool
	rules   []rule
}

type rule struct {
	glob    int32
	include bool
}

// lockPart is one entry of a digest's "l" array: a lockfile and the
// digest of the slice of it taken, or its blob id when it is whole.
type lockPart struct {
	_    struct{} `cbor:",toarray"`
	Path []byte
	ID   string
}

// Inferred is what an inferred inputs entry of a job expanded to.
type Inferred struct {
	// Input is the entry as written: {go: ./dir} or {workspace: name}.
	Input string `json:"input"`
	// Units are the Go modules or workspace packages it reached, the one
	// named first.
	Units []ecosystem.Unit `json:"units"`
	// Include are the directories whose files it adds, and Exclude those
	// of other modules or packages nested in them, whose files it does not.
	Include []string `json:"include"`
	Exclude []string `json:"exclude,omitempty"`
	// Files are single files it adds: a workspace's definition files.
	Files []string `json:"files,omitempty"`
	// Locks are the lockfiles sliced for it.
	Locks []ecosystem.Lock `json:"locks,omitempty"`
}

// expandOrdered expands the inferred entries of the ordered sets from the
// build files of t, makes every entry rules, and fills the sets from t's
// entries. Errors name a job of the set: an inferred entry that cannot be
// expanded is KindInvalid.
func expandOrdered(ctx context.Context, dir string, t *treeFiles, in *inputs) error {
	if !slices.ContainsFunc(in.ordered, func(e []core.Input) bool { return e != nil }) {
		return nil
	}
	var repo *ecosystem.Repo
	uses := func(k core.InputKind) bool {
		return slices.ContainsFunc(in.ordered, func(es []core.Input) bool {
			return slices.ContainsFunc(es, func(e core.Input) bool { return e.Kind == k })
		})
	}
	if goMods, workspaces := uses(core.InputGo), uses(core.InputWorkspace); goMods || workspaces {
		files, err := readBuildFiles(ctx, dir, t, goMods, workspaces)
		if err != nil {
			return err
		}
		repo = ecosystem.New(files)
	}
	memo := map[core.Input]ecosystem.Expansion{}
	expand := func(set int, e core.Input) (ecosystem.Expansion, error) {
		x, ok := memo[e]
		if ok {
			return x, nil
		}
		var err error
		if e.Kind == core.InputGo {
			x, err = repo.Go(e.Value)
		} else {
			x, err = repo.Workspace(e.Value)
		}
		if err != nil {
			return x, core.E(core.KindInvalid, "plan", "job %s: inputs %s: %v", in.setJobs[set][0], e.Display(), err)
		}
		memo[e] = x
		return x, nil
	}
	blobID := func(p string) string {
		if i, ok := t.find(p); ok {
			return t.entries.at(i).ObjectID
		}
		return ""
	}
	r, err := buildRules(in, expand, blobID)
	if err != nil {
		return err
	}
	r.repo = repo
	in.rules = r
	r.fill(t)
	return nil
}

// buildRules makes the entries of in's ordered sets rules, with expand
// giving what an inferred entry stands for and blobID the id of a lockfile
// that cannot be sliced.
func buildRules(in *inputs, expand func(set int, e core.Input) (ecosystem.Expansion, error), blobID func(path string) string) (*orderedRules, error) {
	r := &orderedRules{groups: make([][]group, in.nsets), inferred: make([][]Inferred, in.nsets), locks: make([][]lockPart, in.nsets),
		wholeLocks: map[string]map[int]string{}}
	var patterns []string
	globID := map[string]int32{}
	id := func(p string) int32 {
		g, ok := globID[p]
		if !ok {
			g = int32(len(patterns))
			globID[p] = g
			patterns = append(patterns, p)
		}
		return g
	}
	for set, entries := range in.ordered {
		for _, e := range entries {
			if !e.Inferred() {
				r.groups[set] = append(r.groups[set], group{exclude: e.Kind == core.InputExclude, rules: []rule{{id(e.Value), true}}})
				continue
			}
			x, err := expand(set, e)
			if err != nil {
				return nil, err
			}
			var dirs []rule
			for _, d := range x.Include {
				dirs = append(dirs, rule{id(dirGlob(d)), true})
			}
			for _, d := range x.Exclude {
				dirs = append(dirs, rule{id(dirGlob(d)), false})
			}
			for _, f := range x.Files {
				dirs = append(dirs, rule{id(escapeGlob(f)), true})
			}
			slices.SortStableFunc(dirs, func(a, b rule) int {
				return strings.Count(patterns[a.glob], "/") - strings.Count(patterns[b.glob], "/")
			})
			r.groups[set] = append(r.groups[set], group{rules: dirs})
			r.inferred[set] = append(r.inferred[set], Inferred{Input: e.Display(), Units: x.Units, Include: x.Include, Exclude: x.Exclude, Files: x.Files, Locks: x.Locks})
			for _, l := range x.Locks {
				part := lockPart{Path: []byte(l.Path), ID: l.Digest}
				if l.Whole != "" {
					part.ID = blobID(l.Path)
					if r.wholeLocks[l.Path] == nil {
						r.wholeLocks[l.Path] = map[int]string{}
					}
					if _, ok := r.wholeLocks[l.Path][set]; !ok {
						r.wholeLocks[l.Path][set] = e.Display()
					}
				}
				if !slices.ContainsFunc(r.locks[set], func(p lockPart) bool { return string(p.Path) == l.Path && p.ID == part.ID }) {
					r.locks[set] = append(r.locks[set], part)
				}
			}
		}
		slices.SortFunc(r.locks[set], func(a, b lockPart) int {
			return cmpStrings(string(a.Path), string(b.Path), a.ID, b.ID)
		})
	}
	r.ix, r.globID = newGlobIndex(patterns), globID
	r.hit = make([]bool, len(patterns))
	r.setsOf = make([][]int, len(patterns))
	for set, groups := range r.groups {
		for _, g := range groups {
			for _, ru := range g.rules {
				if !slices.Contains(r.setsOf[ru.glob], set) {
					r.setsOf[ru.glob] = append(r.setsOf[ru.glob], set)
				}
			}
		}
	}
	return r, nil
}

func cmpStrings(a1, b1, a2, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}

// dirGlob is the glob of every path under directory d ("." for the top).
func dirGlob(d string) string {
	if d == "." {
		return wholeTree
	}
	return escapeGlob(d) + "/**"
}

// escapeGlob is the glob that matches path p alone.
func escapeGlob(p string) string {
	var b strings.Builder
	for _, c := range []byte(p) {
		if strings.IndexByte(metaChars, c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// matchState records which globs of the index matched the current path.
type matchState struct {
	stamp []int32
	cur   int32
	sets  []int
	seen  []int32
}

func (r *orderedRules) newMatched(nsets int) *matchState {
	return &matchState{stamp: make([]int32, len(r.ix.globs)), seen: make([]int32, nsets)}
}

// match matches path p and returns the sets a glob of which matched,
// marking in hit (unless nil) the globs that matched.
func (r *orderedRules) match(m *matcher, mt *matchState, p string, hit []bool) []int {
	mt.cur++
	mt.sets = mt.sets[:0]
	m.match(p, func(g int32) {
		mt.stamp[g] = mt.cur
		if hit != nil {
			hit[g] = true
		}
		for _, set := range r.setsOf[g] {
			if mt.seen[set] != mt.cur {
				mt.seen[set] = mt.cur
				mt.sets = append(mt.sets, set)
			}
		}
	})
	return mt.sets
}

// holds reports whether set holds the path last matched, and the index of
// the entry that decided.
func (r *orderedRules) holds(mt *matchState, set int) (bool, int) {
	groups := r.groups[set]
	for e := len(groups) - 1; e >= 0; e-- {
		g := &groups[e]
		for i := len(g.rules) - 1; i >= 0; i-- {
			ru := g.rules[i]
			if mt.stamp[ru.glob] != mt.cur {
				continue
			}
			if ru.include {
				return !g.exclude, e
			}
			break // the innermost rule excludes: the entry does not hold it
		}
	}
	return false, -1
}

// fill adds to each ordered set the entries of t it holds, keeping the
// sets sorted by path.
func (r *orderedRules) fill(t *treeFiles) {
	m := r.ix.matcher()
	mt := r.newMatched(len(r.groups))
	for i := range int32(t.entries.n) {
		e := t.entries.at(i)
		for _, set := range r.match(m, mt, e.Path, r.hit) {
			if ok, _ := r.holds(mt, set); ok {
				t.sets[set] = append(t.sets[set], i)
				if e.Mode == gitx.ModeSymlink {
					t.setLinks[set] = append(t.setLinks[set], i)
				}
			}
		}
	}
	if t.walked == int32(t.entries.n) {
		return
	}
	byPath := func(a, b int32) int { return strings.Compare(t.entries.at(a).Path, t.entries.at(b).Path) }
	for set := range r.groups {
		if r.groups[set] != nil && !slices.IsSortedFunc(t.sets[set], byPath) {
			slices.SortFunc(t.sets[set], byPath)
		}
	}
}

// readBuildFiles reads the files of t that inference may need
// (ecosystem.Wanted): committed ones with one git cat-file, the working
// tree's dirty ones from disk.
func readBuildFiles(ctx context.Context, dir string, t *treeFiles, goMods, workspaces bool) (ecosystem.Files, error) {
	files := ecosystem.Files{}
	byID := map[string][]string{}
	var ids []string
	for i := range int32(t.entries.n) {
		e := t.entries.at(i)
		if e.Mode != gitx.ModeFile && e.Mode != gitx.ModeExecutable || !ecosystem.Wanted(e.Path, goMods, workspaces) {
			continue
		}
		if t.fromDisk[e.Path] {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Path)))
			if err != nil {
				return nil, core.Wrap(core.KindInternal, "read working tree", err)
			}
			files[e.Path] = b
			continue
		}
		byID[e.ObjectID] = append(byID[e.ObjectID], e.Path)
		ids = append(ids, e.ObjectID)
	}
	blobs, err := gitx.ReadBlobs(ctx, dir, ids, maxBuildFile)
	if err != nil {
		return nil, err
	}
	for id, paths := range byID {
		b, ok := blobs[id]
		if !ok {
			return nil, core.E(core.KindInvalid, "plan", "%s is larger than %d MiB", paths[0], maxBuildFile>>20)
		}
		for _, p := range paths {
			files[p] = b
		}
	}
	return files, nil
}

// orderedGlob is the entry of ordered set that holds path p, as written;
// "" when none does.
func (in *inputs) orderedGlob(set int, p string) string {
	r := in.rules
	mt := r.newMatched(in.nsets)
	r.match(r.ix.matcher(), mt, p, nil)
	if ok, e := r.holds(mt, set); ok {
		return in.ordered[set][e].Display()
	}
	return ""
}

// inferred is what the job's inferred entries expanded to.
func (in *inputs) inferred(job string) []Inferred {
	if in.rules == nil {
		return nil
	}
	return in.rules.inferred[in.jobSet[job]]
}

// lockChanges adds to matches, for the jobs whose inferred entries slice a
// lockfile that changed since the base, that lockfile, when the slice of
// the base's version (for the same packages) differs from head's. A
// lockfile new since the base counts as changed.
func (in *inputs) lockChanges(ctx context.Context, dir string, base Base, changes []gitx.Change, matches map[string][]FileMatch) error {
	r := in.rules
	if r == nil || r.repo == nil || base.None() {
		return nil
	}
	for _, c := range changes {
		var old []byte
		loaded, missing := false, false
		for set, entries := range in.ordered {
			var inferred []core.Input
			for _, e := range entries {
				if e.Inferred() {
					inferred = append(inferred, e)
				}
			}
			for i, e := range inferred {
				x := r.inferred[set][i]
				li := slices.IndexFunc(x.Locks, func(l ecosystem.Lock) bool { return l.Path == c.Path && l.Whole == "" })
				if e.Kind != core.InputWorkspace || li < 0 {
					continue
				}
				if !loaded {
					var err error
					old, err = gitx.FileAt(ctx, dir, base.Commit, c.Path, maxBuildFile)
					switch {
					case core.KindOf(err) == core.KindNotFound:
						missing = true
					case err != nil:
						return err
					}
					loaded = true
				}
				changed := missing
				if !changed {
					l, err := r.repo.LockAt(c.Path, old, e.Value)
					changed = err != nil || l.Digest != x.Locks[li].Digest
				}
				if !changed {
					continue
				}
				for _, job := range in.setJobs[set] {
					if slices.ContainsFunc(matches[job], func(f FileMatch) bool { return f.Path == c.Path }) {
						continue // a glob of the job matches the whole file too
					}
					fm := newFileMatch(c)
					fm.Glob = e.Display()
					matches[job] = append(matches[job], fm)
					slices.SortFunc(matches[job], func(a, b FileMatch) int { return strings.Compare(a.Path, b.Path) })
				}
				break
			}
		}
	}
	return nil
}
