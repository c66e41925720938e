package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// want is one expected problem: its exact position, and substrings of its
// message and hint ("" matches any hint; "-" means no hint).
type want struct {
	line, col int
	msg, hint string
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []want
	}{
		// Unknown keys, with did-you-mean.
		{"UnknownTopLevelKey", `version: 1
jbos:
  a: {run: x}
`, []want{
			{1, 1, "missing jobs", "add a jobs: mapping"},
			{2, 1, `unknown top-level key "jbos"`, `did you mean "jobs"?`},
		}},
		{"JobOutsideJobs", `version: 1
lint:
  run: go vet ./...
jobs:
  test: {run: go test ./...}
`, []want{{2, 1, `unknown top-level key "lint"`, `indent "lint" below jobs:`}}},
		{"StrictNotBool", `version: 1
strict: "yes"
jobs:
  a: {run: x}
`, []want{{2, 9, `strict must be true or false, got "yes"`, "without quotes"}}},
		{"StrictMisspelt", `version: 1
stict: true
jobs:
  a: {run: x}
`, []want{{2, 1, `unknown top-level key "stict"`, `did you mean "strict"?`}}},
		{"UnknownJobKey", `version: 1
jobs:
  test:
    run: make test
    neds: [lint]
`, []want{{5, 5, `unknown key "neds" in job "test"`, `did you mean "needs"?`}}},
		{"UnknownJobKeyFromOtherCI", `version: 1
jobs:
  test:
    depends_on: [lint]
    run: make test
  lint: {run: make lint}
`, []want{{4, 5, `unknown key "depends_on" in job "test"`, `did you mean "needs"?`}}},
		{"UnknownJobKeyFarFromAll", `version: 1
jobs:
  test:
    run: make test
    frobnicate: true
`, []want{{5, 5, `unknown key "frobnicate"`, `valid keys: "run", "needs", "inputs"`}}},
		{"JobOnlyKeyInDefaults", `version: 1
defaults:
  branches: [main]
jobs:
  test: {run: make test}
`, []want{{3, 3, `unknown key "branches" in defaults`, "branches can only be set on a job"}}},
		{"UnknownRetryKey", `version: 1
jobs:
  test:
    run: make test
    retry: {runner-lost: 1}
`, []want{{5, 13, `unknown key "runner-lost" in retry`, `did you mean "runner_lost"?`}}},
		{"UnknownSandboxKey", `version: 1
jobs:
  test:
    run: make test
    sandbox: {netwrok: true}
`, []want{{5, 15, `unknown key "netwrok" in sandbox`, `did you mean "network"?`}}},
		{"UnknownReportKind", `version: 1
jobs:
  test:
    run: make test
    reports: {junti: [report.xml]}
`, []want{{5, 15, `unknown report kind "junti"`, `did you mean "junit"?`}}},
		{"UnknownEvent", `version: 1
jobs:
  test:
    run: make test
    events: [push, pull-request]
`, []want{{5, 20, `unknown event "pull-request"`, `did you mean "pull_request"?`}}},

		// needs.
		{"UnknownNeed", `version: 1
jobs:
  lint: {run: make lint}
  test:
    run: make test
    needs: [lnt]
`, []want{{6, 13, `job "test" needs "lnt", which is not a job`, `did you mean "lint"?`}}},
		{"UnknownNeedFarFromAll", `version: 1
jobs:
  lint: {run: make lint}
  test:
    run: make test
    needs: [build]
`, []want{{6, 13, `needs "build", which is not a job`, `jobs are: "lint", "test"`}}},
		{"NeedsItself", `version: 1
jobs:
  test:
    run: make test
    needs: [test]
`, []want{{5, 13, `job "test" needs itself`, `remove "test" from its needs`}}},
		{"Cycle", `version: 1
jobs:
  a:
    run: echo a
    needs: [b]
  b:
    run: echo b
    needs: [c]
  c:
    run: echo c
    needs: [a]
`, []want{{5, 13, "cycle in needs: a → b → c → a", "remove one of these needs"}}},
		{"TwoCycles", `version: 1
jobs:
  a: {run: echo, needs: [b]}
  b: {run: echo, needs: [a]}
  c: {run: echo, needs: [a, d]}
  d: {run: echo, needs: [c]}
`, []want{
			{3, 26, "cycle in needs: a → b → a", ""},
			{5, 29, "cycle in needs: c → d → c", ""},
		}},
		{"NeedListedTwice", `version: 1
jobs:
  a: {run: echo}
  b: {run: echo, needs: [a, a]}
`, []want{{4, 29, `needs lists "a" twice`, "remove the repeated entry"}}},

		// Globs.
		{"BadGlob", `version: 1
jobs:
  test:
    run: make test
    inputs: ["src/[a-z"]
`, []want{{5, 14, `inputs: bad glob "src/[a-z": syntax error in pattern`, "close every ["}}},
		{"AbsoluteGlob", `version: 1
jobs:
  test:
    run: make test
    inputs: [/src/**]
`, []want{{5, 14, `glob "/src/**" is absolute`, `write "src/**"`}}},
		{"GlobOutsideRepo", `version: 1
jobs:
  test:
    run: make test
    outputs: [../out/**]
`, []want{{5, 15, `outputs: glob "../out/**" has a ".." segment`, "cannot reach outside"}}},
		{"GlobWithDotSlash", `version: 1
jobs:
  test:
    run: make test
    inputs: [./src/**]
`, []want{{5, 14, `has a "." segment`, `no "./"`}}},
		{"GlobEndsWithSlash", `version: 1
jobs:
  test:
    run: make test
    inputs: [docs/]
`, []want{{5, 14, `glob "docs/" ends with /`, `write "docs/**"`}}},
		{"GlobEmptySegment", `version: 1
jobs:
  test:
    run: make test
    inputs: [src//x]
`, []want{{5, 14, "empty segment", "single /"}}},
		{"EmptyGlob", `version: 1
jobs:
  test:
    run: make test
    inputs: [""]
`, []want{{5, 14, "inputs: empty glob", "src/**"}}},
		{"EmptyInputs", `version: 1
jobs:
  test:
    run: make test
    inputs: []
`, []want{{5, 13, "inputs is empty", "remove inputs to depend on the whole repository"}}},
		{"BadReportGlob", `version: 1
jobs:
  test:
    run: make test
    reports:
      junit: ["out/{a,b"]
`, []want{{6, 15, `reports.junit: bad glob "out/{a,b"`, "close every ["}}},
		{"BadBranchGlob", `version: 1
jobs:
  test:
    run: make test
    branches: ["release/[0-9"]
`, []want{{5, 16, `branches: bad glob "release/[0-9"`, ""}}},

		// Durations.
		{"BadDuration", `version: 1
jobs:
  test:
    run: make test
    timeout: 30 minutes
`, []want{{5, 14, `timeout "30 minutes" is not a duration`, "use a Go duration such as 30m, 1h30m or 90s"}}},
		{"DurationWithoutUnit", `version: 1
jobs:
  test:
    run: make test
    timeout: 30
`, []want{{5, 14, "timeout must be a duration with a unit, got the number 30", "30m for minutes"}}},
		{"DurationInDays", `version: 1
defaults:
  timeout: 1d
jobs:
  test: {run: make test}
`, []want{{3, 12, `timeout "1d" is not a duration`, "write 24h"}}},
		{"DurationTooLong", `version: 1
jobs:
  test:
    run: make test
    timeout: 25h
`, []want{{5, 14, "timeout 25h is longer than the limit of 24h", "at most 24h"}}},
		{"DurationZero", `version: 1
jobs:
  test:
    run: make test
    timeout: 0s
`, []want{{5, 14, "timeout must be positive, got 0s", ""}}},
		{"DurationNegative", `version: 1
jobs:
  test:
    run: make test
    timeout: -5m
`, []want{{5, 14, "timeout must be positive, got -5m", ""}}},

		// run.
		{"EmptyRun", `version: 1
jobs:
  test:
    run: ""
`, []want{{4, 10, `run of job "test" is empty`, "write the shell commands"}}},
		{"BlankRun", `version: 1
jobs:
  test:
    run: "  "
`, []want{{4, 10, `run of job "test" is empty`, ""}}},
		{"RunWithoutValue", `version: 1
jobs:
  test:
    run:
    needs: []
`, []want{{4, 5, `run of job "test" is empty`, ""}}},
		{"MissingRun", `version: 1
jobs:
  test:
    timeout: 5m
`, []want{{3, 3, `job "test" has no run`, "add run:"}}},
		{"EmptyJob", `version: 1
jobs:
  test:
`, []want{{3, 3, `job "test" has no run`, "add run:"}}},
		{"RunAsList", `version: 1
jobs:
  test:
    run: [make, make test]
`, []want{{4, 10, "run must be a string (a shell script), got a list", "run: |"}}},
		{"RunAsNumber", `version: 1
jobs:
  test:
    run: 42
`, []want{{4, 10, "run must be a string (a shell script), got an integer", `quote it: "42"`}}},

		// Wrong types.
		{"NeedsAsString", `version: 1
jobs:
  lint: {run: make lint}
  test:
    run: make test
    needs: lint
`, []want{{6, 12, "needs must be a list of job names, got a string", "write needs: [lint]"}}},
		{"InputsAsString", `version: 1
jobs:
  test:
    run: make test
    inputs: "**/*.go"
`, []want{{5, 13, "inputs must be a list of globs, got a string", `write inputs: ["**/*.go"]`}}},
		{"NeedsAsMapping", `version: 1
jobs:
  test:
    run: make test
    needs: {lint: true}
`, []want{{5, 12, "needs must be a list of job names, got a mapping", "-"}}},
		{"NumberInList", `version: 1
jobs:
  test:
    run: make test
    branches: [main, 2024]
`, []want{{5, 22, "each entry of branches must be a string, got an integer", `quote it: "2024"`}}},
		{"EnvNumber", `version: 1
jobs:
  test:
    run: make test
    env: {CGO_ENABLED: 0}
`, []want{{5, 24, "env CGO_ENABLED must be a string, got an integer", `quote it: "0"`}}},
		{"EnvBool", `version: 1
jobs:
  test:
    run: make test
    env:
      DEBUG: true
`, []want{{6, 14, "env DEBUG must be a string, got a boolean", `quote it: "true"`}}},
		{"EnvFloat", `version: 1
defaults:
  env: {GO_VERSION: 1.22}
jobs:
  test: {run: make test}
`, []want{{3, 21, "env GO_VERSION must be a string, got a number", `quote it: "1.22"`}}},
		{"EnvWithoutValue", `version: 1
jobs:
  test:
    run: make test
    env:
      EMPTY:
`, []want{{6, 7, "env EMPTY has no value", `write ""`}}},
		{"EnvBadName", `version: 1
jobs:
  test:
    run: make test
    env: {1X: "a", MY-VAR: "b"}
`, []want{
			{5, 11, `environment variable name "1X" is not valid`, "not starting with a digit"},
			{5, 20, `environment variable name "MY-VAR" is not valid`, ""},
		}},
		{"EnvAsList", `version: 1
jobs:
  test:
    run: make test
    env: [A=1]
`, []want{{5, 10, "env must be a mapping, got a list", `write env: {NAME: "value"}`}}},
		{"SecretBadName", `version: 1
jobs:
  test:
    run: make test
    secrets: [codecov_token]
`, []want{{5, 15, `secret name "codecov_token" is not valid`, "upper-case"}}},
		{"RetryNegative", `version: 1
jobs:
  test:
    run: make test
    retry: {runner_lost: -1}
`, []want{{5, 26, "retry.runner_lost must be between 0 and 100, got -1", "-"}}},
		{"RetryFlakyTooMany", `version: 1
jobs:
  test:
    run: make test
    retry: {flaky: 1000}
`, []want{{5, 20, "retry.flaky must be between 0 and 100, got 1000", "-"}}},
		{"UnknownReportKindGotest", `version: 1
jobs:
  test:
    run: make test
    reports: {gotst: [test.json]}
`, []want{{5, 15, `unknown report kind "gotst"`, `did you mean "gotest"?`}}},
		{"RetryQuoted", `version: 1
jobs:
  test:
    run: make test
    retry: {max: "2"}
`, []want{{5, 18, `retry.max must be an integer, got "2"`, "without quotes"}}},
		{"ExitCodes", `version: 1
jobs:
  test:
    run: make test
    retry: {exit_codes: [0, 1, 1, 256]}
`, []want{
			{5, 26, "each entry of retry.exit_codes must be between 1 and 255, got 0", ""},
			{5, 32, "retry.exit_codes lists 1 twice", ""},
			{5, 35, "each entry of retry.exit_codes must be between 1 and 255, got 256", ""},
		}},
		{"ReuseQuoted", `version: 1
jobs:
  test:
    run: make test
    reuse: "false"
`, []want{{5, 12, `reuse must be true or false, got "false"`, "without quotes"}}},
		{"ReuseYes", `version: 1
jobs:
  test:
    run: make test
    reuse: yes
`, []want{{5, 12, `reuse must be true or false, got "yes"`, ""}}},
		{"HermeticQuoted", `version: 1
jobs:
  test:
    run: make test
    hermetic: "true"
`, []want{{5, 15, `hermetic must be true or false, got "true"`, "without quotes"}}},
		{"HermeticInDefaultsNotBool", `version: 1
defaults: {hermetic: [true]}
jobs:
  test: {run: make test}
`, []want{{2, 22, "hermetic must be true or false, got a list", ""}}},
		{"HermeticMisspelled", `version: 1
jobs:
  test:
    run: make test
    hermetc: true
`, []want{{5, 5, `unknown key "hermetc" in job "test"`, `did you mean "hermetic"?`}}},
		{"SandboxNotMapping", `version: 1
jobs:
  test:
    run: make test
    sandbox: true
`, []want{{5, 14, "sandbox must be a mapping, got a boolean", "write sandbox: {network: true}"}}},
		{"BadRunnerLabel", `version: 1
jobs:
  test:
    run: make test
    runs-on: ["linux gpu"]
`, []want{{5, 15, `runner label "linux gpu" is not valid`, "[linux, gpu]"}}},
		{"JobAsString", `version: 1
jobs:
  test: make test
`, []want{{3, 9, `job "test" must be a mapping of settings, got a string`, `test: {run: "make test"}`}}},
		{"BadJobName", `version: 1
jobs:
  my job: {run: make}
  -x: {run: make}
`, []want{
			{3, 3, `job name "my job" is not valid`, "starting with a letter or digit"},
			{4, 3, `job name "-x" is not valid`, ""},
		}},
		{"JobNameTooLong", "version: 1\njobs:\n  " + strings.Repeat("a", 101) + ": {run: make}\n",
			[]want{{3, 3, "is not valid", "at most 100 characters"}}},

		// Duplicate keys.
		{"DuplicateKey", `version: 1
jobs:
  test:
    run: make test
    run: make check
`, []want{{5, 5, `duplicate key "run" (first defined at line 4, column 5)`, "remove one of them"}}},
		{"DuplicateJob", `version: 1
jobs:
  test: {run: a}
  lint: {run: b}
  test: {run: c}
`, []want{{5, 3, `duplicate key "test" (first defined at line 3, column 3)`, ""}}},

		// YAML features.
		{"BinaryTag", `version: 1
jobs:
  test:
    run: make test
    env: {KEY: !!binary aGVsbG8=}
`, []want{{5, 16, "YAML tag !!binary is not supported in a pipeline file", "remove the tag"}}},
		{"CustomTag", `version: 1
jobs:
  test:
    run: !sh make test
`, []want{{4, 10, "YAML tag !sh is not supported", ""}}},
		{"UnknownAlias", `version: 1
jobs:
  test:
    run: *script
`, []want{{4, 10, "unknown alias *script", "define the anchor &script before this alias"}}},
		{"MergeOfItself", `version: 1
jobs:
  test: &t {<<: *t, run: make}
`, []want{{3, 13, "merge key refers to its own mapping", ""}}},
		{"MergeOfString", `version: 1
jobs:
  test:
    <<: make
    run: make
`, []want{{4, 9, "<< must merge a mapping, got a string", "<<: *name"}}},
		{"TwoDocuments", `version: 1
jobs:
  test: {run: make}
---
version: 1
`, []want{{4, 1, "a second YAML document starts here", "remove the --- line"}}},
		{"SyntaxError", `version: 1
jobs:
  test:
    run: [make
`, []want{{4, 10, "YAML syntax error", "close the bracket"}}},
		{"Tabs", "version: 1\njobs:\n\ttest:\n\t\trun: make\n",
			[]want{{3, 1, `YAML syntax error: found character '\t'`, "indent with spaces"}}},

		// The file as a whole.
		{"EmptyFile", "", []want{{1, 1, "the file is empty", "version: 1"}}},
		{"OnlyComments", "# nothing yet\n\n", []want{{1, 1, "the file is empty", ""}}},
		{"TopLevelList", "- test\n", []want{{1, 1, "the top level must be a mapping with version and jobs, got a list", ""}}},
		{"MissingVersion", `jobs:
  test: {run: make}
`, []want{{1, 1, "missing version", "add version: 1"}}},
		{"Version2", `version: 2
jobs:
  test: {run: make}
`, []want{{1, 10, "version 2 is not supported", "version: 1"}}},
		{"VersionQuoted", `version: "1"
jobs:
  test: {run: make}
`, []want{{1, 10, `version must be the number 1, got "1"`, "without quotes"}}},
		{"VersionEmpty", `version:
jobs:
  test: {run: make}
`, []want{{1, 1, "version must be 1, got an empty value", ""}}},
		{"MissingJobs", "version: 1\n", []want{{1, 1, "missing jobs", ""}}},
		{"BadExclusion", `version: 1
jobs:
  test:
    run: make test
    inputs: ["src/**", "!", "!/abs/**", "!src/[a"]
`, []want{
			{5, 24, "inputs exclusion: empty glob", ""},
			{5, 29, `inputs exclusion: glob "/abs/**" is absolute`, `write "abs/**"`},
			{5, 41, `inputs exclusion: bad glob "src/[a"`, "close every ["},
		}},
		{"OnlyExclusions", `version: 1
jobs:
  test:
    run: make test
    inputs: ["!src/**"]
`, []want{{5, 13, "inputs only exclude files, so they match nothing", "list what the job reads before"}}},
		{"RepeatedExclusion", `version: 1
jobs:
  test:
    run: make test
    inputs: ["src/**", "!x/**", "!x/**"]
`, []want{{5, 33, `inputs lists "!x/**" twice`, "remove the repeated entry"}}},
		{"InferredErrors", `version: 1
jobs:
  test:
    run: make test
    inputs:
      - {go: /abs}
      - {go: ../up}
      - {go: ""}
      - {workspace: "a b"}
      - {npm: x}
      - {go: ./a, workspace: b}
      - {go: [x]}
      - 12
`, []want{
			{6, 14, `inputs go: "/abs" is absolute`, "the module's directory"},
			{7, 14, `inputs go: "../up" is outside the repository`, ""},
			{8, 14, "inputs go: the directory is empty", ""},
			{9, 21, `inputs workspace: "a b" is not a package name`, "package.json"},
			{10, 10, `unknown key "npm" in an inputs mapping`, `"go", "workspace"`},
			{11, 9, "an inputs mapping has one key, go or workspace, got 2", "one entry per mapping"},
			{12, 14, "inputs go must be a string, got a list", ""},
			{13, 9, "each entry of inputs must be a glob or a mapping, got an integer", "{go: ./dir}"},
		}},
		{"RepeatedModule", `version: 1
jobs:
  test:
    run: make test
    inputs: [{go: ./a}, {go: a/}]
`, []want{{5, 25, "inputs lists {go: ./a} twice", ""}}},
		{"InputsFromErrors", `version: 1
jobs:
  a:
    run: x
    inputs_from: [a, nope, b]
    needs: [b]
  b:
    run: x
    inputs_from: [c]
  c:
    run: x
    inputs_from: b
`, []want{
			{5, 19, `job "a" takes inputs from itself`, `remove "a" from its inputs_from`},
			{5, 22, `job "a" takes inputs from "nope", which is not a job`, ""},
			{5, 28, `job "a" lists "b" in both needs and inputs_from`, "remove it from inputs_from"},
			{12, 18, "inputs_from must be a list of job names, got a string", `write inputs_from: [b]`},
		}},
		{"InputsFromCycle", `version: 1
jobs:
  a:
    run: x
    inputs_from: [b]
  b:
    run: x
    needs: [a]
`, []want{{5, 19, "cycle in needs and inputs_from: a → b → a", "a job's digest cannot depend on itself"}}},
		{"JobsEmpty", "version: 1\njobs: {}\n", []want{{2, 7, "jobs is empty", "define at least one job"}}},
		{"JobsWithoutValue", "version: 1\njobs:\n", []want{{2, 1, "jobs is empty", ""}}},
		{"JobsAsList", "version: 1\njobs:\n  - run: make\n", []want{{3, 3, "jobs must be a mapping from job name to job, got a list", "not as a - list item"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse("ci.yml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %d jobs, want %d problems", len(p.Jobs), len(tt.want))
			}
			checkProblems(t, err, tt.want)
		})
	}
}

