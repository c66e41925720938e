// Package ecosystem reads a repository's build files to say which of its
// files a unit of code depends on: a Go module (go.mod, with its local
// replace directives) or a JavaScript workspace package (pnpm, npm or yarn
// workspaces, with the workspace packages it depends on). The planner turns
// an inputs entry {go: ./dir} or {workspace: name} into an Expansion.
//
// It works on the files given to it, never on the file system, so that the
// same tree (a commit, or the working tree as the plan read it) always
// expands the same way. Lockfiles are sliced: a package depends on its own
// importer's entries and the entries they resolve to, transitively, not on
// the whole file.
package ecosystem

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// Files are the files of a tree that the expansion may read, by path from
// the top of the repository: every go.mod, go.work, package.json,
// pnpm-workspace.yaml and lockfile the caller has (Wanted says which).
type Files map[string][]byte

// Wanted reports whether Files should hold the file at path p of the
// tree, for expanding Go modules (goMods) or workspace packages
// (workspaces).
func Wanted(p string, goMods, workspaces bool) bool {
	switch path.Base(p) {
	case "go.mod", "go.work":
		return goMods
	case "package.json":
		return workspaces
	}
	switch p {
	case pnpmWorkspaceFile, pnpmLockFile, npmLockFile, yarnLockFile:
		return workspaces
	}
	return false
}

// Unit is a Go module or a workspace package an expansion reached.
type Unit struct {
	// Name is the module path or the package name.
	Name string `json:"name"`
	// Dir is its directory from the top of the repository, "." for the top.
	Dir string `json:"dir"`
}

// Lock is the part of a lockfile an expansion depends on.
type Lock struct {
	// Path is the lockfile's path.
	Path string `json:"path"`
	// Digest is "sha256:" and the hex SHA-256 of the slice's canonical
	// CBOR encoding; "" when Whole is set.
	Digest string `json:"digest,omitempty"`
	// Whole, when the file could not be sliced, says why: the whole file
	// is then an input.
	Whole string `json:"whole,omitempty"`
}

// Expansion is what an inferred inputs entry stands for: the files under
// Include but not under a deeper Exclude, and the lockfile slices.
type Expansion struct {
	// Include are the directories of the units reached, sorted.
	Include []string
	// Exclude are the directories of other units nested in them, sorted:
	// their files belong to those units.
	Exclude []string
	// Files are single files it adds too, sorted: a workspace's
	// definition (go.work and go.work.sum, pnpm-workspace.yaml, the top
	// package.json).
	Files []string
	// Units are the units reached, the one asked for first, then by
	// directory.
	Units []Unit
	// Locks are the lockfile slices, by path.
	Locks []Lock
}

// Repo reads units from a set of files, parsing each file once.
type Repo struct {
	files  Files
	gomods map[string]*goModule // by directory, parsed lazily
	js     *jsWorkspace
	jsErr  error
	jsRead bool
	locks  map[string]readLockfile // by path, read once
}

// readLockfile is a lockfile as readLock read it.
type readLockfile struct {
	lock any
	err  error
}

// New returns a Repo over files, which it does not copy or change.
func New(files Files) *Repo {
	r := &Repo{files: files, gomods: map[string]*goModule{}, locks: map[string]readLockfile{}}
	for p := range files {
		if path.Base(p) == "go.mod" {
			r.gomods[dirOf(p)] = nil
		}
	}
	return r
}

// dirOf is the directory of a path, "." at the top.
func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// join is p under dir, for dir "." too.
func join(dir, p string) string {
	if dir == "." {
		return p
	}
	return dir + "/" + p
}

// under reports whether dir lies strictly below top.
func under(dir, top string) bool {
	if top == "." {
		return dir != "."
	}
	return strings.HasPrefix(dir, top+"/")
}

// nested lists the directories of all, sorted, that lie below one of
// include and are not in it.
func nested(all []string, include []string) []string {
	var out []string
	for _, d := range all {
		if slices.Contains(include, d) {
			continue
		}
		if slices.ContainsFunc(include, func(top string) bool { return under(d, top) }) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// encMode is RFC 8949 core deterministic encoding, as digests use.
var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// sliceDigest hashes the canonical encoding of a lockfile slice.
func sliceDigest(v any) (string, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// lineOf is the line of byte offset off in data, from 1.
func lineOf(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return 1 + strings.Count(string(data[:off]), "\n")
}
