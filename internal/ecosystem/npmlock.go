package ecosystem

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// sliceNpm takes from a package-lock.json (lockfile versions 2 and 3, whose
// "packages" map is keyed by install location) the entries of pkgs and of
// the locations their dependencies resolve to, as Node resolves them
// (node_modules of the package's own location, then of each directory
// above), transitively, with links followed to their targets.
func sliceNpm(l *npmLock, pkgs []*jsPackage) (map[string]any, error) {
	doc := l
	type entry struct {
		Link                 bool              `json:"link"`
		Resolved             string            `json:"resolved"`
		Dependencies         map[string]string `json:"dependencies"`
		DevDependencies      map[string]string `json:"devDependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
		PeerDependencies     map[string]string `json:"peerDependencies"`
	}
	taken := map[string]any{}
	read := func(loc string) (*entry, bool, error) {
		raw, ok := doc.Packages[loc]
		if !ok {
			return nil, false, nil
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, false, fmt.Errorf("%s: packages[%q]: %v", npmLockFile, loc, err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, false, fmt.Errorf("%s: packages[%q]: %v", npmLockFile, loc, err)
		}
		taken[loc] = v
		return &e, true, nil
	}
	var queue []string
	for _, p := range pkgs {
		loc := p.dir
		if loc == "." {
			loc = ""
		}
		queue = append(queue, loc)
	}
	done := map[string]bool{}
	for len(queue) > 0 {
		loc := queue[0]
		queue = queue[1:]
		if done[loc] {
			continue
		}
		done[loc] = true
		e, ok, err := read(loc)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s: no entry for %q", npmLockFile, loc)
		}
		if e.Link {
			queue = append(queue, e.Resolved)
			continue
		}
		for _, m := range []map[string]string{e.Dependencies, e.DevDependencies} {
			for _, name := range slices.Sorted(maps.Keys(m)) {
				dep, ok := npmResolve(doc.Packages, loc, name)
				if !ok {
					return nil, fmt.Errorf("%s: %q depends on %s, which no location holds", npmLockFile, loc, name)
				}
				queue = append(queue, dep)
			}
		}
		for _, m := range []map[string]string{e.OptionalDependencies, e.PeerDependencies} {
			for _, name := range slices.Sorted(maps.Keys(m)) {
				// Optional and peer dependencies may be absent.
				if dep, ok := npmResolve(doc.Packages, loc, name); ok {
					queue = append(queue, dep)
				}
			}
		}
	}
	return map[string]any{"lockfileVersion": doc.LockfileVersion, "packages": taken}, nil
}

// npmLock is a package-lock.json read once for every slice of it.
type npmLock struct {
	LockfileVersion int                        `json:"lockfileVersion"`
	Packages        map[string]json.RawMessage `json:"packages"`
}

func readNpmLock(data []byte) (*npmLock, error) {
	var doc npmLock
	if err := json.Unmarshal(data, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s:%d: %v", npmLockFile, lineOf(data, se.Offset), err)
		}
		return nil, fmt.Errorf("%s: %v", npmLockFile, err)
	}
	if doc.Packages == nil {
		return nil, fmt.Errorf("%s: lockfile version %d has no packages map (version 2 or later has)", npmLockFile, doc.LockfileVersion)
	}
	return &doc, nil
}

// npmResolve finds where Node finds name from location loc: in
// loc/node_modules, then in the node_modules of each directory above.
func npmResolve(packages map[string]json.RawMessage, loc, name string) (string, bool) {
	dir := loc
	for {
		if !strings.HasSuffix(dir, "/node_modules") && dir != "node_modules" {
			cand := "node_modules/" + name
			if dir != "" {
				cand = dir + "/" + cand
			}
			if _, ok := packages[cand]; ok {
				return cand, true
			}
		}
		if dir == "" {
			return "", false
		}
		i := strings.LastIndexByte(dir, '/')
		if i < 0 {
			dir = ""
		} else {
			dir = dir[:i]
		}
	}
}