// checkProblems asserts that err holds exactly the wanted problems, in order.
func checkProblems(t *testing.T, err error, wants []want) {
	t.Helper()
	var got []*Error
	var list ErrorList
	var one *Error
	switch {
	case errors.As(err, &list):
		got = list
	case errors.As(err, &one):
		got = []*Error{one}
	default:
		t.Fatalf("error %T is neither *Error nor ErrorList: %v", err, err)
	}
	if len(got) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(wants), err)
	}
	for i, w := range wants {
		g := got[i]
		if g.File != "ci.yml" && g.File != "testdata/errors.yml" {
			t.Errorf("problem %d: File = %q", i, g.File)
		}
		if g.Line != w.line || g.Col != w.col {
			t.Errorf("problem %d at %d:%d, want %d:%d: %v", i, g.Line, g.Col, w.line, w.col, g)
		}
		if !strings.Contains(g.Msg, w.msg) {
			t.Errorf("problem %d: message %q does not contain %q", i, g.Msg, w.msg)
		}
		switch {
		case w.hint == "-" && g.Hint != "":
			t.Errorf("problem %d: unexpected hint %q", i, g.Hint)
		case w.hint != "-" && !strings.Contains(g.Hint, w.hint):
			t.Errorf("problem %d: hint %q does not contain %q", i, g.Hint, w.hint)
		}
	}
}

