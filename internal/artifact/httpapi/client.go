package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/artifact/retention"
	"github.com/deltaci/deltaci/internal/core"
)

// Client is the Go client of the API. Its errors are *core.Error values of
// the Kind the server reported (see the package doc); a request that never
// got an answer is KindUnavailable, or KindCanceled when ctx ended.
//
// Client implements dataplane.DataPlane, so code written against the data
// plane moves bytes the same way in process and over HTTP. A Client is
// safe for concurrent use; its fields must not change once in use.
type Client struct {
	// BaseURL is where the server is, e.g. "http://127.0.0.1:8080"; the
	// client adds /api/v1.
	BaseURL string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Actor is sent as X-Actor on writes whose method takes no actor, and
	// on those whose actor argument is empty. Servers ignore it: they
	// record the principal of Token as the actor.
	Actor string
	// Token, when set, is sent as Authorization: Bearer on every request:
	// an artifactstore serve's API token, or a deltaci server's for the
	// store it serves at /store.
	Token string
	// ChunkSize is how many bytes Upload sends per request and holds in
	// memory (DefaultChunkSize when 0).
	ChunkSize int64
	// Algorithm names manifests and blobs uploaded without a digest
	// (digest.Default when empty). It must be the server's algorithm for
	// PutManifest.
	Algorithm digest.Algorithm
}

// DefaultChunkSize is Upload's chunk size when Client.ChunkSize is 0.
const DefaultChunkSize = 16 << 20

// Upload retries a chunk this many times after a transient failure,
// waiting retryBase, then twice as long, and so on.
const (
	uploadAttempts = 5
	retryBase      = 100 * time.Millisecond
)

var _ dataplane.DataPlane = (*Client)(nil)

// maxErrorBody bounds how much of a failed response is read to decode it.
const maxErrorBody = 1 << 20

// request is one call: everything do needs to send it and judge the answer.
type request struct {
	method string
	path   string // below /api/v1, or from the root when root is set
	root   bool
	query  url.Values
	header http.Header
	body   io.Reader
	actor  string
	want   []int // statuses that are success
}

// do sends req and returns the response when its status is one of
// req.want; otherwise it decodes the error body. The caller closes the
// returned body.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	op := req.method + " " + req.path
	u := strings.TrimRight(c.BaseURL, "/")
	if !req.root {
		u += "/api/v1"
	}
	u += req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, req.body)
	if err != nil {
		return nil, core.Wrap(core.KindInvalid, op, err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if a := cmpOr(req.actor, c.Actor); a != "" {
		hr.Header.Set("X-Actor", a)
	}
	if c.Token != "" && hr.Header.Get("Authorization") == "" {
		hr.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &core.Error{Kind: core.KindCanceled, Op: op, Err: ctx.Err()}
		}
		return nil, &core.Error{Kind: core.KindUnavailable, Op: op, Err: err}
	}
	for _, w := range req.want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return nil, decodeError(op, resp, body)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// call sends in as a JSON body (none when nil) and decodes the response
// into out (nothing when nil).
func (c *Client) call(ctx context.Context, req request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return core.Wrap(core.KindInvalid, req.method+" "+req.path, err)
		}
		req.body = bytes.NewReader(b)
		req.header = http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return core.Wrap(core.KindInternal, req.method+" "+req.path+": decode response", err)
	}
	return nil
}

func (c *Client) alg() digest.Algorithm {
	if c.Algorithm == "" {
		return digest.Default
	}
	return c.Algorithm
}

// Ready reports whether the server and its database answer (GET /readyz).
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodGet, path: "/readyz", root: true, want: []int{http.StatusOK}}, nil, nil)
}

