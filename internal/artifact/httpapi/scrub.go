package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// A scrub reads every stored blob, at the rate it was given, which takes
// hours on a large store: no request should wait for that. So POST /scrub
// starts one in the background on this server and answers 202 with its
// status at once, and GET /scrub reports the running or last one, whose
// report grows as it goes (the CLI polls it).

// ScrubRequest is the optional body of POST /scrub.
type ScrubRequest struct {
	// Rate is how many bytes a second to read: 0 (or absent) for the
	// default, 50 MiB/s, and -1 for no limit.
	Rate int64 `json:"rate,omitempty"`
	// Limit, when positive, ends the scrub after that many blobs.
	Limit int `json:"limit,omitempty"`
	// Since limits the scrub to blobs written since then: an RFC 3339
	// time or a duration back from now, as the audit query takes it.
	Since string `json:"since,omitempty"`
}

// ScrubStatusBody is a scrub: what it was asked, what it found so far,
// and how it ended.
type ScrubStatusBody struct {
	// State is running, done or failed.
	State      string `json:"state"`
	Actor      string `json:"actor"`
	StartedAt  string `json:"started_at"`
	FinishedAt string `json:"finished_at,omitempty"`
	// Rate is the bytes a second it reads at, -1 for no limit.
	Rate     int64             `json:"rate"`
	Limit    int               `json:"limit,omitempty"`
	Since    string            `json:"since,omitempty"`
	Blobs    int               `json:"blobs"`
	Bytes    int64             `json:"bytes"`
	Vanished int               `json:"vanished"`
	Skipped  int               `json:"skipped"`
	Partial  bool              `json:"partial"`
	TookMS   int64             `json:"took_ms,omitempty"`
	Corrupt  []CorruptBlobBody `json:"corrupt"`
	// Error says why a failed scrub stopped.
	Error string `json:"error,omitempty"`
	// Repair says how to repair the corrupt blobs, when there are some.
	Repair string `json:"repair,omitempty"`
}

// CorruptBlobBody is a blob a scrub found corrupt and quarantined.
type CorruptBlobBody struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Chunk is the first damaged chunk of 1 MiB, -1 when not known.
	Chunk      int64  `json:"chunk"`
	Reason     string `json:"reason"`
	Quarantine string `json:"quarantine,omitempty"`
	// Files are where refs hold the blob (ten at most): the files to push
	// again.
	Files []RefFileBody `json:"files,omitempty"`
}

// RefFileBody is a file of the manifest a ref points to.
type RefFileBody struct {
	Ref  string `json:"ref"`
	Path string `json:"path"`
}

// ScrubBody is the API's form of a scrub's status, which the CLI prints
// for --json too.
func ScrubBody(st registry.ScrubStatus) ScrubStatusBody {
	rep := st.Report
	out := ScrubStatusBody{State: string(st.State), Actor: st.Actor, StartedAt: formatTime(rep.Started),
		Rate: effectiveRate(st.Options.Rate), Limit: st.Options.Limit,
		Blobs: rep.Blobs, Bytes: rep.Bytes, Vanished: rep.Vanished, Skipped: rep.Skipped, Partial: rep.Partial,
		Corrupt: make([]CorruptBlobBody, len(rep.Corrupt))}
	if !st.Options.Since.IsZero() {
		out.Since = formatTime(st.Options.Since)
	}
	if !st.Finished.IsZero() {
		out.FinishedAt = formatTime(st.Finished)
		out.TookMS = st.Finished.Sub(rep.Started).Milliseconds()
	}
	for i, c := range rep.Corrupt {
		out.Corrupt[i] = CorruptBlobBody{Digest: c.Digest.String(), Size: c.Size, Chunk: c.Chunk, Reason: c.Reason, Quarantine: c.Quarantine}
		for _, f := range c.Files {
			out.Corrupt[i].Files = append(out.Corrupt[i].Files, RefFileBody{Ref: f.Ref, Path: f.Path})
		}
	}
	if st.Err != nil {
		out.Error = st.Err.Error()
	}
	if len(rep.Corrupt) > 0 {
		out.Repair = registry.RepairHint
	}
	return out
}

func effectiveRate(r int64) int64 {
	switch {
	case r < 0:
		return -1
	case r == 0:
		return registry.DefaultScrubRate
	}
	return r
}

