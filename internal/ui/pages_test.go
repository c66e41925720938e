package ui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/ui"
)

func TestRunPageShowsDecisionsAndReasons(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.reusedRun(t)
	c := e.browser(t)
	resp, body := get(t, c, e.URL+"/runs/"+run.ID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET run page: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`<td class="decision dec-reused">reused</td>`,
		`<td class="decision dec-skipped">skipped</td>`,
		`<td class="decision dec-upstream_failed">upstream_failed</td>`,
		`<td class="decision dec-run">run</td>`,
		`data-job="lint"`, `class="node st-reused"`, `class="node st-skipped"`,
		"protected branch main", // why the run is trusted
		`id="rerun-failed"`,
		`class="fall"`,
		`<span id="changed-paths">1 changed path</span>`, // src/main.go since the base
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
	for _, j := range run.Jobs {
		if j.Explain == "" {
			t.Fatalf("job %s has no explanation to show", j.Name)
		}
		if !strings.Contains(body, htmlText(j.Explain)) {
			t.Errorf("the run page lacks job %s's why %q", j.Name, j.Explain)
		}
	}
}

// htmlText is s as html/template writes it in text.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.reusedRun(t)
	c := e.browser(t)
	for _, path := range []string{"/", "/runs", "/runs/" + run.ID, "/runs/" + run.ID + "/jobs/build", "/runners", "/static/app.js", "/runs/nope"} {
		resp, _ := get(t, c, e.URL+path)
		h := resp.Header
		if got := h.Get("Content-Security-Policy"); got != ui.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
		if !strings.Contains(ui.ContentSecurityPolicy, "frame-ancestors 'none'") || strings.Contains(ui.ContentSecurityPolicy, "unsafe-inline") {
			t.Fatalf("the policy is not strict: %s", ui.ContentSecurityPolicy)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", path, h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
	}
}

func TestLogLineWithHTMLIsShownAsText(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.reusedRun(t)
	c := e.browser(t)
	for _, path := range []string{"/runs/" + run.ID + "/jobs/build", "/runs/" + run.ID + "/jobs/build/search?q=script"} {
		resp, body := get(t, c, e.URL+path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		if strings.Contains(body, "<script>alert(1)") {
			t.Errorf("%s: the log's <script> line reached the page as markup", path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the log's <script> line is not shown as text", path)
		}
	}
	_, body := get(t, c, e.URL+"/runs/"+run.ID+"/jobs/build")
	if !strings.Contains(body, `<span class="f1">FAIL</span>`) {
		t.Errorf("the red FAIL of the log is not rendered as a coloured span")
	}
	resp, raw := get(t, c, e.URL+"/runs/"+run.ID+"/jobs/build/raw")
	if resp.StatusCode != http.StatusOK || !strings.Contains(raw, "<script>alert(1)</script>\n\x1b[31mFAIL") {
		t.Errorf("raw download: %d %q", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("raw download is served as %q, %q", ct, resp.Header.Get("Content-Disposition"))
	}
}

func TestViewerCannotCancel(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	c := e.browser(t)
	page := e.URL + "/runs/" + run.ID
	auth := []string{"Authorization", "Bearer " + e.viewer}
	_, body := get(t, c, page, auth...)
	if strings.Contains(body, "cancel-run") || strings.Contains(body, "/cancel") {
		t.Errorf("a viewer's run page has the cancel button")
	}
	resp, body := post(t, c, page, page+"/cancel", auth...)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's cancel: %d, want 403\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "maintainer or admin") {
		t.Errorf("the refusal does not say who may: %s", body)
	}
	resp, _ = post(t, c, page, page+"/jobs/build/rerun", auth...)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's rerun of a job: %d, want 403", resp.StatusCode)
	}
	if got := e.waitRun(t, run.ID, core.RunRunning); got.State != string(core.RunRunning) {
		t.Errorf("the run is %s after a viewer's cancel", got.State)
	}
	if resp, _ := get(t, c, e.URL+"/runners", auth...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's runners page: %d, want 403 (server admins only)", resp.StatusCode)
	}
}

func TestCancelAndRerunFromThePage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	c := e.browser(t)
	page := e.URL + "/runs/" + run.ID
	_, body := get(t, c, page)
	if !strings.Contains(body, `id="cancel-run"`) {
		t.Fatalf("an admin's page of a running run has no cancel button")
	}
	resp, body := post(t, c, page, page+"/cancel")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/runs/"+run.ID {
		t.Fatalf("cancel: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	e.waitRun(t, run.ID, core.RunCanceled)

	failed := e.reusedRun(t)
	page = e.URL + "/runs/" + failed.ID
	resp, body = post(t, c, page, page+"/jobs/build/rerun")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rerun job: %d\n%s", resp.StatusCode, body)
	}
	next := strings.TrimPrefix(resp.Header.Get("Location"), "/runs/")
	rerun, err := e.srv.User().Run(t.Context(), next)
	if err != nil {
		t.Fatal(err)
	}
	if rerun.RerunOf != failed.ID {
		t.Errorf("the new run %s reruns %q, want %s", rerun.ID, rerun.RerunOf, failed.ID)
	}
	states := map[string]string{}
	for _, j := range rerun.Jobs {
		states[j.Name] = j.State
	}
	if states["lint"] != string(core.JobReused) || states["build"] == string(core.JobReused) {
		t.Errorf("rerun of build: jobs %v", states)
	}
	// A rerun keeps its original's base and changed paths.
	if _, body := get(t, c, e.URL+"/runs/"+rerun.ID); !strings.Contains(body, `<span id="changed-paths">1 changed path</span>`) {
		t.Errorf("the rerun's page lacks its original's changed paths")
	}
}

func TestFormWithoutCSRFTokenIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	c := e.browser(t)
	page := e.URL + "/runs/" + run.ID
	get(t, c, page) // the cookie, but the form below does not carry it
	resp, err := c.Post(page+"/cancel", "application/x-www-form-urlencoded", strings.NewReader("csrf=wrong"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cancel without the CSRF token: %d, want 403", resp.StatusCode)
	}
	e.waitRun(t, run.ID, core.RunRunning)
}

func TestRunsListFilters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	c := e.browser(t)
	_, body := get(t, c, e.URL+"/runs?project="+e.project.Name+"&state=running")
	if !strings.Contains(body, run.ID) {
		t.Errorf("the running run is not listed among running runs")
	}
	_, body = get(t, c, e.URL+"/runs?state=succeeded")
	if strings.Contains(body, run.ID) {
		t.Errorf("the running run is listed among succeeded runs")
	}
	resp, body := get(t, c, e.URL+"/runs?state=sleeping")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "sleeping") {
		t.Errorf("an unknown state: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = get(t, c, e.URL+"/runs?colour=red")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown filter: %d", resp.StatusCode)
	}
	_, body = get(t, c, e.URL+"/")
	if !strings.Contains(body, e.project.Name) || !strings.Contains(body, "/runs/"+run.ID) {
		t.Errorf("the projects page does not show the project's latest run of main")
	}
	_, body = get(t, c, e.URL+"/runners")
	if !strings.Contains(body, "ui-runner") || !strings.Contains(body, "executor:shell") {
		t.Errorf("the runners page does not show the runner and its labels")
	}
}

