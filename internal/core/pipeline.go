package core

import "time"

// Pipeline is a parsed, validated .deltaci.yml.
type Pipeline struct {
	Version int
	// Strict makes warnings about the file (such as an input glob that
	// matches no file) errors that stop a plan.
	Strict bool
	// Jobs in file order. Names are unique.
	Jobs []JobSpec
}

// Job returns the job named name and whether it exists.
func (p *Pipeline) Job(name string) (JobSpec, bool) {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return JobSpec{}, false
}

// JobSpec is one job's definition with defaults applied.
type JobSpec struct {
	Name    string
	Run     string            // shell script, run with sh -e
	Needs   []string          // names of jobs that must succeed first
	Inputs  []string          // entries in order (see ParseInput); empty means the whole tree
	Env     map[string]string // extra environment
	Secrets []string          // secret names; values come from a provider
	Outputs []string          // globs of files uploaded after success
	Reports map[string][]string
	Timeout time.Duration
	Retry   RetryPolicy
	RunsOn  []string // runner labels required
	Sandbox Sandbox
	Reuse   bool // false for non-hermetic jobs: never reused
	// Hermetic jobs see only the files their inputs match (and the
	// outputs of their needs) in their workspace.
	Hermetic bool
	Branches []string // run only on these branches (globs); empty = all
	Events   []string // run only for these events; empty = all

	// InputsFrom names jobs whose digests are part of this one's, without
	// ordering or failure cascade (unlike Needs).
	InputsFrom []string

	// Cache, when set, is restored before the job and saved after it.
	Cache *Cache
}

// Cache is a job's cache: directories kept from one run of the job to the
// next, to make it start warm. It is not part of the job's input digest: a
// job's result must not depend on it.
type Cache struct {
	// Files are the globs whose files (their git blob ids) form the key,
	// with the executor, the runner labels and Paths.
	Files []string
	// RestoreKeys are key prefixes tried, in order, when no entry has
	// the exact key: the newest entry whose key starts with one wins.
	RestoreKeys []string
	// Paths are the directories cached: "~/..." under the job's home
	// directory, anything else relative to the workspace.
	Paths []string
	// Key is the computed key, set once the job is planned; Env is the
	// digest of what partitions entries beyond the key (executor,
	// labels, paths), so that restore keys never cross it.
	Key string
	Env string
}

// Sandbox holds the per-job sandbox settings.
type Sandbox struct {
	Network bool
}

// DefaultTimeout applies when neither the job nor defaults set one.
const DefaultTimeout = 30 * time.Minute

// Events a run can be triggered by.
const (
	EventPush        = "push"
	EventPullRequest = "pull_request"
	EventManual      = "manual"
)

// RetryPolicy says how many extra attempts each failure reason earns.
type RetryPolicy struct {
	RunnerLost int   // retries after a lost runner (default 2)
	InfraError int   // retries after checkout/setup failures
	ExitCodes  []int // exit codes worth retrying (flaky tests)
	Max        int   // cap on retries of all kinds; 0 means the sum of the above
	// Flaky is how many retries a failed attempt earns when every test it
	// failed is known flaky (decided once the attempt is analyzed).
	Flaky int
}

// DefaultRetry is the policy when the file says nothing.
var DefaultRetry = RetryPolicy{RunnerLost: 2}

// ShouldRetry decides whether an attempt that ended with reason (and exit
// code, for ReasonExitCode) earns another attempt, given the reasons of the
// job's previous failed attempts (not including this one).
func (p RetryPolicy) ShouldRetry(reason Reason, exitCode int, previous []Reason) bool {
	limit := 0
	switch reason {
	case ReasonRunnerLost:
		limit = p.RunnerLost
	case ReasonInfraError:
		limit = p.InfraError
	case ReasonExitCode:
		for _, c := range p.ExitCodes {
			if c == exitCode {
				limit = p.Max
				if limit == 0 {
					limit = 1
				}
			}
		}
	default:
		return false
	}
	same := 0
	for _, r := range previous {
		if r == reason {
			same++
		}
	}
	if same >= limit {
		return false
	}
	if p.Max > 0 && len(previous) >= p.Max {
		return false
	}
	return true
}