// status turns the body back into a scrub's status.
func (b ScrubStatusBody) status() (registry.ScrubStatus, error) {
	const op = "decode scrub"
	st := registry.ScrubStatus{State: registry.ScrubState(b.State), Actor: b.Actor,
		Options: registry.ScrubOptions{Rate: b.Rate, Limit: b.Limit},
		Report:  registry.ScrubReport{Blobs: b.Blobs, Bytes: b.Bytes, Vanished: b.Vanished, Skipped: b.Skipped, Partial: b.Partial}}
	var err error
	if st.Report.Started, err = time.Parse(time.RFC3339Nano, b.StartedAt); err != nil {
		return st, core.Wrap(core.KindInternal, op, err)
	}
	if b.FinishedAt != "" {
		if st.Finished, err = time.Parse(time.RFC3339Nano, b.FinishedAt); err != nil {
			return st, core.Wrap(core.KindInternal, op, err)
		}
		st.Report.Took = st.Finished.Sub(st.Report.Started)
	} else {
		st.Report.Took = time.Duration(b.TookMS) * time.Millisecond
	}
	if b.Since != "" {
		if st.Options.Since, err = time.Parse(time.RFC3339Nano, b.Since); err != nil {
			return st, core.Wrap(core.KindInternal, op, err)
		}
	}
	for _, c := range b.Corrupt {
		d, err := digest.Parse(c.Digest)
		if err != nil {
			return st, core.Wrap(core.KindInternal, op, err)
		}
		cb := registry.CorruptBlob{Digest: d, Size: c.Size, Chunk: c.Chunk, Reason: c.Reason, Quarantine: c.Quarantine}
		for _, f := range c.Files {
			cb.Files = append(cb.Files, registry.RefFile{Ref: f.Ref, Path: f.Path})
		}
		st.Report.Corrupt = append(st.Report.Corrupt, cb)
	}
	if b.Error != "" {
		st.Err = errors.New(b.Error)
	}
	return st, nil
}

// startScrub starts a scrub: 202 with its status, 409 with the running
// one's when another runs.
func (s *server) startScrub(w http.ResponseWriter, r *http.Request) error {
	if s.scrub == nil {
		return noScrubs()
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	var req ScrubRequest
	if err := decodeJSON(w, r, s.maxJSON, true, &req); err != nil {
		return err
	}
	opts := registry.ScrubOptions{Rate: req.Rate, Limit: req.Limit}
	if req.Rate < -1 || req.Limit < 0 {
		return core.E(core.KindInvalid, "scrub", "rate %d and limit %d: give a rate in bytes a second (0 for the default, -1 for none) and a limit of 0 or more",
			req.Rate, req.Limit)
	}
	if req.Since != "" {
		if opts.Since, err = eventlog.ParseSince(req.Since, time.Now()); err != nil {
			return err
		}
	}
	st, err := s.scrub.Begin(who, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, ScrubBody(st))
	return nil
}

// scrubStatus answers the running or last scrub of this server.
func (s *server) scrubStatus(w http.ResponseWriter, _ *http.Request) error {
	if s.scrub == nil {
		return noScrubs()
	}
	st, err := s.scrub.Status()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ScrubBody(st))
	return nil
}

func noScrubs() error {
	return core.E(core.KindNotFound, "scrub", "this server runs no scrubs; scrub the store with the scrub command on its database and blob store")
}

// StartScrub starts a scrub on the server (POST /scrub) and returns its
// status. While another runs it returns a core.KindConflict error; the
// running one's progress is then ScrubStatus's.
func (c *Client) StartScrub(ctx context.Context, opts registry.ScrubOptions) (registry.ScrubStatus, error) {
	in := ScrubRequest{Rate: opts.Rate, Limit: opts.Limit}
	if in.Rate < 0 {
		in.Rate = -1
	}
	if !opts.Since.IsZero() {
		in.Since = formatTime(opts.Since)
	}
	var out ScrubStatusBody
	if err := c.call(ctx, request{method: http.MethodPost, path: "/scrub", want: []int{http.StatusAccepted}}, in, &out); err != nil {
		return registry.ScrubStatus{}, err
	}
	return out.status()
}

// ScrubStatus returns the server's running or last scrub (GET /scrub);
// core.KindNotFound when none ran since it started.
func (c *Client) ScrubStatus(ctx context.Context) (registry.ScrubStatus, error) {
	var out ScrubStatusBody
	if err := c.call(ctx, request{method: http.MethodGet, path: "/scrub", want: []int{http.StatusOK}}, nil, &out); err != nil {
		return registry.ScrubStatus{}, err
	}
	return out.status()
}