// Stat returns a blob's size (HEAD /blobs/{digest}); KindNotFound when it
// is not stored.
func (c *Client) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	resp, err := c.do(ctx, request{method: http.MethodHead, path: "/blobs/" + d.String(), want: []int{http.StatusOK}})
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// Open implements dataplane.DataPlane with GET /blobs/{digest}: bytes
// [offset, offset+length) of a blob (length -1: to the end) and the blob's
// size. A whole blob is verified against d while it is read: the final
// Read returns a *digest.MismatchError instead of io.EOF if the bytes are
// not the blob's.
func (c *Client) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, int64, error) {
	const op = "open blob"
	if offset < 0 || length < -1 {
		return nil, 0, core.E(core.KindInvalid, op, "range of %d bytes at offset %d is not a range", length, offset)
	}
	if length == 0 {
		// An empty range cannot be asked for with Range; the size is all
		// there is to learn.
		size, err := c.Stat(ctx, d)
		if err != nil {
			return nil, 0, err
		}
		if offset > size {
			return nil, 0, core.E(core.KindInvalid, op, "offset %d is outside %s (%d bytes)", offset, d, size)
		}
		return io.NopCloser(strings.NewReader("")), size, nil
	}
	req := request{method: http.MethodGet, path: "/blobs/" + d.String(), want: []int{http.StatusOK}}
	whole := offset == 0 && length == -1
	if !whole {
		spec := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if length > 0 {
			spec += strconv.FormatInt(offset+length-1, 10)
		}
		req.header = http.Header{"Range": {spec}}
		req.want = append(req.want, http.StatusPartialContent)
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusOK && whole:
		return verifyingBody{digest.NewVerifyingReader(resp.Body, d, resp.ContentLength), resp.Body}, resp.ContentLength, nil
	case resp.StatusCode == http.StatusOK:
		// The server ignored the Range: skip to the range ourselves.
		size := resp.ContentLength
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			resp.Body.Close()
			return nil, 0, core.Wrap(core.KindUnavailable, op, err)
		}
		if length < 0 {
			length = size - offset
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, length), resp.Body}, size, nil
	}
	first, last, size, ok := parseResponseRange(resp.Header.Get("Content-Range"))
	if !ok || first != offset || (length > 0 && last != offset+length-1) {
		resp.Body.Close()
		return nil, 0, core.E(core.KindInternal, op, "the server answered Range with Content-Range %.80q", resp.Header.Get("Content-Range"))
	}
	return resp.Body, size, nil
}

// verifyingBody closes the response under a verifying reader. Bytes that
// do not hash to the digest asked for are the server's fault, not the
// caller's, so the verdict is KindInternal, as a blob store reports
// corruption.
type verifyingBody struct {
	*digest.VerifyingReader
	io.Closer
}

func (v verifyingBody) Read(p []byte) (int, error) {
	n, err := v.VerifyingReader.Read(p)
	var mm *digest.MismatchError
	var se *digest.SizeError
	if errors.As(err, &mm) || errors.As(err, &se) {
		err = &core.Error{Kind: core.KindInternal, Op: "download blob", Err: err}
	}
	return n, err
}

// parseResponseRange reads "bytes first-last/size" from a 206 response.
func parseResponseRange(h string) (first, last, size int64, ok bool) {
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, 0, false
	}
	rng, total, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, 0, false
	}
	a, b, ok := strings.Cut(rng, "-")
	first, ok1 := digits(a)
	last, ok2 := digits(b)
	size, ok3 := digits(total)
	return first, last, size, ok && ok1 && ok2 && ok3 && first <= last && last < size
}

// StartUpload implements dataplane.DataPlane with POST /blobs/uploads.
func (c *Client) StartUpload(ctx context.Context, alg digest.Algorithm, expected digest.Digest) (dataplane.Session, error) {
	in := UploadStart{Algorithm: string(alg)}
	if !expected.IsZero() {
		in.Digest = expected.String()
	}
	var out UploadStatus
	if err := c.call(ctx, request{method: http.MethodPost, path: "/blobs/uploads", want: []int{http.StatusAccepted}}, in, &out); err != nil {
		return dataplane.Session{}, err
	}
	sess := dataplane.Session{ID: out.ID, Algorithm: alg, Offset: out.Offset}
	if out.ExpiresAt != "" {
		t, err := parseTime("start upload", out.ExpiresAt)
		if err != nil {
			return dataplane.Session{}, err
		}
		sess.ExpiresAt = t
	}
	return sess, nil
}

