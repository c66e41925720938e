package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/logstream"
	"github.com/deltaci/deltaci/internal/orchestrator"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/sqlite"
	"github.com/deltaci/deltaci/internal/ui"
)

// benchUI measures the web UI on the server, on SQLite: the page of a
// 1,000-job run against the API's JSON of the same run, the job page of a
// 200 MB sealed log (its first screen, the tail) against the API's read
// of the same tail, and the JavaScript a browser loads.
func benchUI(ctx context.Context, h *harness) ([]Result, error) {
	jobs, logMB, rounds := 1000, 200, 15
	if h.quick {
		jobs, logMB, rounds = 100, 8, 3
	}
	dir := filepath.Join(h.dir, "ui")
	db := filepath.Join(dir, "state.db")
	drv, err := sqlite.Open(ctx, db, true)
	if err != nil {
		return nil, err
	}
	st := store.New(drv)
	defer st.Close()
	arts, err := open.Open(ctx, open.Config{Database: db, Store: filepath.Join(dir, "store")})
	if err != nil {
		return nil, err
	}
	defer arts.Close()
	keys, err := auth.NewKeyset(nil)
	if err != nil {
		return nil, err
	}
	discard := slog.New(slog.DiscardHandler)
	srv := api.New(api.Config{Store: st, Registry: arts.Registry, Keys: keys, InsecureNoAuth: true, Executor: "shell",
		Mirrors: gitx.Mirrors{Dir: filepath.Join(dir, "mirrors")}, Log: discard})
	a := ui.APIAuth{Authenticate: srv.Authenticate}
	pages, err := ui.New(ui.Config{Backend: srv, Auth: a, Middleware: a.Middleware, Session: a.Session, Log: discard})
	if err != nil {
		return nil, err
	}
	handler := pages.Handler(srv.Handler())

	run, err := bigRun(ctx, st, jobs)
	if err != nil {
		return nil, err
	}
	orch := orchestrator.New(st, discard, orchestrator.NewNotifier())
	if err := orch.StartRun(ctx, run.ID); err != nil {
		return nil, err
	}
	attempt, length, err := bigLog(ctx, st, orch, arts.Registry, run.ID, int64(logMB)<<20)
	if err != nil {
		return nil, err
	}

	runPage, _, runCPU, err := serveCPU(handler, "/runs/"+run.ID, rounds)
	if err != nil {
		return nil, err
	}
	runJSON, _, err := serveTimes(handler, "/api/v1/runs/"+run.ID, rounds)
	if err != nil {
		return nil, err
	}
	jobPage, size, jobCPU, err := serveCPU(handler, "/runs/"+run.ID+"/jobs/job-0000", rounds)
	if err != nil {
		return nil, err
	}
	tail, _, err := serveTimes(handler, fmt.Sprintf("/api/v1/attempts/%s/log?offset=%d", attempt, length-64<<10), rounds)
	if err != nil {
		return nil, err
	}
	_, js, err := serveTimes(handler, "/static/app.js", 1)
	if err != nil {
		return nil, err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return []Result{
		{
			Name: fmt.Sprintf("ui run page, %d jobs (SQLite)", jobs), Value: ms(runPage), Unit: "ms",
			Baseline: "GET /api/v1/runs/{id} (JSON)", BaselineValue: ms(runJSON), Ratio: ms(runPage) / ms(runJSON),
			Goal: "<= 100 ms", Met: runPage <= 100*time.Millisecond,
			Note: fmt.Sprintf("median of %d renders on the server (DAG, job table and waterfall), %.1f ms of CPU each", rounds, ms(runCPU)),
		},
		{
			Name: fmt.Sprintf("ui job page, %d MB sealed log, first screen", logMB), Value: ms(jobPage), Unit: "ms",
			Baseline: "GET the log's last 64 KiB from the API", BaselineValue: ms(tail), Ratio: ms(jobPage) / ms(tail),
			Goal: "<= 200 ms", Met: jobPage <= 200*time.Millisecond,
			Note: fmt.Sprintf("median of %d, %.1f ms of CPU each; the page is %d bytes, the log's tail rendered", rounds, ms(jobCPU), size),
		},
		{Name: "ui JavaScript", Value: float64(js) / 1024, Unit: "KiB", Goal: "<= 50 KiB", Met: js <= 50<<10,
			Note: "static/app.js, the only script the pages load"},
	}, nil
}

// bigRun records a run of n jobs in layers: each job needs one or two of
// the jobs before it, a third are reused and a seventh skipped.
func bigRun(ctx context.Context, st *store.Store, n int) (core.Run, error) {
	jobs := make([]store.NewJob, n)
	for i := range jobs {
		spec := core.JobSpec{Name: fmt.Sprintf("job-%04d", i), Run: "true", Reuse: true}
		if i >= 10 {
			spec.Needs = []string{fmt.Sprintf("job-%04d", i/2), fmt.Sprintf("job-%04d", i-7)}
		}
		nj := store.NewJob{Spec: spec, Digest: fmt.Sprintf("sha256:%064x", i),
			Explain: fmt.Sprintf("%d changed files match its inputs (services/s%d/**)", i%5+1, i)}
		switch {
		case i > 0 && i%3 == 0:
			nj.Decision, nj.ReusedFrom = core.JobReused, store.NewID()
			nj.Explain = "no input changed since a successful run: reused"
		case i > 0 && i%7 == 0:
			nj.Decision, nj.Explain = core.JobSkipped, "skipped: branches [release] do not match main"
		}
		jobs[i] = nj
	}
	run, _, err := st.CreateRun(ctx, "bench", store.NewRun{Repo: "bench", Ref: "refs/heads/main", Commit: fmt.Sprintf("%040x", 1),
		Event: core.EventPush, TrustReason: "bench", Jobs: jobs})
	return run, err
}

// bigLog leases the run's first job, writes size bytes of 100-byte lines
// to its log, completes it and seals the log into the artifact store.
func bigLog(ctx context.Context, st *store.Store, orch *orchestrator.Orchestrator, reg *registry.Registry, runID string, size int64) (string, int64, error) {
	a, _, err := orch.Lease(ctx, runID, "bench-runner", time.Hour)
	if err != nil {
		return "", 0, err
	}
	f := store.Fence{AttemptID: a.ID, LeaseToken: a.LeaseToken, RunnerID: "bench-runner"}
	if err := orch.StartAttempt(ctx, "bench-runner", a, f); err != nil {
		return "", 0, err
	}
	if a, err = st.Attempt(ctx, a.ID); err != nil {
		return "", 0, err
	}
	chunk := make([]byte, 0, store.MaxLogChunk)
	var off int64
	for n := 0; off < size; {
		chunk = chunk[:0]
		for len(chunk)+100 <= store.MaxLogChunk && off+int64(len(chunk)) < size {
			line := fmt.Appendf(nil, "%08d \x1b[32mok\x1b[0m   step of the build with some output", n)
			for len(line) < 99 {
				line = append(line, '.')
			}
			chunk = append(append(chunk, line...), '\n')
			n++
		}
		if off, err = st.AppendLog(ctx, f, off, chunk); err != nil {
			return "", 0, err
		}
	}
	zero := 0
	if err := orch.CompleteAttempt(ctx, "bench-runner", a, f, orchestrator.Outcome{State: core.AttemptSucceeded, ExitCode: &zero}); err != nil {
		return "", 0, err
	}
	done, err := st.Attempt(ctx, a.ID)
	if err != nil {
		return "", 0, err
	}
	sealer := &logstream.Sealer{Store: st, Actor: "bench", Transfer: &registry.Transfer{Data: reg.Data, Catalog: reg, Alg: reg.Alg}}
	if _, err := sealer.Seal(ctx, done); err != nil {
		return "", 0, err
	}
	return a.ID, off, nil
}

// serveTimes serves GET path n times and returns the median time, and the
// size of the body.
func serveTimes(h http.Handler, path string, n int) (time.Duration, int, error) {
	d, size, _, err := serveCPU(h, path, n)
	return d, size, err
}

// serveCPU is serveTimes that also returns the process's CPU time per
// request: on a machine other work keeps busy, the wall time includes
// waiting for a core.
func serveCPU(h http.Handler, path string, n int) (time.Duration, int, time.Duration, error) {
	var times []time.Duration
	size := 0
	cpu0 := processCPU()
	for range n {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		began := time.Now()
		h.ServeHTTP(rec, req)
		times = append(times, time.Since(began))
		if rec.Code != http.StatusOK {
			b, _ := io.ReadAll(rec.Body)
			return 0, 0, 0, fmt.Errorf("GET %s: %d %s", path, rec.Code, b)
		}
		size = rec.Body.Len()
	}
	cpu := (processCPU() - cpu0) / time.Duration(n)
	slices.Sort(times)
	return times[len(times)/2], size, cpu, nil
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
