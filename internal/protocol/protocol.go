// Package protocol is the runner protocol and the run API of a Delta CI
// server as Go types: the JSON bodies of /api/v1, and a Client for them.
// docs/protocol.md describes the protocol independently of HTTP, and
// api/openapi.yaml is the HTTP contract.
package protocol

import (
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Version is the protocol version this build speaks. Runner and server
// exchange it at registration and refuse a different one.
const Version = 1

// Header names used by the runner routes.
const (
	// LeaseTokenHeader carries the lease token on log chunk uploads, whose
	// body is the raw log.
	LeaseTokenHeader = "Deltaci-Lease-Token"
)

// Error codes finer than a core.Kind that clients react to.
const (
	CodeLeaseLost        = "lease_lost"         // 409: the lease token is not the attempt's current one
	CodeLogOffset        = "log_offset"         // 416: a log chunk that is neither next nor held; details.length
	CodeProtocolVersion  = "protocol_version"   // 400: runner and server speak different versions
	CodeTooLarge         = "too_large"          // 413: a body over its limit
	CodeUnsupportedMedia = "unsupported_media"  // 415
	CodeLogCapExceeded   = "log_cap_exceeded"   // 413: the log reached its cap; the attempt must end resource_limit
	CodeRateLimited      = "rate_limited"       // 429: too many requests from one address; Retry-After says when to try again
	CodeForbidden        = "forbidden"          // 403: the credential is valid but may not do this
	CodeMethodNotAllowed = "method_not_allowed" // 405: the path exists, not with this method; the Allow header lists those it takes
)

// ErrorBody is the JSON body of every failed request.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what failed.
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// RegisterRequest registers a runner with the registration token (sent as
// a bearer token).
type RegisterRequest struct {
	Name            string   `json:"name"`
	Labels          []string `json:"labels"`
	ProtocolVersion int      `json:"protocol_version"`
}

// RegisterResponse gives the runner its id and credential. The credential
// is shown once: the server keeps only its hash.
type RegisterResponse struct {
	RunnerID        string `json:"runner_id"`
	Credential      string `json:"credential"`
	ProtocolVersion int    `json:"protocol_version"`
}

// RunnerInfo is a registered runner as GET /runners lists it.
type RunnerInfo struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Labels          []string  `json:"labels"`
	ProtocolVersion int       `json:"protocol_version"`
	CreatedAt       time.Time `json:"created_at"`
	// LastSeenAt is the runner's last contact: a session, a lease request,
	// a heartbeat or a log upload, recorded to within 10 seconds.
	LastSeenAt time.Time `json:"last_seen_at"`
	// State is RunnerIdle, RunnerBusy (it holds attempts) or RunnerOffline
	// (silent for longer than a live runner ever is).
	State string `json:"state"`
	// Attempts are the attempts it holds, leased or running, oldest first.
	Attempts []RunnerAttempt `json:"attempts"`
}

// The states of a runner in RunnerInfo.
const (
	RunnerIdle    = "idle"
	RunnerBusy    = "busy"
	RunnerOffline = "offline"
)

// RunnerAttempt is an attempt a runner holds.
type RunnerAttempt struct {
	AttemptID string    `json:"attempt_id"`
	RunID     string    `json:"run_id"`
	Job       string    `json:"job"`
	State     string    `json:"state"`
	LeasedAt  time.Time `json:"leased_at"`
}

// RunnerList is the answer to GET /runners, oldest first.
type RunnerList struct {
	Runners []RunnerInfo `json:"runners"`
}

// SessionRequest exchanges a runner credential for a session token.
type SessionRequest struct {
	RunnerID   string `json:"runner_id"`
	Credential string `json:"credential"`
	// ProtocolVersion is checked again, since a runner keeps its identity
	// across upgrades.
	ProtocolVersion int `json:"protocol_version"`
}

// SessionResponse is a short-lived runner token (an EdDSA JWT).
type SessionResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LeaseRequest asks for one attempt, waiting up to WaitSeconds (at most 30)
// for one to be queued.
type LeaseRequest struct {
	WaitSeconds int `json:"wait_seconds,omitempty"`
}