// Append implements dataplane.DataPlane with PATCH /blobs/uploads/{id}. At
// the wrong offset it returns the session's offset and a KindConflict
// error wrapping *dataplane.OffsetError.
func (c *Client) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	req := request{
		method: http.MethodPatch, path: "/blobs/uploads/" + url.PathEscape(id),
		query:  url.Values{"offset": {strconv.FormatInt(offset, 10)}},
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   r, want: []int{http.StatusAccepted},
	}
	if n := knownLength(r); n > 0 {
		req.header.Set("Content-Range", "bytes "+strconv.FormatInt(offset, 10)+"-"+strconv.FormatInt(offset+n-1, 10))
	}
	var out UploadStatus
	err := c.call(ctx, req, nil, &out)
	var oe *dataplane.OffsetError
	if errors.As(err, &oe) {
		oe.Session, oe.Got = id, offset
		return oe.Offset, err
	}
	if err != nil {
		return offset, err
	}
	return out.Offset, nil
}

// knownLength is the length of bodies whose length net/http knows too.
func knownLength(r io.Reader) int64 {
	switch b := r.(type) {
	case *bytes.Reader:
		return int64(b.Len())
	case *bytes.Buffer:
		return int64(b.Len())
	case *strings.Reader:
		return int64(b.Len())
	}
	return -1
}

// Finish implements dataplane.DataPlane with PUT /blobs/uploads/{id}.
func (c *Client) Finish(ctx context.Context, actor, id string, d digest.Digest) (dataplane.Blob, error) {
	req := request{
		method: http.MethodPut, path: "/blobs/uploads/" + url.PathEscape(id),
		query: url.Values{"digest": {d.String()}}, actor: actor, want: []int{http.StatusCreated},
	}
	var out BlobInfo
	if err := c.call(ctx, req, nil, &out); err != nil {
		return dataplane.Blob{}, err
	}
	return blobInfo(out)
}

func blobInfo(b BlobInfo) (dataplane.Blob, error) {
	d, err := digest.Parse(b.Digest)
	if err != nil {
		return dataplane.Blob{}, err
	}
	return dataplane.Blob{Digest: d, Size: b.Size}, nil
}

// Cancel implements dataplane.DataPlane with DELETE /blobs/uploads/{id}.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/blobs/uploads/" + url.PathEscape(id),
		want: []int{http.StatusNoContent}}, nil, nil)
}

// FindMissing implements dataplane.DataPlane with POST
// /blobs/find-missing, in batches of dataplane.MaxFindMissing.
func (c *Client) FindMissing(ctx context.Context, ds []digest.Digest) ([]digest.Digest, error) {
	missing := []digest.Digest{}
	for start := 0; start < len(ds); start += dataplane.MaxFindMissing {
		batch := ds[start:min(len(ds), start+dataplane.MaxFindMissing)]
		var out FindMissingResponse
		err := c.call(ctx, request{method: http.MethodPost, path: "/blobs/find-missing", want: []int{http.StatusOK}},
			FindMissingRequest{Digests: digestStrings(batch)}, &out)
		if err != nil {
			return nil, err
		}
		for _, s := range out.Missing {
			d, err := digest.Parse(s)
			if err != nil {
				return nil, err
			}
			missing = append(missing, d)
		}
	}
	return missing, nil
}

// PutManifest stores m (PUT /manifests/{digest}, canonical CBOR) and
// returns its digest. When blobs it lists are not stored, the error wraps
// a *MissingBlobsError naming all of them.
func (c *Client) PutManifest(ctx context.Context, m manifest.Manifest) (digest.Digest, error) {
	body, err := manifest.Encode(m)
	if err != nil {
		return digest.Digest{}, err
	}
	d, err := digest.FromBytes(c.alg(), body)
	if err != nil {
		return digest.Digest{}, err
	}
	req := request{
		method: http.MethodPut, path: "/manifests/" + d.String(), body: bytes.NewReader(body),
		header: http.Header{"Content-Type": {manifest.MediaTypeCBOR}}, want: []int{http.StatusCreated},
	}
	return d, c.call(ctx, req, nil, nil)
}

// GetManifest fetches a manifest (GET /manifests/{digest}, as CBOR) and
// checks that its bytes hash to d.
func (c *Client) GetManifest(ctx context.Context, d digest.Digest) (manifest.Manifest, error) {
	const op = "get manifest"
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/manifests/" + d.String(),
		header: http.Header{"Accept": {manifest.MediaTypeCBOR}}, want: []int{http.StatusOK}})
	if err != nil {
		return manifest.Manifest{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxManifestBytes+1))
	if err != nil {
		return manifest.Manifest{}, core.Wrap(core.KindUnavailable, op, err)
	}
	got, err := digest.FromBytes(d.Algorithm(), body)
	if err != nil {
		return manifest.Manifest{}, err
	}
	if got != d {
		return manifest.Manifest{}, &core.Error{Kind: core.KindInternal, Op: op, Err: &digest.MismatchError{Expected: d, Actual: got}}
	}
	return manifest.Decode(body)
}

