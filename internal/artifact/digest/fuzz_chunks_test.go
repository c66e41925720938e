package digest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// fuzzBlob is the blob every fuzzed index claims to describe; the seed
// corpus in testdata/fuzz/FuzzParseChunkIndex holds intact indexes of it.
var fuzzBlob = MustParse("sha256:0000000000000000000000000000000000000000000000000000000000000001")

// FuzzParseChunkIndex checks that ParseChunkIndex never panics, refuses
// with KindInvalid, and accepts only what MarshalBinary writes back byte
// for byte.
func FuzzParseChunkIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseChunkIndex(fuzzBlob, b)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("error %v is not KindInvalid", err)
			}
			return
		}
		again, err := x.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a parsed index: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("parsed index marshals to other bytes")
		}
	})
}
