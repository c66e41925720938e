package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
)

// contractCheckpoints drives the checkpoint operations and verification
// against checkpoints and heads, on a log that has events and no
// checkpoint yet.
func contractCheckpoints(t *testing.T, e *env) {
	ctx, bad := e.ctx, unchecked(e.ctx)
	e.expect(ctx, http.StatusNotFound, "GET", "/api/v1/checkpoints/latest", nil, nil)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Sequential here: no request is in flight while the store is set.
	e.meta.UseCheckpoints(eventlog.CheckpointConfig{Key: key})
	made, _, err := e.meta.Checkpoint(context.Background())
	if err != nil || made.Seq == 0 {
		t.Fatalf("checkpoint: %+v, %v", made, err)
	}
	r := e.expect(ctx, http.StatusOK, "GET", "/api/v1/checkpoints/latest", nil, nil)
	got, err := eventlog.ParseCheckpoint(r.body)
	if err != nil || got.Head() != made.Head() || got.Verify([]ed25519.PublicKey{key.Public().(ed25519.PublicKey)}) != nil {
		t.Errorf("latest checkpoint = %s, %v; want event %d", r.body, err, made.Seq)
	}

	head := made.Head().String()
	r = e.expect(ctx, http.StatusOK, "GET", "/api/v1/replay/verify?expect_head="+head, nil, nil)
	var rep httpapi.ReplayReport
	if err := json.Unmarshal(r.body, &rep); err != nil || rep.Checkpoints != 1 || !rep.SignersChecked ||
		rep.LatestCheckpoint == nil || rep.LatestCheckpoint.Seq != made.Seq {
		t.Errorf("verify with the expected head = %s, %v", r.body, err)
	}
	e.expect(bad, http.StatusBadRequest, "GET", "/api/v1/replay/verify?expect_head=45", nil, nil)
	body := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e.expect(ctx, http.StatusOK, "POST", "/api/v1/replay/verify", jsonCT, body(httpapi.VerifyRequest{Checkpoints: []eventlog.Checkpoint{got}}))
	// A checkpoint the log goes past is fine; an expected head it goes past
	// is not.
	first, err := e.meta.Events(ctx, 0, 1)
	if err != nil || len(first) != 1 {
		t.Fatal(err)
	}
	past := eventlog.Head{Seq: 1, Hash: first[0].Hash}.String()
	r = e.expect(ctx, http.StatusConflict, "POST", "/api/v1/replay/verify", jsonCT, body(httpapi.VerifyRequest{ExpectHead: past}))
	if msg := r.errorBody(t).Message; !strings.Contains(msg, "goes on past the expected head, event 1") {
		t.Errorf("verify against an older head: %q", msg)
	}
	// A checkpoint signed by someone else is named, unless its key is
	// trusted too.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	foreign := eventlog.SignCheckpoint(other, made.Head(), made.At)
	r = e.expect(ctx, http.StatusConflict, "POST", "/api/v1/replay/verify", jsonCT, body(httpapi.VerifyRequest{Checkpoints: []eventlog.Checkpoint{foreign}}))
	if msg := r.errorBody(t).Message; !strings.Contains(msg, "not a checkpoint key of this store") {
		t.Errorf("verify against a foreign checkpoint: %q", msg)
	}
	e.expect(ctx, http.StatusOK, "POST", "/api/v1/replay/verify", jsonCT, body(httpapi.VerifyRequest{
		Checkpoints: []eventlog.Checkpoint{foreign}, TrustedPublicKeys: []string{hex.EncodeToString(foreign.PublicKey)}}))
	// Event 1<seq>: a seq changed by hand, its signature left as it was.
	forged := bytes.Replace(body(got), []byte(`"seq":`), []byte(`"seq":1`), 1)
	e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/replay/verify", jsonCT, []byte(`{"checkpoints":[{"seq":1}]}`))
	r = e.expect(ctx, http.StatusConflict, "POST", "/api/v1/replay/verify", jsonCT, []byte(`{"checkpoints":[`+string(forged)+`]}`))
	if msg := r.errorBody(t).Message; !strings.Contains(msg, "checkpoint of event 1"+strconv.FormatInt(made.Seq, 10)) || !strings.Contains(msg, "forged or altered") {
		t.Errorf("verify against a forged checkpoint: %q", msg)
	}
	e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/replay/verify", jsonCT, []byte(`{"expect":"1"}`))
	e.expect(bad, http.StatusUnsupportedMediaType, "POST", "/api/v1/replay/verify", hdr("Content-Type", "text/plain"), []byte(`{}`))
	e.meta.UseCheckpoints(eventlog.CheckpointConfig{})
}
