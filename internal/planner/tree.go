package planner

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// wholeTree is the glob of a job without inputs: every path.
const wholeTree = "**"

// inputs groups the jobs by their input globs. Jobs with the same inputs
// share an input set, whose files are listed and hashed once.
//
// A set whose inputs are all globs is simple: a path is in it when one of
// its globs matches, which the glob index answers as the tree streams by.
// Any other set (with "!" exclusions or inferred entries) is ordered: the
// last of its entries that matches a path decides, and it is filled from
// the listed tree afterwards, once inferred entries are expanded (see
// ordered.go).
type inputs struct {
	ix *globIndex
	// setsOf lists, per glob of ix, the simple input sets that contain it.
	setsOf [][]int
	// nsets is the number of input sets.
	nsets int
	// jobSet is each job's input set.
	jobSet map[string]int
	// jobGlobs is each simple job's globs in file order (ids in ix); a job
	// without inputs has the single glob wholeTree.
	jobGlobs map[string][]int32
	// noInputs marks the jobs that depend on the whole tree by default.
	noInputs map[string]bool
	// setJobs lists, per input set, its jobs in pipeline order.
	setJobs [][]string
	// ordered holds, per input set, its entries when it is ordered, else nil.
	ordered [][]core.Input
	// rules are the ordered sets' entries made into globs, once the tree is
	// read (expandOrdered); nil before, and when no set is ordered.
	rules *orderedRules
}