// refPath is the path of a ref: slashes in its name are escaped, so the
// request matches the OpenAPI document's single path segment.
func refPath(ref string) (string, error) {
	name, err := eventlog.ParseRef(ref)
	if err != nil {
		return "", err
	}
	return "/refs/" + url.PathEscape(name.Namespace) + "/" + url.PathEscape(name.Name+":"+name.Tag), nil
}

// GetRef returns a ref (GET /refs/{namespace}/{name:tag}).
func (c *Client) GetRef(ctx context.Context, ref string) (eventlog.Ref, error) {
	p, err := refPath(ref)
	if err != nil {
		return eventlog.Ref{}, err
	}
	var out RefBody
	if err := c.call(ctx, request{method: http.MethodGet, path: p, want: []int{http.StatusOK}}, nil, &out); err != nil {
		return eventlog.Ref{}, err
	}
	return out.ref()
}

// SetRef points ref at a committed manifest and, when pinned is not nil,
// pins or unpins it (PUT /refs/{namespace}/{name:tag}).
func (c *Client) SetRef(ctx context.Context, ref string, m digest.Digest, pinned *bool) (eventlog.Ref, error) {
	p, err := refPath(ref)
	if err != nil {
		return eventlog.Ref{}, err
	}
	var out RefBody
	err = c.call(ctx, request{method: http.MethodPut, path: p, want: []int{http.StatusOK}},
		RefUpdate{Manifest: m.String(), Pinned: pinned}, &out)
	if err != nil {
		return eventlog.Ref{}, err
	}
	return out.ref()
}

// DeleteRef removes a ref (DELETE /refs/{namespace}/{name:tag}).
func (c *Client) DeleteRef(ctx context.Context, ref string) error {
	p, err := refPath(ref)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: http.MethodDelete, path: p, want: []int{http.StatusNoContent}}, nil, nil)
}

// Refs lists the refs of a namespace, or all when it is empty (GET /refs).
func (c *Client) Refs(ctx context.Context, namespace string) ([]eventlog.Ref, error) {
	req := request{method: http.MethodGet, path: "/refs", want: []int{http.StatusOK}}
	if namespace != "" {
		req.query = url.Values{"namespace": {namespace}}
	}
	var out RefList
	if err := c.call(ctx, req, nil, &out); err != nil {
		return nil, err
	}
	refs := make([]eventlog.Ref, len(out.Refs))
	for i, b := range out.Refs {
		r, err := b.ref()
		if err != nil {
			return nil, err
		}
		refs[i] = r
	}
	return refs, nil
}

// Events returns up to limit events after sequence number after (GET
// /events); limit 0 means the server's default page.
func (c *Client) Events(ctx context.Context, after, limit int64) ([]Event, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.FormatInt(limit, 10))
	}
	var out EventList
	err := c.call(ctx, request{method: http.MethodGet, path: "/events", query: q, want: []int{http.StatusOK}}, nil, &out)
	return out.Events, err
}

