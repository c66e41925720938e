package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/google/go-cmp/cmp"
)

// mustLoad loads a file that must be valid.
func mustLoad(t *testing.T, path string) *core.Pipeline {
	t.Helper()
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return p
}

func mustParse(t *testing.T, src string) *core.Pipeline {
	t.Helper()
	p, err := Parse("ci.yml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseFullFile(t *testing.T) {
	t.Parallel()
	got := mustLoad(t, "testdata/full.yml")
	defaultEnv := map[string]string{"GOFLAGS": "-mod=readonly", "CI": "true"}
	defaultRetry := core.RetryPolicy{RunnerLost: 3, InfraError: 1}
	want := &core.Pipeline{
		Version: 1,
		Jobs: []core.JobSpec{
			{
				Name:    "lint",
				Run:     "go vet ./...",
				Inputs:  []string{"**/*.go", "go.mod", "go.sum"},
				Env:     defaultEnv,
				Timeout: 20 * time.Minute,
				Retry:   defaultRetry,
				RunsOn:  []string{"linux"},
				Reuse:   true,
			},
			{
				Name:  "test-api",
				Needs: []string{"lint"},
				Run: "go test -coverprofile=coverage.out ./services/api/... | tee test.log\n" +
					"go-junit-report < test.log > services/api/report.xml\n",
				Inputs:  []string{"services/api/**", "libs/**", "go.mod", "go.sum"},
				Env:     map[string]string{"GOFLAGS": "-mod=readonly", "CI": "yes", "CGO_ENABLED": "0"},
				Secrets: []string{"CODECOV_TOKEN"},
				Outputs: []string{"services/api/coverage.out"},
				Reports: map[string][]string{"junit": {"services/api/report.xml"}, "gotest": {"services/api/test.json"}},
				Timeout: 90 * time.Minute,
				Retry:   core.RetryPolicy{RunnerLost: 3, InfraError: 1, ExitCodes: []int{137}, Max: 2, Flaky: 1},
				RunsOn:  []string{"linux"},
				Sandbox: core.Sandbox{Network: true},
				Reuse:   true,
			},
			{
				Name:     "deploy",
				Needs:    []string{"test-api", "lint"},
				Run:      "./scripts/deploy.sh",
				Env:      defaultEnv,
				Secrets:  []string{"DEPLOY_KEY", "AWS_SECRET_ACCESS_KEY"},
				Timeout:  20 * time.Minute,
				Retry:    defaultRetry,
				RunsOn:   []string{"linux", "deploy"},
				Reuse:    false,
				Branches: []string{"main", "release/*"},
				Events:   []string{"push", "manual"},
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(full.yml) mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaultsApply(t *testing.T) {
	t.Parallel()
	t.Run("BuiltIn", func(t *testing.T) {
		t.Parallel()
		got := mustLoad(t, "testdata/minimal.yml")
		want := &core.Pipeline{Version: 1, Jobs: []core.JobSpec{{
			Name:    "test",
			Run:     "go test ./...",
			Timeout: core.DefaultTimeout,
			Retry:   core.DefaultRetry,
			Reuse:   true,
		}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("FromDefaultsBlock", func(t *testing.T) {
		t.Parallel()
		got := mustParse(t, `version: 1
defaults:
  timeout: 10m
  runs-on: [linux, big]
  retry: {infra_error: 1, exit_codes: [137]}
  env: {A: "from defaults", B: "from defaults"}
  sandbox: {network: true}
  reuse: false
  hermetic: true
jobs:
  inherits:
    run: make
  overrides:
    run: make
    timeout: 1h
    runs-on: []
    retry: {runner_lost: 0, max: 3}
    env: {B: "from job", C: "from job"}
    sandbox: {network: false}
    reuse: true
    hermetic: false
`)
		want := []core.JobSpec{
			{
				Name:    "inherits",
				Run:     "make",
				Env:     map[string]string{"A": "from defaults", "B": "from defaults"},
				Timeout: 10 * time.Minute,
				// runner_lost keeps its built-in default of 2.
				Retry:    core.RetryPolicy{RunnerLost: 2, InfraError: 1, ExitCodes: []int{137}},
				RunsOn:   []string{"linux", "big"},
				Sandbox:  core.Sandbox{Network: true},
				Reuse:    false,
				Hermetic: true,
			},
			{
				Name:    "overrides",
				Run:     "make",
				Env:     map[string]string{"A": "from defaults", "B": "from job", "C": "from job"},
				Timeout: time.Hour,
				// Field by field: exit_codes and infra_error still come from defaults.
				Retry:   core.RetryPolicy{RunnerLost: 0, InfraError: 1, ExitCodes: []int{137}, Max: 3},
				RunsOn:  nil, // an explicit empty list: any runner
				Sandbox: core.Sandbox{Network: false},
				Reuse:   true,
			},
		}
		if diff := cmp.Diff(want, got.Jobs); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
		// Jobs must not share slices taken from the defaults.
		got.Jobs[0].Retry.ExitCodes[0] = 1
		got.Jobs[0].RunsOn[0] = "changed"
		if got.Jobs[1].Retry.ExitCodes[0] != 137 {
			t.Error("jobs share the exit codes of the defaults")
		}
		again := mustParse(t, "version: 1\ndefaults: {runs-on: [linux]}\njobs: {a: {run: x}, b: {run: y}}\n")
		again.Jobs[0].RunsOn[0] = "changed"
		if again.Jobs[1].RunsOn[0] != "linux" {
			t.Error("jobs share the runs-on of the defaults")
		}
	})
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	got := mustLoad(t, "testdata/anchors.yml")
	inputs := []string{"**/*.go", "go.mod", "go.sum"}
	want := []core.JobSpec{
		{
			Name:    "unit",
			Run:     "go test ./...",
			Inputs:  inputs,
			Env:     map[string]string{"CGO_ENABLED": "0"},
			Timeout: 10 * time.Minute,
			Retry:   core.DefaultRetry,
			Reuse:   true,
		},
		{
			Name:    "race",
			Run:     "go test -race ./...",
			Inputs:  inputs,
			Env:     map[string]string{"CGO_ENABLED": "0", "GORACE": "halt_on_error=1"},
			Timeout: 10 * time.Minute,
			Retry:   core.DefaultRetry,
			Reuse:   true,
		},
	}
	if diff := cmp.Diff(want, got.Jobs); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// TestYAMLForms checks spellings that YAML allows and that must read the
// same as the plain form.
func TestYAMLForms(t *testing.T) {
	t.Parallel()
	plain := "version: 1\njobs:\n  test:\n    run: make\n    env: {N: \"1\"}\n"
	tests := map[string]string{
		"ByteOrderMark": "\ufeff" + plain,
		"CRLF":          strings.ReplaceAll(plain, "\n", "\r\n"),
		"StrTag":        "version: 1\njobs:\n  test:\n    run: make\n    env: {N: !!str 1}\n",
		"FlowStyle":     `{version: 1, jobs: {test: {run: make, env: {N: "1"}}}}`,
		"DocumentStart": "---\n" + plain + "...\n",
		"Comments":      "# ci\nversion: 1 # the format\njobs:\n  test: # a job\n    run: make\n    env: {N: \"1\"}\n",
		"QuotedKeys":    "\"version\": 1\n'jobs':\n  \"test\":\n    run: make\n    env: {\"N\": '1'}\n",
	}
	want := mustParse(t, plain)
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(want, mustParse(t, src)); diff != "" {
				t.Errorf("mismatch (-plain +%s):\n%s", name, diff)
			}
		})
	}
}

func TestBlockScalarRun(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "version: 1\njobs:\n  test:\n    run: |\n      set -x\n      make test\n  fold:\n    run: >-\n      make\n      test\n")
	if got, want := p.Jobs[0].Run, "set -x\nmake test\n"; got != want {
		t.Errorf("literal run = %q, want %q", got, want)
	}
	if got, want := p.Jobs[1].Run, "make test"; got != want {
		t.Errorf("folded run = %q, want %q", got, want)
	}
}

func TestJobsKeepFileOrder(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "version: 1\njobs:\n  zeta: {run: z}\n  alpha: {run: a}\n  mid: {run: m}\n  2024: {run: n}\n")
	var names []string
	for _, j := range p.Jobs {
		names = append(names, j.Name)
	}
	if diff := cmp.Diff([]string{"zeta", "alpha", "mid", "2024"}, names); diff != "" {
		t.Errorf("job order (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), ".deltaci.yml"))
		if k := core.KindOf(err); k != core.KindNotFound {
			t.Errorf("KindOf = %q, want not_found (err %v)", k, err)
		}
	})
	t.Run("NamesTheFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), ".deltaci.yml")
		if err := os.WriteFile(path, []byte("version: 1\njobs: {a: {run: x, needs: [b]}}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		var e *Error
		if !errors.As(err, &e) || e.File != path {
			t.Fatalf("err = %v, want an *Error naming %s", err, path)
		}
	})
}

// TestDocsExample keeps the complete example of docs/configuration.md
// valid.
func TestDocsExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Complete example")
	if !ok {
		t.Fatal(`docs/configuration.md has no "## Complete example" section`)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatal("the complete example has no yaml block")
	}
	src, _, _ := strings.Cut(rest, "```")
	p, err := Parse("docs/configuration.md", []byte(src))
	if err != nil {
		t.Fatalf("the complete example is invalid:\n%v", err)
	}
	if len(p.Jobs) < 3 {
		t.Errorf("the complete example has %d jobs", len(p.Jobs))
	}
}

func TestStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line string
		want       bool
	}{{"Absent", "", false}, {"True", "strict: true\n", true}, {"False", "strict: false\n", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, "version: 1\n"+tc.line+"jobs:\n  a: {run: x}\n")
			if p.Strict != tc.want {
				t.Errorf("Strict = %v, want %v", p.Strict, tc.want)
			}
		})
	}
}

func TestParseInputs(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, "testdata/inputs.yml")
	got := map[string][2][]string{}
	for _, j := range p.Jobs {
		var shown []string
		for _, s := range j.Inputs {
			shown = append(shown, core.ParseInput(s).Display())
		}
		got[j.Name] = [2][]string{shown, j.InputsFrom}
	}
	want := map[string][2][]string{
		"root": {{"{go: ./}", "!docs/**", "docs/api.md"}, nil},
		"svc":  {{"{go: ./services/api}", "!services/api/**/*_test.go"}, {"root"}},
		"web":  {{"{workspace: @acme/web}", "tsconfig.base.json"}, {"svc", "root"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	svc, _ := p.Job("svc")
	if in := core.ParseInput(svc.Inputs[0]); in != (core.Input{Kind: core.InputGo, Value: "services/api"}) {
		t.Errorf("svc's first input = %+v", in)
	}
	if order := TopoOrder(p); !cmp.Equal(order, []string{"root", "svc", "web"}) {
		t.Errorf("TopoOrder = %v, want inputs_from before", order)
	}
}
