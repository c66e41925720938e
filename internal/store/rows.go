package store

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// RunRow is an engine-neutral run row; engines fill it from their own types
// and RunFromRow validates it into the domain.
type RunRow struct {
	ID, Repo, Ref, Commit, Event string
	Trusted                      bool
	Project, TrustReason         string
	RerunOf, TraceParent         string
	State, Reason                string
	CreatedAt, StartedAt         time.Time
	FinishedAt                   time.Time
}

// RunFromRow validates a stored run.
func RunFromRow(r RunRow) (core.Run, error) {
	st, err := core.ParseRunState(r.State)
	if err != nil {
		return core.Run{}, err
	}
	reason, err := core.ParseReason(r.Reason)
	if err != nil {
		return core.Run{}, err
	}
	return core.Run{
		ID: r.ID, Repo: r.Repo, Ref: r.Ref, Commit: r.Commit, Event: r.Event, Trusted: r.Trusted,
		Project: r.Project, TrustReason: r.TrustReason, RerunOf: r.RerunOf, TraceParent: r.TraceParent, State: st, Reason: reason,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}, nil
}

// JobRow is an engine-neutral job row.
type JobRow struct {
	ID, RunID, Name, Spec, State, Reason, Explain string
	Decision, Digest, ReusedFrom                  string
	CreatedAt, StartedAt, FinishedAt              time.Time
}

// JobFromRow validates a stored job.
func JobFromRow(r JobRow) (core.Job, error) {
	st, err := core.ParseJobState(r.State)
	if err != nil {
		return core.Job{}, err
	}
	reason, err := core.ParseReason(r.Reason)
	if err != nil {
		return core.Job{}, err
	}
	var decision core.JobState
	if r.Decision != "" {
		if decision, err = core.ParseJobState(r.Decision); err != nil {
			return core.Job{}, err
		}
	}
	var rec specRecord
	if err := json.Unmarshal([]byte(r.Spec), &rec); err != nil {
		return core.Job{}, core.Wrap(core.KindInternal, "decode job spec "+r.ID, err)
	}
	return core.Job{
		ID: r.ID, RunID: r.RunID, Name: r.Name, Spec: rec.spec(), State: st, Reason: reason,
		Explain: r.Explain, Decision: decision, Digest: r.Digest, ReusedFrom: r.ReusedFrom,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}, nil
}

// AttemptRow is an engine-neutral attempt row.
type AttemptRow struct {
	ID, JobID, RunID                   string
	Number                             int
	State, Reason, Labels              string
	ExitCode                           *int
	RunnerID, LeaseToken               string
	LeaseExpiresAt, QueuedAt, LeasedAt time.Time
	StartedAt, FinishedAt              time.Time
	LogLength                          int64
	LogDigest                          string
}

// AttemptFromRow validates a stored attempt.
func AttemptFromRow(r AttemptRow) (core.Attempt, error) {
	st, err := core.ParseAttemptState(r.State)
	if err != nil {
		return core.Attempt{}, err
	}
	reason, err := core.ParseReason(r.Reason)
	if err != nil {
		return core.Attempt{}, err
	}
	var labels []string
	if err := json.Unmarshal([]byte(r.Labels), &labels); err != nil {
		return core.Attempt{}, core.Wrap(core.KindInternal, "decode attempt labels "+r.ID, err)
	}
	return core.Attempt{
		ID: r.ID, JobID: r.JobID, RunID: r.RunID, Number: r.Number, State: st, Reason: reason,
		ExitCode: r.ExitCode, Labels: labels, RunnerID: r.RunnerID, LeaseToken: r.LeaseToken,
		LeaseExpiresAt: r.LeaseExpiresAt, QueuedAt: r.QueuedAt, LeasedAt: r.LeasedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, LogLength: r.LogLength, LogDigest: r.LogDigest,
	}, nil
}

// EncodeLabels stores labels as a JSON array (never null).
func EncodeLabels(labels []string) (string, error) {
	if labels == nil {
		labels = []string{}
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", core.Wrap(core.KindInternal, "encode labels", err)
	}
	return string(b), nil
}

// EventRow is an engine-neutral event row.
type EventRow struct {
	Seq                            int64
	At                             time.Time
	Actor, Entity, EntityID, RunID string
	From, To, Reason               string
}

// EventFromRow validates a stored event.
func EventFromRow(r EventRow) (core.Event, error) {
	reason, err := core.ParseReason(r.Reason)
	if err != nil {
		return core.Event{}, err
	}
	return core.Event{
		Seq: r.Seq, At: r.At, Actor: r.Actor, Entity: r.Entity, EntityID: r.EntityID,
		RunID: r.RunID, From: r.From, To: r.To, Reason: reason,
	}, nil
}