// Audit returns the events with an actor that match f (GET /audit).
func (c *Client) Audit(ctx context.Context, f eventlog.AuditFilter) ([]Event, error) {
	q := url.Values{}
	for k, v := range map[string]string{"subject": f.Subject, "actor": f.Actor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Since != 0 {
		q.Set("since", formatTime(time.UnixMilli(f.Since)))
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatInt(f.After, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.FormatInt(f.Limit, 10))
	}
	var out EventList
	err := c.call(ctx, request{method: http.MethodGet, path: "/audit", query: q, want: []int{http.StatusOK}}, nil, &out)
	return out.Events, err
}

// SetRetention creates or replaces the policy of (p.Namespace,
// p.Selector) and returns it as stored (PUT /retention/{namespace}).
func (c *Client) SetRetention(ctx context.Context, p eventlog.Policy) (eventlog.Policy, error) {
	in := PolicyUpdate{Selector: p.Selector, KeepLast: p.KeepLast, KeepPinned: p.KeepPinned}
	if p.KeepWithin != 0 {
		in.KeepWithin = p.KeepWithin.String()
	}
	var out PolicyBody
	err := c.call(ctx, request{method: http.MethodPut, path: "/retention/" + url.PathEscape(p.Namespace), want: []int{http.StatusOK}}, in, &out)
	if err != nil {
		return eventlog.Policy{}, err
	}
	return out.policy()
}

// Retention lists the policies of a namespace, or all when it is empty
// (GET /retention).
func (c *Client) Retention(ctx context.Context, namespace string) ([]eventlog.Policy, error) {
	req := request{method: http.MethodGet, path: "/retention", want: []int{http.StatusOK}}
	if namespace != "" {
		req.query = url.Values{"namespace": {namespace}}
	}
	var out PolicyList
	if err := c.call(ctx, req, nil, &out); err != nil {
		return nil, err
	}
	ps := make([]eventlog.Policy, len(out.Policies))
	for i, b := range out.Policies {
		p, err := b.policy()
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	return ps, nil
}

// DeleteRetention removes a policy (DELETE /retention/{namespace}).
func (c *Client) DeleteRetention(ctx context.Context, namespace, selector string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/retention/" + url.PathEscape(namespace),
		query: url.Values{"selector": {selector}}, want: []int{http.StatusNoContent}}, nil, nil)
}

// ApplyRetention evaluates the policies of a namespace (all when empty)
// and, unless dryRun, deletes the refs they do not keep; it returns every
// decision (POST /retention/apply).
func (c *Client) ApplyRetention(ctx context.Context, namespace string, dryRun bool) ([]retention.Decision, error) {
	q := url.Values{"dry_run": {strconv.FormatBool(dryRun)}}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	var out RetentionPlan
	if err := c.call(ctx, request{method: http.MethodPost, path: "/retention/apply", query: q, want: []int{http.StatusOK}}, nil, &out); err != nil {
		return nil, err
	}
	ds := make([]retention.Decision, len(out.Decisions))
	for i, b := range out.Decisions {
		d, err := b.decision()
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	return ds, nil
}

// GC runs one garbage collection (POST /gc) with the grace window grace;
// 0 collects everything unreferenced and unleased at once.
func (c *Client) GC(ctx context.Context, grace time.Duration) (registry.GCReport, error) {
	in := GCRequest{Grace: grace.String()}
	var out GCReport
	if err := c.call(ctx, request{method: http.MethodPost, path: "/gc", want: []int{http.StatusOK}}, in, &out); err != nil {
		return registry.GCReport{}, err
	}
	return registry.GCReport{Manifests: out.Manifests, Blobs: out.Blobs, Bytes: out.Bytes, Orphans: out.Orphans, Stale: out.Stale}, nil
}

// Verify checks the log's hash chain and its checkpoints, and compares the
// projections rebuilt from it with the live ones (POST /replay/verify). A
// broken chain, or a checkpoint the log does not reach, is a KindConflict
// error naming it.
func (c *Client) Verify(ctx context.Context) (eventlog.ReplayReport, error) {
	return c.VerifyWith(ctx, eventlog.VerifyOptions{})
}

// VerifyWith is Verify, checking what opts adds too: an expected head,
// checkpoints kept outside the store, more trusted keys.
func (c *Client) VerifyWith(ctx context.Context, opts eventlog.VerifyOptions) (eventlog.ReplayReport, error) {
	var in any
	if body := verifyRequest(opts); body != nil {
		in = body
	}
	var out ReplayReport
	if err := c.call(ctx, request{method: http.MethodPost, path: "/replay/verify", want: []int{http.StatusOK}}, in, &out); err != nil {
		return eventlog.ReplayReport{}, err
	}
	rep := eventlog.ReplayReport{Events: out.Events, Head: eventlog.Head{Seq: out.Head.Seq, Hash: out.Head.Hash},
		StateDigest: out.StateDigest, LiveDigest: out.LiveDigest, Checkpoints: out.Checkpoints, SignersChecked: out.SignersChecked}
	if out.LatestCheckpoint != nil {
		rep.LatestCheckpoint = *out.LatestCheckpoint
	}
	return rep, nil
}
