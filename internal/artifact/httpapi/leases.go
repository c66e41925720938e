package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// GC leases over the API: a remote push holds one on its blobs and its
// manifest, as a local one does, so GC takes none of them before its ref
// is set, whatever the grace window (see registry.Leaser).

// MaxLeaseTTL is the longest term a client may ask for: a lease pins blobs
// against GC, so a holder must come back (renew) at least this often.
const MaxLeaseTTL = time.Hour

// LeaseRequest is the body of POST /gc/leases. TTL is a Go duration
// (registry.DefaultLeaseTTL when empty, at most MaxLeaseTTL).
type LeaseRequest struct {
	Digests []string `json:"digests"`
	TTL     string   `json:"ttl,omitempty"`
}

// LeaseRenewal is the optional body of PUT /gc/leases/{id}.
type LeaseRenewal struct {
	TTL string `json:"ttl,omitempty"`
}

// LeaseBody is a lease: its id and when it lapses unless renewed.
type LeaseBody struct {
	ID        string `json:"id"`
	ExpiresAt string `json:"expires_at"`
}

func leaseTTL(s string) (time.Duration, error) {
	if s == "" {
		return registry.DefaultLeaseTTL, nil
	}
	ttl, err := time.ParseDuration(s)
	if err != nil || ttl <= 0 || ttl > MaxLeaseTTL {
		return 0, core.E(core.KindInvalid, "lease", "ttl %.40q is not a duration above 0 and at most %s, such as \"5m\"", s, MaxLeaseTTL)
	}
	return ttl, nil
}

func leaseID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	ok := id != "" && len(id) <= maxSessionIDLen && strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'f' || c >= '0' && c <= '9' || c == '-')
	}) < 0
	if !ok {
		return "", core.E(core.KindInvalid, "lease", "%.40q is not a lease id", id)
	}
	return id, nil
}

// takeLease leases the digests of the body for its ttl.
func (s *server) takeLease(w http.ResponseWriter, r *http.Request) error {
	var req LeaseRequest
	if err := decodeJSON(w, r, s.maxJSON, false, &req); err != nil {
		return err
	}
	if len(req.Digests) == 0 || len(req.Digests) > registry.MaxLeaseDigests {
		return core.E(core.KindInvalid, "lease", "%d digests; a lease covers 1 to %d", len(req.Digests), registry.MaxLeaseDigests)
	}
	ttl, err := leaseTTL(req.TTL)
	if err != nil {
		return err
	}
	ds := make([]digest.Digest, len(req.Digests))
	for i, v := range req.Digests {
		if ds[i], err = digest.Parse(v); err != nil {
			return err
		}
	}
	l, err := s.meta.TakeLease(r.Context(), ds, ttl)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/gc/leases/"+l.ID)
	writeJSON(w, http.StatusCreated, LeaseBody{ID: l.ID, ExpiresAt: formatTime(l.ExpiresAt)})
	return nil
}

// renewLease moves a lease's expiry to ttl from now; a lapsed or released
// lease is 404.
func (s *server) renewLease(w http.ResponseWriter, r *http.Request) error {
	id, err := leaseID(r)
	if err != nil {
		return err
	}
	var req LeaseRenewal
	if err := decodeJSON(w, r, s.maxJSON, true, &req); err != nil {
		return err
	}
	ttl, err := leaseTTL(req.TTL)
	if err != nil {
		return err
	}
	until, err := s.meta.RenewLease(r.Context(), id, ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, LeaseBody{ID: id, ExpiresAt: formatTime(until)})
	return nil
}

// releaseLease ends a lease; one that has ended already is no error.
func (s *server) releaseLease(w http.ResponseWriter, r *http.Request) error {
	id, err := leaseID(r)
	if err != nil {
		return err
	}
	if err := s.meta.ReleaseLease(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TakeLease leases ds against GC for ttl (POST /gc/leases); ttl 0 means
// the server's default.
func (c *Client) TakeLease(ctx context.Context, ds []digest.Digest, ttl time.Duration) (eventlog.Lease, error) {
	in := LeaseRequest{Digests: digestStrings(ds)}
	if ttl > 0 {
		in.TTL = ttl.String()
	}
	var out LeaseBody
	if err := c.call(ctx, request{method: http.MethodPost, path: "/gc/leases", want: []int{http.StatusCreated}}, in, &out); err != nil {
		return eventlog.Lease{}, err
	}
	return leaseOf(out)
}

// RenewLease extends a lease to ttl from now (PUT /gc/leases/{id}); a
// lapsed one is a core.KindNotFound error.
func (c *Client) RenewLease(ctx context.Context, id string, ttl time.Duration) (eventlog.Lease, error) {
	var in LeaseRenewal
	if ttl > 0 {
		in.TTL = ttl.String()
	}
	var out LeaseBody
	err := c.call(ctx, request{method: http.MethodPut, path: "/gc/leases/" + url.PathEscape(id), want: []int{http.StatusOK}}, in, &out)
	if err != nil {
		return eventlog.Lease{}, err
	}
	return leaseOf(out)
}

// ReleaseLease ends a lease (DELETE /gc/leases/{id}).
func (c *Client) ReleaseLease(ctx context.Context, id string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/gc/leases/" + url.PathEscape(id),
		want: []int{http.StatusNoContent}}, nil, nil)
}

func leaseOf(b LeaseBody) (eventlog.Lease, error) {
	t, err := parseTime("lease", b.ExpiresAt)
	if err != nil {
		return eventlog.Lease{}, err
	}
	return eventlog.Lease{ID: b.ID, ExpiresAt: t}, nil
}

var _ registry.Leaser = Catalog{}

// TakeLease implements registry.Leaser. A server without the route (older
// than leases) answers 404, and one that does not let this credential
// lease (a deltaci server's store, to a runner) 401 or 403: both are
// registry.ErrNoLeases, and the push goes on without a lease.
func (r Catalog) TakeLease(ctx context.Context, ds []digest.Digest, ttl time.Duration) (string, error) {
	l, err := r.C.TakeLease(ctx, ds, min(ttl, MaxLeaseTTL))
	if k := core.KindOf(err); k == core.KindNotFound || k == core.KindUnauthorized {
		return "", fmt.Errorf("%w: %v", registry.ErrNoLeases, err)
	}
	return l.ID, err
}

// RenewLease implements registry.Leaser.
func (r Catalog) RenewLease(ctx context.Context, id string, ttl time.Duration) error {
	_, err := r.C.RenewLease(ctx, id, min(ttl, MaxLeaseTTL))
	return err
}

// ReleaseLease implements registry.Leaser.
func (r Catalog) ReleaseLease(ctx context.Context, id string) error {
	return r.C.ReleaseLease(ctx, id)
}