// Lease is a leased attempt: everything the runner needs to execute it.
type Lease struct {
	AttemptID      string    `json:"attempt_id"`
	AttemptNumber  int       `json:"attempt_number"`
	LeaseToken     string    `json:"lease_token"`
	TTLMillis      int64     `json:"ttl_ms"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	// JobToken authorizes this attempt's log and outputs; it expires with
	// the lease and is refreshed by each heartbeat.
	JobToken string `json:"job_token"`

	RunID   string `json:"run_id"`
	Repo    string `json:"repo"`
	Ref     string `json:"ref"`
	Commit  string `json:"commit"`
	Trusted bool   `json:"trusted"`

	JobID string `json:"job_id"`
	Job   string `json:"job"`
	// Digest is the job's input digest; the outputs manifest carries it.
	Digest        string            `json:"digest,omitempty"`
	Script        string            `json:"script"`
	Env           map[string]string `json:"env"`
	TimeoutMillis int64             `json:"timeout_ms"`
	Network       bool              `json:"network"`
	Outputs       []string          `json:"outputs"`
	// Reports are the job's report globs by format (junit, gotest): the
	// runner uploads the files they match, whatever the outcome.
	Reports map[string][]string `json:"reports,omitempty"`
	// Needs are the outputs manifests of the jobs this one needs, restored
	// into the workspace before the job starts.
	Needs []NeedOutputs `json:"needs"`
	// Secrets are sent for trusted runs only; WithheldSecrets names those
	// the job asked for that an untrusted run does not get.
	Secrets         map[string]string `json:"secrets,omitempty"`
	WithheldSecrets []string          `json:"withheld_secrets,omitempty"`
	// NetworkDenied says the job asked for network, which its project does
	// not give untrusted runs: Network is false.
	NetworkDenied bool `json:"network_denied,omitempty"`
	// Hermetic says the workspace holds only the files the job's Inputs
	// match at Commit (and what their symlinks lead to in the repository),
	// not a checkout of the whole commit.
	Hermetic bool `json:"hermetic,omitempty"`
	// Inputs are the job's input globs; sent for a hermetic job only.
	Inputs []string `json:"inputs,omitempty"`
	// TraceParent is the W3C traceparent of the server's span of this
	// lease, when the server traces: the runner's spans of the attempt are
	// its children. A value that is not a valid traceparent is ignored.
	TraceParent string `json:"traceparent,omitempty"`
	// Cache is the job's cache, when it has one.
	Cache *LeaseCache `json:"cache,omitempty"`
}

// LeaseCache is what a runner needs to restore and save a job's cache.
// Where a save is recorded is the server's choice (Scope says which), made
// from the run's trust when the attempt completes; the runner only
// uploads the entry's files and manifest.
type LeaseCache struct {
	Key         string   `json:"key"`
	RestoreKeys []string `json:"restore_keys,omitempty"`
	// Paths are the cached directories: "~/..." under the job's home,
	// others relative to the workspace.
	Paths []string `json:"paths"`
	// Restore is the entry to restore before the job; nil when none
	// matches (a cold start).
	Restore *CacheRestore `json:"restore,omitempty"`
	// Scope is where a save goes: "shared" for a trusted run, "own" for
	// another, which trusted runs never read.
	Scope string `json:"scope"`
}

// CacheRestore names the cache entry a job starts from.
type CacheRestore struct {
	Key      string `json:"key"`
	Manifest string `json:"manifest"`
	// Match is "exact" (the job's key) or "prefix" (a restore key).
	Match string `json:"match"`
}

// CacheReport says what an attempt did with its cache.
type CacheReport struct {
	// Outcome is exact, prefix or cold (nothing restored, or the restore
	// failed).
	Outcome string `json:"outcome"`
	// RestoredKey is the key of the entry restored.
	RestoredKey   string `json:"restored_key,omitempty"`
	RestoredBytes int64  `json:"restored_bytes"`
	// SavedManifest is the digest of the entry saved, already uploaded;
	// empty when nothing was saved. Unchanged says the job left the
	// restored entry as it was, so it was not saved again.
	SavedManifest string `json:"saved_manifest,omitempty"`
	Unchanged     bool   `json:"unchanged,omitempty"`
	// UploadedBytes are the bytes the save sent (files the store lacked).
	UploadedBytes int64 `json:"uploaded_bytes"`
}

// TTL is the lease's time-to-live.
func (l Lease) TTL() time.Duration { return time.Duration(l.TTLMillis) * time.Millisecond }

// Timeout is the job's time limit.
func (l Lease) Timeout() time.Duration { return time.Duration(l.TimeoutMillis) * time.Millisecond }

// NeedOutputs names the outputs of one needed job.
type NeedOutputs struct {
	Job      string `json:"job"`
	Manifest string `json:"manifest"`
}

// Fenced is the body of every runner write on an attempt.
type Fenced struct {
	LeaseToken string `json:"lease_token"`
}

// HeartbeatResponse extends the lease; Cancel says the run is being
// canceled and the job must stop.
type HeartbeatResponse struct {
	Cancel         bool      `json:"cancel"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	JobToken       string    `json:"job_token"`
}

