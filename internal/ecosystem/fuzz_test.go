package ecosystem

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fuzzWorkspace is the workspace the lockfile fuzzers slice for: a, which
// depends on b, and the top.
func fuzzWorkspace() (*jsWorkspace, []*jsPackage) {
	a := &jsPackage{name: "a", dir: "p/a", deps: map[string]string{"b": "workspace:*", "left-pad": "^1.0.0"}}
	b := &jsPackage{name: "b", dir: "p/b", deps: map[string]string{"lodash": "^4.0.0"}}
	root := &jsPackage{name: "top", dir: ".", deps: map[string]string{"typescript": "^5.0.0"}}
	w := &jsWorkspace{from: pnpmWorkspaceFile, byName: map[string]*jsPackage{"a": a, "b": b, "top": root}, root: root, dirs: []string{".", "p/a", "p/b"}}
	return w, []*jsPackage{a, b, root}
}

const seedPnpm = `lockfileVersion: '9.0'
importers:
  .:
    devDependencies:
      typescript: {specifier: ^5.0.0, version: 5.4.5}
  p/a:
    dependencies:
      b: {specifier: workspace:*, version: link:../b}
      left-pad: {specifier: ^1.0.0, version: 1.3.0}
  p/b:
    dependencies:
      lodash: {specifier: ^4.0.0, version: 4.17.21(x@1.0.0)}
packages:
  left-pad@1.3.0: {resolution: {integrity: sha512-a}}
  lodash@4.17.21: {resolution: {integrity: sha512-b}}
  typescript@5.4.5: {resolution: {integrity: sha512-c}}
  x@1.0.0: {resolution: {integrity: sha512-d}}
snapshots:
  left-pad@1.3.0: {}
  lodash@4.17.21(x@1.0.0):
    dependencies:
      x: 1.0.0
  typescript@5.4.5: {}
  x@1.0.0: {}
`

const seedPnpm6 = `lockfileVersion: '6.0'
importers:
  .: {}
  p/a:
    dependencies:
      left-pad: {specifier: ^1.0.0, version: 1.3.0}
  p/b: {}
packages:
  /left-pad@1.3.0:
    resolution: {integrity: sha512-a}
    dependencies:
      x: 1.0.0
  /x@1.0.0: {resolution: {integrity: sha512-d}}
`

const seedNpm = `{"lockfileVersion": 3, "packages": {
  "": {"name": "top", "devDependencies": {"typescript": "^5.0.0"}},
  "p/a": {"name": "a", "dependencies": {"b": "*", "left-pad": "^1.0.0"}},
  "p/b": {"name": "b", "dependencies": {"lodash": "^4.0.0"}, "optionalDependencies": {"fsevents": "*"}},
  "node_modules/b": {"resolved": "p/b", "link": true},
  "node_modules/left-pad": {"version": "1.3.0"},
  "p/b/node_modules/lodash": {"version": "4.17.21", "dependencies": {"x": "1"}},
  "node_modules/x": {"version": "1.0.0"},
  "node_modules/typescript": {"version": "5.4.5"}
}}`

const seedYarnClassic = `# yarn lockfile v1


left-pad@^1.0.0:
  version "1.3.0"
  integrity sha512-a

"lodash@^4.0.0", lodash@^4.1.0:
  version "4.17.21"
  dependencies:
    x "^1.0.0"
  optionalDependencies:
    fsevents "*"

x@^1.0.0:
  version "1.0.0"

typescript@^5.0.0:
  version "5.4.5"
`

const seedYarnBerry = `__metadata:
  version: 8

"a@workspace:p/a":
  version: 0.0.0-use.local
  dependencies:
    b: "workspace:*"
    left-pad: "npm:^1.0.0"

"b@workspace:*, b@workspace:p/b":
  version: 0.0.0-use.local
  dependencies:
    lodash: "npm:^4.0.0"

"top@workspace:.":
  version: 0.0.0-use.local
  dependencies:
    typescript: "npm:^5.0.0"

"left-pad@npm:^1.0.0":
  version: 1.3.0

"lodash@npm:^4.0.0":
  version: 4.17.21

"typescript@npm:^5.0.0":
  version: 5.4.5
`

var sliceDigestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// FuzzLockfiles checks that no lockfile crashes its reader, that each is
// sliced to a digest or counted whole with a reason, the same way twice,
// and that the seeds, which are well formed, are sliced.
func FuzzLockfiles(f *testing.F) {
	for _, seed := range []struct {
		file string
		data string
	}{
		{pnpmLockFile, seedPnpm}, {pnpmLockFile, seedPnpm6}, {npmLockFile, seedNpm},
		{yarnLockFile, seedYarnClassic}, {yarnLockFile, seedYarnBerry},
	} {
		w, pkgs := fuzzWorkspace()
		lock, err := readLock(seed.file, []byte(seed.data))
		if l := sliceLock(seed.file, lock, err, w, pkgs); l.Whole != "" {
			f.Fatalf("seed %s is not sliced: %s", seed.file, l.Whole)
		}
		f.Add(slices.Index([]string{pnpmLockFile, npmLockFile, yarnLockFile}, seed.file), []byte(seed.data))
	}
	f.Fuzz(func(t *testing.T, kind int, data []byte) {
		file := []string{pnpmLockFile, npmLockFile, yarnLockFile}[uint(kind)%3]
		w, pkgs := fuzzWorkspace()
		lock, err := readLock(file, data)
		l := sliceLock(file, lock, err, w, pkgs)
		switch {
		case l.Path != file:
			t.Fatalf("lock of %s", l.Path)
		case l.Whole == "" && !sliceDigestRE.MatchString(l.Digest):
			t.Fatalf("sliced to digest %q", l.Digest)
		case l.Whole != "" && l.Digest != "":
			t.Fatalf("whole (%s) with digest %s", l.Whole, l.Digest)
		}
		w, pkgs = fuzzWorkspace()
		lock, err = readLock(file, data)
		if again := sliceLock(file, lock, err, w, pkgs); again != l {
			t.Fatalf("sliced twice: %+v then %+v", l, again)
		}
	})
}

// FuzzYarnClassic checks that the yarn 1 reader never crashes, that its
// errors name a line of the file, and that every entry is reachable by
// each descriptor of its key.
func FuzzYarnClassic(f *testing.F) {
	f.Add([]byte(seedYarnClassic))
	f.Add([]byte("a@1:\n  version \"1\"\n  dependencies:\n    \"b\" \"2\"\n"))
	f.Add([]byte("a@1:\n    x y\n"))
	lineRE := regexp.MustCompile(`^yarn\.lock:([0-9]+): `)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseYarnClassic(data)
		if err != nil {
			if !lineRE.MatchString(err.Error()) {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for desc, e := range entries {
			if e == nil || e.fields == nil || !strings.Contains(e.key, strings.SplitN(desc, "@", 2)[0]) && !strings.Contains(e.key, `"`) {
				t.Fatalf("descriptor %q leads to %+v", desc, e)
			}
		}
	})
}

// FuzzWorkspace checks that discovering a workspace and expanding a
// package never crash, and that an expansion holds the package asked for
// and the definition of the workspace.
func FuzzWorkspace(f *testing.F) {
	f.Add([]byte("packages: ['p/*', '!p/x']\n"), []byte(`{"name": "top", "devDependencies": {"t": "1"}}`),
		[]byte(`{"name": "a", "dependencies": {"b": "workspace:*"}}`), []byte(`{"name": "b"}`))
	f.Add([]byte(nil), []byte(`{"workspaces": {"packages": ["p/**"]}}`), []byte(`{"name": "a", "dependencies": {"b": "*"}}`), []byte(`{"name": "b", "peerDependencies": {"a": "*"}}`))
	f.Add([]byte(nil), []byte(`{"workspaces": ["p/a", "p/b"]}`), []byte(`{"name": "a"}`), []byte(`{"name": "a"}`))
	f.Fuzz(func(t *testing.T, pnpmWorkspace, top, a, b []byte) {
		files := Files{rootPackageFile: top, "p/a/package.json": a, "p/b/package.json": b, "p/a/sub/package.json": b}
		if pnpmWorkspace != nil {
			files[pnpmWorkspaceFile] = pnpmWorkspace
		}
		r := New(files)
		w, err := r.workspace()
		if err != nil {
			return
		}
		for name, p := range w.byName {
			e, err := r.Workspace(name)
			if err != nil {
				t.Fatalf("Workspace(%q): %v", name, err)
			}
			if len(e.Units) == 0 || e.Units[0].Name != name || !slices.Contains(e.Include, p.dir) || !slices.Contains(e.Files, w.from) {
				t.Fatalf("Workspace(%q) = %+v", name, e)
			}
			for _, x := range e.Exclude {
				if slices.Contains(e.Include, x) {
					t.Fatalf("Workspace(%q) includes and excludes %s", name, x)
				}
			}
		}
	})
}

