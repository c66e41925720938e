package fs

import (
	"bytes"
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/blobstoretest"
	"github.com/deltaci/deltaci/internal/artifact/digest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func harness(t *testing.T) blobstoretest.Harness {
	s, _ := open(t)
	return blobstoretest.Harness{
		Store: s,
		Rewrite: func(t *testing.T, d digest.Digest, edit func([]byte) []byte) {
			t.Helper()
			p := s.path(d)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, edit(b), 0o444); err != nil {
				t.Fatal(err)
			}
		},
		Index: func(t *testing.T, d digest.Digest) []byte {
			t.Helper()
			b, err := os.ReadFile(s.indexPath(d))
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			} else if err != nil {
				t.Fatal(err)
			}
			return b
		},
		SetIndex: func(t *testing.T, d digest.Digest, b []byte) {
			t.Helper()
			if b == nil {
				if err := os.Remove(s.indexPath(d)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
					t.Fatal(err)
				}
				return
			}
			if err := os.WriteFile(s.indexPath(d), b, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Leftovers: func(t *testing.T) []string {
			t.Helper()
			entries, err := os.ReadDir(s.tmp)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return names
		},
		Strand: func(t *testing.T) {
			t.Helper()
			f, err := os.CreateTemp(s.tmp, "put-*")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString("half a blob")
			_ = f.Close()
		},
	}
}

func TestConformance(t *testing.T) {
	blobstoretest.Run(t, harness)
}

func TestLayout(t *testing.T) {
	t.Parallel()
	s, root := open(t)
	data := []byte("layout")
	d, _ := digest.FromBytes(digest.BLAKE3, data)
	if err := s.Put(context.Background(), d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "blobs", "blake3", d.Hex()[:2], d.Hex())
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatalf("blob not at %s: %v", want, err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("mode = %v, want read-only 0o444", fi.Mode().Perm())
	}
}

func TestListSkipsForeignFiles(t *testing.T) {
	t.Parallel()
	s, root := open(t)
	data := []byte("mine")
	d, _ := digest.FromBytes(digest.SHA256, data)
	if err := s.Put(context.Background(), d, bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	// An editor's backup, a misplaced blob, an unknown algorithm, a stray file.
	for _, p := range []string{
		filepath.Join("blobs", "sha256", d.Hex()[:2], d.Hex()+"~"),
		filepath.Join("blobs", "sha256", "00", d.Hex()),
		filepath.Join("blobs", "md5", "00", strings.Repeat("0", 64)),
		filepath.Join("blobs", "README"),
	} {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []digest.Digest
	for info, err := range s.List(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, info.Digest)
	}
	if len(got) != 1 || got[0] != d {
		t.Errorf("List = %v, want only %s", got, d)
	}
}
