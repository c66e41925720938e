package ui_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deltaci/deltaci/internal/browsertest"
	"github.com/deltaci/deltaci/internal/core"
)

// wait is how long a browser step may take on a busy machine.
const wait = 60 * time.Second

func TestBrowserRunShowsDAGWithReusedAndSkippedJobs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.reusedRun(t)
	ctx := browsertest.New(t, nil)
	shots := t.TempDir()
	page := e.URL + "/runs/" + run.ID
	browsertest.Do(t, ctx, "open the run page", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("svg.dag")))
	nodes := browsertest.Get(t, ctx, "read the graph", wait, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll("svg.dag a.node")].map(a => [a.dataset.job, a.getAttribute("class")]))`))
	for job, want := range map[string]string{"lint": "st-reused", "docs": "st-skipped", "build": "st-failed", "test": "st-upstream_failed"} {
		if !strings.Contains(nodes[job], want) {
			t.Errorf("job %s is drawn as %q, want %s", job, nodes[job], want)
		}
	}
	for _, j := range run.Jobs {
		why := browsertest.Get(t, ctx, "read "+j.Name+"'s why", wait, chromedp.Text(chromedp.CSS("#job-"+j.Name+" .why")))
		if !strings.Contains(why, j.Explain) {
			t.Errorf("job %s's why reads %q, want %q", j.Name, why, j.Explain)
		}
	}
	edges := browsertest.Get(t, ctx, "count edges", wait, chromedp.Evaluate[int](`document.querySelectorAll("svg.dag path.edge").length`))
	if edges != 1 {
		t.Errorf("the graph has %d edges, want 1 (test needs build)", edges)
	}
	browsertest.CheckA11y(t, ctx, "run page")
	browsertest.Screenshot(t, ctx, shots, "run")

	for _, p := range []struct{ name, path string }{
		{"projects", "/"}, {"runs", "/runs"}, {"runners", "/runners"}, {"job", "/runs/" + run.ID + "/jobs/build"},
	} {
		browsertest.Do(t, ctx, "open the "+p.name+" page", wait, chromedp.Navigate(e.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		browsertest.CheckA11y(t, ctx, p.name+" page")
		browsertest.Screenshot(t, ctx, shots, p.name)
	}
}

func TestBrowserRunningJobLogGrowsWithoutReload(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	l := e.runner.start(t, run.ID, "build")
	off := e.runner.log(t, l, 0, "::group::Set up\nfetching tools\n::endgroup::\n--- Compile\nfirst line\n")
	ctx := browsertest.New(t, nil)
	page := e.URL + "/runs/" + run.ID + "/jobs/build"
	browsertest.Do(t, ctx, "open the job page", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#log")),
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	pollTrue(t, ctx, "the first line shown", `document.getElementById("log").textContent.includes("first line")`)
	// A group before the last section is folded, as GitHub Actions folds it.
	folded := browsertest.Get(t, ctx, "read the group", wait, chromedp.Evaluate[bool](
		`document.querySelector("#log .hg .fold").getAttribute("aria-expanded") === "false" && [...document.querySelectorAll("#log .l")].find(l => l.textContent.includes("fetching tools")).hidden`))
	if !folded {
		t.Errorf("the ::group:: before the last section is not folded")
	}
	browsertest.Do(t, ctx, "unfold the group", wait, chromedp.Click(chromedp.CSS("#log .hg .fold")))
	pollTrue(t, ctx, "the group unfolded", `document.querySelector("#log .hg .fold").getAttribute("aria-expanded") === "true"`)

	for i := 0; i < 3; i++ {
		line := fmt.Sprintf("line %d arrived while the page was open", i)
		off = e.runner.log(t, l, off, line+"\n")
		pollTrue(t, ctx, "the new line shown", `document.getElementById("log").textContent.includes(`+jsString(line)+`)`)
	}
	if !browsertest.Get(t, ctx, "check no reload", wait, chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Errorf("the page reloaded to show the new lines")
	}
	stamped := browsertest.Get(t, ctx, "count stamped lines", wait, chromedp.Evaluate[int](`document.querySelectorAll("#log .l[data-at]").length`))
	if stamped != 8 {
		t.Errorf("%d lines carry their arrival time, want all 8: the 5 there before the page opened and the 3 that arrived live", stamped)
	}
	browsertest.Do(t, ctx, "show arrival times", wait, chromedp.Click(chromedp.CSS("#log-times")))
	pollTrue(t, ctx, "the times shown", `document.getElementById("log").classList.contains("show-times")`)
	e.runner.end(t, l, core.AttemptSucceeded)
	pollTrue(t, ctx, "the tail ended", `document.getElementById("log").hasAttribute("data-ended")`)
	pollTrue(t, ctx, "the job shown succeeded", `document.getElementById("job-state").textContent === "succeeded"`)
}

func TestBrowserOpens200MBLogAtItsTailAndPagesBackToItsFirstLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 200 MB log")
	}
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	l := e.runner.start(t, run.ID, "build")
	const lineLen = 1024
	total := int64(200 << 20)
	if mb, err := strconv.Atoi(os.Getenv("DELTACI_UI_LOG_MB")); err == nil && mb > 0 {
		total = int64(mb) << 20 // a smaller log, to try the test quickly
	}
	var off int64
	began := time.Now()
	beat := began
	chunk := make([]byte, 0, 1<<20)
	for n := 0; off < total; {
		chunk = chunk[:0]
		for len(chunk) < 1<<20 {
			s := fmt.Sprintf("line %07d ", n)
			chunk = append(chunk, s...)
			chunk = append(chunk, strings.Repeat("x", lineLen-len(s)-1)...)
			chunk = append(chunk, '\n')
			n++
		}
		off = e.runner.log(t, l, off, string(chunk))
		if time.Since(beat) > 3*time.Second {
			// Writing 200 MB outlasts a lease on a slow machine.
			beat = time.Now()
			if _, err := e.runner.c.Heartbeat(t.Context(), l.AttemptID, l.LeaseToken); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("wrote %d bytes of log in %v", off, time.Since(began))
	e.runner.end(t, l, core.AttemptSucceeded)
	lastLine := fmt.Sprintf("line %07d ", total/lineLen-1)

	ctx := browsertest.New(t, nil)
	page := e.URL + "/runs/" + run.ID + "/jobs/build"
	browsertest.Do(t, ctx, "open the job page", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#log")))
	pollTrue(t, ctx, "the last line shown", `document.getElementById("log").textContent.includes(`+jsString(lastLine)+`)`)
	t.Logf("the page shows the log's tail, %v since the start", time.Since(began))
	start := browsertest.Get(t, ctx, "read the window", wait, chromedp.Evaluate[int64](`+document.getElementById("log").dataset.start`))
	if start < total-(1<<20) {
		t.Fatalf("the page opened at byte %d, not at the tail of %d", start, total)
	}
	// Each click pages back by one byte range; the script says when the
	// page is in (log:paged).
	const back = `new Promise(done => {
		const log = document.getElementById("log");
		log.addEventListener("log:paged", () => done([+log.dataset.start, +log.dataset.end, log.getAttribute("data-error") || ""]), {once: true});
		document.getElementById("log-earlier").click();
	})`
	for pages := 1; start > 0; pages++ {
		if pages > int(total>>21)+10 {
			t.Fatalf("still at byte %d after %d pages back", start, pages)
		}
		got := browsertest.Get(t, ctx, "page back", wait, chromedp.Evaluate[[]any](back, chromedp.EvalAwaitPromise))
		s, end := int64(got[0].(float64)), int64(got[1].(float64))
		if got[2] != "" || s >= start {
			t.Fatalf("paging back from byte %d: now at %d (%v)", start, s, got[2])
		}
		start = s
		if end-start > 7<<20 {
			t.Fatalf("the page holds bytes %d to %d of the log", start, end)
		}
		if pages%50 == 0 || pages < 4 {
			t.Logf("%d pages back: at byte %d, %v since the start", pages, start, time.Since(began))
		}
	}
	first := browsertest.Get(t, ctx, "read the first line", wait, chromedp.TextContent(chromedp.ID("o0")))
	if !strings.Contains(first, "line 0000000 ") {
		t.Errorf("the log's first line reads %q", first)
	}
}

func TestBrowserCancelRunAndRerunFailedJob(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	ctx := browsertest.New(t, nil)
	page := e.URL + "/runs/" + run.ID
	browsertest.Do(t, ctx, "open the running run", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("cancel-run")))
	submit(t, ctx, "cancel it", chromedp.Click(chromedp.ID("cancel-run")))
	pollTrue(t, ctx, "the run shown canceled", `document.getElementById("run-state").textContent === "canceled"`)
	e.waitRun(t, run.ID, core.RunCanceled)

	failed := e.reusedRun(t)
	page = e.URL + "/runs/" + failed.ID
	browsertest.Do(t, ctx, "open the failed run", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#job-build button")))
	submit(t, ctx, "rerun build", chromedp.Click(chromedp.CSS("#job-build button")))
	pollTrue(t, ctx, "the new run shown", `location.pathname !== `+jsString("/runs/"+failed.ID)+` && document.body.textContent.includes(`+jsString(failed.ID)+`)`)
	loc := browsertest.Get(t, ctx, "read the location", wait, chromedp.Location())
	id := loc[strings.LastIndex(loc, "/")+1:]
	rerun, err := e.srv.User().Run(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rerun.RerunOf != failed.ID {
		t.Fatalf("the page moved to run %s, a rerun of %q", rerun.ID, rerun.RerunOf)
	}
	pollTrue(t, ctx, "lint shown reused", `document.querySelector("#job-lint .decision").textContent === "reused"`)
	browsertest.CheckA11y(t, ctx, "rerun page")
}

func TestBrowserViewerCannotCancel(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	ctx := browsertest.New(t, map[string]string{"Authorization": "Bearer " + e.viewer})
	page := e.URL + "/runs/" + run.ID
	browsertest.Do(t, ctx, "open the run as a viewer", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("svg.dag")))
	if browsertest.Get(t, ctx, "look for the button", wait, chromedp.Evaluate[bool](`document.getElementById("cancel-run") !== null`)) {
		t.Errorf("a viewer sees the cancel button")
	}
	status := browsertest.Get(t, ctx, "post the cancel form", wait, chromedp.Evaluate[int](
		`fetch(location.pathname + "/cancel", {method: "POST", body: new URLSearchParams({csrf: "x"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("a viewer's cancel is answered %d, want 403", status)
	}
	if got := e.waitRun(t, run.ID, core.RunRunning); got.State != string(core.RunRunning) {
		t.Errorf("the run is %s", got.State)
	}
	browsertest.CheckA11y(t, ctx, "a viewer's run page")
}

// pollTrue waits until the expression is true in the page, reading it
// again every 50 ms until the deadline; a page that navigates meanwhile
// (a form sent) is read again once loaded.
func pollTrue(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	end := time.Now().Add(wait)
	var last error
	for time.Now().Before(end) {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	t.Fatalf("%s: not true after %v (last error: %v): %s", what, wait, last, expr)
}

// submit sends a form by the click and waits for the page it leads to.
func submit(t *testing.T, ctx context.Context, what string, click chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	resp, err := chromedp.RunResponse(c, click)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp != nil && resp.Status != 200 {
		t.Fatalf("%s: the page it led to answered %d", what, resp.Status)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	return fmt.Sprintf("%q", s)
}

// signIn opens page in a new browser, is sent to the provider's login
// page, signs in as u and comes back to page.
func signIn(t *testing.T, e *webEnv, u string, password, page string) context.Context {
	t.Helper()
	ctx := browsertest.New(t, nil)
	browsertest.Do(t, ctx, "open "+page+" signed out", wait, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("username")))
	browsertest.Do(t, ctx, "sign in as "+u, wait,
		chromedp.SendKeys(chromedp.ID("username"), u), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")))
	pollTrue(t, ctx, "back at the page signed in", `location.href === `+jsString(page)+` && document.querySelector(".who") !== null && document.querySelector(".who").textContent.includes("Signed in as")`)
	return ctx
}

func TestBrowserLoginThroughOpenIDProviderThenCancel(t *testing.T) {
	t.Parallel()
	e := setupWeb(t)
	run := e.trigger(t)
	page := e.URL + "/runs/" + run.ID

	viewer := signIn(t, e, victor.Username, victor.Password, page)
	if browsertest.Get(t, viewer, "look for the button", wait, chromedp.Evaluate[bool](`document.getElementById("cancel-run") !== null`)) {
		t.Errorf("a viewer sees the cancel button")
	}
	// The viewer's own session and CSRF token, and still refused.
	status := browsertest.Get(t, viewer, "post the cancel form", wait, chromedp.Evaluate[int](
		`fetch(location.pathname + "/cancel", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("a signed-in viewer's cancel is answered %d, want 403", status)
	}
	browsertest.CheckA11y(t, viewer, "a signed-in viewer's run page")

	maintainer := signIn(t, e, alice.Username, alice.Password, page)
	// The run page's live part is redrawn as the run's state arrives, which
	// can replace the button between chromedp finding it and clicking it:
	// the page's own script clicks what is there.
	browsertest.Do(t, maintainer, "see the cancel button", wait, chromedp.WaitVisible(chromedp.ID("cancel-run")))
	browsertest.Get(t, maintainer, "cancel as a maintainer", wait, chromedp.Evaluate[bool](`document.getElementById("cancel-run").click(), true`))
	pollTrue(t, maintainer, "the run shown canceled", `document.getElementById("run-state").textContent === "canceled"`)
	events, err := e.srv.Store.Events(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	by := ""
	for _, ev := range events {
		if by == "" && ev.Entity == core.EntityRun && (ev.To == string(core.RunCanceling) || ev.To == string(core.RunCanceled)) {
			by = ev.Actor
		}
	}
	if by != "user:"+alice.Email {
		t.Errorf("the cancel is recorded as by %q, want user:%s", by, alice.Email)
	}
}

func TestBrowserRunsListUpdatesLive(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := browsertest.New(t, nil)
	browsertest.Do(t, ctx, "open the runs page", wait, chromedp.Navigate(e.URL+"/runs?project="+e.project.Name),
		chromedp.WaitVisible(chromedp.CSS("main h1")), chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	run := e.trigger(t)
	pollTrue(t, ctx, "the new run listed", `document.querySelector("tr[data-run='`+run.ID+`']") !== null && window.notReloaded === true`)
	if _, err := e.srv.User().CancelRun(t.Context(), run.ID); err != nil {
		t.Fatal(err)
	}
	pollTrue(t, ctx, "the run listed canceled", `document.querySelector("tr[data-run='`+run.ID+`'] .st").textContent === "canceled" && window.notReloaded === true`)
}
