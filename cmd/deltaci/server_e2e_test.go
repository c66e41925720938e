package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/secret"
	"github.com/deltaci/deltaci/internal/store/storetest"
)

// followRun streams the log of every attempt of a run from the moment the
// attempt is seen leased, as a watching client would. The returned func
// waits for the run to end and every stream to finish, and returns the
// bytes each stream delivered by attempt id.
func followRun(t *testing.T, srv *server, runID string) func() map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	var (
		mu   sync.Mutex
		logs = map[string][]byte{}
		errs []error
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	follow := func(id string) {
		defer wg.Done()
		var buf []byte
		_, err := srv.api.FollowLog(ctx, id, 0, func(ev protocol.LogEvent) error {
			if ev.Offset != int64(len(buf)) {
				return fmt.Errorf("a log event at offset %d after %d bytes", ev.Offset, len(buf))
			}
			buf = append(buf, ev.Data...)
			return nil
		})
		mu.Lock()
		defer mu.Unlock()
		logs[id] = buf
		if err != nil {
			errs = append(errs, fmt.Errorf("following the log of %s: %w", id, err))
		}
	}
	go func() {
		defer close(done)
		started := map[string]bool{}
		for ctx.Err() == nil {
			run, err := srv.api.Run(ctx, runID)
			if err == nil {
				for _, j := range run.Jobs {
					for _, a := range j.Attempts {
						if !started[a.ID] && a.State != string(core.AttemptQueued) {
							started[a.ID] = true
							wg.Add(1)
							go follow(a.ID)
						}
					}
				}
				if core.RunState(run.State).Terminal() {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() map[string][]byte {
		t.Helper()
		<-done
		wg.Wait()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			t.Error(err)
		}
		return logs
	}
}

// sealedLog checks that an ended attempt's log is sealed under the digest
// of its bytes and returns them.
func sealedLog(t *testing.T, srv *server, a protocol.Attempt) []byte {
	t.Helper()
	b, err := srv.api.Log(t.Context(), a.ID, 0)
	if err != nil {
		t.Fatalf("reading the log of %s: %v", a.ID, err)
	}
	sum := sha256.Sum256(b)
	if want := "sha256:" + hex.EncodeToString(sum[:]); a.LogDigest != want || a.LogLength != int64(len(b)) {
		t.Errorf("attempt %s: log_digest %q and log_length %d, but the log read back is %d bytes with digest %s",
			a.ID, a.LogDigest, a.LogLength, len(b), want)
	}
	return b
}

func TestServerRunsDAG(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		g := newGate(t)
		dir := repo(t, map[string]string{".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  build:
    run: mkdir -p out && echo "value from build" > out/value && echo scratch > junk && echo build done
    outputs: ["out/**"]
  test:
    needs: [build]
    run: cat out/value && test ! -e junk
  slow:
    run: |
      echo first line
      %s
      echo second line
  lint:
    run: echo lint ok
  report:
    needs: [test, slow, lint]
    run: echo report done
`, g.wait())})
		srv := startServer(t, serverOpts{database: database})
		runners := map[string]bool{}
		for range 2 {
			runners[srv.startRunner(t, runnerOpts{}).id] = true
		}
		srv.project(t, dir)
		trig := startProc(t, "trigger", procOpts{env: srv.userEnv()}, "trigger", "--server", srv.url(), "--repo", dir, "--ref", "main", "--follow")
		runID := triggeredRun(t, trig)
		followed := followRun(t, srv, runID)

		// The slow job waits for the gate, so its first line can only be
		// seen while it runs.
		run := srv.waitRun(t, runID, "slow is leased", func(r protocol.Run) bool {
			a := lastAttempt(job(t, r, "slow"))
			return a != nil && a.State != string(core.AttemptQueued)
		})
		slow := lastAttempt(job(t, run, "slow")).ID
		var live []byte
		seenLive := false
		ctx, cancel := context.WithTimeout(t.Context(), waitLong)
		defer cancel()
		end, err := srv.api.FollowLog(ctx, slow, 0, func(ev protocol.LogEvent) error {
			live = append(live, ev.Data...)
			if !seenLive && bytes.Contains(live, []byte("first line\n")) {
				r, err := srv.api.Run(ctx, runID)
				if err != nil {
					return err
				}
				a := lastAttempt(job(t, r, "slow"))
				if core.AttemptState(a.State).Terminal() {
					return fmt.Errorf("the first line arrived only after the attempt ended %s", a.State)
				}
				seenLive = true
				g.open(t)
			}
			return nil
		})
		if err != nil || !seenLive {
			t.Fatalf("following slow's log while it runs: %v (seen live: %v)\n%s", err, seenLive, live)
		}
		if end.State != string(core.AttemptSucceeded) || end.Length != int64(len(live)) || string(live) != "first line\nsecond line\n" {
			t.Errorf("slow's followed log ended %+v with %q", end, live)
		}

		run = srv.waitRunEnds(t, runID)
		if run.State != string(core.RunSucceeded) {
			t.Fatalf("run %s", describeRun(&run))
		}
		logs := followed()
		want := map[string]string{
			"build": "build done\n", "test": "value from build\n", "slow": "first line\nsecond line\n",
			"lint": "lint ok\n", "report": "report done\n",
		}
		for _, j := range run.Jobs {
			if j.State != string(core.JobSucceeded) || len(j.Attempts) != 1 {
				t.Errorf("job %s: %s with %d attempts", j.Name, j.State, len(j.Attempts))
				continue
			}
			a := j.Attempts[0]
			if !runners[a.RunnerID] {
				t.Errorf("job %s ran on %q, not on one of the test's runners", j.Name, a.RunnerID)
			}
			sealed := sealedLog(t, srv, a)
			if string(sealed) != want[j.Name] {
				t.Errorf("job %s: sealed log %q, want %q", j.Name, sealed, want[j.Name])
			}
			if got, ok := logs[a.ID]; !ok || !bytes.Equal(got, sealed) {
				t.Errorf("job %s: the log followed live (%q, followed: %v) is not the sealed one %q", j.Name, got, ok, sealed)
			}
		}

		select {
		case <-trig.done:
		case <-time.After(waitLong):
			t.Fatal("trigger --follow did not exit after the run ended")
		}
		out := trig.stdout.String()
		if code := trig.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("trigger --follow exited %d\n%s\n%s", code, out, trig.stderr.String())
		}
		for _, line := range []string{`build +\| build done`, `test +\| value from build`, `slow +\| first line`, `slow +\| second line`, `lint +\| lint ok`, `report +\| report done`, `run \S+ succeeded`} {
			if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(out) {
				t.Errorf("trigger --follow output lacks a line matching %q:\n%s", line, out)
			}
		}
		// The metrics say what happened: attempts by outcome, log bytes,
		// and the artifact store's bytes per namespace.
		resp, err := http.Get(srv.url() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, series := range []string{`deltaci_attempts_total{outcome="succeeded",reason=""} 5`, `deltaci_log_bytes_total `,
			`deltaci_store_bytes{namespace="outputs"} `, `deltaci_store_bytes{namespace="logs"} `, `deltaci_queue_wait_seconds_count 5`} {
			if !strings.Contains(string(metrics), series) {
				t.Errorf("/metrics lacks %q", series)
			}
		}

	})
}

func TestRunnerKilledMidJob(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		dir := repo(t, map[string]string{".deltaci.yml": `version: 1
jobs:
  victim:
    run: |
      grep -qx committed data.txt
      echo "attempt $DELTACI_ATTEMPT begins"
      echo changed > data.txt
      rm .deltaci.yml
      if [ "$DELTACI_ATTEMPT" = 1 ]; then sleep 600; fi
      echo "attempt $DELTACI_ATTEMPT ends"
`, "data.txt": "committed\n"})
		srv := startServer(t, serverOpts{database: database})
		// On SQLite the runners mount their workspaces with fuse-overlayfs,
		// on PostgreSQL as they choose (the kernel's overlayfs as root):
		// what a killed runner left mounted is cleared either way.
		views := ""
		if _, err := exec.LookPath("fuse-overlayfs"); database == "" && (err == nil || os.Getenv("CI") == "true") {
			views = "fuse-overlayfs"
		}
		byID := map[string]*runnerProc{}
		for range 2 {
			r := srv.startRunner(t, runnerOpts{workspaces: views})
			byID[r.id] = r
		}
		runID := srv.createRun(t, dir, "main").ID
		run := srv.waitRun(t, runID, "the first attempt runs and has shipped log", func(r protocol.Run) bool {
			a := lastAttempt(job(t, r, "victim"))
			return a != nil && a.State == string(core.AttemptRunning) && a.LogLength > 0
		})
		first := job(t, run, "victim").Attempts[0]
		victim := byID[first.RunnerID]
		if victim == nil {
			t.Fatalf("attempt %s is held by %q, not by one of the test's runners", first.ID, first.RunnerID)
		}
		victim.kill(t)

		run = srv.waitRun(t, runID, "the first attempt is lost", func(r protocol.Run) bool {
			return core.AttemptState(job(t, r, "victim").Attempts[0].State).Terminal()
		})
		if a := job(t, run, "victim").Attempts[0]; a.State != string(core.AttemptLost) || a.Reason != string(core.ReasonRunnerLost) {
			t.Fatalf("the attempt of the killed runner ended %s (%s), want lost (runner_lost)", a.State, a.Reason)
		}
		run = srv.waitRunEnds(t, runID)
		atts := job(t, run, "victim").Attempts
		if run.State != string(core.RunSucceeded) || len(atts) != 2 {
			t.Fatalf("want a succeeded run with one retry: %s", describeRun(&run))
		}
		second := atts[1]
		if second.Number != 2 || second.State != string(core.AttemptSucceeded) || second.RunnerID == first.RunnerID || byID[second.RunnerID] == nil {
			t.Errorf("the retry: %+v; the killed runner was %s", second, first.RunnerID)
		}
		// The killed runner's job is still running; a runner started on its
		// work directory stops it.
		if len(processesIn(victim.workDir)) == 0 {
			t.Fatal("no process of the killed runner's job is left: the test cannot show they are stopped")
		}
		if len(mountsUnder(t, victim.workDir)) == 0 && victim.workspaces(t) != "copy" {
			t.Fatal("the killed runner left no workspace mounted: the test cannot show they are removed")
		}
		srv.startRunner(t, runnerOpts{workDir: victim.workDir, workspaces: views})
		eventually(t, "the killed runner's job processes are stopped", func() bool { return len(processesIn(victim.workDir)) == 0 })
		// Its workspace is unmounted and gone, with the checkout under it.
		eventually(t, "the killed runner's workspace and checkout are removed", func() bool {
			for _, d := range []string{"ws", "checkouts"} {
				if entries, err := os.ReadDir(filepath.Join(victim.workDir, d)); err != nil || len(entries) > 0 {
					return false
				}
			}
			return len(mountsUnder(t, victim.workDir)) == 0
		})
		if got := string(sealedLog(t, srv, second)); !strings.Contains(got, "attempt 2 ends\n") {
			t.Errorf("the retry's log: %q", got)
		}
		oldLog := sealedLog(t, srv, atts[0])
		if string(oldLog) != "attempt 1 begins\n" {
			t.Errorf("the lost attempt's log: %q", oldLog)
		}

		// The killed runner's late writes, with the lease token it held.
		token, _ := srv.lease(t, first.ID)
		eventsBefore := srv.events(t)
		late := victim.session(t, srv)
		ctx := t.Context()
		code := 0
		_, err := late.Complete(ctx, first.ID, protocol.CompleteRequest{
			LeaseToken: token, State: core.AttemptSucceeded, ExitCode: &code,
			OutputsManifest: "sha256:" + strings.Repeat("0", 64),
		})
		assertLeaseLost(t, "a late completion", err)
		_, err = late.AppendLog(ctx, first.ID, token, "", atts[0].LogLength, []byte("late bytes\n"))
		assertLeaseLost(t, "a late log chunk", err)
		_, err = late.Heartbeat(ctx, first.ID, token)
		assertLeaseLost(t, "a late heartbeat", err)

		after, err := srv.api.Run(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(run, after); diff != "" {
			t.Errorf("late writes changed the run (-before +after):\n%s", diff)
		}
		if b := sealedLog(t, srv, after.Jobs[0].Attempts[0]); !bytes.Equal(b, oldLog) {
			t.Errorf("late writes changed the lost attempt's log: %q", b)
		}
		if evs := srv.events(t); len(evs) != len(eventsBefore) {
			t.Errorf("late writes added events: %v", evs[len(eventsBefore):])
		}
		// Jobs of a SIGKILLed shell runner outlive it; note them.
		if left := killProcessesIn(victim.workDir); len(left) > 0 {
			t.Logf("the killed runner left %d job processes running: %v", len(left), left)
		}
	})
}

// assertLeaseLost checks that err is the 409 lease_lost answer.
func assertLeaseLost(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s was accepted", what)
		return
	}
	if ae := apiError(t, what, err); ae.Status != http.StatusConflict || ae.Code != protocol.CodeLeaseLost {
		t.Errorf("%s: HTTP %d %s (%s), want 409 %s", what, ae.Status, ae.Code, ae.Message, protocol.CodeLeaseLost)
	}
}

// faultPipeline has two jobs that wait for the gate side by side and a
// third that needs both: the first two run when the fault strikes, and
// the third is queued only after it.
func faultPipeline(g gate, doneDir string) string {
	job := func(name string) string {
		return fmt.Sprintf(`  %[1]s:
    run: |
      echo "%[1]s started"
      %[2]s
      echo "%[1]s done"
      touch '%[3]s/%[1]s.'"$DELTACI_ATTEMPT"
`, name, g.wait(), doneDir)
	}
	return "version: 1\njobs:\n" + job("left") + job("right") + `  join:
    needs: [left, right]
    run: echo joined
`
}

// runThroughFault runs faultPipeline on srv with two runners, applies
// fault while left and right run, and checks that the run still ends
// well: every job succeeded exactly once, nothing was leased twice and
// no attempt ended twice.
func runThroughFault(t *testing.T, srv *server, fault func(running protocol.Run, g gate, doneDir string)) {
	t.Helper()
	g, doneDir := newGate(t), t.TempDir()
	dir := repo(t, map[string]string{".deltaci.yml": faultPipeline(g, doneDir)})
	runners := []*runnerProc{srv.startRunner(t, runnerOpts{}), srv.startRunner(t, runnerOpts{})}
	runID := srv.createRun(t, dir, "main").ID
	running := srv.waitRun(t, runID, "left and right run", func(r protocol.Run) bool {
		for _, name := range []string{"left", "right"} {
			a := lastAttempt(job(t, r, name))
			if a == nil || a.State != string(core.AttemptRunning) || a.LogLength == 0 {
				return false
			}
		}
		return true
	})
	fault(running, g, doneDir)
	run := srv.waitRunEnds(t, runID)
	if run.State != string(core.RunSucceeded) {
		t.Fatalf("the run did not survive the fault: %s\n%s", describeRun(&run), srv.logsOf(t, run))
	}
	t.Logf("after the fault: %s", describeRun(&run))
	ids := map[string]bool{}
	for _, r := range runners {
		if r.exited() {
			t.Errorf("runner %s exited:\n%s", r.id, tail(r.stderr.String()))
		}
		ids[r.id] = true
	}
	for _, j := range run.Jobs {
		succeeded := 0
		for _, a := range j.Attempts {
			if !core.AttemptState(a.State).Terminal() {
				t.Errorf("job %s attempt %d is still %s", j.Name, a.Number, a.State)
			}
			if a.State == string(core.AttemptSucceeded) {
				succeeded++
				if !ids[a.RunnerID] {
					t.Errorf("job %s succeeded on %q, not on one of the test's runners", j.Name, a.RunnerID)
				}
			}
		}
		if j.State != string(core.JobSucceeded) || succeeded != 1 {
			t.Errorf("job %s is %s with %d succeeded attempts: %s", j.Name, j.State, succeeded, describeRun(&run))
		}
	}
	if got := string(sealedLog(t, srv, *lastAttempt(job(t, run, "join")))); got != "joined\n" {
		t.Errorf("join's log: %q", got)
	}
	leased, ended := map[string]int{}, map[string]int{}
	for _, e := range srv.events(t) {
		if e.Entity != core.EntityAttempt {
			continue
		}
		if e.From == string(core.AttemptQueued) && e.To == string(core.AttemptLeased) {
			leased[e.EntityID]++
		}
		if core.AttemptState(e.To).Terminal() {
			ended[e.EntityID]++
		}
	}
	for id, n := range leased {
		if n > 1 {
			t.Errorf("attempt %s was leased %d times", id, n)
		}
	}
	for id, n := range ended {
		if n > 1 {
			t.Errorf("attempt %s ended %d times", id, n)
		}
	}
}

func TestServerKilledMidRun(t *testing.T) {
	t.Parallel()
	// Brief: the leases outlive the outage. PastLeases: they expire
	// meanwhile, so the restarted server reaps and retries attempts whose
	// runners hold finished results.
	for _, pastLeases := range []bool{false, true} {
		t.Run(map[bool]string{false: "Brief", true: "PastLeases"}[pastLeases], func(t *testing.T) {
			t.Parallel()
			onBothDatabases(t, func(t *testing.T, database string) {
				srv := startServer(t, serverOpts{database: database})
				runThroughFault(t, srv, func(running protocol.Run, g gate, doneDir string) {
					srv.kill(t)
					// The jobs end while the server is away: their runners
					// must keep the outcome until it is back.
					g.open(t)
					for _, name := range []string{"left.1", "right.1"} {
						eventually(t, name+" finishes", func() bool {
							_, err := os.Stat(filepath.Join(doneDir, name))
							return err == nil
						})
					}
					if pastLeases {
						for _, j := range []string{"left", "right"} {
							_, expires := srv.lease(t, lastAttempt(job(t, running, j)).ID)
							eventually(t, j+"'s lease expires", func() bool { return time.Now().After(expires) })
						}
					}
					srv.restart(t)
				})
			})
		})
	}
}

// TestPostgresRestartMidRun restarts the PostgreSQL cluster, which every
// other test using it would notice, so it runs only when asked, alone:
//
//	DELTACI_TEST_PG_RESTART=1 go test -race -run '^TestPostgresRestartMidRun$' ./cmd/deltaci/
func TestPostgresRestartMidRun(t *testing.T) {
	if os.Getenv("DELTACI_TEST_PG_RESTART") != "1" {
		t.Skip("restarts the PostgreSQL cluster: run alone with DELTACI_TEST_PG_RESTART=1 go test -race -run '^TestPostgresRestartMidRun$' ./cmd/deltaci/")
	}
	version, cluster := postgresCluster(t)
	srv := startServer(t, serverOpts{database: storetest.PostgresURL(t)})
	runThroughFault(t, srv, func(_ protocol.Run, g gate, _ string) {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart").CombinedOutput()
		if err != nil {
			t.Fatalf("pg_ctlcluster %s %s restart: %v\n%s", version, cluster, err, out)
		}
		g.open(t)
	})
}

// postgresCluster names the cluster to restart: DELTACI_TEST_PG_CLUSTER
// ("15 main"), or the main cluster of the only version installed.
func postgresCluster(t *testing.T) (version, cluster string) {
	t.Helper()
	if v := strings.Fields(os.Getenv("DELTACI_TEST_PG_CLUSTER")); len(v) == 2 {
		return v[0], v[1]
	}
	versions, _ := filepath.Glob("/etc/postgresql/*/main")
	if len(versions) != 1 {
		t.Fatalf("found PostgreSQL clusters %v; set DELTACI_TEST_PG_CLUSTER to the one to restart, e.g. \"15 main\"", versions)
	}
	return filepath.Base(filepath.Dir(versions[0])), "main"
}

// secretForms are the ways a job can print value that must never be
// stored: the value, its lines, its base64 at each byte offset (without
// the edge characters, which mix in the neighbours' bits), and its URL
// and JSON escapings.
func secretForms(value string) []string {
	forms := []string{value, url.QueryEscape(value), url.PathEscape(value)}
	for _, line := range strings.Split(value, "\n") {
		if len(line) >= secret.MinFormLen {
			forms = append(forms, line)
		}
	}
	for _, prefix := range []string{"", "x", "xy"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString([]byte(prefix + value))
			forms = append(forms, e[4:len(e)-4])
		}
	}
	j, _ := json.Marshal(value)
	forms = append(forms, string(j[1:len(j)-1]))
	slices.Sort(forms)
	return slices.Compact(forms)
}

// assertNoSecret fails when data holds any form of the values.
func assertNoSecret(t *testing.T, where string, data []byte, values ...string) {
	t.Helper()
	var found []string
	for _, v := range values {
		for _, f := range secretForms(v) {
			if bytes.Contains(data, []byte(f)) {
				found = append(found, f)
			}
		}
	}
	if len(found) > 0 {
		t.Errorf("%s holds secrets, in these forms: %q", where, found)
	}
}

// secretsPipeline prints its secrets raw, as base64, URL-encoded and
// JSON-escaped, each on a line of its own; without them it says so.
const secretsPipeline = `version: 1
jobs:
  leak:
    secrets: [TOKEN, KEY]
    reuse: false
    run: |
      if [ -z "$TOKEN" ]; then echo "TOKEN is empty"; exit 0; fi
      urlenc() {
        s=$1; out=
        while [ -n "$s" ]; do
          rest=${s#?}; c=${s%"$rest"}; s=$rest
          case $c in
            [A-Za-z0-9._~-]) out=$out$c ;;
            *) out=$out$(printf '%%%02X' "'$c") ;;
          esac
        done
        printf %s "$out"
      }
      # printf, not echo: dash's echo interprets backslashes.
      printf 'raw: %s\n' "$TOKEN"
      printf 'base64: %s\n' "$(printf %s "$TOKEN" | base64 -w0)"
      printf 'url: %s\n' "$(urlenc "$TOKEN")"
      printf 'json: %s\n' "$(printf %s "$TOKEN" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
      printf 'key: %s\n' "$KEY"
      printf 'key base64: %s\n' "$(printf %s "$KEY" | base64 -w0)"
      echo "end of leak"
`

func TestSecretsNeverStored(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, database string) {
		// Short enough that base64 does not wrap; a '"' and a '\' make the
		// JSON escaping differ from the value.
		token := "tok/" + rand.Text() + `+"q\` + rand.Text()[:6]
		key := "key-line-1-" + rand.Text()[:12] + "\nkey-line-2-" + rand.Text()[:12]
		srv := startServer(t, serverOpts{database: database, env: []string{
			"DELTACI_SECRET_TOKEN=" + token, "DELTACI_SECRET_KEY=" + key,
		}})
		runners := []*runnerProc{srv.startRunner(t, runnerOpts{}), srv.startRunner(t, runnerOpts{})}
		dir := repo(t, map[string]string{".deltaci.yml": secretsPipeline, "README": "main\n"})
		git(t, dir, "checkout", "-q", "-b", "feature")
		write(t, dir, "README", "feature\n")
		git(t, dir, "commit", "-q", "-am", "feature")
		git(t, dir, "checkout", "-q", "main")

		srv.project(t, dir, "--secrets", "TOKEN,KEY")
		trusted := srv.createRun(t, dir, "main")
		untrusted := srv.createRun(t, dir, "feature")
		if !trusted.Trusted || untrusted.Trusted {
			t.Fatalf("trust: main %v, feature %v", trusted.Trusted, untrusted.Trusted)
		}
		var apiBodies []byte
		for _, id := range []string{trusted.ID, untrusted.ID} {
			run := srv.waitRunEnds(t, id)
			if run.State != string(core.RunSucceeded) {
				t.Fatalf("run %s", describeRun(&run))
			}
			b, _ := json.Marshal(run)
			apiBodies = append(apiBodies, b...)
			log := string(sealedLog(t, srv, *lastAttempt(job(t, run, "leak"))))
			apiBodies = append(apiBodies, log...)
			if run.Trusted {
				for _, line := range []string{`raw: \*\*\*`, `base64: \*\*\*.{0,4}`, `url: \*\*\*`, `json: \*\*\*`, `key: \*\*\*`, `key base64: \*\*\*.{0,4}`, `end of leak`} {
					if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(log) {
						t.Errorf("the trusted job's log lacks a line matching %q:\n%s", line, log)
					}
				}
				if strings.Contains(log, "TOKEN is empty") {
					t.Errorf("the trusted job did not get its secret:\n%s", log)
				}
				continue
			}
			if !strings.Contains(log, "TOKEN is empty\n") || !regexp.MustCompile(`(?m)^deltaci: secrets .*TOKEN.* withheld`).MatchString(log) {
				t.Errorf("the untrusted job's log does not show the secrets withheld:\n%s", log)
			}
		}
		assertNoSecret(t, "the API's runs and sealed logs", apiBodies, token, key)

		// Nothing the server or runners keep may hold the secret: their
		// files (the SQLite database and its WAL, the artifact store,
		// mirrors), PostgreSQL's tables, and their own logs.
		dirs := []string{srv.dataDir}
		for _, r := range runners {
			dirs = append(dirs, r.workDir)
			assertNoSecret(t, "runner log", []byte(r.stdout.String()+r.stderr.String()), token, key)
		}
		assertNoSecret(t, "server log", []byte(srv.stdout.String()+srv.stderr.String()), token, key)
		files := 0
		for _, d := range dirs {
			err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
				if err != nil || !e.Type().IsRegular() {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				files++
				assertNoSecret(t, path, b, token, key)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if database == "" {
			if _, err := os.Stat(srv.sqlitePath()); err != nil {
				t.Fatalf("the SQLite database is not where the test looks: %v", err)
			}
		} else {
			assertNoSecret(t, "PostgreSQL", dumpPostgres(t, srv), token, key)
		}
		t.Logf("looked through %d files", files)
	})
}

// dumpPostgres returns every value of every table of the test's schema,
// bytea as its raw bytes.
func dumpPostgres(t *testing.T, srv *server) []byte {
	t.Helper()
	db := srv.db(t)
	rows, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var dump bytes.Buffer
	values := 0
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("dumping %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					dump.Write(b)
				} else {
					fmt.Fprint(&dump, v)
				}
				dump.WriteByte(0)
				values++
			}
		}
		rows.Close()
	}
	if values == 0 {
		t.Fatalf("the dump of tables %v is empty", tables)
	}
	t.Logf("dumped %d values of %d tables", values, len(tables))
	return dump.Bytes()
}

// buildProbe builds the executor tests' probe, a static binary that tries
// from inside a job what the sandbox forbids.
func buildProbe(t *testing.T) []byte {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "internal", "executor", "testdata", "probe"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	var unlock int32
	var n uint32
	for _, c := range []struct {
		req uintptr
		arg unsafe.Pointer
	}{{syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)}, {syscall.TIOCGPTN, unsafe.Pointer(&n)}} {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), c.req, uintptr(c.arg)); errno != 0 {
			t.Fatalf("pseudo-terminal ioctl %#x: %v", c.req, errno)
		}
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pseudo-terminal's other end: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

