// Package deploy_test checks the deployment files in this directory: the
// Compose file, the Kubernetes manifests and the Grafana dashboard. The
// images themselves are built and run by cmd/deltaci's TestImages.
package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// composeFile is the part of the Compose specification the test reads;
// decoding is strict, so a misspelled key fails it.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
	XServer any            `yaml:"x-server"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Restart     string            `yaml:"restart"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	SecurityOpt []string          `yaml:"security_opt"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.UnmarshalWithOptions(b, &c, yaml.Strict()); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// pinned is an image reference with a tag other than latest, or the
// project's own images, whose tag is the version the operator sets.
var pinned = regexp.MustCompile(`^([a-z0-9.-]+/)*[a-z0-9._-]+:[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

const ownImage = "${DELTACI_REPOSITORY:-deltaci}/%s:${DELTACI_VERSION:?set DELTACI_VERSION to the tag of the images}"

// TestCompose: every service has a pinned image, every long-running one a
// healthcheck, every dependency names a service and waits for the right
// condition, and every secret comes from a file that compose-secrets
// writes.
func TestCompose(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	want := []string{"migrate", "minio", "minio-bucket", "postgres", "proxy", "runner", "server-1", "server-2"}
	var got []string
	for name := range c.Services {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}

	oneShot := func(s composeService) bool { return s.Restart == "no" }
	for name, s := range c.Services {
		switch name {
		case "server-1", "server-2", "migrate":
			if s.Image != strings.ReplaceAll(ownImage, "%s", "server") {
				t.Errorf("%s: image %q, want the server image at DELTACI_VERSION", name, s.Image)
			}
		case "runner":
			if s.Image != strings.ReplaceAll(ownImage, "%s", "runner") {
				t.Errorf("%s: image %q, want the runner image at DELTACI_VERSION", name, s.Image)
			}
		default:
			if !pinned.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a tag", name, s.Image)
			}
		}
		if oneShot(s) {
			if s.Healthcheck != nil {
				t.Errorf("%s runs once and ends; a healthcheck would never pass", name)
			}
		} else {
			if s.Restart != "unless-stopped" {
				t.Errorf("%s: restart %q, want unless-stopped", name, s.Restart)
			}
			h := s.Healthcheck
			if h == nil || len(h.Test) < 2 || h.Test[0] != "CMD" || h.Interval == "" || h.Timeout == "" || h.Retries == 0 {
				t.Errorf("%s has no complete healthcheck (CMD test, interval, timeout, retries): %+v", name, h)
			}
		}
		for dep, d := range s.DependsOn {
			ds, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on %s, which is no service", name, dep)
			case oneShot(ds) && d.Condition != "service_completed_successfully":
				t.Errorf("%s waits for %s (it runs once) with %q, want service_completed_successfully", name, dep, d.Condition)
			case !oneShot(ds) && (d.Condition != "service_healthy" || ds.Healthcheck == nil):
				t.Errorf("%s waits for %s with %q, want service_healthy on a healthcheck", name, dep, d.Condition)
			}
		}
		// Secrets come as files: a _FILE variable names a mounted secret,
		// and no variable holds one.
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_FILE") {
				// MinIO takes a bare name under /run/secrets/.
				if sec := strings.TrimPrefix(v, "/run/secrets/"); !slices.Contains(s.Secrets, sec) {
					t.Errorf("%s: %s=%s names no secret the service mounts (%v)", name, k, v, s.Secrets)
				}
				continue
			}
			if regexp.MustCompile(`PASSWORD|TOKEN|SECRET|_KEY`).MatchString(k) {
				t.Errorf("%s: %s is given in the environment; give it as a secret file", name, k)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("%s mounts secret %s, which is not declared", name, sec)
			}
		}
	}
	if cycle := dependencyCycle(c); cycle != nil {
		t.Errorf("depends_on has a cycle: %v", cycle)
	}

	// The servers: the same settings, a data volume each, checked by
	// deltaci health; one port before them.
	s1, s2 := c.Services["server-1"], c.Services["server-2"]
	if !slices.Equal(s1.Command, s2.Command) || !slices.Equal(s1.Secrets, s2.Secrets) || len(s1.Volumes) != 1 || s1.Volumes[0] == s2.Volumes[0] {
		t.Errorf("the replicas differ in settings or share a data volume: %+v / %+v", s1, s2)
	}
	if h := s1.Healthcheck; h == nil || !slices.Contains(h.Test, "health") || !strings.Contains(strings.Join(h.Test, " "), "/readyz") {
		t.Errorf("the servers' healthcheck must be deltaci health on /readyz: %+v", h)
	}
	for _, name := range []string{"server-1", "migrate", "runner"} {
		checkFlags(t, name, c.Services[name].Command)
	}
	if mig := c.Services["migrate"]; !slices.Equal(mig.Command, []string{"migrate"}) {
		t.Errorf("migrate runs %v, want deltaci migrate", mig.Command)
	}
	var published []string
	for name, s := range c.Services {
		if len(s.Ports) > 0 {
			published = append(published, name)
		}
	}
	if !slices.Equal(published, []string{"proxy"}) {
		t.Errorf("services publishing ports: %v, want only the proxy", published)
	}
	cfg, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	backends := regexp.MustCompile(`(?m)^\s+server (\S+) (\S+):8080 check`).FindAllStringSubmatch(string(cfg), -1)
	if len(backends) != 2 || backends[0][2] != "server-1" || backends[1][2] != "server-2" || !strings.Contains(string(cfg), "GET /readyz") {
		t.Errorf("haproxy.cfg must check server-1 and server-2 on /readyz, has %v", backends)
	}

	// compose-secrets writes every secret file the Compose file mounts.
	dir := t.TempDir()
	script, err := os.ReadFile("compose-secrets")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose-secrets"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(dir, "compose-secrets")).CombinedOutput(); err != nil {
		t.Fatalf("compose-secrets: %v\n%s", err, out)
	}
	for name, sec := range c.Secrets {
		if sec.File != "./secrets/"+name {
			t.Errorf("secret %s comes from %q, want ./secrets/%s", name, sec.File, name)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "secrets", name))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			t.Errorf("compose-secrets wrote no %s: %v", name, err)
		}
	}
	url, _ := os.ReadFile(filepath.Join(dir, "secrets", "database_url"))
	pw, _ := os.ReadFile(filepath.Join(dir, "secrets", "postgres_password"))
	if !strings.Contains(string(url), ":"+strings.TrimSpace(string(pw))+"@postgres:5432/deltaci") {
		t.Errorf("database_url %q does not use postgres_password", url)
	}
}

// dependencyCycle returns services that depend on each other in a circle,
// or nil.
func dependencyCycle(c composeFile) []string {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch state[n] {
		case visiting:
			return append(slices.Clone(path), n)
		case done:
			return nil
		}
		state[n] = visiting
		path = append(path, n)
		for dep := range c.Services[n].DependsOn {
			if cyc := visit(dep); cyc != nil {
				return cyc
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for n := range c.Services {
		if cyc := visit(n); cyc != nil {
			return cyc
		}
	}
	return nil
}