// LogResponse is the server's log length after a chunk upload.
type LogResponse struct {
	Length int64 `json:"length"`
}

// CompleteRequest reports how an attempt ended.
type CompleteRequest struct {
	LeaseToken string            `json:"lease_token"`
	State      core.AttemptState `json:"state"`
	Reason     core.Reason       `json:"reason,omitempty"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	// OutputsManifest is the digest of the manifest of the attempt's
	// outputs, already uploaded to the artifact store (successes only).
	OutputsManifest string `json:"outputs_manifest,omitempty"`
	// ReportsManifest is the digest of the manifest of the attempt's
	// report files, already uploaded (any outcome; none when the job has
	// no reports).
	ReportsManifest string `json:"reports_manifest,omitempty"`
	// Cache reports what the attempt did with its job's cache.
	Cache *CacheReport `json:"cache,omitempty"`
}

// CompleteResponse echoes the recorded outcome.
type CompleteResponse struct {
	AttemptID string            `json:"attempt_id"`
	State     core.AttemptState `json:"state"`
}

// CreateRunRequest starts a run of a registered project at a commit or
// ref. Nothing in it makes the run trusted: the server derives trust from
// the project, the event and its own fetch.
type CreateRunRequest struct {
	// Project names the project; when empty, Repo is resolved to the
	// project with that clone URL.
	Project string `json:"project,omitempty"`
	// Repo is the project's clone URL (a local path or a git URL).
	Repo string `json:"repo,omitempty"`
	// Ref is a branch (main, refs/heads/main) or any revision; the run is
	// for it. Commit, when set, pins the commit (it must be on the ref's
	// history for the planner's base to make sense, but is not checked).
	Ref    string `json:"ref"`
	Commit string `json:"commit,omitempty"`
	// Event is push (the default) or manual.
	Event string `json:"event,omitempty"`
	// Before is, for a push, the commit the branch pointed to before it.
	Before string `json:"before,omitempty"`
}

// Run is a run with its jobs.
type Run struct {
	ID      string `json:"id"`
	Repo    string `json:"repo"`
	Ref     string `json:"ref"`
	Commit  string `json:"commit"`
	Event   string `json:"event"`
	Project string `json:"project,omitempty"`
	Trusted bool   `json:"trusted"`
	// TrustReason says why the run is trusted or not.
	TrustReason string `json:"trust_reason,omitempty"`
	// RerunOf is the run this one reruns, when it is a rerun.
	RerunOf    string     `json:"rerun_of,omitempty"`
	State      string     `json:"state"`
	Reason     string     `json:"reason,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Jobs       []Job      `json:"jobs"`
	// Warnings are said once, in the answer to the run's creation: labels
	// its jobs need that no runner ever registered with.
	Warnings []string `json:"warnings,omitempty"`
	// Message says, in words, why an errored run errored: a configuration
	// error starts with the file:line:col of the problem.
	Message string `json:"message,omitempty"`
}

