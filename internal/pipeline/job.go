package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// The keys valid at each level, in the order the documentation lists them
// (did-you-mean prefers earlier ones on ties).
var (
	topKeys     = []string{"version", "strict", "defaults", "jobs"}
	settingKeys = []string{"timeout", "runs-on", "retry", "env", "sandbox", "reuse", "hermetic", "cache"}
	jobKeys     = []string{"run", "needs", "inputs", "inputs_from", "env", "secrets", "outputs", "reports", "timeout", "retry", "runs-on", "sandbox", "reuse", "hermetic", "cache", "branches", "events"}
	retryKeys   = []string{"runner_lost", "infra_error", "exit_codes", "max", "flaky"}
	sandboxKeys = []string{"network"}
	reportKinds = []string{"junit", "gotest"}
	eventNames  = []string{core.EventPush, core.EventPullRequest, core.EventManual}
)

const (
	maxTimeout = 24 * time.Hour
	// maxRetries keeps a typo such as 1000 from retrying a job all day.
	maxRetries = 100
)

// settings are the keys a job shares with the defaults block. Unset
// fields (nil, or runsOnSet false) inherit.
type settings struct {
	timeout   *time.Duration
	runsOn    []string
	runsOnSet bool
	retry     retryPatch
	env       map[string]string
	network   *bool
	reuse     *bool
	hermetic  *bool
	// cache replaces the defaults' whole when set.
	cache *core.Cache
}

// retryPatch is a retry block: only the fields it sets override.
type retryPatch struct {
	runnerLost   *int
	infraError   *int
	max          *int
	flaky        *int
	exitCodes    []int
	exitCodesSet bool
}

func (p retryPatch) apply(r core.RetryPolicy) core.RetryPolicy {
	if p.runnerLost != nil {
		r.RunnerLost = *p.runnerLost
	}
	if p.infraError != nil {
		r.InfraError = *p.infraError
	}
	if p.max != nil {
		r.Max = *p.max
	}
	if p.flaky != nil {
		r.Flaky = *p.flaky
	}
	if p.exitCodesSet {
		r.ExitCodes = p.exitCodes
	}
	// Jobs must not share a backing array through the defaults.
	r.ExitCodes = slices.Clone(r.ExitCodes)
	return r
}

// setting decodes a key shared by jobs and defaults into s. It reports
// false when the key is not one of them.
func (t *tree) setting(e entry, s *settings) bool {
	v := t.value(e)
	switch e.key {
	case "timeout":
		if d, ok := t.duration(v); ok {
			s.timeout = &d
		}
	case "runs-on":
		if items, ok := t.stringList(v, "runs-on", "runner labels", t.label); ok {
			s.runsOn, s.runsOnSet = texts(items), true
		}
	case "retry":
		t.retry(v, &s.retry)
	case "env":
		s.env = t.env(v)
	case "sandbox":
		if !t.mapping(v, "sandbox", "{network: true}") {
			break
		}
		for _, f := range t.entries(v) {
			if f.key != "network" {
				t.unknownKey(f, "sandbox", sandboxKeys)
				continue
			}
			if b, ok := t.boolean(t.value(f), "sandbox.network"); ok {
				s.network = &b
			}
		}
	case "reuse":
		if b, ok := t.boolean(v, "reuse"); ok {
			s.reuse = &b
		}
	case "hermetic":
		if b, ok := t.boolean(v, "hermetic"); ok {
			s.hermetic = &b
		}
	case "cache":
		s.cache = t.cache(e, v)
	default:
		return false
	}
	return true
}

// mapping checks that v is a mapping. An empty value is an empty mapping,
// which sets nothing, so it reports false without a problem.
func (t *tree) mapping(v value, what, example string) bool {
	switch k := v.kind(); k {
	case kindMap:
		return true
	case kindNull, kindBad:
	default:
		t.add(v.at, fmt.Sprintf("write %s: %s", what, example), "%s must be a mapping, got %s", what, k)
	}
	return false
}

