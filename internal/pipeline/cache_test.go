package pipeline

import (
	"strconv"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/google/go-cmp/cmp"
)

func TestCacheParses(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `version: 1
defaults:
  cache:
    key: [go.sum]
    paths: ["~/.cache/go-build"]
jobs:
  build:
    run: go build ./...
  web:
    run: npm ci
    cache:
      key: [package-lock.json, "web/**/*.json"]
      restore-keys: [web-, web]
      paths: [node_modules, "~/.npm"]
`)
	want := []*core.Cache{
		{Files: []string{"go.sum"}, Paths: []string{"~/.cache/go-build"}},
		{Files: []string{"package-lock.json", "web/**/*.json"}, RestoreKeys: []string{"web-", "web"}, Paths: []string{"node_modules", "~/.npm"}},
	}
	for i, j := range p.Jobs {
		if diff := cmp.Diff(want[i], j.Cache); diff != "" {
			t.Errorf("job %s cache (-want +got):\n%s", j.Name, diff)
		}
	}
	// Each job has its own copy of the defaults'.
	p.Jobs[0].Cache.Paths[0] = "changed"
	if q := mustParse(t, "version: 1\ndefaults: {cache: {paths: [a]}}\njobs: {a: {run: x}, b: {run: y}}\n"); q.Jobs[0].Cache == q.Jobs[1].Cache {
		t.Error("jobs share the defaults' cache")
	}
}

func TestCacheErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cache string
		want        want
	}{
		{"Absolute", `{paths: [/var/cache]}`, want{4, 21, `cache.paths: path "/var/cache" is absolute`, `"~/...") or relative to the workspace`}},
		{"EscapesWorkspace", `{paths: [../up]}`, want{4, 21, `cache.paths: path "../up" has a ".." segment`, "outside the workspace"}},
		{"EscapesHome", `{paths: ["~/a/../../etc"]}`, want{4, 21, `cache.paths: path "~/a/../../etc" has a ".." segment`, "outside the home directory"}},
		{"WholeHome", `{paths: ["~"]}`, want{4, 21, `cache.paths: "~" is the whole home directory`, "name a directory under it"}},
		{"OtherUser", `{paths: ["~root/.cache"]}`, want{4, 21, `cache.paths: path "~root/.cache" names another user's home`, `write "~/"`}},
		{"DotSegment", `{paths: [./node_modules]}`, want{4, 21, `cache.paths: path "./node_modules" has a "." segment`, `without "./"`}},
		{"NoPaths", `{key: [go.sum]}`, want{4, 12, "cache has no paths", "add paths:"}},
		{"EmptyPaths", `{paths: []}`, want{4, 20, "cache.paths is empty", "at least one directory"}},
		{"BadKeyGlob", `{key: [/go.sum], paths: [a]}`, want{4, 19, `cache.key: glob "/go.sum" is absolute`, `write "go.sum"`}},
		{"BadRestoreKey", `{restore-keys: ["a b"], paths: [a]}`, want{4, 28, `cache.restore-keys: "a b" is not a key prefix`, "start of a cache key"}},
		{"UnknownKey", `{keys: [go.sum], paths: [a]}`, want{4, 13, `unknown key "keys" in cache`, `did you mean "key"?`}},
		{"NotMapping", `[go.sum]`, want{4, 12, "cache must be a mapping, got a list", "write cache:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := "version: 1\njobs:\n  a:\n    cache: " + tt.cache + "\n    run: x\n"
			_, err := Parse("ci.yml", []byte(src))
			if err == nil {
				t.Fatalf("no error for\n%s", src)
			}
			msg := err.Error()
			at := "ci.yml:" + strconv.Itoa(tt.want.line) + ":" + strconv.Itoa(tt.want.col) + ": "
			if !strings.Contains(msg, at+tt.want.msg) || !strings.Contains(msg, tt.want.hint) {
				t.Errorf("error\n%s\nwant %q and hint %q", msg, at+tt.want.msg, tt.want.hint)
			}
		})
	}
}
