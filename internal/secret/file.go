package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// maxFileSize bounds what a provider reads: secrets are small, and a huge
// file is a mistake (the wrong path) that should not exhaust memory.
const maxFileSize = 1 << 20

// File is the Provider that reads a file of NAME=value lines:
//
//	# Comments start with '#' (after optional blanks); blank lines are ignored.
//	TOKEN=abc123
//	DSN=postgres://u:p@host/db?sslmode=require
//
// Everything after the first '=' is the value, verbatim: it may contain
// '=', '#', quotes and spaces, and nothing is unquoted or unescaped. A '\r'
// ending a line (a file saved on Windows) is dropped. The name must be a
// valid secret name with nothing around it. A value cannot span lines: use
// Dir for multi-line values such as keys. Empty or blank values, values
// holding a NUL byte and names set twice are errors.
//
// The file is read on every Lookup, so a rotated secret is seen at once. It
// must be a regular file of at most 1 MiB that neither group nor others can
// read or write (mode 600 or stricter).
type File struct {
	path string
}

// NewFile returns a File provider reading path.
func NewFile(path string) *File { return &File{path: path} }

// Lookup implements Provider.
func (f *File) Lookup(ctx context.Context, name string) (Value, error) {
	if err := checkLookup(ctx, name); err != nil {
		return Value{}, err
	}
	op := "read secrets file " + f.path
	data, err := readPrivate(f.path)
	if err != nil {
		return Value{}, fileError(op, f.path, err)
	}
	vals, err := parseFile(data)
	if err != nil {
		return Value{}, &core.Error{Kind: core.KindInvalid, Op: op, Err: err}
	}
	v, ok := vals[name]
	if !ok {
		return Value{}, missing(name, fmt.Sprintf("add %s=<value> to %s", name, f.path))
	}
	return New(v), nil
}

// parseFile parses File's format. Its errors name line numbers and valid
// names only, never a line's content, which may be a secret.
func parseFile(data []byte) (map[string]string, error) {
	vals := map[string]string{}
	seen := map[string]int{} // name → line it was set on
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if t := strings.TrimLeft(line, " \t"); t == "" || t[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d: expected NAME=value", n)
		case !ValidName(name):
			return nil, fmt.Errorf("line %d: the text before '=' is not a valid secret name (%s)", n, nameRule)
		case seen[name] != 0:
			return nil, fmt.Errorf("line %d: %s is set again (first on line %d)", n, name, seen[name])
		case blank(val):
			return nil, fmt.Errorf("line %d: %s is empty or blank", n, name)
		case strings.IndexByte(val, 0) >= 0:
			return nil, fmt.Errorf("line %d: %s contains a NUL byte, which an environment variable cannot hold", n, name)
		}
		seen[name] = n
		vals[name] = val
	}
	return vals, nil
}

// Dir is the Provider that reads secret NAME from the file <dir>/NAME, the
// layout of Docker and Kubernetes secret mounts. The whole file is the
// value, so it may span lines; one trailing newline ("\n" or "\r\n"), which
// editors and echo add, is dropped. Each file must be a regular file of at
// most 1 MiB with mode 600 or stricter (for Kubernetes, set defaultMode:
// 0400 on the volume), and must not be empty, blank or hold a NUL byte.
type Dir struct {
	path string
}

// NewDir returns a Dir provider reading files under path.
func NewDir(path string) *Dir { return &Dir{path: path} }

// Lookup implements Provider.
func (d *Dir) Lookup(ctx context.Context, name string) (Value, error) {
	if err := checkLookup(ctx, name); err != nil {
		return Value{}, err
	}
	op := lookupOp(name)
	path := filepath.Join(d.path, name)
	data, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(d.path); derr != nil {
			return Value{}, fileError(op, d.path, derr)
		}
		return Value{}, missing(name, fmt.Sprintf("create %s with mode 600", path))
	}
	if err != nil {
		return Value{}, fileError(op, path, err)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	switch {
	case blank(string(data)):
		return Value{}, core.E(core.KindInvalid, op, "%s is empty or blank", path)
	case bytes.IndexByte(data, 0) >= 0:
		return Value{}, core.E(core.KindInvalid, op, "%s contains a NUL byte, which an environment variable cannot hold", path)
	}
	return New(string(data)), nil
}

// readPrivate reads a secret file after checking, on the open descriptor so
// that a rename in between cannot fool it, that only its owner can use it.
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, core.E(core.KindInvalid, "", "%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, core.E(core.KindInvalid, "",
			"%s can be read or written by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, core.E(core.KindInvalid, "", "%s is larger than 1 MiB", path)
	}
	return data, nil
}

// fileError gives an error from reading a secret file its kind: the
// operator must fix a missing or unreadable file; other I/O errors may pass.
func fileError(op, path string, err error) error {
	var ce *core.Error
	switch {
	case errors.As(err, &ce):
		return &core.Error{Kind: ce.Kind, Op: op, Msg: ce.Msg}
	case errors.Is(err, fs.ErrNotExist):
		return core.E(core.KindInvalid, op, "%s does not exist", path)
	case errors.Is(err, fs.ErrPermission):
		return &core.Error{Kind: core.KindInvalid, Op: op, Err: err}
	default:
		return &core.Error{Kind: core.KindUnavailable, Op: op, Err: err}
	}
}
