package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/blobstoretest"
	"github.com/deltaci/deltaci/internal/artifact/digest"
)

func TestScrubConformance(t *testing.T) {
	blobstoretest.RunScrub(t, harness, func(t *testing.T, where string) []byte {
		t.Helper()
		b, err := os.ReadFile(where)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestQuarantineLayout checks where quarantined bytes go: beside blobs/,
// never listed, under a name that says which blob they were.
func TestQuarantineLayout(t *testing.T) {
	t.Parallel()
	s, root := open(t)
	data := []byte("bytes to set aside")
	d, _ := digest.FromBytes(digest.SHA256, data)
	if err := s.Put(t.Context(), d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	where, err := s.Quarantine(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, where)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("quarantine", "sha256", d.Hex()) + "."; !strings.HasPrefix(rel, want) {
		t.Errorf("quarantined at %s, want under %s*", rel, want)
	}
	if fi, err := os.Stat(where); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("quarantined file: %v, %v; want read-only as it was", fi, err)
	}
}
