package main_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e tests skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "artifactstore-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "artifactstore")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_ACTOR=tester")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := run(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func tree(t *testing.T, root string) {
	t.Helper()
	for name, content := range map[string]string{"a.txt": "alpha\n", "bin/run": "#!/bin/sh\necho hi\n", "deep/x/y": "y"} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "bin/run"), 0o755)
	if err := os.Symlink("../a.txt", filepath.Join(root, "bin/link")); err != nil {
		t.Fatal(err)
	}
}

// roundTrip exercises every command against one store, given extra flags
// that select it (local paths, or --server and a token). actor is who the
// audit trail must name: the --as of a local store, a server's token.
func roundTrip(t *testing.T, dir, actor string, sel ...string) {
	t.Helper()
	a := func(args ...string) []string { return append(append([]string{}, sel...), args...) }
	src := filepath.Join(dir, "src")
	tree(t, src)
	var push map[string]any
	if err := json.Unmarshal([]byte(ok(t, dir, a("push", src, "--ref", "outputs/build:v1", "--json")...)), &push); err != nil {
		t.Fatal(err)
	}
	manifest := push["manifest"].(string)
	if push["files"].(float64) != 3 || push["uploaded"].(float64) != 3 {
		t.Errorf("push = %v", push)
	}
	if again := ok(t, dir, a("push", src, "--ref", "outputs/build:v2", "--json")...); !strings.Contains(again, `"uploaded": 0`) {
		t.Errorf("second push uploaded again: %s", again)
	}
	if ls := ok(t, dir, a("ls", "outputs")...); !strings.Contains(ls, "outputs/build:v1") || !strings.Contains(ls, "outputs/build:v2") {
		t.Errorf("ls = %s", ls)
	}
	stat := ok(t, dir, a("stat", "outputs/build:v1")...)
	if !strings.Contains(stat, "100755") || !strings.Contains(stat, "bin/link -> ../a.txt") {
		t.Errorf("stat = %s", stat)
	}
	dest := filepath.Join(dir, "dest")
	ok(t, dir, a("pull", manifest, dest)...)
	if b, _ := os.ReadFile(filepath.Join(dest, "deep/x/y")); string(b) != "y" {
		t.Errorf("pulled deep/x/y = %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dest, "bin/run")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/run mode: %v %v", fi, err)
	}
	var st map[string]any
	json.Unmarshal([]byte(ok(t, dir, a("stat", "outputs/build:v1", "--json")...)), &st)
	known := st["entries"].([]any)[0].(map[string]any)["digest"].(string)
	absent := "sha256:" + strings.Repeat("0", 64)
	if fm := ok(t, dir, a("find-missing", known, absent)...); strings.TrimSpace(fm) != absent {
		t.Errorf("find-missing = %q", fm)
	}
	ok(t, dir, a("tag", "outputs/build:stable", "outputs/build:v1")...)
	ok(t, dir, a("tag", "outputs/build:v2", "--delete")...)
	ok(t, dir, a("tag", "outputs/build:stable", "--pin")...)
	if ls := ok(t, dir, a("ls", "outputs", "--json")...); !strings.Contains(ls, `"pinned": true`) {
		t.Errorf("pin did not show: %s", ls)
	}
	ok(t, dir, a("tag", "outputs/build:stable", "--unpin")...)
	ok(t, dir, a("retention", "set", "outputs", "--selector", "**", "--keep-last", "1")...)
	dry := ok(t, dir, a("retention", "apply", "outputs", "--dry-run")...)
	if !strings.Contains(dry, "would delete outputs/build:") || !strings.Contains(dry, "keep_last 1") {
		t.Errorf("dry run = %s", dry)
	}
	if ls := ok(t, dir, a("ls", "outputs")...); strings.Count(ls, "outputs/build:") != 2 {
		t.Errorf("dry run deleted refs: %s", ls)
	}
	ok(t, dir, a("retention", "apply", "outputs")...)
	if ls := ok(t, dir, a("ls", "outputs")...); strings.Count(ls, "outputs/build:") != 1 {
		t.Errorf("after retention: %s", ls)
	}
	ok(t, dir, a("gc", "--grace", "1h")...)
	audit := ok(t, dir, a("audit", "--actor", actor)...)
	for _, kind := range []string{"blob.added", "manifest.committed", "ref.set", "ref.deleted", "retention.set", "gc.completed"} {
		if !strings.Contains(audit, kind) {
			t.Errorf("audit lacks %s:\n%s", kind, audit)
		}
	}
	if v := ok(t, dir, a("replay", "--verify", "--json")...); !strings.Contains(v, `"match": true`) {
		t.Errorf("replay = %s", v)
	}
}

func TestLocalRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	roundTrip(t, dir, "tester")
	if _, err := os.Stat(filepath.Join(dir, "artifacts.db")); err != nil {
		t.Errorf("default database not in the working directory: %v", err)
	}
}

// server is a running `artifactstore serve`.
type server struct {
	cmd *exec.Cmd
	url string
	// token is the first admin token the server printed, "" when it
	// printed none.
	token string
	// errPath is the file the server's stderr goes to.
	errPath string
}

// stderr is what the server wrote on stderr so far.
func (s *server) stderr() string {
	b, _ := os.ReadFile(s.errPath)
	return string(b)
}

