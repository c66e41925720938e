package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
	"github.com/deltaci/deltaci/internal/store/postgres"
)

// eventsPipeline is two jobs in a row, so that the first one's end and
// the second one's log come in a known order.
const eventsPipeline = `version: 1
jobs:
  first:
    run: echo first
  second:
    needs: [first]
    run: echo second
`

// testContractRunEvents drives GET /runs/{id}/events and GET
// /runs/{id}/jobs/{name}/log on one engine: a follower connected before
// the run starts gets, job by job, each log before the event saying the
// job ended, then the end; a reconnection resumes the logs after its
// Last-Event-ID.
func testContractRunEvents(t *testing.T, cov *contractCoverage, engine string) {
	e := newContractEnv(t, contractOptions{engine: engine, apiToken: contractAPIToken, cov: cov})
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	repo := contractRepo(t, map[string]string{".deltaci.yml": eventsPipeline})
	e.addProject(ctx, contractProject{Name: "events", RepoURL: repo, ProtectedBranches: []string{"main"}})
	viewer := e.apiToken("viewer", "viewer")
	run := e.createRun(ctx, contractAPIToken, protocol.CreateRunRequest{Project: "events", Ref: "main"})
	events := "/api/v1/runs/" + run.ID + "/events"
	jobLog := func(job, query string) string { return "/api/v1/runs/" + run.ID + "/jobs/" + job + "/log" + query }

	// Refusals, before any stream.
	e.expect(ctx, http.StatusUnauthorized, "GET", events, nil, nil)
	e.expect(ctx, http.StatusUnauthorized, "GET", events, contractHeader("dci_not-a-token-the-server-made"), nil)
	e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/runs/"+store.NewID()+"/events", contractHeader(viewer), nil)
	r := e.expect(ctx, http.StatusNotFound, "GET", events+"?job=nosuch", contractHeader(viewer), nil)
	if d := r.errorDetail(t); !strings.Contains(d.Message, `"nosuch"`) {
		t.Errorf("following an unknown job: %+v", d)
	}
	e.expect(bad, http.StatusBadRequest, "GET", events+"?logs=2", contractHeader(viewer), nil)
	e.expect(bad, http.StatusBadRequest, "GET", events, contractHeader(viewer, "Last-Event-ID", "1.x"), nil)
	e.expect(ctx, http.StatusUnauthorized, "GET", jobLog("first", ""), nil, nil)
	e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/runs/"+store.NewID()+"/jobs/first/log", contractHeader(viewer), nil)
	e.expect(ctx, http.StatusNotFound, "GET", jobLog("nosuch", ""), contractHeader(viewer), nil)
	// second waits for first: no attempt, no log.
	r = e.expect(ctx, http.StatusNotFound, "GET", jobLog("second", ""), contractHeader(viewer), nil)
	if d := r.errorDetail(t); !strings.Contains(d.Message, "no attempt") {
		t.Errorf("the log of a job without an attempt: %+v", d)
	}

	// No runner yet: the queued job's event says why it waits.
	if why := firstWaiting(t, e.url+events, viewer, "first"); !strings.Contains(why, "no live runner") {
		t.Errorf("first's waiting reason with no runner = %q", why)
	}

	// A follower from before the first lease.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type result struct {
		r   contractResponse
		err error
	}
	followed := make(chan result, 1)
	go func() {
		r, err := e.try(fctx, "GET", events, contractHeader(viewer), nil)
		followed <- result{r, err}
	}()

	var reg protocol.RegisterResponse
	e.json(ctx, http.StatusCreated, "POST", "/api/v1/runners/register", contractRegToken,
		protocol.RegisterRequest{Name: "events-runner", Labels: []string{api.ExecutorLabel("shell")}, ProtocolVersion: protocol.Version}).decode(t, &reg)
	var sess protocol.SessionResponse
	e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/session", "",
		protocol.SessionRequest{RunnerID: reg.RunnerID, Credential: reg.Credential, ProtocolVersion: protocol.Version}).decode(t, &sess)
	zero := 0
	for _, job := range []string{"first", "second"} {
		var l protocol.Lease
		e.json(ctx, http.StatusOK, "POST", "/api/v1/runner/lease", sess.Token, protocol.LeaseRequest{WaitSeconds: 5}).decode(t, &l)
		if l.Job != job {
			t.Fatalf("leased %q, want %q", l.Job, job)
		}
		at := "/api/v1/attempts/" + l.AttemptID
		e.json(ctx, http.StatusNoContent, "POST", at+"/start", sess.Token, protocol.Fenced{LeaseToken: l.LeaseToken})
		off := 0
		for _, chunk := range []string{job + " one\n", job + " two\n"} {
			e.expect(ctx, http.StatusOK, "PUT", at+"/log?offset="+strconv.Itoa(off),
				contractHeader(l.JobToken, protocol.LeaseTokenHeader, l.LeaseToken, "Content-Type", "application/octet-stream"), []byte(chunk))
			off += len(chunk)
		}
		e.json(ctx, http.StatusOK, "POST", at+"/complete", sess.Token,
			protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptSucceeded, ExitCode: &zero})
	}
	f := <-followed
	if f.err != nil || f.r.status != http.StatusOK {
		t.Fatalf("follow = %d %s, %v", f.r.status, f.r.body, f.err)
	}
	if ct := f.r.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	evs := f.r.events(t)
	logs, ids := checkRunEvents(t, evs, "")
	if logs["first"] != "first one\nfirst two\n" || logs["second"] != "second one\nsecond two\n" {
		t.Errorf("followed logs = %q", logs)
	}

	// A reconnection resumes the logs after its cursor: the last id
	// sent nothing more; 10 bytes of first's log and none of second's,
	// the rest.
	if len(ids) == 0 {
		t.Fatal("no log event had an id")
	}
	if last := ids[len(ids)-1]; last != "20.22" {
		t.Errorf("the last log event's id is %q, want 20.22", last)
	}
	r = e.expect(ctx, http.StatusOK, "GET", events, contractHeader(viewer, "Last-Event-ID", ids[len(ids)-1]), nil)
	if logs, _ := checkRunEvents(t, r.events(t), ""); len(logs) != 0 {
		t.Errorf("logs after the last id = %q", logs)
	}
	r = e.expect(ctx, http.StatusOK, "GET", events, contractHeader(viewer, "Last-Event-ID", "10"), nil)
	if logs, _ := checkRunEvents(t, r.events(t), ""); logs["first"] != "first two\n" || logs["second"] != "second one\nsecond two\n" {
		t.Errorf("logs after Last-Event-ID 10 = %q", logs)
	}
	r = e.expect(ctx, http.StatusOK, "GET", events+"?logs=0", contractHeader(viewer), nil)
	if logs, _ := checkRunEvents(t, r.events(t), ""); len(logs) != 0 {
		t.Errorf("logs=0 sent logs %q", logs)
	}
	r = e.expect(ctx, http.StatusOK, "GET", events+"?job=second", contractHeader(viewer), nil)
	if logs, _ := checkRunEvents(t, r.events(t), "second"); len(logs) != 1 || logs["second"] != "second one\nsecond two\n" {
		t.Errorf("job=second sent logs %q", logs)
	}
	// A cursor past what the log holds is answered in the stream.
	r = e.expect(ctx, http.StatusOK, "GET", events, contractHeader(viewer, "Last-Event-ID", "99.0"), nil)
	if evs := r.events(t); len(evs) == 0 || evs[len(evs)-1].name != "error" {
		t.Errorf("a cursor past the log = %q", r.body)
	}

	// The job log route: the latest attempt's log, plain or followed.
	r = e.expect(ctx, http.StatusOK, "GET", jobLog("second", ""), contractHeader(viewer), nil)
	if string(r.body) != "second one\nsecond two\n" {
		t.Errorf("second's log = %q", r.body)
	}
	r = e.expect(ctx, http.StatusOK, "GET", jobLog("second", "?offset=11"), contractHeader(viewer), nil)
	if string(r.body) != "second two\n" {
		t.Errorf("second's log from 11 = %q", r.body)
	}
	r = e.expect(ctx, http.StatusOK, "GET", jobLog("first", "?follow=1"), contractHeader(viewer), nil)
	checkFollowed(t, r, 0, "first one\nfirst two\n", core.AttemptSucceeded)
	r = e.expect(ctx, http.StatusOK, "GET", jobLog("first", "?follow=1"), contractHeader(viewer, "Last-Event-ID", "10"), nil)
	checkFollowed(t, r, 10, "first two\n", core.AttemptSucceeded)
	e.expect(ctx, http.StatusRequestedRangeNotSatisfiable, "GET", jobLog("first", "?offset=100"), contractHeader(viewer), nil)
	e.expect(bad, http.StatusBadRequest, "GET", jobLog("first", "?offset=-1"), contractHeader(viewer), nil)
}

