package s3

import (
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/blobstoretest"
)

func TestScrubConformance(t *testing.T) {
	// The smallest part size, as the main suite, and quarantined copies
	// read back by their s3:// URL.
	blobstoretest.RunScrub(t, harness, func(t *testing.T, where string) []byte {
		t.Helper()
		rest, ok := strings.CutPrefix(where, "s3://")
		bucket, key, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			t.Fatalf("quarantined at %q, not an s3:// URL", where)
		}
		s := open(t, MinPartSize)
		if s.bucket != bucket || !strings.Contains(key, "/quarantine/sha256/") {
			t.Fatalf("quarantined at %q: not in bucket %s under <prefix>/quarantine/", where, s.bucket)
		}
		return getObject(t, s, key)
	})
}