func newInputs(p *core.Pipeline) *inputs {
	in := &inputs{jobSet: map[string]int{}, jobGlobs: map[string][]int32{}, noInputs: map[string]bool{}}
	var patterns []string
	globID := map[string]int32{}
	setID := map[string]int{}
	var setGlobs [][]int32
	for _, j := range p.Jobs {
		globs := j.Inputs
		if len(globs) == 0 {
			globs = []string{wholeTree}
			in.noInputs[j.Name] = true
		}
		if slices.ContainsFunc(globs, func(g string) bool { return core.ParseInput(g).Kind != core.InputGlob }) {
			entries := make([]core.Input, len(globs))
			for i, g := range globs {
				entries[i] = core.ParseInput(g)
			}
			// Order matters: the key keeps it.
			key := "\x01" + strings.Join(globs, "\x00")
			set, ok := setID[key]
			if !ok {
				set = len(setGlobs)
				setID[key] = set
				setGlobs = append(setGlobs, nil)
				in.setJobs = append(in.setJobs, nil)
				in.ordered = append(in.ordered, entries)
			}
			in.jobSet[j.Name] = set
			in.setJobs[set] = append(in.setJobs[set], j.Name)
			continue
		}
		var ids []int32
		for _, g := range globs {
			id, ok := globID[g]
			if !ok {
				id = int32(len(patterns))
				globID[g] = id
				patterns = append(patterns, g)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		in.jobGlobs[j.Name] = ids
		key := strings.Join(sortedSet(globs), "\x00")
		set, ok := setID[key]
		if !ok {
			set = len(setGlobs)
			setID[key] = set
			setGlobs = append(setGlobs, ids)
			in.setJobs = append(in.setJobs, nil)
			in.ordered = append(in.ordered, nil)
		}
		in.jobSet[j.Name] = set
		in.setJobs[set] = append(in.setJobs[set], j.Name)
	}
	in.ix = newGlobIndex(patterns)
	in.nsets = len(setGlobs)
	in.setsOf = make([][]int, len(patterns))
	for set, ids := range setGlobs {
		for _, id := range ids {
			in.setsOf[id] = append(in.setsOf[id], set)
		}
	}
	return in
}

// treeFiles are the files at head (with uncommitted changes for a local
// run) and, per input set, the ones its globs match.
type treeFiles struct {
	entries entries
	// sets holds, per input set, indexes into entries sorted by path.
	sets [][]int32
	// hit marks, per glob of the index, whether it matched a file.
	hit []bool
	// walked counts the entries of head's listing, which come first and
	// sorted; the files added in the working tree follow, sorted too.
	walked int32
	// links are the symlinks of the tree; setLinks holds, per input set,
	// the ones its globs match.
	links    []int32
	setLinks [][]int32
	// linkText holds the targets of the working tree's dirty symlinks.
	linkText map[string]string
	// fromDisk marks the paths whose entry is the working tree's file.
	fromDisk map[string]bool
}

// entries holds tree entries in chunks of fixed size, so that adding the
// 100,000th entry does not copy the 99,999 before it.
type entries struct {
	chunks [][]gitx.TreeEntry
	n      int
}

const chunkBits = 12

func (s *entries) add(e gitx.TreeEntry) int32 {
	if s.n>>chunkBits == len(s.chunks) {
		s.chunks = append(s.chunks, make([]gitx.TreeEntry, 0, 1<<chunkBits))
	}
	c := &s.chunks[len(s.chunks)-1]
	*c = append(*c, e)
	s.n++
	return int32(s.n - 1)
}

func (s *entries) at(i int32) *gitx.TreeEntry {
	return &s.chunks[i>>chunkBits][i&(1<<chunkBits-1)]
}

// readTree lists head's tree through git ls-tree (a local run: the index
// its WorkTree read, which holds head's tree but at dirty paths), with dirty
// paths replaced by what the working tree holds, and sorts the files into
// the input sets as they stream by. Paths git does not compare with the
// working tree (gitx.WorkTree.Flagged) keep their listed entry, which the
// snapshot writes.
func readTree(ctx context.Context, dir, head string, dirty []gitx.Change, wt *gitx.WorkTree, in *inputs) (*treeFiles, error) {
	hash := func(ctx context.Context, paths []string) (map[string]string, error) {
		return gitx.HashObjects(ctx, dir, paths)
	}
	walk := func(ctx context.Context, fn func(gitx.TreeEntry) error) error {
		return gitx.WalkTree(ctx, dir, head, fn)
	}
	if wt != nil {
		hash, walk = wt.HashObjects, wt.WalkTree
		dirty = wt.OnDisk()
	}
	overlay, err := readDirty(ctx, dir, dirty, hash)
	if err != nil {
		return nil, err
	}
	t := &treeFiles{sets: make([][]int32, in.nsets), hit: make([]bool, len(in.ix.globs)), setLinks: make([][]int32, in.nsets)}
	m := in.ix.matcher()
	last := make([]int32, in.nsets) // the last entry added to each set, +1
	add := func(e gitx.TreeEntry) {
		i := t.entries.add(e)
		if e.Mode == gitx.ModeSymlink {
			t.links = append(t.links, i)
		}
		m.match(e.Path, func(g int32) {
			t.hit[g] = true
			for _, set := range in.setsOf[g] {
				// A path matched by two globs of a set is in it once.
				if last[set] != i+1 {
					last[set] = i + 1
					t.sets[set] = append(t.sets[set], i)
					if e.Mode == gitx.ModeSymlink {
						t.setLinks[set] = append(t.setLinks[set], i)
					}
				}
			}
		})
	}
	if head != "" || wt != nil {
		err := walk(ctx, func(e gitx.TreeEntry) error {
			if o, ok := overlay[e.Path]; ok {
				o.seen = true
				if o.deleted {
					return nil
				}
				e = o.entry
			}
			add(e)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	t.walked = int32(t.entries.n)
	var added []string
	for p, o := range overlay {
		if !o.deleted {
			if t.fromDisk == nil {
				t.fromDisk = map[string]bool{}
			}
			t.fromDisk[p] = true
		}
		if o.entry.Mode == gitx.ModeSymlink && !o.deleted {
			if t.linkText == nil {
				t.linkText = map[string]string{}
			}
			t.linkText[p] = o.text
		}
		if !o.seen && !o.deleted {
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		return t, nil
	}
	// New files go after the listing: sort them in, for the sets they reach.
	slices.Sort(added)
	for _, p := range added {
		add(overlay[p].entry)
	}
	byPath := func(a, b int32) int { return strings.Compare(t.entries.at(a).Path, t.entries.at(b).Path) }
	for set, files := range t.sets {
		if !slices.IsSortedFunc(files, byPath) {
			slices.SortFunc(t.sets[set], byPath)
		}
	}
	return t, nil
}

// hasher returns the blob ids of files of the working tree (gitx.HashObjects).
type hasher func(ctx context.Context, paths []string) (map[string]string, error)

// dirtyFile is the working tree's version of a dirty path.
type dirtyFile struct {
	entry   gitx.TreeEntry
	deleted bool   // gone, or not a file git would track here
	seen    bool   // met in head's tree
	text    string // a symlink's target, read before it was hashed
}

// readDirty reads the working tree at each dirty path: its mode from the
// file system and its blob id from git hash-object, as `git add` would
// record them. The path is deleted when nothing trackable is there.
func readDirty(ctx context.Context, top string, dirty []gitx.Change, hash hasher) (map[string]*dirtyFile, error) {
	overlay := make(map[string]*dirtyFile, len(dirty))
	var toHash []string
	for _, c := range dirty {
		fi, err := os.Lstat(filepath.Join(top, filepath.FromSlash(c.Path)))
		d := &dirtyFile{entry: gitx.TreeEntry{Path: c.Path, Type: gitx.TypeBlob}}
		overlay[c.Path] = d
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			d.deleted = true
		case err != nil:
			return nil, core.Wrap(core.KindInternal, "read working tree", err)
		case fi.Mode().IsRegular():
			d.entry.Mode = gitx.ModeFile
			if fi.Mode()&0o100 != 0 {
				d.entry.Mode = gitx.ModeExecutable // git looks at the owner's bit only
			}
			toHash = append(toHash, c.Path)
		case fi.Mode()&fs.ModeSymlink != 0:
			d.entry.Mode = gitx.ModeSymlink
			if d.text, err = os.Readlink(filepath.Join(top, filepath.FromSlash(c.Path))); err != nil {
				return nil, core.Wrap(core.KindInternal, "read working tree", err)
			}
			toHash = append(toHash, c.Path)
		default:
			// A directory now stands where a file was (its files are listed
			// on their own), or a special file git cannot track.
			d.deleted = true
		}
	}
	ids, err := hash(ctx, toHash)
	if err != nil {
		return nil, err
	}
	for _, p := range toHash {
		overlay[p].entry.ObjectID = ids[p]
	}
	return overlay, nil
}

// matchChanges lists, per job, the changed paths its inputs match, with
// the first of its globs (in file order) that matches each, and those its
// inputs reach through symlinks, with the links and the glob that matched
// the first.
func (in *inputs) matchChanges(changes []gitx.Change, links *followed) map[string][]FileMatch {
	out := map[string][]FileMatch{}
	m := in.ix.matcher()
	matched, viaMatched := map[int32]bool{}, map[int32]bool{}
	var om *matcher
	var omt *matchState
	if in.rules != nil {
		om, omt = in.rules.ix.matcher(), in.rules.newMatched(in.nsets)
	}
	for _, c := range changes {
		clear(matched)
		m.match(c.Path, func(g int32) { matched[g] = true })
		seen := map[int]bool{}
		for g := range matched {
			for _, set := range in.setsOf[g] {
				if seen[set] {
					continue
				}
				seen[set] = true
				for _, job := range in.setJobs[set] {
					out[job] = append(out[job], in.fileMatch(job, c, matched))
				}
			}
		}
		if om != nil {
			for _, set := range in.rules.match(om, omt, c.Path, nil) {
				if ok, e := in.rules.holds(omt, set); ok {
					seen[set] = true
					for _, job := range in.setJobs[set] {
						fm := newFileMatch(c)
						fm.Glob = in.ordered[set][e].Display()
						out[job] = append(out[job], fm)
					}
				}
			}
			for set, entry := range in.rules.wholeLocks[c.Path] {
				if !seen[set] {
					seen[set] = true
					for _, job := range in.setJobs[set] {
						fm := newFileMatch(c)
						fm.Glob = entry
						out[job] = append(out[job], fm)
					}
				}
			}
		}
		for set, via := range links.reaching(c.Path) {
			if seen[set] {
				continue
			}
			clear(viaMatched)
			m.match(via[0], func(g int32) { viaMatched[g] = true })
			for _, job := range in.setJobs[set] {
				fm := in.fileMatch(job, c, viaMatched)
				if in.ordered[set] != nil {
					fm.Glob = in.orderedGlob(set, via[0])
				}
				fm.Via = via
				out[job] = append(out[job], fm)
			}
		}
	}
	for _, files := range out {
		slices.SortFunc(files, func(a, b FileMatch) int { return strings.Compare(a.Path, b.Path) })
	}
	return out
}

func (in *inputs) fileMatch(job string, c gitx.Change, matched map[int32]bool) FileMatch {
	fm := newFileMatch(c)
	if in.noInputs[job] {
		return fm
	}
	for _, g := range in.jobGlobs[job] {
		if matched[g] {
			fm.Glob = in.ix.globs[g].pattern
			break
		}
	}
	return fm
}
