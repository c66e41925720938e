package ecosystem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// The files of a JavaScript workspace, at the top of the repository.
const (
	pnpmWorkspaceFile = "pnpm-workspace.yaml"
	rootPackageFile   = "package.json"
	pnpmLockFile      = "pnpm-lock.yaml"
	npmLockFile       = "package-lock.json"
	yarnLockFile      = "yarn.lock"
)

// jsPackage is one workspace package.
type jsPackage struct {
	name string
	dir  string
	// deps are the names of its dependencies of every kind, with the
	// range each asks for.
	deps map[string]string
}

// jsWorkspace is the workspace of the repository: its packages.
type jsWorkspace struct {
	// from says where the package globs were read: pnpm-workspace.yaml or
	// package.json.
	from   string
	byName map[string]*jsPackage
	// root is the package at the top of the repository, nil without a
	// package.json there.
	root *jsPackage
	dirs []string // every package's directory, sorted
}

// packageJSON is what a package.json says that matters here.
type packageJSON struct {
	Name                 string            `json:"name"`
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
	Workspaces           json.RawMessage   `json:"workspaces"`
}

// parsePackageJSON reads a package.json; an error names the file and line.
func parsePackageJSON(name string, data []byte) (*packageJSON, error) {
	var pj packageJSON
	if err := json.Unmarshal(data, &pj); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%s:%d: %v", name, lineOf(data, se.Offset), err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s:%d: %s must be %s, not a JSON %s", name, lineOf(data, te.Offset), te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return &pj, nil
}

// workspaceGlobs reads the package globs of the workspace: the packages
// list of pnpm-workspace.yaml, else the workspaces of the top package.json
// (a list, or yarn's {packages: [...]}).
func workspaceGlobs(files Files) (from string, globs []string, err error) {
	if data, ok := files[pnpmWorkspaceFile]; ok {
		globs, err := pnpmWorkspaceGlobs(data)
		return pnpmWorkspaceFile, globs, err
	}
	data, ok := files[rootPackageFile]
	if !ok {
		return "", nil, errors.New("no JavaScript workspace: neither pnpm-workspace.yaml nor package.json at the top of the repository")
	}
	pj, err := parsePackageJSON(rootPackageFile, data)
	if err != nil {
		return "", nil, err
	}
	ws := bytes.TrimSpace(pj.Workspaces)
	if len(ws) == 0 || string(ws) == "null" {
		return "", nil, errors.New("no JavaScript workspace: package.json at the top of the repository has no workspaces")
	}
	if err := json.Unmarshal(ws, &globs); err != nil {
		var obj struct {
			Packages []string `json:"packages"`
		}
		if err := json.Unmarshal(ws, &obj); err != nil {
			return "", nil, fmt.Errorf("%s: workspaces must be a list of globs or {\"packages\": [...]}", rootPackageFile)
		}
		globs = obj.Packages
	}
	return rootPackageFile, globs, nil
}

// pnpmWorkspaceGlobs reads the packages list of a pnpm-workspace.yaml,
// written as a block ("- glob" lines) or a flow ("[a, b]") sequence.
func pnpmWorkspaceGlobs(data []byte) ([]string, error) {
	d, err := readBlockYAML(pnpmWorkspaceFile, data)
	if err != nil {
		return nil, err
	}
	n := d.root.child("packages")
	if n == nil {
		return nil, nil
	}
	var globs []string
	if v := n.value; v != "" {
		if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
			return nil, fmt.Errorf("%s:%d: packages must be a list of globs", pnpmWorkspaceFile, n.line)
		}
		for body := strings.TrimSpace(v[1 : len(v)-1]); body != ""; {
			var item string
			item, body = cutFlowItem(body)
			g, err := flowScalar(strings.TrimSpace(item))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", pnpmWorkspaceFile, n.line, err)
			}
			globs = append(globs, g)
		}
		return globs, nil
	}
	for _, c := range n.children {
		if c.key != "-" {
			return nil, fmt.Errorf("%s:%d: packages must be a list of globs", pnpmWorkspaceFile, c.line)
		}
		g, err := flowScalar(c.value)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", pnpmWorkspaceFile, c.line, err)
		}
		globs = append(globs, g)
	}
	return globs, nil
}