func TestLogPagesByByteRange(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	l := e.runner.start(t, run.ID, "build")
	var off int64
	var want strings.Builder
	for i := 0; i < 40000; i++ {
		fmt.Fprintf(&want, "line %06d of the log\n", i)
	}
	text := want.String()
	for len(text) > 0 {
		n := min(len(text), 512<<10)
		off = e.runner.log(t, l, off, text[:n])
		text = text[n:]
	}
	c := e.browser(t)
	job := e.URL + "/runs/" + run.ID + "/jobs/build"
	_, body := get(t, c, job)
	if !strings.Contains(body, "line 039999 of the log") || strings.Contains(body, "line 000000 ") {
		t.Fatalf("the job page does not open at the log's tail")
	}
	// Page back to the first line, by byte ranges.
	start := off
	for pages := 0; start > 0; pages++ {
		if pages > 10 {
			t.Fatalf("still at byte %d after 10 pages back", start)
		}
		resp, frag := get(t, c, fmt.Sprintf("%s/log?before=%d", job, start))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page before %d: %d %s", start, resp.StatusCode, frag)
		}
		var s int64
		fmt.Sscan(resp.Header.Get("X-Log-Start"), &s)
		if s >= start || !strings.Contains(frag, fmt.Sprintf(`id="o%d"`, s)) {
			t.Fatalf("page before %d starts at %d", start, s)
		}
		start = s
		if start == 0 && !strings.Contains(frag, "line 000000 of the log") {
			t.Fatalf("the first page lacks the first line")
		}
		// Past lines too show when they arrived.
		if !strings.Contains(frag, fmt.Sprintf(`id="o%d" data-at="`, s)) {
			t.Fatalf("the line at %d has no arrival time", s)
		}
	}
	resp, _ := get(t, c, job+"/log?before=-1")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a negative offset: %d", resp.StatusCode)
	}
	resp, body = get(t, c, job+"/search?q=LINE+012345")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "line 012345 of the log") || !strings.Contains(body, "&amp;at=") {
		t.Errorf("search: %d", resp.StatusCode)
	}
}

// TestRunPageShowsWhyJobsFailed: once the Failure Analyzer has read the
// failed job's log, the run page shows the job's class, the first error of
// its log as text, and a link that opens the log at that error.
func TestRunPageShowsWhyJobsFailed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.reusedRun(t)
	c := e.browser(t)
	end := time.Now().Add(deadline)
	var body string
	for {
		var resp *http.Response
		resp, body = get(t, c, e.URL+"/runs/"+run.ID)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET run page: %d\n%s", resp.StatusCode, body)
		}
		if strings.Contains(body, `id="failure-build"`) && !strings.Contains(body, `id="analysis-pending"`) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the run page never showed the build's analysis:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`id="failures-h"`,
		`<a href="/runs/` + run.ID + `/jobs/build?attempt=1">build</a>`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", // the excerpt is text
		`/runs/` + run.ID + `/jobs/build?attempt=1&amp;at=`,
		"Open the log there",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("the excerpt's HTML reached the page unescaped")
	}
	if strings.Contains(body, "\x1b[") {
		t.Error("the excerpt kept ANSI escapes")
	}
}

func TestJobPageShowsItsCache(t *testing.T) {
	t.Parallel()
	e := setup(t)
	run := e.trigger(t)
	e.runner.pass(t, run.ID, "build", "lint", "test")
	e.waitRun(t, run.ID, core.RunSucceeded)
	c := e.browser(t)
	_, body := get(t, c, e.URL+"/runs/"+run.ID+"/jobs/lint")
	if !strings.Contains(body, `<dd class="cache" id="job-cache">key <code>lint-`) || !strings.Contains(body, "</code>: cold</dd>") {
		t.Errorf("the job page lacks lint's cache line:\n%s", body)
	}
	_, body = get(t, c, e.URL+"/runs/"+run.ID+"/jobs/build")
	if strings.Contains(body, "job-cache") {
		t.Error("a job without a cache shows a cache line")
	}
}
