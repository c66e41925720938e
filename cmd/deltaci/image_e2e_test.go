package main_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// The image tests build deploy/*.Containerfile with podman through
// deploy/build-images, look inside the images, and run the server image
// with a runner on the host. A machine without a registry cannot pull
// debian:bookworm-slim, so the base is a Debian root filesystem that
// .ci/debian-base assembles once into a cache, imported under a local name.

// debianBaseImage is the local name the imported root filesystem gets.
const debianBaseImage = "localhost/deltaci-test/debian:bookworm"

// podmanEnv is what the image tests run podman with.
type podmanEnv struct {
	env []string // the test's environment plus CONTAINERS_CONF
	// runErr is why podman cannot start containers here, nil when it can.
	runErr error
}

// needPodman finds podman and the Debian base, or skips the test when
// either is missing; under CI=true a missing one fails it, because
// .ci/run installs both.
func needPodman(t *testing.T) *podmanEnv {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, "!!! "+msg+": the image test is skipped (it fails under CI=true)")
		t.Skip(msg)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		missing("podman is not installed")
	}
	base := os.Getenv("DELTACI_DEBIAN_BASE")
	if base == "" {
		cache := os.Getenv("DELTACI_TEST_CACHE")
		if cache == "" {
			dir, err := os.UserCacheDir()
			if err != nil {
				missing("no cache directory for the Debian base: %v", err)
			}
			cache = filepath.Join(dir, "deltaci-test")
		}
		base = filepath.Join(cache, "debian-bookworm-base", "rootfs.tar")
	}
	if _, err := os.Stat(base); err != nil {
		missing("no Debian base root filesystem (run .ci/debian-base): %v", err)
	}
	p := &podmanEnv{env: append(os.Environ(), "CONTAINERS_CONF="+containersConf(t))}
	// Imported again when the file is newer than the image (rebuilt).
	fi, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	created, err := p.run(t, "image", "inspect", "--format", "{{.Created.Unix}}", debianBaseImage)
	if sec, perr := strconv.ParseInt(strings.TrimSpace(created), 10, 64); err != nil || perr != nil || sec < fi.ModTime().Unix() {
		if out, err := p.run(t, "import", base, debianBaseImage); err != nil {
			t.Fatalf("podman import %s: %v\n%s", base, err, out)
		}
	}
	// Whether this machine can run a container at all: git in the base,
	// without a network.
	if out, err := p.run(t, "run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/git", debianBaseImage, "--version"); err != nil {
		p.runErr = fmt.Errorf("podman run: %v: %s", err, strings.TrimSpace(out))
	}
	return p
}

// containersConf writes the podman settings this kind of machine needs:
// runc as the runtime when it is installed (crun 1.8 refuses a host whose
// cgroup v2 hierarchy still has controllers beside v1 ones: "cgroups in
// hybrid mode not supported"), and the process's own hard limits as the
// containers' limits (without CAP_SYS_RESOURCE the runtime may not raise
// them to podman's defaults; podman lowers its own process limit to 32768
// before starting one).
func containersConf(t *testing.T) string {
	t.Helper()
	var nofile, nproc syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc); err != nil {
		t.Fatal(err)
	}
	nproc.Max = min(nproc.Max, 32768)
	var b strings.Builder
	fmt.Fprintf(&b, "[containers]\ndefault_ulimits = [\"nofile=%d:%d\", \"nproc=%d:%d\"]\n", nofile.Max, nofile.Max, nproc.Max, nproc.Max)
	if _, err := exec.LookPath("runc"); err == nil {
		b.WriteString("[engine]\nruntime = \"runc\"\n")
	}
	p := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs podman. Not bound to t.Context(): cleanups use it too, after