// flowScalar unquotes a scalar that may be quoted.
func flowScalar(s string) (string, error) {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		if closingQuoteOf(s) != len(s)-1 {
			return "", fmt.Errorf("bad quoted string %.60s", s)
		}
		return unquoteYAML(s)
	}
	return s, nil
}

// workspace discovers the workspace packages: the directories that the
// globs match (those starting with "!" exclude) and that hold a
// package.json, and the top of the repository. Names must be distinct.
func (r *Repo) workspace() (*jsWorkspace, error) {
	if r.jsRead {
		return r.js, r.jsErr
	}
	r.jsRead = true
	r.js, r.jsErr = discover(r.files)
	return r.js, r.jsErr
}

func discover(files Files) (*jsWorkspace, error) {
	from, globs, err := workspaceGlobs(files)
	if err != nil {
		return nil, err
	}
	var include, exclude []string
	for _, g := range globs {
		neg := strings.HasPrefix(g, "!")
		g = strings.TrimPrefix(g, "!")
		g = strings.TrimSuffix(strings.TrimPrefix(g, "./"), "/")
		if g == "" || !doublestar.ValidatePattern(g) {
			return nil, fmt.Errorf("%s: bad workspace glob %q", from, g)
		}
		if neg {
			exclude = append(exclude, g)
		} else {
			include = append(include, g)
		}
	}
	w := &jsWorkspace{from: from, byName: map[string]*jsPackage{}}
	var paths []string
	for p := range files {
		if path.Base(p) == rootPackageFile {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		dir := dirOf(p)
		if dir != "." && (!matchAny(include, dir) || matchAny(exclude, dir) || inNodeModules(dir)) {
			continue
		}
		pj, err := parsePackageJSON(p, files[p])
		if err != nil {
			return nil, err
		}
		if pj.Name == "" {
			if dir == "." {
				pj.Name = "" // a private top needs no name; it cannot be asked for
			} else {
				return nil, fmt.Errorf("%s: a workspace package needs a name", p)
			}
		}
		pkg := &jsPackage{name: pj.Name, dir: dir, deps: map[string]string{}}
		for _, m := range []map[string]string{pj.PeerDependencies, pj.OptionalDependencies, pj.DevDependencies, pj.Dependencies} {
			for k, v := range m {
				pkg.deps[k] = v
			}
		}
		w.dirs = append(w.dirs, dir)
		if dir == "." {
			w.root = pkg
		}
		if pkg.name == "" {
			continue
		}
		if other, dup := w.byName[pkg.name]; dup {
			return nil, fmt.Errorf("workspace packages %s and %s are both named %q", join(other.dir, rootPackageFile), p, pkg.name)
		}
		w.byName[pkg.name] = pkg
	}
	return w, nil
}

func matchAny(globs []string, dir string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, dir); ok {
			return true
		}
	}
	return false
}

func inNodeModules(dir string) bool {
	return slices.Contains(strings.Split(dir, "/"), "node_modules")
}

