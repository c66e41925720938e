package forgetest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// testdata returns the path of a file under the forge package's testdata
// folder, where the forges' published descriptions are kept beside the
// tests that use them. It is found from this file's own place in the
// source tree, so any package's test can start a Server.
func testdata(t testing.TB, parts ...string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("forgetest: cannot tell where the source is")
	}
	p := filepath.Join(append([]string{filepath.Dir(file), "..", "testdata"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("forgetest: the forge's description is missing: %v", err)
	}
	return p
}