// Job is one job of a run with its attempts.
type Job struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Reason     string     `json:"reason,omitempty"`
	Needs      []string   `json:"needs"`
	Explain    string     `json:"explain,omitempty"`
	Digest     string     `json:"digest,omitempty"`
	ReusedFrom string     `json:"reused_from,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Attempts   []Attempt  `json:"attempts"`
	// Waiting says why the job's queued attempt waits: no live runner has
	// the labels it needs. Empty when a live runner could take it.
	Waiting string `json:"waiting,omitempty"`
	// Cache is the job's cache key and fallbacks, when it has a cache.
	Cache *JobCache `json:"cache,omitempty"`
}

// JobCache is a job's planned cache.
type JobCache struct {
	Key         string   `json:"key"`
	RestoreKeys []string `json:"restore_keys,omitempty"`
	Paths       []string `json:"paths"`
}

// AttemptCache is what an attempt did with its job's cache.
type AttemptCache struct {
	// Outcome is exact, prefix or cold; RestoredKey is the key of the
	// entry restored.
	Outcome       string `json:"outcome"`
	RestoredKey   string `json:"restored_key,omitempty"`
	RestoredBytes int64  `json:"restored_bytes"`
	// Saved is "saved", "unchanged" (the restored entry was left as it
	// was) or empty (nothing saved: the job did not succeed, or the save
	// failed). SavedBytes is the size of the saved entry's files,
	// UploadedBytes what the save sent.
	Saved         string `json:"saved,omitempty"`
	SavedBytes    int64  `json:"saved_bytes"`
	UploadedBytes int64  `json:"uploaded_bytes"`
	// Scope is "shared" when the run writes its project's shared cache,
	// "own" otherwise.
	Scope string `json:"scope"`
}

// Attempt is one execution of a job.
type Attempt struct {
	ID         string     `json:"id"`
	Number     int        `json:"number"`
	State      string     `json:"state"`
	Reason     string     `json:"reason,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	RunnerID   string     `json:"runner_id,omitempty"`
	LogLength  int64      `json:"log_length"`
	LogDigest  string     `json:"log_digest,omitempty"`
	QueuedAt   time.Time  `json:"queued_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Cache is what the attempt did with its job's cache, once reported.
	Cache *AttemptCache `json:"cache,omitempty"`
}

// LogEvent is the data of one "log" event of a followed log: Data holds
// the base64 of the bytes at Offset.
type LogEvent struct {
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// LogEnd is the data of the "end" event: the attempt ended and the whole
// log, Length bytes, was sent.
type LogEnd struct {
	Length int64  `json:"length"`
	Digest string `json:"digest,omitempty"`
	State  string `json:"state"`
}

// Project is a repository the server is told about: the unit of trust.
type Project struct {
	Name          string `json:"name"`
	RepoURL       string `json:"repo_url"`
	DefaultBranch string `json:"default_branch"`
	// ProtectedBranches are globs of branches whose pushes are trusted.
	ProtectedBranches []string `json:"protected_branches"`
	// Secrets are the secret names its trusted runs may receive.
	Secrets []string `json:"secrets"`
	// UntrustedNetwork lets jobs of untrusted runs have network.
	UntrustedNetwork bool `json:"untrusted_network"`
	// Labels are the runs-on labels its jobs may ask for; empty means any.
	Labels []string `json:"labels"`
	// Public lets anyone read its runs in the web UI, signed in or not.
	Public bool `json:"public"`
	// Forge ties it to its repository on a forge: webhooks in, commit
	// statuses out. Absent for none.
	Forge     *ProjectForge `json:"forge,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// RoleBinding gives a principal (an e-mail address, "sub:SUBJECT" or
