package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const whole = `{
  "openapi": "3.0.3",
  "info": {"title": "t", "version": "1"},
  "servers": [{"url": "https://api.example.com"}],
  "paths": {
    "/a/{id}": {
      "parameters": [{"$ref": "#/components/parameters/id"}],
      "get": {"responses": {"200": {"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/a"}}}}}},
      "post": {"responses": {"201": {"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/unused~1slash"}}}}}}
    },
    "/b": {"get": {"responses": {"200": {"description": "x"}}}}
  },
  "components": {
    "parameters": {"id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}},
    "schemas": {
      "a": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/b"}, "n": {"type": "number", "example": 1.50}}},
      "b": {"type": "array", "items": {"$ref": "#/components/schemas/a"}},
      "unused/slash": {"type": "string"},
      "other": {"type": "integer"}
    }
  }
}`

func TestSliceKeepsWhatThePathReaches(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "whole.json")
	if err := os.WriteFile(in, []byte(whole), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-in", in, "-path", "/a/{id}", "-method", "GET"}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{`"/a/{id}"`, `"get"`, `"id"`, `"a"`, `"b"`, `"example": 1.50`, `"servers"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the slice lacks %s:\n%s", want, got)
		}
	}
	for _, gone := range []string{`"/b"`, `"post"`, `"unused/slash"`, `"other"`} {
		if strings.Contains(got, gone) {
			t.Errorf("the slice keeps %s:\n%s", gone, got)
		}
	}

	// All methods, and a reference with an escaped '/'.
	out.Reset()
	if err := run([]string{"-in", in, "-path", "/a/{id}"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"unused/slash"`) {
		t.Errorf("the post's schema is missing:\n%s", out.String())
	}
}

func TestSliceRefuses(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "whole.json")
	broken := strings.Replace(whole, `"#/components/schemas/b"`, `"#/components/schemas/nope"`, 1)
	if err := os.WriteFile(in, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-in", in, "-path", "/missing"},
		{"-in", in, "-path", "/a/{id}", "-method", "delete"},
		{"-in", in, "-path", "/a/{id}", "-method", "get"}, // reaches the dangling reference
		{"-path", "/a/{id}"},
	} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
