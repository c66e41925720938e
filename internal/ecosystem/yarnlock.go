package ecosystem

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// yarnEntry is one entry of a yarn.lock: what its descriptors resolve to.
type yarnEntry struct {
	key    string         // the entry's key as written: its descriptors
	fields map[string]any // version, resolved, dependencies, ...
}

// sliceYarn takes from a yarn.lock the entries that the dependencies of
// pkgs resolve to, transitively: a dependency on name with range r is the
// entry listing the descriptor name@r (yarn 1), or name@r with npm: added
// to a bare range (yarn 2 and later, whose workspaces have entries too).
func sliceYarn(l *yarnLock, w *jsWorkspace, pkgs []*jsPackage) (map[string]any, error) {
	berry, entries := l.berry, l.entries
	taken := map[string]any{}
	type dep struct{ name, rng string }
	var queue []dep
	for _, p := range pkgs {
		if berry {
			if p.name != "" { // a nameless top gets a made-up name in the lockfile
				queue = append(queue, dep{p.name, "workspace:" + p.dir})
			}
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(p.deps)) {
			if _, ws := w.byName[name]; !ws {
				queue = append(queue, dep{name, p.deps[name]})
			}
		}
	}
	seen := map[dep]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		desc := d.name + "@" + d.rng
		e, ok := entries[desc]
		if !ok && berry && !strings.Contains(d.rng, ":") {
			e, ok = entries[d.name+"@npm:"+d.rng]
		}
		if !ok {
			return nil, fmt.Errorf("%s: no entry for %s", yarnLockFile, desc)
		}
		taken[e.key] = e.fields
		for _, kind := range []string{"dependencies", "optionalDependencies"} {
			m, _ := asMap(e.fields[kind])
			for _, name := range slices.Sorted(maps.Keys(m)) {
				rng, _ := m[name].(string)
				if kind == "optionalDependencies" {
					if _, present := entries[name+"@"+rng]; !present {
						continue
					}
				}
				queue = append(queue, dep{name, rng})
			}
		}
	}
	return map[string]any{"entries": taken}, nil
}

// yarnLock is a yarn.lock read once for every slice of it.
type yarnLock struct {
	berry   bool // yarn 2 or later
	entries map[string]*yarnEntry
}

func readYarnLock(data []byte) (*yarnLock, error) {
	l := &yarnLock{berry: bytes.Contains(data, []byte("\n__metadata:")) || bytes.HasPrefix(data, []byte("__metadata:"))}
	var err error
	if l.berry {
		l.entries, err = parseYarnBerry(data)
	} else {
		l.entries, err = parseYarnClassic(data)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// parseYarnBerry reads a yarn.lock of yarn 2 or later, which is block
// YAML; an entry's fields are its lines as written, and its dependencies.
func parseYarnBerry(data []byte) (map[string]*yarnEntry, error) {
	d, err := readBlockYAML(yarnLockFile, data)
	if err != nil {
		return nil, err
	}
	out := map[string]*yarnEntry{}
	for _, n := range d.root.children {
		if n.key == "__metadata" {
			continue
		}
		deps := map[string]any{}
		for _, kind := range []string{"dependencies", "optionalDependencies"} {
			m := map[string]any{}
			for _, c := range n.child(kind).childrenOrNil() {
				m[c.key] = c.value
			}
			deps[kind] = m
		}
		e := &yarnEntry{key: n.key, fields: map[string]any{"text": d.text(n),
			"dependencies": deps["dependencies"], "optionalDependencies": deps["optionalDependencies"]}}
		for _, desc := range strings.Split(n.key, ",") {
			out[strings.TrimSpace(desc)] = e
		}
	}
	return out, nil
}

// parseYarnClassic reads a yarn.lock of yarn 1: entries whose unindented
// header lists their descriptors ("a@^1", "a@^1.2":), with fields indented
// by two spaces ("version "1.2.3"") and maps of them (dependencies:) whose
// entries are indented by four. It returns the entries by descriptor. An
// error names the line.
func parseYarnClassic(data []byte) (map[string]*yarnEntry, error) {
	out := map[string]*yarnEntry{}
	var cur *yarnEntry
	var sub map[string]any
	lines := strings.Split(string(data), "\n")
	for n, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		bad := func(what string) error {
			return fmt.Errorf("%s:%d: %s", yarnLockFile, n+1, what)
		}
		switch indent := len(line) - len(trimmed); indent {
		case 0:
			header, ok := strings.CutSuffix(trimmed, ":")
			if !ok {
				return nil, bad("an entry's header ends with a colon")
			}
			cur = &yarnEntry{key: header, fields: map[string]any{}}
			sub = nil
			for _, d := range strings.Split(header, ",") {
				desc, err := yarnString(strings.TrimSpace(d))
				if err != nil || desc == "" {
					return nil, bad("bad descriptor " + strconv.Quote(d))
				}
				out[desc] = cur
			}
		case 2:
			if cur == nil {
				return nil, bad("a field outside an entry")
			}
			sub = nil
			if name, ok := strings.CutSuffix(trimmed, ":"); ok {
				key, err := yarnString(name)
				if err != nil {
					return nil, bad(err.Error())
				}
				sub = map[string]any{}
				cur.fields[key] = sub
				continue
			}
			key, value, err := yarnPair(trimmed)
			if err != nil {
				return nil, bad(err.Error())
			}
			cur.fields[key] = value
		case 4:
			if sub == nil {
				return nil, bad("an indented entry outside a map such as dependencies:")
			}
			key, value, err := yarnPair(trimmed)
			if err != nil {
				return nil, bad(err.Error())
			}
			sub[key] = value
		default:
			return nil, bad(fmt.Sprintf("unexpected indentation of %d spaces", indent))
		}
	}
	return out, nil
}

// yarnPair splits `key value`, either quoted.
func yarnPair(s string) (string, string, error) {
	var key, rest string
	if strings.HasPrefix(s, `"`) {
		end := closingQuote(s)
		if end < 0 {
			return "", "", fmt.Errorf("unclosed quote in %q", s)
		}
		key, rest = s[:end+1], s[end+1:]
	} else {
		var ok bool
		key, rest, ok = strings.Cut(s, " ")
		if !ok {
			return "", "", fmt.Errorf("%q has no value", s)
		}
	}
	k, err := yarnString(key)
	if err != nil {
		return "", "", err
	}
	v, err := yarnString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", err
	}
	return k, v, nil
}

// closingQuote is the index of the quote closing the string s starts.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// yarnString unquotes a quoted string and keeps a bare one.
func yarnString(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	u, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("bad quoted string %s", s)
	}
	return u, nil
}

// asMap returns v as a map with string keys, or false.
func asMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}