// firstWaiting reads a run's event stream until the first event of job
// and returns its waiting reason.
func firstWaiting(t *testing.T, url, tok, job string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && name == protocol.EventJob {
			var j protocol.Job
			if err := json.Unmarshal([]byte(v), &j); err != nil {
				t.Fatal(err)
			}
			if j.Name == job {
				return j.Waiting
			}
		}
	}
	t.Fatalf("the stream ended without an event of job %s: %v", job, sc.Err())
	return ""
}

// checkRunEvents checks a run's event stream: a run event first, one end
// event last, no job's log after the event saying it ended, the jobs'
// ends in the pipeline's order, log offsets in sequence; with only set,
// no log but that job's. It returns the logs by job and the ids of the
// log events.
func checkRunEvents(t *testing.T, evs []contractEvent, only string) (map[string]string, []string) {
	t.Helper()
	logs := map[string]string{}
	ended := map[string]bool{}
	var endOrder, ids []string
	if len(evs) < 2 || evs[0].name != protocol.EventRun || evs[len(evs)-1].name != protocol.EventEnd {
		names := make([]string, len(evs))
		for i, ev := range evs {
			names[i] = ev.name
		}
		t.Fatalf("events %v: want run first and end last", names)
	}
	for _, ev := range evs {
		switch ev.name {
		case protocol.EventLog:
			var l protocol.RunLog
			if err := json.Unmarshal(ev.data, &l); err != nil {
				t.Fatal(err)
			}
			if ended[l.Job] {
				t.Errorf("a log event of %s after the event saying it ended", l.Job)
			}
			if only != "" && l.Job != only {
				t.Errorf("a log event of %s when following %s", l.Job, only)
			}
			if ev.id == "" {
				t.Errorf("a log event without an id")
			}
			logs[l.Job] += string(l.Data)
			ids = append(ids, ev.id)
		case protocol.EventJob:
			var j protocol.Job
			if err := json.Unmarshal(ev.data, &j); err != nil {
				t.Fatal(err)
			}
			if core.JobState(j.State).Terminal() && !ended[j.Name] {
				ended[j.Name] = true
				endOrder = append(endOrder, j.Name)
			}
		case protocol.EventEnd:
			var run protocol.Run
			if err := json.Unmarshal(ev.data, &run); err != nil {
				t.Fatal(err)
			}
			if run.State != string(core.RunSucceeded) {
				t.Errorf("end event: run %s", run.State)
			}
		}
	}
	if strings.Join(endOrder, ",") != "first,second" {
		t.Errorf("jobs ended in the order %v", endOrder)
	}
	return logs, ids
}