// specRecord is the stored JSON form of a job definition. It is separate from
// core.JobSpec so that renaming a domain field cannot break stored rows.
type specRecord struct {
	Name       string              `json:"name"`
	Run        string              `json:"run"`
	Needs      []string            `json:"needs,omitempty"`
	Inputs     []string            `json:"inputs,omitempty"`
	InputsFrom []string            `json:"inputs_from,omitempty"`
	Env        map[string]string   `json:"env,omitempty"`
	Secrets    []string            `json:"secrets,omitempty"`
	Outputs    []string            `json:"outputs,omitempty"`
	Reports    map[string][]string `json:"reports,omitempty"`
	TimeoutMS  int64               `json:"timeout_ms"`
	Retry      retryRecord         `json:"retry"`
	RunsOn     []string            `json:"runs_on,omitempty"`
	Network    bool                `json:"sandbox_network,omitempty"`
	Reuse      bool                `json:"reuse"`
	Hermetic   bool                `json:"hermetic,omitempty"`
	Branches   []string            `json:"branches,omitempty"`
	Events     []string            `json:"events,omitempty"`
	Cache      *cacheRecord        `json:"cache,omitempty"`
}

type cacheRecord struct {
	Files       []string `json:"key,omitempty"`
	RestoreKeys []string `json:"restore_keys,omitempty"`
	Paths       []string `json:"paths"`
	Key         string   `json:"computed_key,omitempty"`
	Env         string   `json:"env,omitempty"`
}

type retryRecord struct {
	RunnerLost int   `json:"runner_lost"`
	InfraError int   `json:"infra_error"`
	ExitCodes  []int `json:"exit_codes,omitempty"`
	Max        int   `json:"max"`
	Flaky      int   `json:"flaky,omitempty"`
}

// SpecToRecord returns the stored form of a job definition.
func SpecToRecord(s core.JobSpec) any {
	return specRecord{
		Name: s.Name, Run: s.Run, Needs: s.Needs, Inputs: s.Inputs, InputsFrom: s.InputsFrom, Env: s.Env, Secrets: s.Secrets,
		Outputs: s.Outputs, Reports: s.Reports, TimeoutMS: s.Timeout.Milliseconds(),
		Retry:  retryRecord{RunnerLost: s.Retry.RunnerLost, InfraError: s.Retry.InfraError, ExitCodes: s.Retry.ExitCodes, Max: s.Retry.Max, Flaky: s.Retry.Flaky},
		RunsOn: s.RunsOn, Network: s.Sandbox.Network, Reuse: s.Reuse, Hermetic: s.Hermetic, Branches: s.Branches, Events: s.Events,
		Cache: cacheToRecord(s.Cache),
	}
}

func cacheToRecord(c *core.Cache) *cacheRecord {
	if c == nil {
		return nil
	}
	return &cacheRecord{Files: c.Files, RestoreKeys: c.RestoreKeys, Paths: c.Paths, Key: c.Key, Env: c.Env}
}

func (r *cacheRecord) cache() *core.Cache {
	if r == nil {
		return nil
	}
	return &core.Cache{Files: r.Files, RestoreKeys: r.RestoreKeys, Paths: r.Paths, Key: r.Key, Env: r.Env}
}

func (r specRecord) spec() core.JobSpec {
	return core.JobSpec{
		Name: r.Name, Run: r.Run, Needs: r.Needs, Inputs: r.Inputs, InputsFrom: r.InputsFrom, Env: r.Env, Secrets: r.Secrets,
		Outputs: r.Outputs, Reports: r.Reports, Timeout: time.Duration(r.TimeoutMS) * time.Millisecond,
		Retry:  core.RetryPolicy{RunnerLost: r.Retry.RunnerLost, InfraError: r.Retry.InfraError, ExitCodes: r.Retry.ExitCodes, Max: r.Retry.Max, Flaky: r.Retry.Flaky},
		RunsOn: r.RunsOn, Sandbox: core.Sandbox{Network: r.Network}, Reuse: r.Reuse, Hermetic: r.Hermetic,
		Branches: r.Branches, Events: r.Events, Cache: r.Cache.cache(),
	}
}

// MatchLabels are the labels a runner must have to lease an attempt that
// asks for labels: each once, without empty ones.
func MatchLabels(labels []string) []string {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		if l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
