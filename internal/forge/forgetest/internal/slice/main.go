// Command slice cuts one operation out of a large OpenAPI 3 document: the
// operation's path item, reduced to the chosen methods, with every
// component it references, followed transitively. The result is a small
// valid document that a test can load in milliseconds instead of the whole
// description's seconds.
//
//	go run ./internal/forge/forgetest/internal/slice \
//	    -in api.github.com.json -path '/repos/{owner}/{repo}/statuses/{sha}' \
//	    -method post -out internal/forge/testdata/github-openapi/statuses.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "slice:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("slice", flag.ContinueOnError)
	in := fs.String("in", "", "the whole OpenAPI document (JSON)")
	out := fs.String("out", "", "where to write the slice; standard output when empty")
	path := fs.String("path", "", "the path to keep, as the document spells it")
	var methods methodList
	fs.Var(&methods, "method", "a method of the path to keep (repeatable; all when none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *path == "" {
		return errors.New("-in and -path are required")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	doc, err := decode(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	cut, err := Slice(doc, *path, methods)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cut); err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

type methodList []string

func (m *methodList) String() string { return strings.Join(*m, ",") }

func (m *methodList) Set(s string) error {
	*m = append(*m, strings.ToLower(s))
	return nil
}

// decode reads JSON keeping numbers as written, so the slice does not
// turn 1.0 into 1 or lose a large integer's digits.
func decode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// The path item's keys that are operations; the others (parameters,
// servers, summary) stay with the kept ones.
var operationKeys = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Slice returns a document with doc's openapi, info and servers, the one
// path (only methods, or all of them when methods is empty) and the
// components that path references, directly or through other components.
func Slice(doc map[string]any, path string, methods []string) (map[string]any, error) {
	paths, _ := doc["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document has no path %q", path)
	}
	kept := map[string]any{}
	for k, v := range item {
		if !slices.Contains(operationKeys, k) {
			kept[k] = v
			continue
		}
		if len(methods) == 0 || slices.Contains(methods, k) {
			kept[k] = v
		}
	}
	for _, m := range methods {
		if _, ok := kept[m]; !ok {
			return nil, fmt.Errorf("path %q has no %s operation", path, m)
		}
	}
	components, _ := doc["components"].(map[string]any)
	need, err := closure(kept, components)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"paths": map[string]any{path: kept}}
	for _, k := range []string{"openapi", "info", "servers"} {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	if len(need) > 0 {
		out["components"] = need
	}
	return out, nil
}

// closure follows every local $ref from root through components and
// returns the components reached, grouped by section.
func closure(root any, components map[string]any) (map[string]any, error) {
	need := map[string]any{}
	queue := []any{root}
	seen := map[string]bool{}
	for len(queue) > 0 {
		node := queue[0]
		queue = queue[1:]
		var refs []string
		collectRefs(node, &refs)
		for _, ref := range refs {
			if seen[ref] {
				continue
			}
			seen[ref] = true
			section, name, err := splitRef(ref)
			if err != nil {
				return nil, err
			}
			sec, _ := components[section].(map[string]any)
			target, ok := sec[name]
			if !ok {
				return nil, fmt.Errorf("%s: not in the document", ref)
			}
			out, _ := need[section].(map[string]any)
			if out == nil {
				out = map[string]any{}
				need[section] = out
			}
			out[name] = target
			queue = append(queue, target)
		}
	}
	return need, nil
}

func collectRefs(node any, refs *[]string) {
	switch n := node.(type) {
	case map[string]any:
		if r, ok := n["$ref"].(string); ok {
			*refs = append(*refs, r)
		}
		for _, v := range n {
			collectRefs(v, refs)
		}
	case []any:
		for _, v := range n {
			collectRefs(v, refs)
		}
	}
}

// splitRef reads "#/components/<section>/<name>", undoing JSON Pointer's
// escapes (~1 for '/', ~0 for '~').
func splitRef(ref string) (section, name string, err error) {
	rest, ok := strings.CutPrefix(ref, "#/components/")
	if !ok {
		return "", "", fmt.Errorf("%s: only references into the document's components are followed", ref)
	}
	section, name, ok = strings.Cut(rest, "/")
	if !ok || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%s: not a component reference", ref)
	}
	name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
	return section, name, nil
}
