// Package results keeps what successful attempts produced, in the artifact
// store: each attempt's outputs as a manifest under outputs/<attempt>, and
// a result record under results/<job digest>:<namespace> that lets a later
// run with the same job digest reuse it.
//
// Namespaces are the trust boundary: a run reads the shared namespace and
// its own, and writes only the one it was given (only protected-branch runs
// get "shared"), so an untrusted run can never plant a result that a
// trusted one reuses.
package results

import (
	"context"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/planner"
)

// Namespace names.
const (
	Shared = "shared" // written by protected-branch runs only (SharedOf)
	Local  = "local"  // deltaci run on a developer's machine
)

// SharedOf is the shared namespace of a server's project: each project's
// protected branches write their own, so that one project's trusted runs
// can never plant a result another project reuses. A run outside any
// project uses Shared.
func SharedOf(project string) string {
	if project == "" {
		return Shared
	}
	return Shared + "." + project
}

// Annotation keys recorded on an outputs manifest.
const (
	annRun     = "deltaci.run"
	annAttempt = "deltaci.attempt"
	annNumber  = "deltaci.attempt_number"
	annJob     = "deltaci.job"
	annDigest  = "deltaci.digest"
)

// Store records and finds results.
type Store struct {
	Reg *registry.Registry
	// Write is the namespace this run records results in.
	Write string
	// Read are the namespaces this run may reuse from, in order.
	Read []string
	// Actor is recorded in the artifact store's audit trail.
	Actor string
}

func (s *Store) transfer() *registry.Transfer {
	return &registry.Transfer{Data: s.Reg.Data, Catalog: s.Reg, Alg: s.Reg.Alg}
}

// OutputsRef is the ref of an attempt's outputs manifest.
func OutputsRef(attemptID string) string { return "outputs/" + attemptID + ":latest" }

// LogRef is the ref of an attempt's kept log.
func LogRef(attemptID string) string { return "logs/" + attemptID + ":latest" }

// SaveLog keeps an attempt's log file in the store under logs/<attempt>;
// a reused job's explanation names the attempt whose log this is.
func (s *Store) SaveLog(ctx context.Context, a core.Attempt, path string) error {
	_, err := s.transfer().Push(ctx, s.Actor, path, LogRef(a.ID), registry.PushOptions{
		Annotations: map[string]string{annRun: a.RunID, annAttempt: a.ID, annNumber: strconv.Itoa(a.Number)},
	})
	return err
}

func resultRef(jobDigest, ns string) (eventlog.RefName, error) {
	hex := jobDigest[strings.IndexByte(jobDigest, ':')+1:]
	return eventlog.ParseRef("results/" + hex + ":" + ns)
}

// Save stores the files of dir matching the job's outputs globs as the
// attempt's outputs manifest and, when the job has a digest and may be
// reused, records it as the job's result. It returns the manifest digest.
func (s *Store) Save(ctx context.Context, a core.Attempt, j core.Job, dir string) (string, error) {
	only, err := MatchOutputs(dir, j.Spec.Outputs)
	if err != nil {
		return "", err
	}
	res, err := s.transfer().Push(ctx, s.Actor, dir, OutputsRef(a.ID), registry.PushOptions{
		Only:        only,
		Annotations: Annotations(a, j),
	})
	if err != nil {
		return "", err
	}
	if j.Digest != "" && j.Spec.Reuse && s.Write != "" {
		ref, err := resultRef(j.Digest, s.Write)
		if err != nil {
			return "", err
		}
		if err := s.Reg.SetRef(ctx, s.Actor, ref, res.Manifest); err != nil {
			return "", err
		}
	}
	return res.Manifest.String(), nil
}

