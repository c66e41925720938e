package gitx

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// HashObjects returns the blob id that `git add` would record for each of
// paths (relative to the top of the working tree that contains dir, with
// slashes), without writing any object. Regular files go through the
// repository's filters (.gitattributes, core.autocrlf, clean filters) as
// git applies them for that path; a symlink's blob is its target, as git
// stores it. One git process hashes all the files, however many.
//
// A path that does not exist is a KindNotFound error; a directory or a
// special file is KindInvalid.
func HashObjects(ctx context.Context, dir string, paths []string) (map[string]string, error) {
	if len(paths) == 0 {
		return map[string]string{}, nil
	}
	top, err := TopLevel(ctx, dir)
	if err != nil {
		return nil, err
	}
	return hashObjects(ctx, top, paths)
}

// hashObjects is HashObjects in top, the top level of the working tree.
func hashObjects(ctx context.Context, top string, paths []string) (map[string]string, error) {
	const op = "git hash-object"
	ids := make(map[string]string, len(paths))
	if len(paths) == 0 {
		return ids, nil
	}
	var files []string
	var newHash func() hash.Hash
	for _, p := range paths {
		if _, done := ids[p]; done {
			continue
		}
		full := filepath.Join(top, filepath.FromSlash(p))
		fi, err := os.Lstat(full)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, core.E(core.KindNotFound, op, "no file %s in the working tree", strconv.Quote(p))
		case err != nil:
			return nil, core.Wrap(core.KindInternal, op, err)
		case fi.Mode().IsRegular():
			files = append(files, p)
			ids[p] = "" // placeholder keeps duplicates out of files
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return nil, core.Wrap(core.KindInternal, op, err)
			}
			if newHash == nil {
				if newHash, err = objectHash(ctx, top); err != nil {
					return nil, err
				}
			}
			// git hash-object would follow the link; git add stores its target.
			ids[p] = blobID(newHash, []byte(target))
		default:
			return nil, core.E(core.KindInvalid, op, "%s is not a file or a symlink (%v)", strconv.Quote(p), fi.Mode().Type())
		}
	}
	if len(files) == 0 {
		return ids, nil
	}

	var stdin bytes.Buffer
	for _, p := range files {
		stdin.WriteString(quotePath(p))
		stdin.WriteByte('\n')
	}
	got := make([]string, 0, len(files))
	err := stream(ctx, top, &stdin, func(r *bufio.Reader) error {
		var long []byte
		for {
			line, err := readRecord(r, '\n', &long)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return core.Wrap(core.KindInternal, op, err)
			}
			got = append(got, string(line))
		}
	}, "hash-object", "--stdin-paths")
	if err != nil {
		return nil, err
	}
	if len(got) != len(files) {
		return nil, core.E(core.KindInternal, op, "hashed %d of %d files", len(got), len(files))
	}
	for i, p := range files {
		ids[p] = got[i]
	}
	return ids, nil
}

// quotePath writes a path for --stdin-paths, which reads one path per line,
// drops a CR before the LF, and unquotes a line that starts with a double
// quote C-style. Paths that would be misread are quoted that way.
func quotePath(p string) string {
	needs := strings.HasPrefix(p, `"`)
	for i := 0; i < len(p) && !needs; i++ {
		needs = p[i] < 0x20 || p[i] == 0x7f
	}
	if !needs {
		return p
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c) // other bytes, UTF-8 or not, are taken as they are
		}
	}
	b.WriteByte('"')
	return b.String()
}

// objectHash returns the hash function of the repository's object format
// (sha1, or sha256 for repositories created with --object-format=sha256).
func objectHash(ctx context.Context, dir string) (func() hash.Hash, error) {
	out, err := run(ctx, dir, "rev-parse", "--show-object-format")
	if err != nil {
		return nil, err
	}
	switch f := string(trimNewline(out)); f {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	default:
		return nil, core.E(core.KindUnavailable, "git rev-parse --show-object-format", "unsupported object format %q", f)
	}
}

// blobID is git's id of a blob with content data: the hash of the header
// "blob <size>\x00" followed by the content.
func blobID(newHash func() hash.Hash, data []byte) string {
	h := newHash()
	h.Write([]byte("blob " + strconv.Itoa(len(data)) + "\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}
