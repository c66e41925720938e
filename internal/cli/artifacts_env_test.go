package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/api/apitest"
)

// TestArtifactsServerFromTheEnvironment: deltaci artifacts takes the
// server and its token from DELTACI_SERVER and DELTACI_API_TOKEN as the
// other commands do, and a refused request says which flag or variable
// gives the token.
func TestArtifactsServerFromTheEnvironment(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	src := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(environ []string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb strings.Builder
		code := Run(t.Context(), args, environ, &out, &errb)
		return code, out.String(), errb.String()
	}
	store := srv.URL + "/store"

	code, _, stderr := run(nil, "artifacts", "--server", store, "ls", "outputs")
	if code == 0 || !strings.Contains(stderr, "--api-token") || !strings.Contains(stderr, "DELTACI_API_TOKEN") {
		t.Errorf("without a token: exit %d, want a failure naming --api-token and DELTACI_API_TOKEN:\n%s", code, stderr)
	}
	code, _, stderr = run([]string{"DELTACI_API_TOKEN=wrong"}, "artifacts", "--server", store, "ls", "outputs")
	if code == 0 || !strings.Contains(stderr, "refused the token") {
		t.Errorf("with a wrong token: exit %d, want a failure saying the token was refused:\n%s", code, stderr)
	}
	code, _, stderr = run([]string{"DELTACI_API_TOKEN=" + apitest.APIToken}, "artifacts", "--server", store, "push", src, "--ref", "outputs/x:1")
	if code != 0 {
		t.Fatalf("push with DELTACI_API_TOKEN: exit %d\n%s", code, stderr)
	}
	// DELTACI_SERVER alone names the server's store.
	environ := []string{"DELTACI_SERVER=" + srv.URL + "/", "DELTACI_API_TOKEN=" + apitest.APIToken}
	code, stdout, stderr := run(environ, "artifacts", "ls", "outputs")
	if code != 0 || !strings.Contains(stdout, "outputs/x:1") {
		t.Errorf("ls with DELTACI_SERVER: exit %d, want outputs/x:1 listed:\n%s%s", code, stdout, stderr)
	}
	// The standalone binary reads only its own variables.
	var out, errb strings.Builder
	code = RunArtifactStore(t.Context(), []string{"--server", store, "ls", "outputs"}, []string{"DELTACI_API_TOKEN=" + apitest.APIToken}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "ARTIFACTSTORE_TOKEN") || strings.Contains(errb.String(), "DELTACI_API_TOKEN") {
		t.Errorf("artifactstore with only DELTACI_API_TOKEN: exit %d\n%s", code, errb.String())
	}
}
