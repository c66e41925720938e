package planner

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// LinkKind says where following a symlink led, and so what it puts in the
// digest besides its own entry.
type LinkKind string

// The kinds of Link.
const (
	// LinkFile: a file of the repository, whose entry is in the digest.
	LinkFile LinkKind = "file"
	// LinkDirectory: a directory of the repository (or its top), every
	// entry under which is in the digest.
	LinkDirectory LinkKind = "directory"
	// LinkSubmodule: a submodule, or a path inside one; the submodule's
	// entry (its commit) is in the digest.
	LinkSubmodule LinkKind = "submodule"
	// LinkOutside: an absolute target, or one above the top of the
	// repository. Only the link's own entry (its text) counts.
	LinkOutside LinkKind = "outside"
	// LinkDangling: nothing the job could read at the target in the
	// planned tree. Only the link's own entry counts, and the entries of
	// the links on the way.
	LinkDangling LinkKind = "dangling"
)

// maxLinkHops bounds the links followed to resolve one, as Linux does
// (ELOOP after 40): beyond it a resolution that never ends is a cycle.
const maxLinkHops = 40

// maxLinkText is the longest link text a file system takes (PATH_MAX);
// a longer blob of mode 120000 cannot be checked out as a link.
const maxLinkText = 4096

// Link is a symlink among the files of a job's digest, and where following
// it led.
type Link struct {
	// Path is the link's path from the top of the repository.
	Path string `json:"path"`
	// Text is the link's target as it is stored: the content of its blob.
	Text string `json:"text"`
	// Target is where the link leads in the repository, every link on the
	// way followed: a file, a directory ("." for the top), a submodule, or
	// for a dangling link the first path that is missing (or is a file
	// where a directory was needed). "" when the link leads outside.
	Target string `json:"target,omitempty"`
	// Through are the other links followed on the way, in order.
	Through []string `json:"through,omitempty"`
	Kind    LinkKind `json:"kind"`
}

// resolved is where one symlink of the tree leads.
type resolved struct {
	kind    LinkKind
	target  string
	entry   int32   // the file or submodule reached, else -1
	through []int32 // the other links followed, in order
	err     error   // a cycle
}

// linkResolver follows the symlinks of a planned tree, each once.
type linkResolver struct {
	t     *treeFiles
	texts map[string]string // committed link texts by blob id
	memo  map[int32]*resolved
}

// followed is what following the symlinks of every input set gave.
type followed struct {
	// links holds, per input set, the links it followed, by path.
	links [][]Link
	// at holds, by path, the files and links that input sets reach
	// through links (and the targets of dangling links); above holds the
	// same by each of their directories.
	at, above map[string][]reach
}

// reach is a path an input set depends on through links.
type reach struct {
	set int
	// via are the links followed to get there: the first is one the set's
	// globs match, the last leads to the path.
	via []string
	// under: the path is a directory or a dangling target, so the paths
	// under it count too.
	under bool
}

// followLinks adds to each input set the entries its symlinks lead to
// inside the repository, recursively, keeping every set sorted by path. It
// reads the committed link texts with one git process, and only when a set
// has a link. A link that leads to itself again is a KindInvalid error
// naming the links and a job of the set.
func followLinks(ctx context.Context, dir string, t *treeFiles, in *inputs) (*followed, error) {
	f := &followed{links: make([][]Link, in.nsets)}
	if !slices.ContainsFunc(t.setLinks, func(l []int32) bool { return len(l) > 0 }) {
		return f, nil
	}
	r := &linkResolver{t: t, memo: map[int32]*resolved{}}
	if err := r.readTexts(ctx, dir); err != nil {
		return nil, err
	}
	f.at, f.above = map[string][]reach{}, map[string][]reach{}
	mark := make([]int32, t.entries.n) // set+1 for the entries in the set being followed
	for set, links := range t.setLinks {
		if len(links) == 0 {
			continue
		}
		if err := f.followSet(r, set, mark); err != nil {
			return nil, &core.Error{Kind: core.KindInvalid, Op: "plan", Msg: "job " + in.setJobs[set][0], Err: err}
		}
	}
	return f, nil
}

