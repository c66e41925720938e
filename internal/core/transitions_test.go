package core

import (
	"errors"
	"testing"

	"pgregory.net/rapid"
)

func TestTransitionTables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"run queued→planning", CheckRun(RunQueued, RunPlanning), true},
		{"run planning→errored", CheckRun(RunPlanning, RunErrored), true},
		{"run running→canceling", CheckRun(RunRunning, RunCanceling), true},
		{"run canceling→canceled", CheckRun(RunCanceling, RunCanceled), true},
		{"run queued→succeeded", CheckRun(RunQueued, RunSucceeded), false},
		{"run succeeded→running", CheckRun(RunSucceeded, RunRunning), false},
		{"job pending→reused", CheckJob(JobPending, JobReused), true},
		{"job pending→upstream_failed", CheckJob(JobPending, JobUpstreamFailed), true},
		{"job running→pending", CheckJob(JobRunning, JobPending), false},
		{"job failed→queued", CheckJob(JobFailed, JobQueued), false},
		{"attempt queued→canceled", CheckAttempt(AttemptQueued, AttemptCanceled), true},
		{"attempt leased→lost", CheckAttempt(AttemptLeased, AttemptLost), true},
		{"attempt queued→running", CheckAttempt(AttemptQueued, AttemptRunning), false},
		{"attempt succeeded→failed", CheckAttempt(AttemptSucceeded, AttemptFailed), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.err == nil) != tt.ok {
				t.Fatalf("legal = %v, want %v (err %v)", tt.err == nil, tt.ok, tt.err)
			}
			if tt.err != nil && !errors.Is(tt.err, ErrConflict) {
				t.Fatalf("illegal move error %v is not ErrConflict", tt.err)
			}
		})
	}
}

// machine drives one run with its jobs and attempts through random moves,
// applying only those the tables allow, and checks the invariants after each.
type machine[S comparable] struct {
	states   []S
	check    func(from, to S) error
	terminal func(S) bool
}

func runMachine[S comparable](t *rapid.T, m machine[S], start S) {
	cur := start
	seenTerminal := false
	steps := rapid.IntRange(1, 60).Draw(t, "steps")
	for i := 0; i < steps; i++ {
		to := rapid.SampledFrom(m.states).Draw(t, "to")
		err := m.check(cur, to)
		if seenTerminal && err == nil {
			t.Fatalf("terminal state %v left for %v", cur, to)
		}
		if err != nil {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("illegal move error is not a conflict: %v", err)
			}
			continue // an illegal move changes nothing
		}
		cur = to
		known := false
		for _, s := range m.states {
			known = known || s == cur
		}
		if !known {
			t.Fatalf("reached unknown state %v", cur)
		}
		seenTerminal = m.terminal(cur)
	}
}

func TestStateMachinesProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		switch rapid.IntRange(0, 2).Draw(t, "machine") {
		case 0:
			runMachine(t, machine[RunState]{RunStates(), CheckRun, RunState.Terminal}, RunQueued)
		case 1:
			runMachine(t, machine[JobState]{JobStates(), CheckJob, JobState.Terminal}, JobPending)
		default:
			runMachine(t, machine[AttemptState]{AttemptStates(), CheckAttempt, AttemptState.Terminal}, AttemptQueued)
		}
	})
}

// Every state is reachable from the start state and every non-terminal state
// can still reach a terminal one: no state is a dead end or an island.
func TestEveryStateReachableAndEnds(t *testing.T) {
	t.Parallel()
	checkGraph(t, "run", RunQueued, RunStates(), runTransitions, RunState.Terminal)
	checkGraph(t, "job", JobPending, JobStates(), jobTransitions, JobState.Terminal)
	checkGraph(t, "attempt", AttemptQueued, AttemptStates(), attemptTransitions, AttemptState.Terminal)
}

func checkGraph[S comparable](t *testing.T, name string, start S, all []S, table map[S][]S, terminal func(S) bool) {
	t.Helper()
	if len(table) != len(all) {
		t.Errorf("%s: table has %d states, list has %d", name, len(table), len(all))
	}
	seen := map[S]bool{start: true}
	queue := []S{start}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range table[s] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, s := range all {
		if !seen[s] {
			t.Errorf("%s: state %v unreachable from %v", name, s, start)
		}
		if !terminal(s) && !reachesTerminal(s, table, terminal, map[S]bool{}) {
			t.Errorf("%s: state %v can never end", name, s)
		}
	}
}

func reachesTerminal[S comparable](s S, table map[S][]S, terminal func(S) bool, seen map[S]bool) bool {
	if terminal(s) {
		return true
	}
	seen[s] = true
	for _, n := range table[s] {
		if !seen[n] && reachesTerminal(n, table, terminal, seen) {
			return true
		}
	}
	return false
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{RunnerLost: 2, InfraError: 1, ExitCodes: []int{75}, Max: 3}
	tests := []struct {
		name   string
		reason Reason
		code   int
		prev   []Reason
		want   bool
	}{
		{"FirstLost", ReasonRunnerLost, -1, nil, true},
		{"SecondLost", ReasonRunnerLost, -1, []Reason{ReasonRunnerLost}, true},
		{"ThirdLost", ReasonRunnerLost, -1, []Reason{ReasonRunnerLost, ReasonRunnerLost}, false},
		{"Infra", ReasonInfraError, -1, nil, true},
		{"InfraTwice", ReasonInfraError, -1, []Reason{ReasonInfraError}, false},
		{"ListedExitCode", ReasonExitCode, 75, nil, true},
		{"OtherExitCode", ReasonExitCode, 1, nil, false},
		{"MaxReached", ReasonRunnerLost, -1, []Reason{ReasonInfraError, ReasonExitCode, ReasonExitCode}, false},
		{"TimeoutNever", ReasonTimeout, -1, nil, false},
		{"CanceledNever", ReasonCanceled, -1, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.ShouldRetry(tt.reason, tt.code, tt.prev); got != tt.want {
				t.Errorf("ShouldRetry = %v, want %v", got, tt.want)
			}
		})
	}
	if (RetryPolicy{}).ShouldRetry(ReasonRunnerLost, -1, nil) {
		t.Error("zero policy retried")
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	err := E(KindNotFound, "get run", "run %s", "x")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Errorf("Is mismatch for %v", err)
	}
	if KindOf(errors.New("plain")) != KindInternal {
		t.Error("plain error not internal")
	}
	wrapped := Wrap(KindUnavailable, "db", errors.New("down"))
	if got := wrapped.Error(); got != "db: down" {
		t.Errorf("Error() = %q", got)
	}
	if _, err := ParseReason("bogus"); KindOf(err) != KindInvalid {
		t.Errorf("ParseReason(bogus) = %v", err)
	}
}
