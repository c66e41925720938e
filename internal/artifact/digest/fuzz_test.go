package digest

import (
	"errors"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// FuzzParse checks that Parse never panics, that everything it accepts
// round-trips through String, and that every rejection is KindInvalid.
// The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("Parse(%q) error %v is not KindInvalid", s, err)
			}
			if !d.IsZero() {
				t.Fatalf("Parse(%q) returned %v with an error", s, d)
			}
			return
		}
		if got := d.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		again, err := Parse(d.String())
		if err != nil || again != d {
			t.Fatalf("reparse of %q = %v, %v", d.String(), again, err)
		}
	})
}
