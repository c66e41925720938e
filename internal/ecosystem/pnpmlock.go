package ecosystem

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// slicePnpm takes from a pnpm-lock.yaml (lockfile versions 5, 6 and 9) the
// importers of pkgs and the package entries (packages and snapshots) their
// dependencies resolve to, transitively, and every other top-level key
// (settings, overrides, ...) whole.
func slicePnpm(data []byte, pkgs []*jsPackage) (map[string]any, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", pnpmLockFile, yamlMessage(err))
	}
	if doc == nil {
		return nil, fmt.Errorf("%s: empty", pnpmLockFile)
	}
	importers, ok := asMap(doc["importers"])
	if !ok {
		return nil, fmt.Errorf("%s: no importers: not a workspace lockfile", pnpmLockFile)
	}
	packages, _ := asMap(doc["packages"])
	snapshots, _ := asMap(doc["snapshots"])
	major := strings.SplitN(fmt.Sprint(doc["lockfileVersion"]), ".", 2)[0]
	out := map[string]any{}
	for k, v := range doc {
		switch k {
		case "importers", "packages", "snapshots":
		default:
			out[k] = v
		}
	}
	takenImporters := map[string]any{}
	takenPackages := map[string]any{}
	takenSnapshots := map[string]any{}
	type dep struct{ name, version string }
	var queue []dep
	depsOf := func(entry map[string]any) error {
		for _, kind := range []string{"dependencies", "devDependencies", "optionalDependencies"} {
			m, _ := asMap(entry[kind])
			for _, name := range sortedKeys(m) {
				var version string
				switch v := m[name].(type) {
				case string:
					version = v
				default:
					vm, _ := asMap(v)
					version, _ = vm["version"].(string)
				}
				if version == "" {
					return fmt.Errorf("%s: dependency %s has no version", pnpmLockFile, name)
				}
				queue = append(queue, dep{name, version})
			}
		}
		return nil
	}
	for _, p := range pkgs {
		imp, ok := asMap(importers[p.dir])
		if !ok {
			return nil, fmt.Errorf("%s: no importer %s", pnpmLockFile, p.dir)
		}
		takenImporters[p.dir] = imp
		if err := depsOf(imp); err != nil {
			return nil, err
		}
	}
	seen := map[dep]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] || strings.HasPrefix(d.version, "link:") {
			continue // a workspace package (its importer is taken if reached) or a local link
		}
		seen[d] = true
		found := false
		for _, key := range pnpmKeys(major, d.name, d.version) {
			if e, ok := asMap(snapshots[key]); ok {
				found = true
				takenSnapshots[key] = e
				if err := depsOf(e); err != nil {
					return nil, err
				}
			}
			if e, ok := asMap(packages[key]); ok {
				found = true
				takenPackages[key] = e
				if err := depsOf(e); err != nil {
					return nil, err
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no package entry for %s %s", pnpmLockFile, d.name, d.version)
		}
	}
	out["importers"] = takenImporters
	out["packages"] = takenPackages
	out["snapshots"] = takenSnapshots
	return out, nil
}

// pnpmKeys are the keys a dependency on name at version (as an importer or
// a package entry writes it) may have in packages and snapshots.
func pnpmKeys(major, name, version string) []string {
	bare := version
	if i := strings.IndexByte(version, '('); i > 0 {
		bare = version[:i] // peers: "18.2.0(react@18.2.0)"
	}
	switch major {
	case "5":
		return []string{"/" + name + "/" + version, version}
	case "6":
		return []string{"/" + name + "@" + version, version}
	}
	keys := []string{name + "@" + version, version}
	if bare != version {
		keys = append(keys, name+"@"+bare, bare)
	}
	return slices.Compact(keys)
}

// asMap returns v as a map with string keys, as YAML and JSON decode it.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
