package cli

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/artifact/retention"
)

// remoteBackend acts through a running artifactstore serve.
type remoteBackend struct {
	remoteCatalog
	c *httpapi.Client
}

// remoteCatalog names the embedded catalog apart from the Catalog method.
type remoteCatalog = httpapi.Catalog

func newRemoteBackend(url, actor, token string) (artifactBackend, error) {
	c := &httpapi.Client{BaseURL: url, Actor: actor, Token: token}
	return remoteBackend{remoteCatalog: httpapi.Catalog{C: c}, c: c}, nil
}

func (r remoteBackend) Transfer() *registry.Transfer {
	return &registry.Transfer{Data: r.c, Catalog: r}
}

func (r remoteBackend) Data() dataplane.DataPlane { return r.c }

func (r remoteBackend) Catalog() registry.Catalog { return r }

func (r remoteBackend) Refs(ctx context.Context, ns string) ([]eventlog.Ref, error) {
	return r.c.Refs(ctx, ns)
}
func (r remoteBackend) DeleteRef(ctx context.Context, _ string, ref eventlog.RefName) error {
	return r.c.DeleteRef(ctx, ref.String())
}
func (r remoteBackend) PinRef(ctx context.Context, _ string, ref eventlog.RefName, pinned bool) error {
	cur, err := r.c.GetRef(ctx, ref.String())
	if err != nil {
		return err
	}
	_, err = r.c.SetRef(ctx, ref.String(), cur.Manifest, &pinned)
	return err
}
func (r remoteBackend) Policies(ctx context.Context, ns string) ([]eventlog.Policy, error) {
	return r.c.Retention(ctx, ns)
}
func (r remoteBackend) SetPolicy(ctx context.Context, _ string, p eventlog.Policy) error {
	_, err := r.c.SetRetention(ctx, p)
	return err
}
func (r remoteBackend) DeletePolicy(ctx context.Context, _ string, ns, sel string) error {
	return r.c.DeleteRetention(ctx, ns, sel)
}
func (r remoteBackend) Retention(ctx context.Context, _ string, ns string, apply bool) ([]retention.Decision, error) {
	return r.c.ApplyRetention(ctx, ns, !apply)
}
func (r remoteBackend) GC(ctx context.Context, _ string, grace time.Duration) (registry.GCReport, error) {
	return r.c.GC(ctx, grace)
}
func (r remoteBackend) Replay(ctx context.Context, opts eventlog.VerifyOptions) (eventlog.ReplayReport, error) {
	return r.c.VerifyWith(ctx, opts)
}
func (r remoteBackend) Audit(ctx context.Context, f eventlog.AuditFilter) ([]eventlog.Event, error) {
	evs, err := r.c.Audit(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]eventlog.Event, len(evs))
	for i, e := range evs {
		out[i] = eventlog.Event{Seq: e.Seq, At: e.At, Kind: eventlog.Kind(e.Kind), Subject: e.Subject,
			Actor: e.Actor, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	return out, nil
}
func (r remoteBackend) Close() error { return nil }