// TestContractRunEvents runs the run events' contract on PostgreSQL, where
// the stream wakes on NOTIFY; TestContract runs it on SQLite.
func TestContractRunEvents(t *testing.T) {
	t.Parallel()
	testContractRunEvents(t, &contractCoverage{}, "PostgreSQL")
}

// notLeader is a replica that never leads: the background work stays
// with the first server.
type notLeader struct{}

func (notLeader) IsLeader(context.Context) (bool, error) { return false, nil }

// TestRunEventsAcrossReplicas follows a run on one replica while its
// runner talks to another on the same PostgreSQL database: the follower
// is woken by the database's notifications, and gets the log before the
// job's end and then the run's end.
func TestRunEventsAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := apitest.Start(t, apitest.Options{Engine: "PostgreSQL"})
	drv, err := postgres.Open(ctx, a.Database, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := a.Config
	cfg.Store, cfg.Leader, cfg.Wake = store.New(drv), notLeader{}, drv.Listen
	t.Cleanup(func() { cfg.Store.Close() })
	b := api.New(cfg)
	b.Start(ctx)
	hb := httptest.NewServer(b.Handler())
	t.Cleanup(func() { b.Drain(); hb.Close(); b.Stop() })

	lr := a.Leased(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  only:\n    run: echo hi\n"})
	l := lr.Lease
	follower := &protocol.Client{BaseURL: hb.URL, Token: func(context.Context) (string, error) { return apitest.APIToken, nil }}
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	first := make(chan struct{})
	type result struct {
		run    protocol.Run
		events []string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var evs []string
		run, err := follower.FollowRun(fctx, l.RunID, protocol.FollowRunOptions{}, func(ev protocol.RunEvent) error {
			switch ev.Type {
			case protocol.EventRun:
				if len(evs) == 0 {
					close(first)
				}
				evs = append(evs, "run")
			case protocol.EventJob:
				evs = append(evs, "job "+ev.Job.State)
			case protocol.EventLog:
				evs = append(evs, "log "+string(ev.Log.Data))
			}
			return nil
		})
		done <- result{run, evs, err}
	}()
	select {
	case <-first:
	case r := <-done:
		t.Fatalf("the follow ended before its first event: %v", r.err)
	}
	// Everything from here on happens on the other replica.
	if err := lr.Client.Start(ctx, l.AttemptID, l.LeaseToken); err != nil {
		t.Fatal(err)
	}
	if _, err := lr.Client.AppendLog(ctx, l.AttemptID, l.LeaseToken, l.JobToken, 0, []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if _, err := lr.Client.Complete(ctx, l.AttemptID, protocol.CompleteRequest{LeaseToken: l.LeaseToken, State: core.AttemptSucceeded, ExitCode: &zero}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.run.State != string(core.RunSucceeded) {
		t.Fatalf("follow on the other replica: run %s, %v (events %q)", r.run.State, r.err, r.events)
	}
	logAt, endAt := slices.Index(r.events, "log hi\n"), slices.Index(r.events, "job succeeded")
	if logAt < 0 || endAt < logAt {
		t.Errorf("events on the other replica: %q; want the log, then the job's end", r.events)
	}
}