// TestAllProblemsReported checks that one pass reports every problem of a
// file, sorted by position, with the file name.
func TestAllProblemsReported(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/errors.yml")
	checkProblems(t, err, []want{
		{4, 12, `timeout "30 minutes" is not a duration`, "30m"},
		{8, 25, `glob "src/" ends with /`, `"src/**"`},
		{10, 5, `unknown key "neds" in job "test"`, `did you mean "needs"?`},
		{11, 12, "needs must be a list of job names, got a string", "write needs: [lnt]"},
		{12, 10, `run of job "test" is empty`, ""},
		{13, 25, "env CGO_ENABLED must be a string, got an integer", `quote it: "0"`},
		{16, 13, "cycle in needs: a → b → a", ""},
	})
	if !strings.HasPrefix(err.Error(), "testdata/errors.yml:4:12: timeout") {
		t.Errorf("Error() starts with %q", strings.SplitN(err.Error(), "\n", 2)[0])
	}
}

func TestErrorKind(t *testing.T) {
	t.Parallel()
	one := "version: 2\njobs: {a: {run: x}}\n"
	several := "version: 2\njobs: {a: {}}\n"
	for name, src := range map[string]string{"Error": one, "ErrorList": several} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("ci.yml", []byte(src))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got := fmt.Sprintf("%T", err); got != "*pipeline."+name && got != "pipeline."+name {
				t.Fatalf("error type %s, want %s", got, name)
			}
			if k := core.KindOf(err); k != core.KindInvalid {
				t.Errorf("KindOf = %q, want %q", k, core.KindInvalid)
			}
			if !errors.Is(err, core.ErrInvalid) {
				t.Error("errors.Is(err, core.ErrInvalid) = false")
			}
			if errors.Is(err, core.ErrNotFound) {
				t.Error("errors.Is(err, core.ErrNotFound) = true")
			}
			wrapped := fmt.Errorf("plan: %w", err)
			if k := core.KindOf(wrapped); k != core.KindInvalid {
				t.Errorf("KindOf(wrapped) = %q", k)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"WithHint", &Error{File: "ci.yml", Line: 3, Col: 5, Msg: "bad", Hint: "fix it"}, "ci.yml:3:5: bad\n  hint: fix it"},
		{"WithoutHint", &Error{File: "ci.yml", Line: 3, Col: 5, Msg: "bad"}, "ci.yml:3:5: bad"},
		{"WithoutPosition", &Error{File: "ci.yml", Msg: "bad"}, "ci.yml: bad"},
		{"List", ErrorList{
			{File: "a.yml", Line: 1, Col: 1, Msg: "one", Hint: "h"},
			{File: "a.yml", Line: 2, Col: 3, Msg: "two"},
		}, "a.yml:1:1: one\n  hint: h\na.yml:2:3: two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("LongList", func(t *testing.T) {
		t.Parallel()
		var l ErrorList
		for i := range 60 {
			l = append(l, &Error{File: "a.yml", Line: i + 1, Col: 1, Msg: "x"})
		}
		s := l.Error()
		if n := strings.Count(s, "\n"); n != maxPrinted {
			t.Errorf("%d lines, want %d", n+1, maxPrinted+1)
		}
		if !strings.HasSuffix(s, "... and 10 more problems") {
			t.Errorf("ends with %q", s[len(s)-30:])
		}
	})
}

func TestPanicBecomesError(t *testing.T) {
	t.Parallel()
	p, err := safely("ci.yml", func() (*core.Pipeline, error) { panic("boom") })
	if p != nil {
		t.Error("got a pipeline")
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "ci.yml" || !strings.Contains(e.Msg, "boom") {
		t.Fatalf("err = %v, want an *Error about ci.yml", err)
	}
	if core.KindOf(err) != core.KindInvalid {
		t.Errorf("KindOf = %q", core.KindOf(err))
	}
}

// TestAliasExpansionBounded checks that aliases cannot make a small file
// cost unbounded work.
func TestAliasExpansionBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	// A flow mapping, since a block mapping has at most maxKeys keys.
	b.WriteString("version: 1\njobs:\n  base: &base\n    run: make\n    env: {")
	for i := range 1200 {
		fmt.Fprintf(&b, "V%d: x, ", i)
	}
	b.WriteString("}\n")
	for i := range maxKeys - 1 {
		fmt.Fprintf(&b, "  j%d: {<<: *base}\n", i)
	}
	_, err := Parse("ci.yml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "the file expands to too many values") {
		t.Fatalf("err = %v, want too many values", err)
	}
}
