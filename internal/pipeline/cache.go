package pipeline

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

var cacheKeys = []string{"key", "restore-keys", "paths"}

const cacheExample = `{key: [go.sum], restore-keys: [build-], paths: ["~/.cache/go-build"]}`

// restoreKeyRule is what a restore key (a prefix of computed keys, which
// are "<job>-<hex>") may hold.
var restoreKeyRule = nameRule{
	re:   regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`),
	max:  128,
	rule: "a restore key is the start of a cache key such as build- (the job's name and a dash): letters, digits, '_', '.' and '-', at most 128 characters",
}

// cache reads a cache: mapping. It returns nil when it is not one; its
// problems are reported.
func (t *tree) cache(e entry, v value) *core.Cache {
	if v.kind() == kindNull {
		t.add(e.keyAt, "write cache: "+cacheExample, "cache is empty")
		return nil
	}
	if !t.mapping(v, "cache", cacheExample) {
		return nil
	}
	c := &core.Cache{}
	hasPaths := false
	for _, f := range t.entries(v) {
		fv := t.value(f)
		switch f.key {
		case "key":
			items, _ := t.stringList(fv, "cache.key", "files or globs", t.pathGlob("cache.key"))
			c.Files = texts(items)
		case "restore-keys":
			items, _ := t.stringList(fv, "cache.restore-keys", "key prefixes", func(it item) bool {
				if !restoreKeyRule.ok(it.s) {
					t.add(it.at, restoreKeyRule.rule, "cache.restore-keys: %q is not a key prefix", it.s)
					return false
				}
				return true
			})
			c.RestoreKeys = texts(items)
		case "paths":
			hasPaths = true
			items, ok := t.stringList(fv, "cache.paths", "directories", func(it item) bool {
				msg, hint := CachePathProblem(it.s)
				if msg != "" {
					t.add(it.at, hint, "cache.paths: %s", msg)
				}
				return msg == ""
			})
			if ok && len(items) == 0 {
				t.add(fv.at, `name at least one directory, such as "~/.cache/go-build" or node_modules`, "cache.paths is empty")
			}
			c.Paths = texts(items)
		default:
			t.unknownKey(f, "cache", cacheKeys)
		}
	}
	if !hasPaths {
		t.add(v.at, `add paths: with the directories to keep, such as ["~/.cache/go-build"]`, "cache has no paths")
	}
	return c
}

// CachePathProblem says what is wrong with a cache path ("" when nothing
// is): "~/" and a relative path under the job's home, or a path relative
// to the workspace, without "." or ".." segments.
func CachePathProblem(p string) (msg, hint string) {
	rel, home := strings.CutPrefix(p, "~/")
	where := "the workspace"
	if home {
		where = "the home directory"
	}
	switch {
	case p == "":
		return "empty path", `write a directory such as "~/.cache/go-build" or node_modules`
	case p == "~":
		return `"~" is the whole home directory`, `name a directory under it, such as "~/.cache"`
	case !home && strings.HasPrefix(p, "~"):
		return fmt.Sprintf("path %q names another user's home", p), `write "~/" for the job's own home directory`
	case strings.HasPrefix(p, "/"):
		return fmt.Sprintf("path %q is absolute", p), `cache paths are under the job's home ("~/...") or relative to the workspace`
	case rel == "" || strings.HasSuffix(rel, "/") && strings.Trim(rel, "/") == "":
		return fmt.Sprintf("path %q names no directory", p), `name a directory under it, such as "~/.cache"`
	}
	for _, seg := range strings.Split(strings.TrimSuffix(rel, "/"), "/") {
		switch seg {
		case "..":
			return fmt.Sprintf("path %q has a \"..\" segment", p), "a cache path cannot reach outside " + where
		case ".":
			return fmt.Sprintf("path %q has a \".\" segment", p), "write the path without \"./\""
		case "":
			return fmt.Sprintf("path %q has an empty segment (//)", p), "use a single / between directories"
		}
	}
	return "", ""
}