// that context is canceled.
func (p *podmanEnv) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("podman", args...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *podmanEnv) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(t, args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// buildImages runs deploy/build-images for the given images with version
// and returns its output: the tags it made, one a line.
func (p *podmanEnv) buildImages(t *testing.T, version, images string, extra ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "deploy/build-images")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(append(p.env, "VERSION="+version, "IMAGES="+images, "BASE="+debianBaseImage, "ENGINE=podman"), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return stdout.String(), err
}

// imageInfo is what the tests read of `podman image inspect`.
type imageInfo struct {
	Size   int64
	Config struct {
		User       string
		Entrypoint []string
		Labels     map[string]string
	}
	RepoTags []string
}

func (p *podmanEnv) inspect(t *testing.T, ref string) imageInfo {
	t.Helper()
	var infos []imageInfo
	if err := json.Unmarshal([]byte(p.must(t, "image", "inspect", ref)), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("podman image inspect %s: %v (%d images)", ref, err, len(infos))
	}
	return infos[0]
}

// files lists an image's files (regular files and links) by path, with
// each regular file's content when it is small.
func (p *podmanEnv) files(t *testing.T, ref string) map[string]*tar.Header {
	t.Helper()
	id := strings.TrimSpace(p.must(t, "create", ref))
	defer p.run(t, "rm", "-f", id) //nolint:errcheck // best effort
	cmd := exec.CommandContext(t.Context(), "podman", "export", id)
	cmd.Env = p.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading podman export: %v", err)
		}
		files["/"+strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")] = h
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("podman export: %v", err)
	}
	return files
}