// MatchOutputs lists the files under dir matching any of the globs (slash
// paths). No globs means no outputs.
func MatchOutputs(dir string, globs []string) ([]string, error) {
	out := []string{}
	if len(globs) == 0 {
		return out, nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, g := range globs {
			if ok, _ := doublestar.Match(g, rel); ok {
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "collect outputs", err)
	}
	return out, nil
}

// Lookup finds a recorded result for a job digest in the readable
// namespaces; it is the planner's Lookup.
func (s *Store) Lookup(ctx context.Context) planner.Lookup {
	return func(jobDigest string) (planner.Result, bool) {
		if s == nil {
			return planner.Result{}, false // no store: nothing was recorded
		}
		for _, ns := range s.Read {
			ref, err := resultRef(jobDigest, ns)
			if err != nil {
				return planner.Result{}, false
			}
			_, m, err := s.Reg.Manifest(ctx, ref.String())
			if err != nil {
				continue
			}
			n, _ := strconv.Atoi(m.Annotations[annNumber])
			if m.Annotations[annDigest] != jobDigest || m.Annotations[annAttempt] == "" {
				continue // a record that does not say what it is for is ignored
			}
			return planner.Result{RunID: m.Annotations[annRun], AttemptID: m.Annotations[annAttempt], Attempt: n}, true
		}
		return planner.Result{}, false
	}
}

// Restore writes the outputs of the given attempts (the successful or
// reused attempts of a job's needs) into dir.
func (s *Store) Restore(ctx context.Context, attemptIDs []string, dir string) error {
	for _, id := range attemptIDs {
		if _, err := s.transfer().PullInto(ctx, OutputsRef(id), dir); err != nil {
			if core.KindOf(err) == core.KindNotFound {
				// Every successful attempt stores an outputs manifest, even
				// an empty one: a missing one was deleted since.
				return core.E(core.KindNotFound, "restore outputs", "the outputs of attempt %s are gone from the artifact store (deleted by hand or by retention); run again with --no-reuse", id)
			}
			return err
		}
	}
	return nil
}

// RecordOutputs records a manifest a remote runner uploaded as the
// attempt's outputs, after checking that it exists and says it is the
// outputs of this attempt of this job.
func (s *Store) RecordOutputs(ctx context.Context, a core.Attempt, j core.Job, m digest.Digest) error {
	_, man, err := s.Reg.Manifest(ctx, m.String())
	if err != nil {
		return core.Wrap(core.KindOf(err), "outputs manifest "+m.String(), err)
	}
	if man.Annotations[annAttempt] != a.ID || man.Annotations[annDigest] != j.Digest {
		return core.E(core.KindInvalid, "record outputs", "manifest %s is not the outputs of attempt %s (annotations %s=%q, %s=%q)",
			m, a.ID, annAttempt, man.Annotations[annAttempt], annDigest, man.Annotations[annDigest])
	}
	ref, err := eventlog.ParseRef(OutputsRef(a.ID))
	if err != nil {
		return err
	}
	return s.Reg.SetRef(ctx, s.Actor, ref, m)
}

// Reusable reports whether a success of j is recorded as a result that
// later runs may reuse.
func Reusable(j core.Job) bool { return j.Digest != "" && j.Spec.Reuse }

// RecordResult records an outputs manifest as the job's result in the
// write namespace, when the job has a digest and may be reused. A zero m
// (a job without outputs, whose runner sent none) records an empty
// manifest that names the attempt.
func (s *Store) RecordResult(ctx context.Context, a core.Attempt, j core.Job, m digest.Digest) error {
	if !Reusable(j) || s.Write == "" {
		return nil
	}
	if m.IsZero() {
		var err error
		if m, _, err = s.Reg.CommitManifest(ctx, s.Actor, manifest.Manifest{Annotations: Annotations(a, j)}); err != nil {
			return err
		}
	}
	ref, err := resultRef(j.Digest, s.Write)
	if err != nil {
		return err
	}
	return s.Reg.SetRef(ctx, s.Actor, ref, m)
}

// Annotations are what an outputs manifest of attempt a of job j must
// carry; remote runners set them when they push.
func Annotations(a core.Attempt, j core.Job) map[string]string {
	return map[string]string{
		annRun: a.RunID, annAttempt: a.ID, annNumber: strconv.Itoa(a.Number), annJob: j.Name, annDigest: j.Digest,
	}
}
