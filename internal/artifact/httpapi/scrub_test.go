package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// contractScrub drives POST and GET /scrub with each of their statuses.
// The scrub it starts reads one byte a second, so it is still running for
// the conflict; the server's Scrubber stops it at the end of the test.
func contractScrub(t *testing.T, e *env) {
	ctx, bad := e.ctx, unchecked(e.ctx)
	e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/scrub", nil, nil)
	e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/scrub", jsonCT, []byte(`{"rate":-5}`))
	e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/scrub", jsonCT, []byte(`{"since":"yesterday"}`))
	e.expect(bad, http.StatusUnsupportedMediaType, "POST", "/api/v1/scrub", hdr("Content-Type", "text/plain"), []byte(`{}`))
	r := e.expect(ctx, http.StatusAccepted, "POST", "/api/v1/scrub", jsonCT, []byte(`{"rate":1,"since":"24h"}`))
	var st httpapi.ScrubStatusBody
	if err := json.Unmarshal(r.body, &st); err != nil || st.State != "running" || st.Actor != "token:alice" || st.Rate != 1 ||
		st.Since == "" || !st.Partial {
		t.Errorf("started scrub = %s, %v", r.body, err)
	}
	r = e.expect(ctx, http.StatusConflict, "POST", "/api/v1/scrub", nil, nil)
	if msg := r.errorBody(t).Message; !strings.Contains(msg, "token:alice") {
		t.Errorf("conflict does not name the running scrub's actor: %q", msg)
	}
	r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/scrub", nil, nil)
	if err := json.Unmarshal(r.body, &st); err != nil || st.State != "running" {
		t.Errorf("status = %s, %v", r.body, err)
	}
}

// TestScrubThroughAPI scrubs a server's store through the client, as
// artifactstore scrub --server does: the scrub finds the blob damaged on
// the server's disk and quarantines it, its status says which and how to
// repair; a plain GET of the blob is then a 404, find-missing lists it,
// uploading it again repairs it, and a second scrub is clean. A token
// that is not an admin on every namespace may not start one.
func TestScrubThroughAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := e.ctx
	var ds []digest.Digest
	contents := map[digest.Digest][]byte{}
	for i := range 12 {
		b := bytes.Repeat([]byte{byte(i)}, 1000+i)
		d := e.upload(b)
		ds, contents[d] = append(ds, d), b
	}
	rotten := ds[5]
	damageStored(t, e, rotten)

	reader := e.newToken("reader", "*:read")
	e.expect(unchecked(ctx), http.StatusForbidden, "POST", "/api/v1/scrub", bearer(reader), nil)

	st, err := e.client.StartScrub(ctx, registry.ScrubOptions{Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Actor != "token:alice" || st.Options.Rate != -1 {
		t.Errorf("started = %+v", st)
	}
	st = waitAPIScrub(t, e)
	if st.State != registry.ScrubDone || st.Report.Blobs != len(ds) || len(st.Report.Corrupt) != 1 {
		t.Fatalf("scrub = %+v", st)
	}
	c := st.Report.Corrupt[0]
	if c.Digest != rotten || c.Chunk != 0 || c.Size != int64(len(contents[rotten])) || c.Quarantine == "" || !strings.Contains(c.Reason, "chunk 0") {
		t.Errorf("corrupt blob = %+v", c)
	}
	r := e.expect(ctx, http.StatusOK, "GET", "/api/v1/scrub", nil, nil)
	var body httpapi.ScrubStatusBody
	if err := json.Unmarshal(r.body, &body); err != nil || !strings.Contains(body.Repair, "push") || body.FinishedAt == "" {
		t.Errorf("status body %s, %v", r.body, err)
	}

	e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/blobs/"+rotten.String(), nil, nil)
	missing, err := e.client.FindMissing(ctx, ds)
	if err != nil || len(missing) != 1 || missing[0] != rotten {
		t.Errorf("find-missing = %v, %v", missing, err)
	}
	evs, err := e.client.Audit(ctx, eventlog.AuditFilter{Subject: rotten.String()})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind+" by "+ev.Actor)
	}
	if got := strings.Join(kinds, ", "); !strings.Contains(got, "blob.quarantined by token:alice, blob.gone by token:alice") {
		t.Errorf("audit of the rotten blob: %s", got)
	}
	if rep, err := e.client.Verify(ctx); err != nil || !rep.Match() {
		t.Errorf("replay --verify after the scrub: %+v, %v", rep, err)
	}

	e.upload(contents[rotten])
	r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/blobs/"+rotten.String(), nil, nil)
	if !bytes.Equal(r.body, contents[rotten]) {
		t.Error("the repaired blob reads back other bytes")
	}
	if _, err := e.client.StartScrub(ctx, registry.ScrubOptions{Rate: -1}); err != nil {
		t.Fatal(err)
	}
	if st := waitAPIScrub(t, e); st.State != registry.ScrubDone || len(st.Report.Corrupt) != 0 || st.Report.Blobs != len(ds) {
		t.Errorf("second scrub = %+v", st)
	}
}

// TestScrubWithoutScrubber checks that a server given no Scrubber says it
// runs no scrubs, and one that has run none yet says that.
func TestScrubWithoutScrubber(t *testing.T) {
	t.Parallel()
	e := setup(t, mounted())
	w := httptest.NewRecorder()
	httpapi.New(httpapi.Options{Registry: e.reg}).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/scrub", nil))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "runs no scrubs") {
		t.Errorf("POST /scrub without a scrubber = %d %s", w.Code, w.Body.String())
	}
	if _, err := e.client.ScrubStatus(e.ctx); core.KindOf(err) != core.KindNotFound || !strings.Contains(err.Error(), "no scrub has run") {
		t.Errorf("status before any scrub: %v", err)
	}
}

// waitAPIScrub polls GET /scrub, up to a minute, until the scrub ends.
func waitAPIScrub(t *testing.T, e *env) registry.ScrubStatus {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := e.client.ScrubStatus(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != registry.ScrubRunning {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scrub did not end within a minute: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
