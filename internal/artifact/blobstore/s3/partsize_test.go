package s3

import (
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

func TestPartSize(t *testing.T) {
	t.Parallel()
	const tib = 1 << 40
	for _, tc := range []struct {
		name           string
		size, override int64
		want           int64
	}{
		{"Empty", 0, 0, 16 * mib},
		{"Small", 1000, 0, 16 * mib},
		{"UpTo156GiB", 10_000 * 16 * mib, 0, 16 * mib},
		{"JustAbove", 10_000*16*mib + 1, 0, 17 * mib},
		{"OneTiB", tib, 0, 105 * mib},
		{"FiveTiB", 5 * tib, 0, 525 * mib},
		{"Unknown", -1, 0, 105 * mib},
		{"Override", 1000, 5 * mib, 5 * mib},
		{"OverrideUnknown", -1, 5 * mib, 5 * mib},
		{"OverrideFull", 10_000 * 5 * mib, 5 * mib, 5 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := partSize(tc.size, tc.override)
			if err != nil || got != tc.want {
				t.Fatalf("partSize(%d, %d) = %d, %v; want %d MiB", tc.size, tc.override, got, err, tc.want/mib)
			}
		})
	}
	for _, tc := range []struct {
		name           string
		size, override int64
	}{
		{"ErrOverrideTooSmall", 10_000*5*mib + 1, 5 * mib},
		{"ErrBeyondS3", 10_000*MaxPartSize + 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := partSize(tc.size, tc.override); core.KindOf(err) != core.KindInvalid {
				t.Errorf("partSize(%d, %d) = %v, want KindInvalid", tc.size, tc.override, err)
			}
		})
	}
}

// TestPartSizeReach checks the invariants over many sizes: whole MiB, at
// least 16 MiB, and 10,000 parts always hold the blob (1 TiB if unknown).
func TestPartSizeReach(t *testing.T) {
	t.Parallel()
	sizes := []int64{-1}
	for s := int64(1); s < 10_000*MaxPartSize; s = s*3 + 7 {
		sizes = append(sizes, s-1, s, s+1)
	}
	for _, size := range sizes {
		ps, err := partSize(size, 0)
		if err != nil {
			t.Fatalf("partSize(%d): %v", size, err)
		}
		reach := size
		if size < 0 {
			reach = 1 << 40
		}
		if ps%mib != 0 || ps < 16*mib || ps > MaxPartSize || ps*maxParts < reach {
			t.Fatalf("partSize(%d) = %d: not whole MiB in [16 MiB, 5 GiB] reaching %d in 10,000 parts", size, ps, reach)
		}
		// And no bigger than needed.
		if ps > 16*mib && (ps-mib)*maxParts >= reach {
			t.Fatalf("partSize(%d) = %d MiB: one MiB less would do", size, ps/mib)
		}
	}
}