// FuzzGoModules checks that reading go.mod files and following their
// replace directives never crash, and that an expansion holds the module
// asked for, and stays inside the repository.
func FuzzGoModules(f *testing.F) {
	f.Add([]byte("module example.com/a\nrequire example.com/b v0.0.0\nreplace example.com/b => ../b\n"), []byte("module example.com/b\nrequire example.com/a v0.0.0\n"))
	f.Add([]byte("module example.com/a\nrequire example.com/b v1.0.0\nreplace example.com/b v1.0.0 => ./b\n"), []byte("module example.com/b\n"))
	f.Add([]byte("module example.com/a\nreplace example.com/b => ../../b\nrequire example.com/b v0.0.0\n"), []byte("module x"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r := New(Files{"m/a/go.mod": a, "m/b/go.mod": b, "m/a/b/go.mod": b, "go.mod": b})
		for _, dir := range []string{"m/a", "m/b", "."} {
			e, err := r.Go(dir)
			if err != nil {
				continue
			}
			if !slices.Contains(e.Include, dir) || e.Units[0].Dir != dir {
				t.Fatalf("Go(%s) = %+v", dir, e)
			}
			for _, d := range slices.Concat(e.Include, e.Exclude) {
				if d != "." && (strings.HasPrefix(d, "../") || d == ".." || strings.HasPrefix(d, "/")) {
					t.Fatalf("Go(%s) reaches %s", dir, d)
				}
			}
		}
	})
}

// FuzzBlockYAML checks that the block YAML reader never crashes, that its
// errors name a line, and that every entry's lines lie within its parent's.
func FuzzBlockYAML(f *testing.F) {
	for _, s := range []string{seedPnpm, seedPnpm6, seedYarnBerry, "packages:\n  - 'a/*'\n  - \"!b\"\n", "a: [x, 'y, z', {k: v}]\n'q''k': \"v\\\"\"\n"} {
		f.Add([]byte(s))
	}
	lineRE := regexp.MustCompile(`^f:([0-9]+): `)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := readBlockYAML("f", data)
		if err != nil {
			if !lineRE.MatchString(err.Error()) {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		var check func(n *lineNode)
		check = func(n *lineNode) {
			for _, c := range n.children {
				if c.first > c.last || c.last >= len(d.lines) || n != d.root && (c.first <= n.first || c.last > n.last) {
					t.Fatalf("entry %q at lines %d-%d under %q at %d-%d", c.key, c.first, c.last, n.key, n.first, n.last)
				}
				check(c)
			}
		}
		check(d.root)
		_, _ = pnpmWorkspaceGlobs(data)
	})
}

// FuzzGoWork checks that reading a go.work never crashes Go, and that an
// expansion under one counts it.
func FuzzGoWork(f *testing.F) {
	f.Add([]byte("go 1.22\nuse (\n\t./a\n\t./b\n)\nreplace example.com/c => ./c\n"), []byte("module example.com/a\nrequire (\n\texample.com/b v0.0.0\n\texample.com/c v0.0.0\n)\n"))
	f.Add([]byte("use ../outside\nreplace example.com/b => ../../b\n"), []byte("module example.com/a\nrequire example.com/b v0.0.0\n"))
	f.Fuzz(func(t *testing.T, work, mod []byte) {
		r := New(Files{"go.work": work, "a/go.mod": mod, "b/go.mod": []byte("module example.com/b\n"), "c/go.mod": []byte("module example.com/c\n")})
		e, err := r.Go("a")
		if err != nil {
			return
		}
		if !slices.Contains(e.Files, "go.work") || !slices.Contains(e.Include, "a") {
			t.Fatalf("Go(a) = %+v", e)
		}
	})
}