// TestImages builds both images, checks their tags, labels, user and
// files, runs the server image on loopback and has a runner on the host
// run a triggered run through it.
func TestImages(t *testing.T) {
	p := needPodman(t)
	version := fmt.Sprintf("0.0.0-e2e.%d", time.Now().UnixNano())
	revision := strings.TrimSpace(git(t, filepath.Join("..", ".."), "rev-parse", "HEAD"))
	out, err := p.buildImages(t, version, "server runner")
	tags := strings.Fields(out)
	t.Cleanup(func() {
		for _, tag := range tags {
			p.run(t, "rmi", tag) //nolint:errcheck // best effort
		}
	})
	if err != nil {
		t.Fatalf("deploy/build-images: %v", err)
	}
	want := []string{"deltaci/server:" + version, "deltaci/server:" + version + "-" + revision[:12],
		"deltaci/runner:" + version, "deltaci/runner:" + version + "-" + revision[:12]}
	if strings.Join(tags, " ") != strings.Join(want, " ") {
		t.Fatalf("build-images tagged %q, want %q", tags, want)
	}
	for _, image := range []string{"server", "runner"} {
		info := p.inspect(t, "deltaci/"+image+":"+version)
		t.Logf("deltaci/%s:%s is %.1f MB (%d bytes)", image, version, float64(info.Size)/1e6, info.Size)
		if info.Config.User != "65532:65532" {
			t.Errorf("%s runs as %q, want the non-root 65532:65532", image, info.Config.User)
		}
		for label, v := range map[string]string{
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.revision": revision,
			"org.opencontainers.image.source":   "https://github.com/deltaci/deltaci",
		} {
			if got := info.Config.Labels[label]; got != v {
				t.Errorf("%s label %s = %q, want %q", image, label, got, v)
			}
		}
		if alias := p.inspect(t, "deltaci/"+image+":"+version+"-"+revision[:12]); alias.Size != info.Size || len(alias.RepoTags) < 2 {
			t.Errorf("%s: the version-revision tag is not the same image: %+v", image, alias.RepoTags)
		}
	}

	t.Run("ServerFiles", func(t *testing.T) {
		files := p.files(t, "deltaci/server:"+version)
		for _, f := range []string{"/usr/local/bin/deltaci", "/usr/bin/git", "/usr/lib/git-core/git-remote-http",
			"/usr/lib/git-core/git-remote-https", "/usr/lib/git-core/git-upload-pack", "/etc/ssl/certs/ca-certificates.crt",
			"/etc/passwd", "/etc/group", "/tmp", "/var/lib/deltaci"} {
			if files[f] == nil {
				t.Errorf("the server image lacks %s", f)
			}
		}
		// An empty base: no shell, no package manager.
		for _, f := range []string{"/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/apt-get", "/usr/bin/dpkg"} {
			if files[f] != nil {
				t.Errorf("the server image has %s; it should hold only the server, git and what they load", f)
			}
		}
		if h := files["/var/lib/deltaci"]; h != nil && (h.Uid != 65532 || h.Gid != 65532) {
			t.Errorf("/var/lib/deltaci belongs to %d:%d, want the server's user 65532:65532", h.Uid, h.Gid)
		}
		if h := files["/tmp"]; h != nil && h.Mode&0o1777 != 0o1777 {
			t.Errorf("/tmp has mode %o, want 1777", h.Mode)
		}
	})

	t.Run("TagsAreImmutable", func(t *testing.T) {
		// The same version from another binary is refused.
		other := filepath.Join(t.TempDir(), "deltaci")
		if err := os.WriteFile(other, []byte("not the same binary"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := p.buildImages(t, version, "server", "BINARY="+other)
		if err == nil || !strings.Contains(err.Error(), "tags are immutable") {
			t.Fatalf("rebuilding version %s from another binary: %v\n%s", version, err, out)
		}
	})

	if p.runErr != nil {
		// Tested above: the build, the tags, the labels, the user and the
		// files. Running needs a machine where podman can start containers.
		t.Skipf("podman cannot run containers here, so the server image is not run: %v", p.runErr)
	}

	t.Run("Versions", func(t *testing.T) {
		for _, image := range []string{"server", "runner"} {
			out := p.must(t, "run", "--rm", "--network", "none", "deltaci/"+image+":"+version, "version")
			if !strings.HasPrefix(out, "deltaci "+version+" ") {
				t.Errorf("deltaci version in the %s image says %q, want version %s", image, out, version)
			}
		}
		out := p.must(t, "run", "--rm", "--network", "none", "--entrypoint", "sh", "deltaci/runner:"+version,
			"-c", "id -u; for c in git bwrap pasta; do command -v $c; done")
		if want := "65532\n/usr/bin/git\n/usr/bin/bwrap\n/usr/bin/pasta\n"; out != want {
			t.Errorf("the runner image has user and tools %q, want %q", out, want)
		}
	})

	t.Run("ServerRunsARun", func(t *testing.T) { serverImageRunsARun(t, p, "deltaci/server:"+version) })
	t.Run("RunnerRunsSandboxedJob", func(t *testing.T) { runnerImageRunsASandboxedJob(t, p, "deltaci/runner:"+version) })
}

// httpRepo serves a repository whose pipeline has one job running cmd
// over HTTP (git http-backend), as a forge would, and returns its URL.
func httpRepo(t *testing.T, cmd string) string {
	t.Helper()
	dir := repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  hello:\n    run: " + cmd + "\n"})
	root := t.TempDir()
	git(t, root, "clone", "-q", "--bare", dir, filepath.Join(root, "hello.git"))
	execPath := strings.TrimSpace(git(t, root, "--exec-path"))
	forge := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	})
	t.Cleanup(forge.Close)
	return forge.URL + "/hello.git"
}

// secretFiles writes the registration and API tokens into a directory to
// mount as /run/secrets, readable by the containers' user.
func secretFiles(t *testing.T) string {
	t.Helper()
	secrets := t.TempDir()
	if err := os.Chmod(secrets, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"registration_token": registrationToken, "api_token": e2eAPIToken} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return secrets
}

// addProject registers repoURL as project hello of s.
func addProject(t *testing.T, s *server, repoURL string) {
	t.Helper()
	add := command("", "projects", "add", "hello", "--server", s.url(), "--repo", repoURL, "--protected", "main")
	add.Env = childEnv(s.userEnv()...)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("deltaci projects add: %v\n%s", err, out)
	}
	s.projects[repoURL] = "hello"
}

