package store

import (
	"testing"
	"time"
)

// FuzzRunCursor: a client's cursor either parses to a position that makes
// the same cursor again, or is refused; it never panics.
func FuzzRunCursor(f *testing.F) {
	f.Add(runCursor(time.UnixMilli(1765000000000), "01a249d9-5f86-7543-a5e9-9637404b12b1"))
	f.Add("")
	f.Add("cjE6LTE6eA") // r1:-1:x
	f.Add("cjE6MTI6")   // r1:12:
	f.Add("cjI6MTI6eA") // r2:12:x
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := parseRunCursor(c)
		if err != nil {
			return
		}
		if at < 0 || id == "" {
			t.Fatalf("%q parsed to (%d, %q)", c, at, id)
		}
		again, id2, err := parseRunCursor(runCursor(time.UnixMilli(at), id))
		if err != nil || again != at || id2 != id {
			t.Fatalf("%q: the cursor made again parses to (%d, %q, %v), not (%d, %q)", c, again, id2, err, at, id)
		}
	})
}
