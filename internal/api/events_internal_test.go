package api

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCursor: a Last-Event-ID is byte offsets joined by dots, at most
// maxCursor of them, or it is refused; it never panics.
func FuzzParseCursor(f *testing.F) {
	f.Add("0")
	f.Add("12.0.4096")
	f.Add("")
	f.Add("-1")
	f.Add("1..2")
	f.Add(strings.Repeat("1.", maxCursor) + "1")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseCursor(v)
		if err != nil {
			return
		}
		if len(c) > maxCursor {
			t.Fatalf("%d offsets accepted, more than %d", len(c), maxCursor)
		}
		parts := make([]string, len(c))
		for i, n := range c {
			if n < 0 {
				t.Fatalf("%q gave a negative offset %d", v, n)
			}
			parts[i] = strconv.FormatInt(n, 10)
		}
		if again, err := parseCursor(strings.Join(parts, ".")); err != nil || len(again) != len(c) {
			t.Fatalf("%q: its offsets joined again do not parse: %v", v, err)
		}
	})
}
