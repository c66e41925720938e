package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // baseline queries

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	elsqlite "github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
)

const mib = 1 << 20

// build compiles a command of this module once per harness run.
func (h *harness) build(ctx context.Context, pkg string) (string, error) {
	if p, ok := h.bin[pkg]; ok {
		return p, nil
	}
	out := filepath.Join(h.dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./"+pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	h.bin[pkg] = out
	return out, nil
}

// pattern yields size pseudo-random bytes from a seed, without holding them.
type pattern struct {
	rng  *rand.ChaCha8
	left int64
}

func newPattern(seed byte, size int64) *pattern {
	var s [32]byte
	s[0] = seed
	return &pattern{rng: rand.NewChaCha8(s), left: size}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	return n, nil
}

// server is an artifactstore serve process, and the admin token it
// accepts.
type server struct {
	cmd   *exec.Cmd
	addr  string
	token string
}

func (h *harness) startServer(ctx context.Context, name string) (*server, error) {
	bin, err := h.build(ctx, "cmd/artifactstore")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.dir, name)
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0",
		"--database", filepath.Join(dir, "meta.db"), "--store", filepath.Join(dir, "store"))
	// Requests carry a token, as they must: the figures include checking it.
	token := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_API_TOKEN="+token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not start: %w", err)
	}
	m := regexp.MustCompile(`http://(\S+)`).FindStringSubmatch(line)
	if m == nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server said %q", line)
	}
	return &server{cmd: cmd, addr: m[1], token: token}, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// procKB reads a field such as VmRSS or VmHWM (in KiB) of a process.
func procKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			return strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// upload streams body to the server's monolithic upload route.
func (s *server) upload(ctx context.Context, d digest.Digest, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+s.addr+"/api/v1/blobs/uploads?digest="+d.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("upload: %s: %s", resp.Status, b)
	}
	return nil
}

// benchUpload uploads a file through the HTTP API to the fs backend and
// compares with sha256sum reading the same file.
func benchUpload(ctx context.Context, h *harness) ([]Result, error) {
	size := int64(1024 * mib)
	if h.quick {
		size = 64 * mib
	}
	file := filepath.Join(h.dir, "upload.bin")
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, newPattern(1, size)); err != nil {
		return nil, err
	}
	f.Close()
	defer os.Remove(file)
	// Warm the page cache for both sides alike, then time sha256sum.
	exec.Command("cat", file).Run()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "sha256sum", file).Output()
	if err != nil {
		return nil, fmt.Errorf("sha256sum: %w", err)
	}
	shaSecs := time.Since(start).Seconds()
	d, err := digest.Parse("sha256:" + strings.Fields(string(out))[0])
	if err != nil {
		return nil, err
	}
	srv, err := h.startServer(ctx, "upload")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	in, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	start = time.Now()
	if err := srv.upload(ctx, d, in, size); err != nil {
		return nil, err
	}
	upSecs := time.Since(start).Seconds()
	mb := float64(size) / 1e6
	upRate, shaRate := mb/upSecs, mb/shaSecs
	return []Result{{
		Name: fmt.Sprintf("upload %d MiB via HTTP to fs", size/mib), Value: upRate, Unit: "MB/s",
		Baseline: "sha256sum MB/s", BaselineValue: shaRate, Ratio: upRate / shaRate,
		Goal: "ratio >= 0.8", Met: upRate/shaRate >= 0.8,
		Note: "the upload hashes, writes, fsyncs and renames; sha256sum only reads and hashes",
	}}, nil
}

