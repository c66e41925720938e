package core

// The transition tables below are the single source of which moves are legal
// (DESIGN.md section 4). A state with no outgoing moves is terminal.

var runTransitions = map[RunState][]RunState{
	RunQueued:    {RunPlanning, RunCanceled},
	RunPlanning:  {RunRunning, RunErrored, RunCanceled},
	RunRunning:   {RunSucceeded, RunFailed, RunCanceling},
	RunCanceling: {RunCanceled},
	RunSucceeded: nil,
	RunFailed:    nil,
	RunCanceled:  nil,
	RunErrored:   nil,
}

var jobTransitions = map[JobState][]JobState{
	// pending → failed: a rerun's job that carries its original's failure.
	JobPending:        {JobQueued, JobReused, JobSkipped, JobUpstreamFailed, JobCanceled, JobFailed},
	JobQueued:         {JobRunning, JobCanceled, JobFailed},
	JobRunning:        {JobSucceeded, JobFailed, JobCanceled},
	JobSucceeded:      nil,
	JobFailed:         nil,
	JobCanceled:       nil,
	JobReused:         nil,
	JobSkipped:        nil,
	JobUpstreamFailed: nil,
}

var attemptTransitions = map[AttemptState][]AttemptState{
	AttemptQueued:    {AttemptLeased, AttemptCanceled},
	AttemptLeased:    {AttemptRunning, AttemptLost, AttemptCanceled, AttemptErrored},
	AttemptRunning:   {AttemptSucceeded, AttemptFailed, AttemptTimedOut, AttemptCanceled, AttemptLost, AttemptErrored},
	AttemptSucceeded: nil,
	AttemptFailed:    nil,
	AttemptTimedOut:  nil,
	AttemptCanceled:  nil,
	AttemptLost:      nil,
	AttemptErrored:   nil,
}

func allowed[S comparable](table map[S][]S, from, to S) bool {
	for _, s := range table[from] {
		if s == to {
			return true
		}
	}
	return false
}

// RunStates lists every run state, in declaration order.
func RunStates() []RunState {
	return []RunState{RunQueued, RunPlanning, RunRunning, RunCanceling, RunSucceeded, RunFailed, RunCanceled, RunErrored}
}

// JobStates lists every job state.
func JobStates() []JobState {
	return []JobState{JobPending, JobQueued, JobRunning, JobSucceeded, JobFailed, JobCanceled, JobReused, JobSkipped, JobUpstreamFailed}
}

// AttemptStates lists every attempt state.
func AttemptStates() []AttemptState {
	return []AttemptState{AttemptQueued, AttemptLeased, AttemptRunning, AttemptSucceeded, AttemptFailed, AttemptTimedOut, AttemptCanceled, AttemptLost, AttemptErrored}
}

// CheckRun returns a KindConflict error unless from → to is a legal run move.
func CheckRun(from, to RunState) error {
	if !allowed(runTransitions, from, to) {
		return illegal("run", from, to)
	}
	return nil
}

// CheckJob returns a KindConflict error unless from → to is a legal job move.
// A retry is not a job move: the job stays queued or running while its next
// attempt is created.
func CheckJob(from, to JobState) error {
	if !allowed(jobTransitions, from, to) {
		return illegal("job", from, to)
	}
	return nil
}

// CheckAttempt returns a KindConflict error unless from → to is legal.
func CheckAttempt(from, to AttemptState) error {
	if !allowed(attemptTransitions, from, to) {
		return illegal("attempt", from, to)
	}
	return nil
}

// Terminal reports whether no move leaves s.
func (s RunState) Terminal() bool { return len(runTransitions[s]) == 0 }

// Terminal reports whether no move leaves s.
func (s JobState) Terminal() bool { return len(jobTransitions[s]) == 0 }

// Terminal reports whether no move leaves s.
func (s AttemptState) Terminal() bool { return len(attemptTransitions[s]) == 0 }

// Successful reports whether a terminal job state counts as success for its
// run and its dependents.
func (s JobState) Successful() bool {
	return s == JobSucceeded || s == JobReused || s == JobSkipped
}

// AttemptOutcome maps an attempt's terminal state to the failure reason it
// implies when the executor gave none.
func AttemptOutcome(s AttemptState) Reason {
	switch s {
	case AttemptFailed:
		return ReasonExitCode
	case AttemptTimedOut:
		return ReasonTimeout
	case AttemptCanceled:
		return ReasonCanceled
	case AttemptLost:
		return ReasonRunnerLost
	case AttemptErrored:
		return ReasonInfraError
	}
	return ReasonNone
}
