package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/store/storetest"
)

// storeCLI runs `deltaci artifacts --server <srv>/store` with the server's
// admin token.
func storeCLI(t *testing.T, srv *server, dir string, args ...string) result {
	t.Helper()
	cmd := command(dir, append([]string{"artifacts", "--server", srv.url() + "/store"}, args...)...)
	cmd.Env = childEnv(srv.userEnv()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// damageInStore pushes content through the server's store and flips one
// of its stored bytes in the server's data directory; it returns the
// blob's digest.
func damageInStore(t *testing.T, srv *server, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "out/"+name, content)
	if r := storeCLI(t, srv, dir, "push", "out", "--ref", "outputs/"+name+":1"); r.code != 0 {
		t.Fatalf("push: exit %d\n%s", r.code, r.stderr)
	}
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(srv.dataDir, "store", "blobs", "sha256", h[:2], h)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + h
}

// TestServerScrubsItsStore: a deltaci server scrubs its artifact store when
// an admin asks (deltaci artifacts scrub through /store), quarantines the
// blob damaged on its disk and counts it on its own /metrics, beside the
// data plane's corruption counter; and one given --scrub-interval scrubs
// by itself, on the leader, recording "scrub" as the actor.
func TestServerScrubsItsStore(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		srv := startServer(t, serverOpts{database: database})
		bad := damageInStore(t, srv, "report.txt", strings.Repeat("a line of a report\n", 200))
		r := storeCLI(t, srv, t.TempDir(), "scrub", "--rate", "none")
		if r.code != 1 || !strings.Contains(r.stdout, "corrupt "+bad) || !strings.Contains(r.stderr, "to repair: push the files") {
			t.Fatalf("deltaci artifacts scrub: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := storeCLI(t, srv, t.TempDir(), "find-missing", bad); strings.TrimSpace(r.stdout) != bad {
			t.Errorf("find-missing after the scrub: %q", r.stdout)
		}
		resp, err := http.Get(srv.url() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, series := range []string{`artifactstore_scrub_blobs_total{result="corrupt"} 1`, `artifactstore_blob_corruptions_total{found_by="read"} 0`,
			`artifactstore_scrub_running 0`} {
			if !strings.Contains(string(metrics), series) {
				t.Errorf("/metrics lacks %q", series)
			}
		}

		if database != "" {
			database = storetest.PostgresURL(t) // a server of its own: it must lead
		}
		scheduled := startServer(t, serverOpts{database: database, extraArgs: []string{"--scrub-interval", "200ms", "--scrub-rate", "none"}})
		bad = damageInStore(t, scheduled, "notes.txt", strings.Repeat("notes\n", 500))
		eventually(t, "the scheduled scrub quarantines the damaged blob", func() bool {
			r := storeCLI(t, scheduled, t.TempDir(), "find-missing", bad)
			return strings.TrimSpace(r.stdout) == bad
		})
		audit := storeCLI(t, scheduled, t.TempDir(), "audit", "--subject", bad)
		if !regexp.MustCompile(`scrub\s+blob\.quarantined`).MatchString(audit.stdout) {
			t.Errorf("audit of the blob:\n%s", audit.stdout)
		}
	})
}
