package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeNeverSendsACompleteCorruptBlob damages a pushed blob on the
// disk of a real `artifactstore serve`, on SQLite and PostgreSQL, and
// reads it with a plain net/http client: the whole blob comes short, a
// range over the damage is a 500, a range elsewhere is served. The server
// logs the damage at ERROR and counts it in /metrics; a pull fails, and
// pushing the same files again repairs the blob.
func TestServeNeverSendsACompleteCorruptBlob(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			srv := serve(t, dir, nil, database(t, engine)...)
			if srv.token == "" {
				t.Fatalf("the first start printed no admin token:\n%s", srv.stderr())
			}
			as := []string{"--server", srv.url, "--api-token", srv.token}
			src := filepath.Join(dir, "src")
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			content := make([]byte, 3_000_000)
			_, _ = rand.NewChaCha8([32]byte{42}).Read(content)
			if err := os.WriteFile(filepath.Join(src, "big.bin"), content, 0o644); err != nil {
				t.Fatal(err)
			}
			ok(t, dir, append(as, "push", src, "--ref", "outputs/big:v1")...)

			sum := sha256.Sum256(content)
			h := hex.EncodeToString(sum[:])
			blobURL := srv.url + "/api/v1/blobs/sha256:" + h
			stored := filepath.Join(dir, "srv", "blobs", "sha256", h[:2], h)
			b, err := os.ReadFile(stored)
			if err != nil {
				t.Fatal(err)
			}
			b[2_500_000] ^= 0x01 // in the third chunk, the last one
			if err := os.Chmod(stored, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stored, b, 0o444); err != nil {
				t.Fatal(err)
			}

			status, length, got, readErr := plainGet(t, blobURL, srv.token, "")
			if status == http.StatusOK && readErr == nil && int64(len(got)) == length {
				t.Fatalf("whole GET: a complete body of a corrupt blob (%d bytes)", len(got))
			}
			if !bytes.Equal(got, content[:len(got)]) && status == http.StatusOK {
				t.Error("whole GET: the client read bytes that are not the blob's")
			}
			if status, _, body, _ := plainGet(t, blobURL, srv.token, "bytes=2499990-2500010"); status != http.StatusInternalServerError {
				t.Errorf("range over the damage: %d %q, want 500", status, body)
			}
			status, length, got, readErr = plainGet(t, blobURL, srv.token, "bytes=100-199")
			if status != http.StatusPartialContent || readErr != nil || length != 100 || !bytes.Equal(got, content[100:200]) {
				t.Errorf("range of an intact chunk: %d, %d of %d bytes, %v", status, len(got), length, readErr)
			}

			_, metrics := call(t, "GET", srv.url+"/metrics", "", nil, nil)
			if !regexp.MustCompile(`(?m)^artifactstore_blob_corruptions_total\{found_by="read"\} [1-9]`).MatchString(metrics) {
				t.Errorf("/metrics does not count the corrupt reads:\n%s", grep(metrics, "corruption"))
			}
			if log := srv.stderr(); !strings.Contains(log, `"level":"ERROR","msg":"stored blob is corrupt`) || !strings.Contains(log, h) {
				t.Errorf("no ERROR line naming the corrupt blob:\n%s", log)
			}

			if r := run(t, dir, append(as, "pull", "outputs/big:v1", filepath.Join(dir, "bad"))...); r.code == 0 {
				t.Error("pull of a corrupt blob succeeded")
			}
			r := run(t, dir, append(as, "push", src, "--ref", "outputs/big:v1")...)
			if r.code != 0 || !strings.Contains(r.stderr, "uploaded 1 new blob") {
				t.Fatalf("push after the failed pull: exit %d\n%s", r.code, r.stderr)
			}
			ok(t, dir, append(as, "pull", "outputs/big:v1", filepath.Join(dir, "good"))...)
			if again, _ := os.ReadFile(filepath.Join(dir, "good", "big.bin")); !bytes.Equal(again, content) {
				t.Error("the pulled file differs after the repair")
			}
			if status, length, got, readErr := plainGet(t, blobURL, srv.token, ""); status != http.StatusOK || readErr != nil || int64(len(got)) != length || !bytes.Equal(got, content) {
				t.Errorf("whole GET after the repair: %d, %d of %d bytes, %v", status, len(got), length, readErr)
			}
		})
	}
}

// plainGet reads a blob as curl would: the status, the announced length,
// the bytes that came and how the body ended.
func plainGet(t *testing.T, url, token, rng string) (status int, length int64, body []byte, readErr error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("no answer: %w", err)
	}
	defer resp.Body.Close()
	body, readErr = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.ContentLength, body, readErr
}

// grep keeps the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
