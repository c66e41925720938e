package httpapi

import (
	"context"
	"encoding/hex"
	"net/http"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
)

// latestCheckpoint answers the newest signed checkpoint of the log, for an
// operator to keep outside the store; 404 before the first one.
func (s *server) latestCheckpoint(w http.ResponseWriter, r *http.Request) error {
	c, err := s.meta.LatestCheckpoint(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// verifyOptions reads what a verification must check besides the stored
// checkpoints: the body of a POST, or expect_head in the query.
func (s *server) verifyOptions(w http.ResponseWriter, r *http.Request) (eventlog.VerifyOptions, error) {
	var req VerifyRequest
	if r.Method == http.MethodPost {
		if err := decodeJSON(w, r, s.maxJSON, true, &req); err != nil {
			return eventlog.VerifyOptions{}, err
		}
	}
	if q := r.URL.Query().Get("expect_head"); q != "" {
		req.ExpectHead = q
	}
	return req.options()
}

// options turns the request into verification options.
func (req VerifyRequest) options() (eventlog.VerifyOptions, error) {
	opts := eventlog.VerifyOptions{Checkpoints: req.Checkpoints}
	if req.ExpectHead != "" {
		h, err := eventlog.ParseHead(req.ExpectHead)
		if err != nil {
			return opts, err
		}
		opts.ExpectHead = &h
	}
	for _, k := range req.TrustedPublicKeys {
		pub, err := eventlog.ParsePublicKey(k)
		if err != nil {
			return opts, err
		}
		opts.TrustedKeys = append(opts.TrustedKeys, pub)
	}
	return opts, nil
}

// verifyRequest is the body that asks for opts, or nil when opts asks for
// nothing beyond the stored checkpoints.
func verifyRequest(opts eventlog.VerifyOptions) *VerifyRequest {
	if opts.ExpectHead == nil && len(opts.Checkpoints) == 0 && len(opts.TrustedKeys) == 0 {
		return nil
	}
	req := &VerifyRequest{Checkpoints: opts.Checkpoints}
	if opts.ExpectHead != nil {
		req.ExpectHead = opts.ExpectHead.String()
	}
	for _, k := range opts.TrustedKeys {
		req.TrustedPublicKeys = append(req.TrustedPublicKeys, hex.EncodeToString(k))
	}
	return req
}

func replayBody(rep eventlog.ReplayReport) ReplayReport {
	out := ReplayReport{Events: rep.Events, Head: HeadBody{Seq: rep.Head.Seq, Hash: rep.Head.Hash},
		StateDigest: rep.StateDigest, LiveDigest: rep.LiveDigest, Match: rep.Match(),
		Checkpoints: rep.Checkpoints, SignersChecked: rep.SignersChecked}
	if rep.LatestCheckpoint.Seq > 0 {
		c := rep.LatestCheckpoint
		out.LatestCheckpoint = &c
	}
	return out
}

// LatestCheckpoint returns the store's newest signed checkpoint (GET
// /checkpoints/latest); KindNotFound before the first one.
func (c *Client) LatestCheckpoint(ctx context.Context) (eventlog.Checkpoint, error) {
	var out eventlog.Checkpoint
	err := c.call(ctx, request{method: http.MethodGet, path: "/checkpoints/latest", want: []int{http.StatusOK}}, nil, &out)
	return out, err
}
