package ecosystem

import (
	"fmt"
	"strings"
)

// slicePnpm takes from a pnpm-lock.yaml (lockfile versions 5, 6 and 9) the
// importers of pkgs and the package entries (packages and snapshots) their
// dependencies resolve to, transitively, and every other top-level key
// (lockfileVersion, settings, overrides, ...) whole. Each entry counts by
// its lines as written.
func slicePnpm(l *pnpmLock, pkgs []*jsPackage) (map[string]any, error) {
	d, packages, snapshots, major, top := l.doc, l.packages, l.snapshots, l.major, l.top
	taken := map[string]map[string]string{"importers": {}, "packages": {}, "snapshots": {}}
	var queue [][2]string
	follow := func(n *lineNode) error {
		deps, err := depVersions(n, "dependencies", "devDependencies", "optionalDependencies")
		if err != nil {
			return fmt.Errorf("%s:%v", pnpmLockFile, err)
		}
		queue = append(queue, deps...)
		return nil
	}
	for _, p := range pkgs {
		imp, ok := l.importers[p.dir]
		if !ok {
			return nil, fmt.Errorf("%s: no importer %s", pnpmLockFile, p.dir)
		}
		taken["importers"][p.dir] = d.text(imp)
		if err := follow(imp); err != nil {
			return nil, err
		}
	}
	seen := map[[2]string]bool{}
	for len(queue) > 0 {
		dep := queue[0]
		queue = queue[1:]
		if seen[dep] || strings.HasPrefix(dep[1], "link:") {
			continue // a workspace package (its importer is taken if reached) or a local link
		}
		seen[dep] = true
		found := false
		for _, key := range pnpmKeys(major, dep[0], dep[1]) {
			for i, entries := range [2]map[string]*lineNode{packages, snapshots} {
				if e, ok := entries[key]; ok {
					found = true
					taken[[2]string{"packages", "snapshots"}[i]][key] = d.text(e)
					if err := follow(e); err != nil {
						return nil, err
					}
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no package entry for %s %s", pnpmLockFile, dep[0], dep[1])
		}
	}
	return map[string]any{"top": top, "importers": taken["importers"], "packages": taken["packages"], "snapshots": taken["snapshots"]}, nil
}

// pnpmLock is a pnpm-lock.yaml read once for every slice of it.
type pnpmLock struct {
	doc                            *blockDoc
	importers, packages, snapshots map[string]*lineNode
	major                          string
	top                            map[string]string // the other top-level keys, as written
}

func readPnpmLock(data []byte) (*pnpmLock, error) {
	d, err := readBlockYAML(pnpmLockFile, data)
	if err != nil {
		return nil, err
	}
	importers := d.root.child("importers")
	if importers == nil {
		return nil, fmt.Errorf("%s: no importers: not a workspace lockfile", pnpmLockFile)
	}
	byKey := func(n *lineNode) map[string]*lineNode {
		m := map[string]*lineNode{}
		for _, c := range n.childrenOrNil() {
			m[c.key] = c
		}
		return m
	}
	l := &pnpmLock{doc: d, importers: byKey(importers), packages: byKey(d.root.child("packages")),
		snapshots: byKey(d.root.child("snapshots")), major: "9", top: map[string]string{}}
	if v := d.root.child("lockfileVersion"); v != nil {
		l.major, _, _ = strings.Cut(v.value, ".")
	}
	for _, c := range d.root.children {
		switch c.key {
		case "importers", "packages", "snapshots":
		default:
			l.top[c.key] = d.text(c)
		}
	}
	return l, nil
}

// pnpmKeys are the keys a dependency on name at version (as an importer or
// a package entry writes it) may have in packages and snapshots.
func pnpmKeys(major, name, version string) []string {
	switch major {
	case "5":
		return []string{"/" + name + "/" + version, version}
	case "6":
		return []string{"/" + name + "@" + version, version}
	}
	keys := []string{name + "@" + version, version}
	if i := strings.IndexByte(version, '('); i > 0 {
		bare := version[:i] // peers: "18.2.0(react@18.2.0)"
		keys = append(keys, name+"@"+bare, bare)
	}
	return keys
}