// followSet follows the links of one input set, breadth first so that a
// path is reached through the fewest links, and adds what they reach to it.
func (f *followed) followSet(r *linkResolver, set int, mark []int32) error {
	t := r.t
	stamp := int32(set + 1)
	for _, i := range t.sets[set] {
		mark[i] = stamp
	}
	type step struct {
		link int32
		via  []string // the links before it
	}
	var queue []step
	for _, i := range t.setLinks[set] {
		queue = append(queue, step{link: i})
	}
	slices.SortFunc(queue, func(a, b step) int { return strings.Compare(t.entries.at(a.link).Path, t.entries.at(b.link).Path) })
	var added []int32
	add := func(i int32, via []string) {
		if mark[i] == stamp {
			return
		}
		mark[i] = stamp
		added = append(added, i)
		if t.entries.at(i).Mode == gitx.ModeSymlink {
			queue = append(queue, step{link: i, via: via})
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		res := r.resolve(s.link)
		if res.err != nil {
			return res.err
		}
		e := t.entries.at(s.link)
		text, _ := r.text(s.link)
		l := Link{Path: e.Path, Text: text, Target: res.target, Kind: res.kind}
		via := append(slices.Clip(s.via), e.Path)
		for _, c := range res.through {
			p := t.entries.at(c).Path
			l.Through = append(l.Through, p)
			f.index(p, reach{set: set, via: via})
			add(c, via)
			via = append(slices.Clip(via), p)
		}
		f.links[set] = append(f.links[set], l)
		switch res.kind {
		case LinkFile, LinkSubmodule:
			f.index(res.target, reach{set: set, via: via})
			add(res.entry, via)
		case LinkDangling:
			if res.target != "" {
				f.index(res.target, reach{set: set, via: via, under: true})
			}
		case LinkDirectory:
			f.index(res.target, reach{set: set, via: via, under: true})
			t.under(res.target, func(i int32) { add(i, via) })
		}
	}
	slices.SortFunc(f.links[set], func(a, b Link) int { return strings.Compare(a.Path, b.Path) })
	if len(added) == 0 {
		return nil
	}
	byPath := func(a, b int32) int { return strings.Compare(t.entries.at(a).Path, t.entries.at(b).Path) }
	slices.SortFunc(added, byPath)
	files := t.sets[set]
	merged := make([]int32, 0, len(files)+len(added))
	for len(files) > 0 && len(added) > 0 {
		if byPath(files[0], added[0]) < 0 {
			merged, files = append(merged, files[0]), files[1:]
		} else {
			merged, added = append(merged, added[0]), added[1:]
		}
	}
	t.sets[set] = append(append(merged, files...), added...)
	return nil
}

// index records that a set reaches p (the top of the repository is ".").
func (f *followed) index(p string, r reach) {
	f.at[p] = append(f.at[p], r)
	for p != "." {
		p = parentDir(p)
		f.above[p] = append(f.above[p], r)
	}
}

// reaching returns, per input set that reaches changed path p through
// links, the links of the shortest way: p itself or a directory above it
// when that is a directory or a dangling target, or a path below p (p was
// a file or link where a directory is now, or the other way round).
func (f *followed) reaching(p string) map[int][]string {
	if len(f.at) == 0 {
		return nil
	}
	var out map[int][]string
	take := func(rs []reach, onlyUnder bool) {
		for _, r := range rs {
			if onlyUnder && !r.under {
				continue
			}
			if v, ok := out[r.set]; !ok || len(r.via) < len(v) {
				if out == nil {
					out = map[int][]string{}
				}
				out[r.set] = r.via
			}
		}
	}
	take(f.at[p], false)
	take(f.above[p], false)
	for d := p; d != "."; {
		d = parentDir(d)
		take(f.at[d], true)
	}
	return out
}

// parentDir is the directory of p, "." at the top.
func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// readTexts reads the text of every committed symlink of the tree with one
// git cat-file, and checks the working tree's against the ids hashed.
func (r *linkResolver) readTexts(ctx context.Context, dir string) error {
	var ids []string
	for _, i := range r.t.links {
		e := r.t.entries.at(i)
		if text, dirty := r.t.linkText[e.Path]; dirty {
			// The text was read before git hashed the link: another text
			// means the link changed while the plan read it.
			if blobID(e.ObjectID, text) != e.ObjectID {
				return core.E(core.KindConflict, "plan", "symlink %s changed while the plan read it", strconv.Quote(e.Path))
			}
			continue
		}
		ids = append(ids, e.ObjectID)
	}
	blobs, err := gitx.ReadBlobs(ctx, dir, ids, maxLinkText)
	if err != nil {
		return err
	}
	r.texts = make(map[string]string, len(blobs))
	for id, b := range blobs {
		r.texts[id] = string(b)
	}
	return nil
}

// blobID is git's id of a blob holding data, in the object format of like,
// an id of the same repository (40 hex digits for SHA-1, 64 for SHA-256).
func blobID(like, data string) string {
	var h hash.Hash = sha1.New()
	if len(like) == 2*sha256.Size {
		h = sha256.New()
	}
	h.Write([]byte("blob " + strconv.Itoa(len(data)) + "\x00" + data))
	return hex.EncodeToString(h.Sum(nil))
}

// text is the link text of symlink entry i, and false when it cannot be a
// link's: empty, too long, or holding a NUL byte.
func (r *linkResolver) text(i int32) (string, bool) {
	e := r.t.entries.at(i)
	s, ok := r.t.linkText[e.Path]
	if !ok {
		s, ok = r.texts[e.ObjectID]
	}
	return s, ok && s != "" && !strings.ContainsRune(s, 0)
}

func (r *linkResolver) resolve(i int32) *resolved {
	res, ok := r.memo[i]
	if !ok {
		res = r.walk(i)
		r.memo[i] = res
	}
	return res
}

// walk resolves symlink entry start as the kernel would in a checkout of
// the tree, one name at a time: ".." goes up from the directory reached so
// far (which has no link in it), and a link met on the way is replaced by
// its text, relative to its own directory.
func (r *linkResolver) walk(start int32) *resolved {
	t := r.t
	res := &resolved{entry: -1}
	startPath := t.entries.at(start).Path
	var dir []string // the directory reached: real directories only
	if d := parentDir(startPath); d != "." {
		dir = strings.Split(d, "/")
	}
	text, ok := r.text(start)
	if !ok {
		res.kind = LinkDangling // no checkout can make this link
		return res
	}
	if strings.HasPrefix(text, "/") {
		res.kind = LinkOutside
		return res
	}
	todo := strings.Split(text, "/")
	// A link met twice with the same names left to resolve after it loops
	// forever.
	type state struct {
		link int32
		rest string
	}
	seen := map[state]bool{{start, ""}: true}
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(dir) == 0 {
				res.kind = LinkOutside
				return res
			}
			dir = dir[:len(dir)-1]
			continue
		}
		p := strings.Join(append(slices.Clip(dir), name), "/")
		i, found := t.find(p)
		if !found {
			if !t.isDir(p) {
				res.kind, res.target = LinkDangling, p
				return res
			}
			dir = append(dir, name)
			continue
		}
		e := t.entries.at(i)
		switch {
		case e.Mode == gitx.ModeGitlink:
			// What the submodule holds is its commit's business.
			res.kind, res.target, res.entry = LinkSubmodule, p, i
			return res
		case e.Mode == gitx.ModeSymlink:
			res.through = append(res.through, i)
			s := state{i, strings.Join(todo, "/")}
			if seen[s] || len(res.through) >= maxLinkHops {
				res.err = r.cycle(start, res.through, seen[s])
				return res
			}
			seen[s] = true
			next, ok := r.text(i)
			switch {
			case !ok:
				res.kind, res.target = LinkDangling, p
				return res
			case strings.HasPrefix(next, "/"):
				res.kind = LinkOutside
				return res
			}
			todo = append(strings.Split(next, "/"), todo...)
		case len(todo) > 0:
			// A file where a directory is needed ("file/", "file/x").
			res.kind, res.target = LinkDangling, p
			return res
		default:
			res.kind, res.target, res.entry = LinkFile, p, i
			return res
		}
	}
	res.kind, res.target = LinkDirectory, strings.Join(dir, "/")
	if res.target == "" {
		res.target = "."
	}
	return res
}