// serve starts `artifactstore serve` with its state in dir (extra flags
// after the defaults, env added to the environment) and returns it once
// it listens; the test's cleanup kills it.
func serve(t *testing.T, dir string, env []string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--database", filepath.Join(dir, "srv.db"), "--store", filepath.Join(dir, "srv")}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	// A file, not a pipe: what the server wrote before its first line on
	// stdout is in it once that line is read.
	errFile, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	s := &server{cmd: cmd, errPath: errFile.Name()}
	cmd.Stderr = errFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v\n%s", err, s.stderr())
	}
	s.url = regexp.MustCompile(`http://\S+`).FindString(line)
	// The first token is printed before the server listens.
	if m := regexp.MustCompile(`(?m)^    (dcs_\S+)$`).FindStringSubmatch(s.stderr()); m != nil {
		s.token = m[1]
	}
	return s
}

func TestServerRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := serve(t, dir, nil)
	if srv.token == "" {
		t.Fatalf("the first start printed no admin token:\n%s", srv.stderr())
	}
	cmd, url := srv.cmd, srv.url
	roundTrip(t, dir, "token:admin", "--server", url, "--api-token", srv.token)
	if _, err := os.Stat(filepath.Join(dir, "artifacts.db")); !os.IsNotExist(err) {
		t.Errorf("--server wrote a local database: %v", err)
	}
	// SIGTERM drains and exits cleanly.
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("serve did not stop on SIGINT")
	}
}

func TestReplayNamesTamperedEvent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	tree(t, src)
	ok(t, dir, "push", src, "--ref", "outputs/a:1")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "artifacts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TRIGGER store_events_no_update", "UPDATE store_events SET actor = 'mallory' WHERE seq = 2"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, dir, "replay", "--verify")
	if r.code != 1 || !strings.Contains(r.stderr, "event 2 (blob.added") || !strings.Contains(r.stderr, "altered") {
		t.Errorf("replay of a tampered log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// With --json, the answer says it too: intact up to event 1.
	r = run(t, dir, "replay", "--verify", "--json")
	var rep struct {
		Intact     bool   `json:"intact"`
		IntactUpTo int64  `json:"intact_up_to"`
		Error      string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 || rep.Intact || rep.IntactUpTo != 1 || !strings.Contains(rep.Error, "event 2") {
		t.Errorf("replay --json of a tampered log: exit %d, %+v, %v\n%s%s", r.code, rep, err, r.stdout, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"find-missing", "sha256:xyz"},
		{"tag", "no-namespace", "sha256:" + strings.Repeat("0", 64)},
		{"push"},
		{"pull", "../../etc:x", filepath.Join(dir, "d")},
		{"replay"},
		{"audit", "--since", "yesterday"},
		{"audit", "--limit", "0"},
		{"audit", "--after", "-1"},
		{"bogus"},
	} {
		if r := run(t, dir, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
	if r := run(t, dir, "pull", "outputs/none:1", filepath.Join(dir, "d")); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("pull of a missing ref: exit %d\n%s", r.code, r.stderr)
	}
}

// TestAuditPages: --limit and --after page through the audit trail.
func TestAuditPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, tag := range []string{"1", "2", "3"} {
		src := filepath.Join(dir, "src"+tag)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		ok(t, dir, "push", src, "--ref", "outputs/app:"+tag)
	}
	type event struct{ Seq int64 }
	page := func(args ...string) []event {
		t.Helper()
		var evs []event
		if err := json.Unmarshal([]byte(ok(t, dir, append([]string{"audit", "--json"}, args...)...)), &evs); err != nil {
			t.Fatal(err)
		}
		return evs
	}
	all := page()
	if len(all) < 3 {
		t.Fatalf("audit = %+v, want at least the three pushes", all)
	}
	first := page("--limit", "2")
	if len(first) != 2 || first[0] != all[0] || first[1] != all[1] {
		t.Fatalf("first page %+v of %+v", first, all)
	}
	rest := page("--after", strconv.FormatInt(first[1].Seq, 10))
	if len(rest) != len(all)-2 || rest[0] != all[2] {
		t.Fatalf("next page %+v of %+v", rest, all)
	}
}

// TestPullRefusesManifestSymlinkChain: a manifest made by hand, whose
// links a -> b/.. and b -> . would put a/ above the destination, is
// refused by pull, which writes nothing inside or around the destination.
func TestPullRefusesManifestSymlinkChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := serve(t, dir, nil)
	url := srv.url
	c := &httpapi.Client{BaseURL: url, Token: srv.token}
	link := func(p, target string) manifest.Entry {
		return manifest.Entry{Path: p, Mode: manifest.ModeSymlink | manifest.ModePerm, Target: target}
	}
	m := manifest.Manifest{Entries: []manifest.Entry{link("a", "b/.."), link("b", ".")}}
	d, err := c.PutManifest(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetRef(t.Context(), "outputs/evil:latest", d, nil); err != nil {
		t.Fatal(err)
	}
	box := filepath.Join(dir, "box")
	if err := os.MkdirAll(filepath.Join(box, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(box, "secret", "key"), []byte("do not touch"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "pull", "--server", url, "--api-token", srv.token, "outputs/evil:latest", filepath.Join(box, "dest"))
	if r.code == 0 || !strings.Contains(r.stderr, `symlink "a" -> "b/.."`) || !strings.Contains(r.stderr, "outside the destination") {
		t.Fatalf("pull of a chain escaping the destination: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	entries, err := os.ReadDir(box)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secret" {
		t.Errorf("the refused pull left %v next to the destination", entries)
	}
}