// benchRSS streams a large upload and reports how much the server's peak
// resident memory grew over its idle size.
func benchRSS(ctx context.Context, h *harness) ([]Result, error) {
	size := int64(4096 * mib)
	if h.quick {
		size = 256 * mib
	}
	hh := sha256.New()
	if _, err := io.Copy(hh, newPattern(2, size)); err != nil {
		return nil, err
	}
	d, err := digest.Parse("sha256:" + hex.EncodeToString(hh.Sum(nil)))
	if err != nil {
		return nil, err
	}
	srv, err := h.startServer(ctx, "rss")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	// One small request first so the idle figure includes a served request.
	small := []byte("warm-up")
	sd, _ := digest.FromBytes(digest.SHA256, small)
	if err := srv.upload(ctx, sd, strings.NewReader(string(small)), int64(len(small))); err != nil {
		return nil, err
	}
	idle, err := procKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	// Above the 1 GiB single-request limit: the client's resumable upload,
	// 16 MiB per request, as a real client sends a big artifact.
	c := &httpapi.Client{BaseURL: "http://" + srv.addr, Token: srv.token}
	if _, err := c.Upload(ctx, "bench", digest.SHA256, d, newPattern(2, size), size); err != nil {
		return nil, err
	}
	peak, err := procKB(pid, "VmHWM")
	if err != nil {
		return nil, err
	}
	growth := float64(peak-idle) / 1024
	return []Result{{
		Name: fmt.Sprintf("server peak RSS growth, %d MiB upload", size/mib), Value: growth, Unit: "MiB",
		Baseline: "idle server RSS MiB", BaselineValue: float64(idle) / 1024, Ratio: growth / (float64(idle) / 1024),
		Goal: "growth <= 64 MiB", Met: growth <= 64,
	}}, nil
}

// benchFindMissing asks for 10,000 digests, half stored, on SQLite, and
// compares with reading every row of the blobs table.
func benchFindMissing(ctx context.Context, h *harness) ([]Result, error) {
	const n = 10000
	path := filepath.Join(h.dir, "findmissing.db")
	drv, err := elsqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	meta := eventlog.New(drv)
	defer meta.Close()
	ds := make([]digest.Digest, n)
	for i := range ds {
		ds[i], _ = digest.FromBytes(digest.SHA256, []byte(strconv.Itoa(i)))
		if i%2 == 0 {
			if err := meta.AddBlob(ctx, "bench", ds[i], int64(len(strconv.Itoa(i)))); err != nil {
				return nil, err
			}
		}
	}
	best := func(f func() error) (time.Duration, error) {
		var min time.Duration
		for i := 0; i < 5; i++ {
			start := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			if d := time.Since(start); i == 0 || d < min {
				min = d
			}
		}
		return min, nil
	}
	ours, err := best(func() error {
		missing, err := meta.Missing(ctx, ds)
		if err == nil && len(missing) != n/2 {
			err = fmt.Errorf("find-missing returned %d, want %d", len(missing), n/2)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	scan, err := best(func() error {
		rows, err := db.QueryContext(ctx, "SELECT digest FROM blobs")
		if err != nil {
			return err
		}
		defer rows.Close()
		var s string
		for rows.Next() {
			if err := rows.Scan(&s); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return []Result{{
		Name: "find-missing of 10,000 digests on SQLite", Value: ms(ours), Unit: "ms",
		Baseline: "full scan of the blobs table ms", BaselineValue: ms(scan), Ratio: ms(ours) / ms(scan),
		Goal: "<= 100 ms", Met: ms(ours) <= 100,
	}}, nil
}

// benchReplay rebuilds the state from a log and compares with only
// verifying the hash chain.
func benchReplay(ctx context.Context, h *harness) ([]Result, error) {
	events := 20000
	if h.quick {
		events = 2000
	}
	drv, err := elsqlite.Open(ctx, filepath.Join(h.dir, "replay.db"))
	if err != nil {
		return nil, err
	}
	meta := eventlog.New(drv)
	defer meta.Close()
	for i := 0; i < events; i++ {
		d, _ := digest.FromBytes(digest.SHA256, []byte("event-"+strconv.Itoa(i)))
		if err := meta.AddBlob(ctx, "bench", d, 10); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if _, err := meta.Verify(ctx); err != nil {
		return nil, err
	}
	verify := float64(events) / time.Since(start).Seconds()
	start = time.Now()
	rep, err := meta.Replay(ctx)
	if err != nil {
		return nil, err
	}
	if !rep.Match() {
		return nil, errors.New("replay does not match the live state")
	}
	replay := float64(events) / time.Since(start).Seconds()
	return []Result{{
		Name: fmt.Sprintf("replay --verify of %d events on SQLite", events), Value: replay, Unit: "events/s",
		Baseline: "chain verification events/s", BaselineValue: verify, Ratio: replay / verify,
		Goal: "report", Met: true,
	}}, nil
}