// cycle names the links of a resolution that never ends.
func (r *linkResolver) cycle(start int32, through []int32, repeated bool) error {
	names := []string{r.t.entries.at(start).Path}
	for _, i := range through {
		names = append(names, r.t.entries.at(i).Path)
	}
	if repeated {
		return core.E(core.KindInvalid, "", "symlink %s is on a cycle of links: %s",
			names[0], strings.Join(names, " → "))
	}
	return core.E(core.KindInvalid, "", "symlink %s: more than %d links on the way, a cycle: %s → …",
		names[0], maxLinkHops, strings.Join(names[:8], " → "))
}

// find returns the entry at path p.
func (t *treeFiles) find(p string) (int32, bool) {
	for _, r := range t.sortedRuns() {
		i := t.lowerBound(r[0], r[1], p)
		if i < r[1] && t.entries.at(i).Path == p {
			return i, true
		}
	}
	return 0, false
}

// isDir reports whether some entry lies under directory p.
func (t *treeFiles) isDir(p string) bool {
	prefix := p + "/"
	for _, r := range t.sortedRuns() {
		i := t.lowerBound(r[0], r[1], prefix)
		if i < r[1] && strings.HasPrefix(t.entries.at(i).Path, prefix) {
			return true
		}
	}
	return false
}

// under calls fn with every entry under directory p ("." for all).
func (t *treeFiles) under(p string, fn func(int32)) {
	prefix := p + "/"
	if p == "." {
		prefix = ""
	}
	for _, r := range t.sortedRuns() {
		for i := t.lowerBound(r[0], r[1], prefix); i < r[1] && strings.HasPrefix(t.entries.at(i).Path, prefix); i++ {
			fn(i)
		}
	}
}

// sortedRuns are the ranges of entries sorted by path: head's listing,
// then the files added in the working tree.
func (t *treeFiles) sortedRuns() [2][2]int32 {
	return [2][2]int32{{0, t.walked}, {t.walked, int32(t.entries.n)}}
}

// lowerBound is the first entry of [lo, hi) whose path is not before p.
func (t *treeFiles) lowerBound(lo, hi int32, p string) int32 {
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1)
		if t.entries.at(mid).Path < p {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// jobLinks are the links of a set for a job's plan: the first
// MaxListedFiles, and how many more.
func (f *followed) jobLinks(set int) ([]Link, int) {
	l := f.links[set]
	n := min(len(l), MaxListedFiles)
	return l[:n:n], len(l) - n
}