func TestSandboxThroughRunner(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bwrap (bubblewrap) is required under CI=true")
		}
		t.Skip("!!! SKIPPING the sandbox-through-a-runner test: bwrap (bubblewrap) is not installed")
	}
	probe := buildProbe(t)
	srv := startServer(t, serverOpts{executor: "sandbox"})
	// The runner has a terminal as its controlling terminal and stdin, for
	// the jobs to try TIOCSTI on.
	_, pts := openPTY(t)
	r := srv.startRunner(t, runnerOpts{executor: "sandbox", capacity: 2, proc: procOpts{
		stdin: pts, attr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}})
	identity, err := os.ReadFile(filepath.Join(r.workDir, "runner.json"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	outside := t.TempDir()
	denied := "/etc/deltaci-escape-" + rand.Text()
	dir := repo(t, map[string]string{"probe": string(probe), ".deltaci.yml": fmt.Sprintf(`version: 1
jobs:
  escape:
    run: |
      if (echo x >> '%[1]s') 2>/dev/null; then echo "WROTE %[1]s"; exit 1; fi
      echo "denied %[1]s"
      # Under /tmp these land in the sandbox's own tmpfs, if anywhere.
      (echo x >> '%[2]s/escaped') 2>/dev/null || true
      (echo x >> '%[3]s/runner.json') 2>/dev/null || true
      echo tried
  network:
    run: chmod +x probe && ./probe connect %[4]s && ./probe connect %[5]s
  processes:
    run: |
      for p in /proc/[0-9]*; do echo "${p#/proc/}: $(tr '\0' ' ' < $p/cmdline)"; done
      if kill -0 %[6]d 2>/dev/null; then echo SEES-"RUNNER"; exit 1; fi
      echo "runner" "invisible"
  tiocsti:
    run: chmod +x probe && ./probe tiocsti
`, denied, outside, r.workDir, ln.Addr(), srv.addr, r.cmd.Process.Pid)})

	run := srv.waitRunEnds(t, srv.createRun(t, dir, "main").ID)
	logs := map[string]string{}
	for _, j := range run.Jobs {
		a := lastAttempt(j)
		logs[j.Name] = string(sealedLog(t, srv, *a))
		if j.State != string(core.JobSucceeded) {
			t.Errorf("job %s: %s (%s); the sandbox let it do what it must not, or failed:\n%s", j.Name, j.State, j.Reason, logs[j.Name])
		}
	}
	has := func(job, re string) bool { return regexp.MustCompile(`(?m)` + re).MatchString(logs[job]) }

	if !has("escape", `^denied /etc/`) || !has("escape", `^tried$`) {
		t.Errorf("escape: no evidence the write was denied:\n%s", logs["escape"])
	}
	if _, err := os.Stat(denied); err == nil {
		os.Remove(denied)
		t.Errorf("a sandboxed job created %s on the host", denied)
	}
	if _, err := os.Stat(filepath.Join(outside, "escaped")); err == nil {
		t.Error("a sandboxed job wrote into another directory of the host")
	}
	if after, _ := os.ReadFile(filepath.Join(r.workDir, "runner.json")); !bytes.Equal(after, identity) {
		t.Errorf("a sandboxed job changed the runner's identity file: %q", after)
	}

	if n := strings.Count(logs["network"], "connect failed"); n != 2 || accepted.Load() != 0 {
		t.Errorf("network: the job reached the host's loopback (%d connections accepted):\n%s", accepted.Load(), logs["network"])
	}

	procs := regexp.MustCompile(`(?m)^\d+: `).FindAllString(logs["processes"], -1)
	if len(procs) == 0 || len(procs) > 6 || !has("processes", `^runner invisible$`) || has("processes", `^SEES-RUNNER$`) ||
		strings.Contains(logs["processes"], " runner --server") {
		t.Errorf("processes: the job sees more than its own processes:\n%s", logs["processes"])
	}

	if strings.Contains(logs["tiocsti"], "INJECTED") || !has("tiocsti", `^/dev/tty: `) {
		t.Errorf("tiocsti: the job reached a terminal:\n%s", logs["tiocsti"])
	}
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Log("this kernel refuses TIOCSTI everywhere (dev.tty.legacy_tiocsti=0): the tiocsti job cannot fail here")
	}
}

// triggeredRun waits for `deltaci trigger` to print its run id, the first
// line of its output, and returns it.
func triggeredRun(t *testing.T, trig *proc) string {
	t.Helper()
	var runID string
	eventually(t, "trigger prints the run id", func() bool {
		line, _, ok := strings.Cut(trig.stdout.String(), "\n")
		if !ok && trig.exited() {
			t.Fatalf("trigger exited without a run id:\n%s\n%s", trig.stdout.String(), trig.stderr.String())
		}
		runID = line
		return ok
	})
	if !uuidRE.MatchString(runID) {
		t.Fatalf("trigger's first line is not a run id: %q", runID)
	}
	return runID
}
