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
		m.replaces[rep.Old.Path] = localDir(dir, rep.New.Path)
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
// module only), following the requirements of each module reached. When a
// go.work applies (in dir or a directory above), the modules it uses and
// its replace directives count too, and it and its go.work.sum are inputs. Each
// module's files are those under its directory but not under a nested
// module's; its go.sum is one of them.
//
// Errors: no go.mod in dir, a go.mod or go.work that does not parse (with
// its file and line), a replace leading outside the repository or to a directory
// without a go.mod, for a module the build requires.
func (r *Repo) Go(dir string) (Expansion, error) {
	main, err := r.goMod(dir)
	if err != nil {
		return Expansion{}, err
	}
	work, err := r.goWork(dir)
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
		// go.work's replace directives win over go.mod's, which win over
		// the modules go.work uses.
		file, target, local := work.file, work.replaces[mod], false
		raw := work.rawReplace[mod]
		if _, local = work.replaces[mod]; !local {
			file, raw = join(dir, "go.mod"), main.rawReplace[mod]
			if target, local = main.replaces[mod]; !local {
				target, local = work.uses[mod]
				raw = ""
			}
		}
		if !local {
			continue // from the module cache: go.sum pins it
		}
		if target == "" {
			return Expansion{}, fmt.Errorf("%s: replace %s => %s leads outside the repository", file, mod, raw)
		}
		m, err := r.goMod(target)
		if err != nil {
			if _, ok := r.gomods[target]; !ok {
				return Expansion{}, fmt.Errorf("%s: replace %s => %s: no go.mod in %s", file, mod, raw, displayDir(target))
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
	e := Expansion{Include: include, Exclude: nested(all, include), Units: units}
	if work.file != "" {
		e.Files = []string{work.file, work.file + ".sum"}
	}
	return e, nil
}

// goWorkspace is the go.work that applies to a module, if any.
type goWorkspace struct {
	file string // its path, "" when there is none
	// uses maps the module path of each directory it uses to the directory.
	uses map[string]string
	// replaces and rawReplace are as a goModule's.
	replaces, rawReplace map[string]string
}

// goWork reads the go.work that the go command finds from dir: in dir or
// the nearest directory above it, up to the top of the repository. A go
// command run with GOWORK=off would not read it: counting it then only
// adds inputs.
func (r *Repo) goWork(dir string) (*goWorkspace, error) {
	w := &goWorkspace{uses: map[string]string{}, replaces: map[string]string{}, rawReplace: map[string]string{}}
	for d := dir; ; d = dirOf(d) {
		if _, ok := r.files[join(d, "go.work")]; ok {
			w.file = join(d, "go.work")
			break
		}
		if d == "." {
			return w, nil
		}
	}
	top := dirOf(w.file)
	f, err := modfile.ParseWork(w.file, r.files[w.file], nil)
	if err != nil {
		return nil, err
	}
	for _, u := range f.Use {
		if strings.HasPrefix(u.Path, "/") {
			continue
		}
		d := path.Clean(join(top, u.Path))
		if m, err := r.goMod(d); err == nil {
			w.uses[m.path] = d
		}
	}
	for _, rep := range f.Replace {
		if rep.New.Version != "" || !modfile.IsDirectoryPath(rep.New.Path) {
			continue
		}
		w.rawReplace[rep.Old.Path] = rep.New.Path
		w.replaces[rep.Old.Path] = localDir(top, rep.New.Path)
	}
	return w, nil
}

// localDir is the directory of the repository that p, written in a file
// of directory dir, names; "" when it lies outside.
func localDir(dir, p string) string {
	if strings.HasPrefix(p, "/") {
		return ""
	}
	t := path.Clean(join(dir, p))
	if t == ".." || strings.HasPrefix(t, "../") {
		return ""
	}
	return t
}