func (t *tree) duration(v value) (time.Duration, bool) {
	const hint = "use a Go duration such as 30m, 1h30m or 90s"
	var s string
	switch k := v.kind(); k {
	case kindBad:
		return 0, false
	case kindString:
		s = strings.TrimSpace(v.text())
	case kindInt, kindFloat:
		n := v.text()
		t.add(v.at, fmt.Sprintf("add a unit: %sm for minutes or %ss for seconds", n, n), "timeout must be a duration with a unit, got the number %s", n)
		return 0, false
	default:
		t.add(v.at, hint, "timeout must be a duration, got %s", k)
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil && strings.HasSuffix(s, "d"):
		t.add(v.at, "Go durations have no days: write 24h", "timeout %q is not a duration", s)
	case err != nil:
		t.add(v.at, hint, "timeout %q is not a duration", s)
	case d <= 0:
		t.add(v.at, hint, "timeout must be positive, got %s", s)
	case d > maxTimeout:
		t.add(v.at, "use at most 24h, or split the job", "timeout %s is longer than the limit of 24h", s)
	default:
		return d, true
	}
	return 0, false
}

func (t *tree) retry(v value, p *retryPatch) {
	if !t.mapping(v, "retry", "{runner_lost: 2, exit_codes: [137]}") {
		return
	}
	for _, e := range t.entries(v) {
		ev := t.value(e)
		switch e.key {
		case "runner_lost":
			if n, ok := t.integer(ev, "retry.runner_lost", 0, maxRetries); ok {
				p.runnerLost = &n
			}
		case "infra_error":
			if n, ok := t.integer(ev, "retry.infra_error", 0, maxRetries); ok {
				p.infraError = &n
			}
		case "max":
			if n, ok := t.integer(ev, "retry.max", 0, maxRetries); ok {
				p.max = &n
			}
		case "flaky":
			if n, ok := t.integer(ev, "retry.flaky", 0, maxRetries); ok {
				p.flaky = &n
			}
		case "exit_codes":
			codes, ok := t.exitCodes(ev)
			if ok {
				p.exitCodes, p.exitCodesSet = codes, true
			}
		default:
			t.unknownKey(e, "retry", retryKeys)
		}
	}
}

func (t *tree) exitCodes(v value) ([]int, bool) {
	vs, ok := t.list(v, "retry.exit_codes", "exit codes")
	if !ok {
		return nil, false
	}
	var codes []int
	for _, iv := range vs {
		// 0 is success and codes above 255 do not exist on Unix.
		c, cok := t.integer(iv, "each entry of retry.exit_codes", 1, 255)
		switch {
		case !cok:
			ok = false
		case slices.Contains(codes, c):
			t.add(iv.at, "remove the repeated entry", "retry.exit_codes lists %d twice", c)
			ok = false
		default:
			codes = append(codes, c)
		}
	}
	return codes, ok
}

func (t *tree) env(v value) map[string]string {
	if !t.mapping(v, "env", `{NAME: "value"}`) {
		return nil
	}
	out := map[string]string{}
	for _, e := range t.entries(v) {
		if !envName.ok(e.key) {
			t.add(e.keyAt, envName.rule, "environment variable name %q is not valid", e.key)
			continue
		}
		if s, ok := t.str(t.value(e), "env "+e.key); ok {
			out[e.key] = s
		}
	}
	return out
}

func (t *tree) label(it item) bool {
	if it.s == "" || strings.ContainsFunc(it.s, isSpaceOrComma) {
		t.add(it.at, "a label is one word such as linux or gpu; list several as [linux, gpu]", "runner label %q is not valid", it.s)
		return false
	}
	return true
}

func isSpaceOrComma(r rune) bool {
	return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
}

// jobDecl is a job as written, before defaults are applied.
type jobDecl struct {
	name  string
	at    pos
	spec  core.JobSpec // the job-only fields
	own   settings
	needs []item
	// inputsFrom are the jobs whose digests this one's includes.
	inputsFrom []item
}