// Workspace expands {workspace: name}: the workspace package of that name
// and the workspace packages it depends on (any kind of dependency whose
// name is a workspace package's), transitively. Each package's files are
// those under its directory but not under a nested package's. The lockfile
// at the top (pnpm-lock.yaml, package-lock.json or yarn.lock) is sliced to
// the entries of these packages and what they resolve to.
//
// Errors: no workspace, an unknown name, a package.json or
// pnpm-workspace.yaml that does not parse (with file and line).
func (r *Repo) Workspace(name string) (Expansion, error) {
	w, pkgs, err := r.closure(name)
	if err != nil {
		return Expansion{}, err
	}
	e := Expansion{}
	for _, p := range pkgs {
		e.Units = append(e.Units, Unit{Name: p.name, Dir: p.dir})
		e.Include = append(e.Include, p.dir)
	}
	slices.Sort(e.Include)
	e.Exclude = nested(w.dirs, e.Include)
	// The top package's dependencies are installed for every package, as
	// Turborepo's global hash also holds them: its package.json and its
	// lockfile entries count, not its other files.
	e.Files = []string{w.from}
	if w.root != nil && !slices.Contains(pkgs, w.root) {
		e.Files = append(e.Files, rootPackageFile)
	}
	slices.Sort(e.Files)
	e.Files = slices.Compact(e.Files)
	for _, lf := range []string{pnpmLockFile, npmLockFile, yarnLockFile} {
		data, ok := r.files[lf]
		if !ok {
			continue
		}
		l, read := r.locks[lf]
		if !read {
			l.lock, l.err = readLock(lf, data)
			r.locks[lf] = l
		}
		e.Locks = append(e.Locks, sliceLock(lf, l.lock, l.err, w, sliced(w, pkgs)))
	}
	return e, nil
}

// LockAt slices another version of lockfile file (data, such as the base
// commit's) for the workspace package name as Workspace slices the tree's,
// with the packages the tree's package.json files give, so that the two
// slices compare.
func (r *Repo) LockAt(file string, data []byte, name string) (Lock, error) {
	w, pkgs, err := r.closure(name)
	if err != nil {
		return Lock{}, err
	}
	lock, err := readLock(file, data)
	return sliceLock(file, lock, err, w, sliced(w, pkgs)), nil
}

// sliced are the packages whose lockfile entries a closure depends on:
// its own and the top package's.
func sliced(w *jsWorkspace, pkgs []*jsPackage) []*jsPackage {
	if w.root != nil && !slices.Contains(pkgs, w.root) {
		return append(slices.Clip(pkgs), w.root)
	}
	return pkgs
}

// closure returns the workspace and the package named name followed by
// the workspace packages it depends on, transitively, by directory.
func (r *Repo) closure(name string) (*jsWorkspace, []*jsPackage, error) {
	w, err := r.workspace()
	if err != nil {
		return nil, nil, err
	}
	start, ok := w.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("no workspace package is named %q (the workspace is read from %s)", name, w.from)
	}
	pkgs := []*jsPackage{start}
	seen := map[string]bool{name: true}
	for i := 0; i < len(pkgs); i++ {
		deps := make([]string, 0, len(pkgs[i].deps))
		for d := range pkgs[i].deps {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if p, ok := w.byName[d]; ok && !seen[d] {
				seen[d] = true
				pkgs = append(pkgs, p)
			}
		}
	}
	slices.SortFunc(pkgs[1:], func(a, b *jsPackage) int { return strings.Compare(a.dir, b.dir) })
	return w, pkgs, nil
}

// readLock reads a lockfile for slicing: *pnpmLock, *npmLock or *yarnLock.
func readLock(file string, data []byte) (any, error) {
	switch file {
	case pnpmLockFile:
		return readPnpmLock(data)
	case npmLockFile:
		return readNpmLock(data)
	}
	return readYarnLock(data)
}

// sliceLock slices one lockfile for pkgs, or says why the whole file
// counts. lock is what readLock returned, or its error.
func sliceLock(file string, lock any, readErr error, w *jsWorkspace, pkgs []*jsPackage) Lock {
	var slice any
	err := readErr
	if err == nil {
		switch l := lock.(type) {
		case *pnpmLock:
			slice, err = slicePnpm(l, pkgs)
		case *npmLock:
			slice, err = sliceNpm(l, pkgs)
		case *yarnLock:
			slice, err = sliceYarn(l, w, pkgs)
		}
	}
	if err == nil {
		var d string
		if d, err = sliceDigest(slice); err == nil {
			return Lock{Path: file, Digest: d}
		}
	}
	return Lock{Path: file, Whole: err.Error()}
}
