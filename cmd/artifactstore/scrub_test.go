package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scrubFiles writes files of 1 KB to 3 MB into src and returns the hex
// SHA-256 of each by name.
func scrubFiles(t *testing.T, src string) map[string]string {
	t.Helper()
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for i, size := range []int{1000, 40_000, 3_000_000, 2_000, 5_000} {
		b := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(i), 77}).Read(b)
		name := filepath.Join(src, "f"+string(rune('a'+i)))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums[filepath.Base(name)] = hex.EncodeToString(sum[:])
	}
	return sums
}

// flipStored inverts one byte of a stored blob in an fs store, as a failing
// disk would.
func flipStored(t *testing.T, store, hexSum string, offset int) {
	t.Helper()
	p := filepath.Join(store, "blobs", "sha256", hexSum[:2], hexSum)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[offset] ^= 0x04
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestScrubLocalStore scrubs a store on its database and directory: the
// damaged blob is reported with its chunk and the way to repair, the exit
// is 1, the blob is in quarantine/ and the audit trail, find-missing lists
// it and replay --verify passes; pushing the files again repairs it and a
// second scrub exits 0.
func TestScrubLocalStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sums := scrubFiles(t, src)
	ok(t, dir, "push", src, "--ref", "outputs/scrub:v1")
	bad := sums["fc"]
	flipStored(t, filepath.Join(dir, "artifacts"), bad, 2_100_000) // the third chunk

	r := run(t, dir, "scrub", "--rate", "none")
	if r.code != 1 {
		t.Fatalf("scrub of a damaged store: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`corrupt sha256:`+bad+` \(2\.9 MiB\): chunk 2 \(bytes 2097152-2999999\) is damaged; quarantined to \S*quarantine/sha256/`+bad+`\.`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "\n  held by outputs/scrub:v1 as fc\n") ||
		!strings.Contains(r.stdout, "scrubbed 5 blobs") || !strings.Contains(r.stdout, "1 corrupt") {
		t.Errorf("scrub output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "1 blob corrupt, quarantined; to repair: push the files") {
		t.Errorf("scrub does not say how to repair:\n%s", r.stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "artifacts", "quarantine", "sha256", bad+".*"))
	if len(matches) != 1 {
		t.Errorf("quarantine holds %v", matches)
	}
	if out := ok(t, dir, "find-missing", "sha256:"+bad, "sha256:"+sums["fa"]); strings.TrimSpace(out) != "sha256:"+bad {
		t.Errorf("find-missing = %q", out)
	}
	audit := ok(t, dir, "audit", "--subject", "sha256:"+bad)
	if !regexp.MustCompile(`tester\s+blob\.quarantined\s+sha256:` + bad).MatchString(audit) {
		t.Errorf("audit of the blob:\n%s", audit)
	}
	ok(t, dir, "replay", "--verify")
	if r := run(t, dir, "pull", "outputs/scrub:v1", filepath.Join(dir, "broken")); r.code == 0 {
		t.Error("pull of a manifest with a quarantined blob succeeded")
	}

	r = run(t, dir, "push", src, "--ref", "outputs/scrub:v1")
	if r.code != 0 || !strings.Contains(r.stderr, "uploaded 1 new blob") {
		t.Fatalf("push again: exit %d\n%s", r.code, r.stderr)
	}
	ok(t, dir, "pull", "outputs/scrub:v1", filepath.Join(dir, "restored"))
	out := ok(t, dir, "scrub", "--json")
	var st struct {
		State   string `json:"state"`
		Blobs   int    `json:"blobs"`
		Rate    int64  `json:"rate"`
		Corrupt []any  `json:"corrupt"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.State != "done" || st.Blobs != 5 || len(st.Corrupt) != 0 || st.Rate != 50<<20 {
		t.Errorf("second scrub: %s, %v", out, err)
	}
	if r := run(t, dir, "scrub", "--status"); r.code != 2 {
		t.Errorf("scrub --status on a local store: exit %d\n%s", r.code, r.stderr)
	}
}

// TestScrubThroughServe scrubs a real `artifactstore serve`, on SQLite and
// PostgreSQL, with scrub --server: it follows the server's scrub to its
// end. The damaged blob is then a 404 to a plain client, /metrics counts
// it, the server logs it at ERROR; pushing again repairs it. A token that
// may only read cannot start a scrub.
func TestScrubThroughServe(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			srv := serve(t, dir, nil, database(t, engine)...)
			as := []string{"--server", srv.url, "--api-token", srv.token}
			src := filepath.Join(dir, "src")
			sums := scrubFiles(t, src)
			ok(t, dir, append(as, "push", src, "--ref", "outputs/scrub:v1")...)
			bad := sums["fb"]
			flipStored(t, filepath.Join(dir, "srv"), bad, 10)

			reader := strings.TrimSpace(ok(t, dir, append(as, "tokens", "create", "reader", "--scope", "*:read")...))
			if r := run(t, dir, "--server", srv.url, "--api-token", reader, "scrub"); r.code == 0 || !strings.Contains(r.stderr, "may not do this") {
				t.Errorf("a read-only token started a scrub: exit %d\n%s", r.code, r.stderr)
			}

			r := run(t, dir, append(as, "scrub", "--rate", "1GiB")...)
			if r.code != 1 || !strings.Contains(r.stdout, "corrupt sha256:"+bad) || !strings.Contains(r.stdout, "chunk 0") {
				t.Fatalf("scrub --server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			// The last scrub found damage: --status says so, and so does its exit.
			if r := run(t, dir, append(as, "scrub", "--status")...); r.code != 1 || !strings.Contains(r.stdout, "corrupt sha256:"+bad) {
				t.Errorf("scrub --status: exit %d\n%s", r.code, r.stdout)
			}
			if code, body := call(t, "GET", srv.url+"/api/v1/blobs/sha256:"+bad, srv.token, nil, nil); code != http.StatusNotFound {
				t.Errorf("GET of the quarantined blob: %d %.200s", code, body)
			}
			_, metrics := call(t, "GET", srv.url+"/metrics", "", nil, nil)
			if !regexp.MustCompile(`(?m)^artifactstore_scrub_blobs_total\{result="corrupt"\} 1$`).MatchString(metrics) {
				t.Errorf("/metrics:\n%s", grep(metrics, "scrub"))
			}
			if log := srv.stderr(); !strings.Contains(log, `"level":"ERROR","msg":"scrub found a stored blob corrupt`) || !strings.Contains(log, bad) {
				t.Errorf("no ERROR line naming the quarantined blob:\n%s", log)
			}
			audit := ok(t, dir, append(as, "audit", "--subject", "sha256:"+bad)...)
			if !regexp.MustCompile(`token:admin\s+blob\.quarantined`).MatchString(audit) {
				t.Errorf("audit:\n%s", audit)
			}
			r = run(t, dir, append(as, "push", src, "--ref", "outputs/scrub:v1")...)
			if r.code != 0 || !strings.Contains(r.stderr, "uploaded 1 new blob") {
				t.Fatalf("push again: exit %d\n%s", r.code, r.stderr)
			}
			if r := run(t, dir, append(as, "scrub", "--rate", "none")...); r.code != 0 || !strings.Contains(r.stdout, "scrubbed 5 blobs") {
				t.Errorf("second scrub: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestServeScrubsOnSchedule starts a server scrubbing every 200ms: the
// blob damaged on its disk is quarantined by the scheduled scrub, whose
// actor is "scrub", without anyone asking.
func TestServeScrubsOnSchedule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := serve(t, dir, nil, "--scrub-interval", "200ms", "--scrub-rate", "none")
	as := []string{"--server", srv.url, "--api-token", srv.token}
	src := filepath.Join(dir, "src")
	sums := scrubFiles(t, src)
	ok(t, dir, append(as, "push", src, "--ref", "outputs/scrub:v1")...)
	bad := sums["fe"]
	flipStored(t, filepath.Join(dir, "srv"), bad, 4_999)
	deadline := time.Now().Add(time.Minute)
	for {
		missing := ok(t, dir, append(as, "find-missing", "sha256:"+bad)...)
		if strings.TrimSpace(missing) == "sha256:"+bad {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled scrub quarantined the blob within a minute:\n%s", srv.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	audit := ok(t, dir, append(as, "audit", "--subject", "sha256:"+bad)...)
	if !regexp.MustCompile(`scrub\s+blob\.quarantined`).MatchString(audit) {
		t.Errorf("audit:\n%s", audit)
	}
	if r := run(t, dir, "serve", "--scrub-interval=-1s"); r.code != 2 || !strings.Contains(r.stderr, "--scrub-interval") {
		t.Errorf("serve --scrub-interval -1s: exit %d\n%s", r.code, r.stderr)
	}
}