// serverImageRunsARun starts the server image on the host's loopback with
// its secrets given as files, then triggers a run that a runner on the
// host executes. The repository is served over HTTP (git http-backend),
// as a forge would: the server image has no shell, and git needs one to
// fetch from a local path.
func serverImageRunsARun(t *testing.T, p *podmanEnv, image string) {
	repoURL := httpRepo(t, "echo hello from the image test")
	secrets := secretFiles(t)
	name := fmt.Sprintf("deltaci-e2e-%d", time.Now().UnixNano())
	p.must(t, "run", "-d", "--name", name, "--network", "host", "-v", secrets+":/run/secrets:ro",
		"-e", "DELTACI_REGISTRATION_TOKEN_FILE=/run/secrets/registration_token",
		"-e", "DELTACI_API_TOKEN_FILE=/run/secrets/api_token",
		image, "server", "--listen", "127.0.0.1:0", "--data-dir", "/var/lib/deltaci", "--executor", "shell",
		"--lease-ttl", "3s", "--reap-interval", "500ms")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(t, "logs", name)
			t.Logf("server container logs:\n%s", tail(out))
		}
		p.run(t, "rm", "-f", "-t", "2", name) //nolint:errcheck // best effort
	})

	// The server prints its address once it listens.
	listening := regexp.MustCompile(`"msg":"listening","addr":"(127\.0\.0\.1:[0-9]+)"`)
	var addr string
	eventually(t, "the server in the container listens", func() bool {
		out, _ := p.run(t, "logs", name)
		if m := listening.FindStringSubmatch(out); m != nil {
			addr = m[1]
			return true
		}
		state, _ := p.run(t, "inspect", "--format", "{{.State.Running}}", name)
		if strings.TrimSpace(state) == "false" {
			t.Fatalf("the server container stopped:\n%s", out)
		}
		return false
	})
	eventually(t, "/readyz answers 200", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	s := &server{addr: addr, executor: "shell", apiToken: e2eAPIToken, projects: map[string]string{}}
	s.api = &protocol.Client{BaseURL: s.url(), Token: func(context.Context) (string, error) { return s.apiToken, nil }}
	addProject(t, s, repoURL)
	s.startRunner(t, runnerOpts{})
	run := s.waitRunEnds(t, s.createRun(t, repoURL, "main").ID)
	if run.State != string(core.RunSucceeded) {
		t.Fatalf("the run ended %s: %s\n%s", run.State, describeRun(&run), s.logsOf(t, run))
	}
	if logs := s.logsOf(t, run); !strings.Contains(logs, "hello from the image test") {
		t.Errorf("the job's log lacks its output:\n%s", logs)
	}
}

// runnerImageRunsASandboxedJob starts a sandbox-executor server on the
// host and the runner image with the one setting podman needs for
// bubblewrap (/proc unmasked), and has it run a sandboxed job.
func runnerImageRunsASandboxedJob(t *testing.T, p *podmanEnv, image string) {
	repoURL := httpRepo(t, "echo sandboxed as $(id -u) in $PWD")
	secrets := secretFiles(t)
	s := startServer(t, serverOpts{executor: "sandbox"})
	addProject(t, s, repoURL)
	name := fmt.Sprintf("deltaci-e2e-runner-%d", time.Now().UnixNano())
	p.must(t, "run", "-d", "--name", name, "--network", "host", "--security-opt", "unmask=ALL",
		"-v", secrets+":/run/secrets:ro", "-e", "DELTACI_REGISTRATION_TOKEN_FILE=/run/secrets/registration_token",
		image, "runner", "--server", s.url(), "--work-dir", "/var/lib/deltaci-runner", "--grace", "1s", "--drain-timeout", "5s")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(t, "logs", name)
			t.Logf("runner container logs:\n%s", tail(out))
		}
		p.run(t, "rm", "-f", "-t", "5", name) //nolint:errcheck // best effort
	})
	run := s.waitRunEnds(t, s.createRun(t, repoURL, "main").ID)
	if run.State != string(core.RunSucceeded) {
		t.Fatalf("the run ended %s: %s\n%s", run.State, describeRun(&run), s.logsOf(t, run))
	}
	if logs := s.logsOf(t, run); !strings.Contains(logs, "sandboxed as 65532 in ") {
		t.Errorf("the job's log lacks its output:\n%s", logs)
	}
}