func (t *tree) job(e entry) *jobDecl {
	j := &jobDecl{name: e.key, at: e.keyAt}
	if !jobName.ok(e.key) {
		t.add(e.keyAt, jobName.rule, "job name %q is not valid", e.key)
	}
	v := t.value(e)
	switch k := v.kind(); k {
	case kindMap:
	case kindBad:
		return j
	case kindNull:
		t.add(e.keyAt, "add run: with the shell commands the job executes", "job %q has no run", j.name)
		return j
	case kindString:
		t.add(v.at, fmt.Sprintf("put the commands under run: %s: {run: %s}", yamlString(j.name), yamlString(v.text())),
			"job %q must be a mapping of settings, got a string", j.name)
		return j
	default:
		t.add(v.at, "a job is a mapping such as {run: make test, needs: [lint]}", "job %q must be a mapping of settings, got %s", j.name, k)
		return j
	}
	hasRun := false
	for _, f := range t.entries(v) {
		fv := t.value(f)
		switch f.key {
		case "run":
			hasRun = true
			j.spec.Run = t.run(fv, j.name)
		case "needs":
			j.needs, _ = t.stringList(fv, "needs", "job names", nil)
		case "inputs":
			j.spec.Inputs = t.inputs(fv)
		case "inputs_from":
			j.inputsFrom, _ = t.stringList(fv, "inputs_from", "job names", nil)
		case "outputs":
			items, _ := t.stringList(fv, "outputs", "globs", t.pathGlob("outputs"))
			j.spec.Outputs = texts(items)
		case "secrets":
			items, _ := t.stringList(fv, "secrets", "secret names", func(it item) bool {
				if !secretName.ok(it.s) {
					t.add(it.at, secretName.rule, "secret name %q is not valid", it.s)
					return false
				}
				return true
			})
			j.spec.Secrets = texts(items)
		case "reports":
			j.spec.Reports = t.reports(fv)
		case "branches":
			items, _ := t.stringList(fv, "branches", "branch globs", t.glob("branches"))
			j.spec.Branches = texts(items)
		case "events":
			items, _ := t.stringList(fv, "events", "events", func(it item) bool {
				if !slices.Contains(eventNames, it.s) {
					t.add(it.at, t.didYouMean(it.s, eventNames, "events are"), "unknown event %q", it.s)
					return false
				}
				return true
			})
			j.spec.Events = texts(items)
		default:
			if !t.setting(f, &j.own) {
				t.unknownKey(f, fmt.Sprintf("job %q", j.name), jobKeys)
			}
		}
	}
	if !hasRun {
		t.add(e.keyAt, "add run: with the shell commands the job executes", "job %q has no run", j.name)
	}
	return j
}

func (t *tree) run(v value, job string) string {
	switch k := v.kind(); k {
	case kindBad:
	case kindString:
		s := v.text()
		if strings.TrimSpace(s) == "" {
			t.add(v.at, "write the shell commands the job executes", "run of job %q is empty", job)
		}
		return s
	case kindNull:
		t.add(v.at, "write the shell commands the job executes", "run of job %q is empty", job)
	case kindList:
		t.add(v.at, "run is one shell script: write the commands one per line after run: |",
			"run must be a string (a shell script), got a list")
	case kindInt, kindFloat, kindBool:
		t.add(v.at, quoteHint(v), "run must be a string (a shell script), got %s", k)
	default:
		t.add(v.at, "", "run must be a string (a shell script), got %s", k)
	}
	return ""
}

func (t *tree) reports(v value) map[string][]string {
	if !t.mapping(v, "reports", `{junit: ["report.xml"]}`) {
		return nil
	}
	out := map[string][]string{}
	for _, e := range t.entries(v) {
		if !slices.Contains(reportKinds, e.key) {
			t.add(e.keyAt, t.didYouMean(e.key, reportKinds, "supported kinds"), "unknown report kind %q", e.key)
			continue
		}
		what := "reports." + e.key
		items, _ := t.stringList(t.value(e), what, "globs", t.pathGlob(what))
		if len(items) > 0 {
			out[e.key] = texts(items)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// build applies defaults (then the built-in ones) under the job's own
// settings.
func (j *jobDecl) build(defs *settings) core.JobSpec {
	s := j.spec
	s.Name = j.name
	s.Needs = texts(j.needs)
	s.InputsFrom = texts(j.inputsFrom)
	s.Timeout = core.DefaultTimeout
	s.Reuse = true
	env := map[string]string{}
	for _, st := range []*settings{defs, &j.own} {
		if st.timeout != nil {
			s.Timeout = *st.timeout
		}
		if st.runsOnSet {
			s.RunsOn = slices.Clone(st.runsOn)
		}
		if st.network != nil {
			s.Sandbox.Network = *st.network
		}
		if st.reuse != nil {
			s.Reuse = *st.reuse
		}
		if st.hermetic != nil {
			s.Hermetic = *st.hermetic
		}
		if st.cache != nil {
			c := *st.cache
			c.Files, c.RestoreKeys, c.Paths = slices.Clone(c.Files), slices.Clone(c.RestoreKeys), slices.Clone(c.Paths)
			s.Cache = &c
		}
		maps.Copy(env, st.env)
	}
	if len(env) > 0 {
		s.Env = env
	}
	s.Retry = j.own.retry.apply(defs.retry.apply(core.DefaultRetry))
	return s
}
