package workspace

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	t.Parallel()
	in := "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n" +
		"36 22 0:32 / /tmp/a\\040b\\134c rw - overlay overlay rw,lowerdir=/x\n" +
		"37 22 0:33 / /tmp/new\\012line rw - fuse.fuse-overlayfs fuse-overlayfs rw\n"
	got, err := parseMountinfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/", "/tmp/a b\\c", "/tmp/new\nline"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"22 1 253:0 /\n", "x 1 253:0 / / rw - ext4 a rw\n", "1 2 3 / / rw\n",
		"1 2 0:1 / rel rw - ext4 a rw\n", "1 2 0:1 / /a\\04 rw\n", "1 2 0:1 / /a\\800 rw\n"} {
		if _, err := parseMountinfo([]byte(bad)); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// This process's own mountinfo parses, and holds the root.
func TestParseOwnMountinfo(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip("no /proc/self/mountinfo here")
	}
	got, err := parseMountinfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "/") {
		t.Errorf("no root among %q", got)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"))
	f.Add([]byte("36 22 0:32 / /tmp/a\\040b rw - overlay overlay rw\n\n"))
	f.Add([]byte("1 2 0:1 / /a\\04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		points, err := parseMountinfo(b)
		if err != nil {
			return
		}
		for _, p := range points {
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("mount point %q is not absolute", p)
			}
		}
	})
}
