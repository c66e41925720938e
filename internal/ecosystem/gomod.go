package ecosystem

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
)

// goModule is one parsed go.mod.
type goModule struct {
	dir      string
	path     string
	requires []string
	// replaces maps a module path to the directory a local replace
	// directive names, from the top of the repository; "" when it leads
	// outside the repository.
	replaces map[string]string
	// rawReplace keeps what the file wrote, for errors.
	rawReplace map[string]string
}

// goMod parses the go.mod in dir.
func (r *Repo) goMod(dir string) (*goModule, error) {
	m, ok := r.gomods[dir]
	if !ok {
		return nil, fmt.Errorf("no go.mod in %s", displayDir(dir))
	}
	if m != nil {
		return m, nil
	}
	name := join(dir, "go.mod")
	f, err := modfile.Parse(name, r.files[name], nil)
	if err != nil {
		return nil, err
	}
	if f.Module == nil || f.Module.Mod.Path == "" {
		return nil, fmt.Errorf("%s: no module directive", name)
	}
	m = &goModule{dir: dir, path: f.Module.Mod.Path, replaces: map[string]string{}, rawReplace: map[string]string{}}
	for _, req := range f.Require {
		m.requires = append(m.requires, req.Mod.Path)
	}
	for _, rep := range f.Replace {
		if rep.New.Version != "" || !modfile.IsDirectoryPath(rep.New.Path) {
			continue // a module from elsewhere, not a directory
		}
		m.rawReplace[rep.Old.Path] = rep.New.Path
		target := ""
		if !strings.HasPrefix(rep.New.Path, "/") {
			t := path.Clean(join(dir, rep.New.Path))
			if t != ".." && !strings.HasPrefix(t, "../") {
				target = t
			}
		}
		m.replaces[rep.Old.Path] = target
	}
	r.gomods[dir] = m
	return m, nil
}

func displayDir(dir string) string {
	if dir == "." {
		return "the top of the repository"
	}
	return dir + "/"
}

// Go expands {go: dir}: the module whose go.mod is in dir, and every module
// of the repository its build reaches through a local replace directive of
// that go.mod (as the go command reads replace directives of the main
// module only), following the requirements of each module reached. Each
// module's files are those under its directory but not under a nested
// module's; its go.sum is one of them.
//
// Errors: no go.mod in dir, a go.mod that does not parse (with its file
// and line), a replace leading outside the repository or to a directory
// without a go.mod, for a module the build requires.
func (r *Repo) Go(dir string) (Expansion, error) {
	main, err := r.goMod(dir)
	if err != nil {
		return Expansion{}, err
	}
	reached := map[string]bool{main.path: true}
	units := []Unit{{Name: main.path, Dir: dir}}
	queue := slices.Clone(main.requires)
	for len(queue) > 0 {
		mod := queue[0]
		queue = queue[1:]
		if reached[mod] {
			continue
		}
		reached[mod] = true
		target, local := main.replaces[mod]
		if !local {
			continue // from the module cache: go.sum pins it
		}
		goModPath := join(dir, "go.mod")
		if target == "" {
			return Expansion{}, fmt.Errorf("%s: replace %s => %s leads outside the repository", goModPath, mod, main.rawReplace[mod])
		}
		m, err := r.goMod(target)
		if err != nil {
			if _, ok := r.gomods[target]; !ok {
				return Expansion{}, fmt.Errorf("%s: replace %s => %s: no go.mod in %s", goModPath, mod, main.rawReplace[mod], displayDir(target))
			}
			return Expansion{}, err
		}
		units = append(units, Unit{Name: mod, Dir: target})
		queue = append(queue, m.requires...)
	}
	slices.SortFunc(units[1:], func(a, b Unit) int { return strings.Compare(a.Dir, b.Dir) })
	units = slices.CompactFunc(units, func(a, b Unit) bool { return a.Dir == b.Dir })
	var include []string
	for _, u := range units {
		if !slices.Contains(include, u.Dir) {
			include = append(include, u.Dir)
		}
	}
	slices.Sort(include)
	all := make([]string, 0, len(r.gomods))
	for d := range r.gomods {
		all = append(all, d)
	}
	return Expansion{Include: include, Exclude: nested(all, include), Units: units}, nil
}
