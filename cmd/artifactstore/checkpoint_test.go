package main_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
)

// checkpointToken is the admin token the servers of these tests accept
// and their clients send.
const checkpointToken = "checkpoint-test-token"

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// storeServer is an `artifactstore serve` process.
type storeServer struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

// serveStore starts a server on the store of dir with args added.
func serveStore(t *testing.T, dir string, args ...string) *storeServer {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--database", filepath.Join(dir, "srv.db"),
		"--store", filepath.Join(dir, "srv")}, args...)...)
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_API_TOKEN="+checkpointToken)
	s := &storeServer{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("serve stderr:\n%s", s.stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, s.stderr.String())
	}
	s.url = regexp.MustCompile(`http://\S+`).FindString(line)
	return s
}

// stop interrupts the server and waits for it to exit cleanly.
func (s *storeServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, s.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}

// waitLog waits until the server's log holds want.
func (s *storeServer) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never logged %q:\n%s", want, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// asClient runs the binary as a client of the server at url.
func asClient(t *testing.T, dir, url string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--server", url}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_TOKEN="+checkpointToken)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return result{code, stdout.String(), stderr.String()}
}

// TestRemovedTailCaughtByCheckpoint plays an attacker who owns the
// database: they remove the last events and roll store_head back, which
// leaves a whole chain; the checkpoint the server signed catches it, and
// so does a copy kept elsewhere once they removed the checkpoints too.
func TestRemovedTailCaughtByCheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	local := []string{"--database", filepath.Join(dir, "srv.db"), "--store", filepath.Join(dir, "srv")}
	l := func(args ...string) []string { return append(append([]string{}, local...), args...) }

	srv := serveStore(t, dir, "--checkpoint-interval", "1h")
	keyFile := filepath.Join(dir, "srv", "checkpoint.key")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint key: %v, %v; want a file of mode 0600", fi, err)
	}
	src := filepath.Join(dir, "src")
	tree(t, src)
	if r := asClient(t, dir, srv.url, "push", src, "--ref", "outputs/a:1"); r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	// Stopping checkpoints what was written since the last round.
	srv.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "srv", "checkpoint.json")); err != nil {
		t.Fatalf("no checkpoint file beside the key: %v", err)
	}

	out := ok(t, dir, l("replay", "--verify")...)
	head := regexp.MustCompile(`(?m)^head (\d+:[0-9a-f]{64})$`).FindStringSubmatch(out)
	if head == nil || !strings.Contains(out, "1 checkpoint reached; the newest is the checkpoint of event 5") {
		t.Fatalf("replay --verify after the server stopped:\n%s", out)
	}
	ok(t, dir, l("replay", "--verify", "--expect-head", head[1])...)

	// More events, checkpointed by hand, and a copy kept elsewhere.
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "b.txt"), []byte("bravo\n"), 0o644)
	ok(t, dir, l("push", other, "--ref", "outputs/b:1")...)
	r := run(t, dir, l("replay", "--verify", "--expect-head", head[1])...)
	if r.code != 1 || !strings.Contains(r.stderr, "the log goes on past the expected head, event 5, to event 8") {
		t.Errorf("replay --verify --expect-head of an older head: exit %d\n%s", r.code, r.stderr)
	}
	var signed eventlog.Checkpoint
	if err := json.Unmarshal([]byte(ok(t, dir, l("checkpoint", "--sign")...)), &signed); err != nil || signed.Seq != 8 {
		t.Fatalf("checkpoint --sign: %+v, %v", signed, err)
	}
	kept := filepath.Join(dir, "kept.json")
	if out := ok(t, dir, l("checkpoint", "--out", kept)...); !strings.Contains(out, "the checkpoint of event 8") {
		t.Errorf("checkpoint --out: %s", out)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "srv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	// The whole attack: the events, the head and what they projected.
	var manifest, blob string
	if err := db.QueryRow("SELECT r.manifest_digest, mb.blob_digest FROM refs r JOIN manifest_blobs mb ON mb.manifest_digest = r.manifest_digest "+
		"WHERE r.namespace = 'outputs' AND r.name = 'b'").Scan(&manifest, &blob); err != nil {
		t.Fatal(err)
	}
	exec("DROP TRIGGER store_events_no_delete",
		"DELETE FROM store_events WHERE seq > 5",
		"UPDATE store_head SET seq = 5, hash = (SELECT hash FROM store_events WHERE seq = 5)",
		"DELETE FROM refs WHERE namespace = 'outputs' AND name = 'b'",
		"DELETE FROM manifest_blobs WHERE manifest_digest = '"+manifest+"'",
		"DELETE FROM manifests WHERE digest = '"+manifest+"'",
		"DELETE FROM blobs WHERE digest = '"+blob+"'")
	r = run(t, dir, l("replay", "--verify")...)
	if r.code != 1 || !strings.Contains(r.stderr, "the log ends at event 5") || !strings.Contains(r.stderr, "checkpoint of event 8") {
		t.Errorf("replay --verify of a log cut back under its checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The server notices at its first round, and signs nothing more.
	srv = serveStore(t, dir, "--checkpoint-interval", "1h")
	srv.waitLog(t, "does not match its last checkpoint")
	r = asClient(t, dir, srv.url, "replay", "--verify")
	if r.code != 1 || !strings.Contains(r.stderr, "the log ends at event 5") {
		t.Errorf("replay --verify through the server: exit %d\n%s", r.code, r.stderr)
	}
	srv.stop(t)

	// Removing the checkpoints as well, and the file beside the key, makes
	// the database look whole: only the copy kept elsewhere tells.
	exec("DROP TRIGGER store_checkpoints_no_delete", "DELETE FROM store_checkpoints WHERE seq > 5")
	if err := os.Rename(filepath.Join(dir, "srv", "checkpoint.json"), filepath.Join(dir, "moved.json")); err != nil {
		t.Fatal(err)
	}
	ok(t, dir, l("replay", "--verify")...)
	r = run(t, dir, l("replay", "--verify", "--checkpoint", kept)...)
	if r.code != 1 || !strings.Contains(r.stderr, "the log ends at event 5") {
		t.Errorf("replay --verify --checkpoint: exit %d\n%s", r.code, r.stderr)
	}

	// A checkpoint forged by copying a signature onto another event.
	exec("INSERT INTO store_checkpoints (seq, hash, at, public_key, signature) " +
		"SELECT 4, (SELECT hash FROM store_events WHERE seq = 4), at, public_key, signature FROM store_checkpoints WHERE seq = 5")
	r = run(t, dir, l("replay", "--verify", "--json")...)
	if r.code != 1 || !strings.Contains(r.stdout, "forged or altered") || !strings.Contains(r.stdout, `"intact": false`) {
		t.Errorf("replay --verify --json with a forged checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, bad := range [][]string{{"--expect-head", "5"}, {"--checkpoint", filepath.Join(dir, "none.json")}, {"--checkpoint-public-key", "abc"}} {
		if r := run(t, dir, l(append([]string{"replay", "--verify"}, bad...)...)...); r.code != 2 {
			t.Errorf("replay --verify %v: exit %d, want 2\n%s", bad, r.code, r.stderr)
		}
	}
}
