package results

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/deltaci/deltaci/internal/analysis"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// ReportsRef is the ref of an attempt's report files: those its job's
// reports globs matched, uploaded by the runner for the Failure Analyzer.
func ReportsRef(attemptID string) string { return "reports/" + attemptID + ":latest" }

// RefusedAnnotation, on a reports manifest, lists the report files the
// runner did not upload and why, one a line.
const RefusedAnnotation = "deltaci.reports.refused"

// ReportFiles lists the files under dir that a job's reports globs match
// (every kind), keeping those within the limits: at most MaxFileBytes
// each and MaxAttemptBytes together, in path order. It returns the kept
// paths and, for each refused file, a line saying why.
func ReportFiles(dir string, reports map[string][]string, lim analysis.Limits) (keep, refused []string, err error) {
	var globs []string
	for _, gs := range reports {
		globs = append(globs, gs...)
	}
	paths, err := MatchOutputs(dir, globs)
	if err != nil || len(paths) == 0 {
		return []string{}, nil, err
	}
	var total int64
	for _, p := range paths {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, nil, fmt.Errorf("report %s: %w", p, err)
		}
		switch size := fi.Size(); {
		case !fi.Mode().IsRegular():
			refused = append(refused, fmt.Sprintf("%s: not a regular file", p))
		case size > lim.MaxFileBytes:
			refused = append(refused, fmt.Sprintf("%s: %d bytes, over the limit of %d bytes per report file", p, size, lim.MaxFileBytes))
		case total+size > lim.MaxAttemptBytes:
			refused = append(refused, fmt.Sprintf("%s: %d bytes, over the %d bytes left of the limit of %d bytes per attempt",
				p, size, lim.MaxAttemptBytes-total, lim.MaxAttemptBytes))
		default:
			total += size
			keep = append(keep, p)
		}
	}
	if keep == nil {
		keep = []string{}
	}
	return keep, refused, nil
}

// ReportAnnotations are what a reports manifest of attempt a carries: the
// attempt, and the files refused.
func ReportAnnotations(attemptID string, refused []string) map[string]string {
	ann := map[string]string{annAttempt: attemptID}
	if len(refused) > 0 {
		ann[RefusedAnnotation] = strings.Join(refused, "\n")
	}
	return ann
}

// SaveReports stores the files of dir that j's reports globs match,
// within lim, as the attempt's reports (ReportsRef), and returns the
// refused files with why. A job without reports stores nothing.
func (s *Store) SaveReports(ctx context.Context, a core.Attempt, j core.Job, dir string, lim analysis.Limits) ([]string, error) {
	if len(j.Spec.Reports) == 0 {
		return nil, nil
	}
	keep, refused, err := ReportFiles(dir, j.Spec.Reports, lim)
	if err != nil {
		return nil, err
	}
	_, err = s.transfer().Push(ctx, s.Actor, dir, ReportsRef(a.ID), registry.PushOptions{
		Only: keep, Annotations: ReportAnnotations(a.ID, refused),
	})
	return refused, err
}

// RecordReports records a manifest a remote runner uploaded as the
// attempt's reports, after checking that it says it is this attempt's.
func (s *Store) RecordReports(ctx context.Context, a core.Attempt, m digest.Digest) error {
	_, man, err := s.Reg.Manifest(ctx, m.String())
	if err != nil {
		return core.Wrap(core.KindOf(err), "reports manifest "+m.String(), err)
	}
	if man.Annotations[annAttempt] != a.ID {
		return core.E(core.KindInvalid, "record reports", "manifest %s is not the reports of attempt %s (annotation %s=%q)",
			m, a.ID, annAttempt, man.Annotations[annAttempt])
	}
	ref, err := eventlog.ParseRef(ReportsRef(a.ID))
	if err != nil {
		return err
	}
	return s.Reg.SetRef(ctx, s.Actor, ref, m)
}