// "group:NAME") a role (admin, maintainer or viewer) on a project in the
// web UI.
type RoleBinding struct {
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// RoleList is a project's role bindings, by principal.
type RoleList struct {
	Roles []RoleBinding `json:"roles"`
}

// RolesPatch grants and revokes roles on a project: Revoke's bindings go,
// then Grant's are set.
type RolesPatch struct {
	Grant  []RoleBinding `json:"grant,omitempty"`
	Revoke []string      `json:"revoke,omitempty"`
}

// ProjectForge is a project's forge. Its webhook secret is not part of
// it: admins read it from GET /projects/{name}/hooks.
type ProjectForge struct {
	// Kind is github, gitlab, gitea or forgejo.
	Kind string `json:"kind"`
	// APIURL is the forge API's root; empty means https://api.github.com
	// for github, and is required for the others.
	APIURL string `json:"api_url,omitempty"`
	// Repo is owner/name on the forge (a GitLab project's path with its
	// namespace).
	Repo string `json:"repo"`
	// TokenSecret names the server's secret holding the token statuses
	// are posted with; empty posts none.
	TokenSecret string `json:"token_secret,omitempty"`
	// KeepSuperseded keeps a pull request's unfinished run going when a
	// new push to it starts another.
	KeepSuperseded bool `json:"keep_superseded,omitempty"`
}

// ProjectHooks is what to paste into the forge's webhook settings, and
// the latest deliveries: the answer of GET /projects/{name}/hooks.
type ProjectHooks struct {
	Forge string `json:"forge"`
	// URL is where the forge sends deliveries.
	URL         string `json:"url"`
	Secret      string `json:"secret"`
	ContentType string `json:"content_type"`
	// Events are the forge's names of the events to send.
	Events     []string       `json:"events"`
	Deliveries []HookDelivery `json:"deliveries"`
}

// HookDelivery is one webhook delivery as the server stored it.
type HookDelivery struct {
	ID       string `json:"id"`
	Delivery string `json:"delivery"`
	// Event is push or pull_request.
	Event string `json:"event"`
	// State is pending, done or failed.
	State      string     `json:"state"`
	RunID      string     `json:"run_id,omitempty"`
	Message    string     `json:"message,omitempty"`
	Tries      int        `json:"tries"`
	ReceivedAt time.Time  `json:"received_at"`
	DoneAt     *time.Time `json:"done_at,omitempty"`
}

// HookAnswer is the answer to a webhook delivery.
type HookAnswer struct {
	// Result is queued, duplicate or ignored.
	Result string `json:"result"`
	// Delivery is the stored delivery's id, when it was queued.
	Delivery string `json:"delivery,omitempty"`
	// Reason says why an ignored delivery makes no run.
	Reason string `json:"reason,omitempty"`
}

// ProjectList is the answer of GET /projects.
type ProjectList struct {
	Projects []Project `json:"projects"`
}

// ProjectPatch changes the fields of a project it sets; nil leaves one as
// it is.
type ProjectPatch struct {
	RepoURL           *string   `json:"repo_url,omitempty"`
	DefaultBranch     *string   `json:"default_branch,omitempty"`
	ProtectedBranches *[]string `json:"protected_branches,omitempty"`
	Secrets           *[]string `json:"secrets,omitempty"`
	UntrustedNetwork  *bool     `json:"untrusted_network,omitempty"`
	Labels            *[]string `json:"labels,omitempty"`
	Public            *bool     `json:"public,omitempty"`
	// Forge replaces the project's forge; one with an empty kind removes
	// it. The webhook secret is kept while the forge kind stays.
	Forge *ProjectForge `json:"forge,omitempty"`
}

// RunAnalysis is what the Failure Analyzer found in a run
// (GET /runs/{id}/analysis): per job, its latest analyzed attempt, and its
// failing tests compared with the base's result for that job.
type RunAnalysis struct {
	RunID string `json:"run_id"`
	// Base is the commit the run was planned against, empty for none.
	Base string `json:"base,omitempty"`
	// ChangedPaths counts the paths that differ between Base and the
	// run's commit; absent without a base or where it was not recorded.
	ChangedPaths *int `json:"changed_paths,omitempty"`
	// Pending counts the run's ended attempts not analyzed yet.
	Pending int           `json:"pending"`
	Jobs    []JobAnalysis `json:"jobs"`
}

// JobAnalysis is one job's part of a RunAnalysis.
type JobAnalysis struct {
	Job   string `json:"job"`
	State string `json:"state"`
	// Flaky says the job is flaky now (proven by two attempts with the
	// same input digest, one passed and one failed).
	Flaky bool `json:"flaky"`
	// AttemptID and Number are the analyzed attempt's, empty when none of
	// the job's attempts is analyzed yet (or it has none).
	AttemptID    string              `json:"attempt_id,omitempty"`
	Number       int                 `json:"attempt_number,omitempty"`
	Class        string              `json:"class,omitempty"`
	Totals       core.TestTotals     `json:"totals"`
	Failures     []FailureComparison `json:"failures"`
	MoreFailures int                 `json:"more_failures,omitempty"`
	Fixed        []string            `json:"fixed"`
	Excerpt      *core.LogExcerpt    `json:"excerpt,omitempty"`
	Problems     []string            `json:"problems,omitempty"`
	BaseAttempt  string              `json:"base_attempt,omitempty"`
}

// Failure statuses against the base's result.
const (
	FailureNew      = "new"      // passed at the base, or absent there
	FailureExisting = "existing" // failed at the base too
)

// FailureComparison is a failing test with what is known of it: new or
// existing against the base (empty without a base result), whether it is
// known flaky, and how often its signature was seen.
type FailureComparison struct {
	core.TestFailure
	Status    string    `json:"status,omitempty"`
	Flaky     bool      `json:"flaky"`
	SeenCount int64     `json:"seen_count"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// FlakyList is a project's flaky jobs and tests (GET /projects/{name}/flaky).
type FlakyList struct {
	Project string       `json:"project"`
	Flaky   []core.Flaky `json:"flaky"`
}
