package cli

import (
	"context"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/artifact/retention"
)

// artifactBackend is what the artifact commands act on: a store opened
// here, or a server reached over HTTP. Both give the same answers and the
// same error kinds.
type artifactBackend interface {
	// Transfer pushes and pulls trees.
	Transfer() *registry.Transfer
	Data() dataplane.DataPlane
	Catalog() registry.Catalog
	Refs(ctx context.Context, namespace string) ([]eventlog.Ref, error)
	DeleteRef(ctx context.Context, actor string, ref eventlog.RefName) error
	PinRef(ctx context.Context, actor string, ref eventlog.RefName, pinned bool) error
	Policies(ctx context.Context, namespace string) ([]eventlog.Policy, error)
	SetPolicy(ctx context.Context, actor string, p eventlog.Policy) error
	DeletePolicy(ctx context.Context, actor, namespace, selector string) error
	Retention(ctx context.Context, actor, namespace string, apply bool) ([]retention.Decision, error)
	GC(ctx context.Context, actor string, grace time.Duration) (registry.GCReport, error)
	Replay(ctx context.Context, opts eventlog.VerifyOptions) (eventlog.ReplayReport, error)
	Audit(ctx context.Context, f eventlog.AuditFilter) ([]eventlog.Event, error)
	Close() error
}

// localBackend acts on a store opened in this process.
type localBackend struct{ s *open.Store }

func (l localBackend) Transfer() *registry.Transfer {
	return &registry.Transfer{Data: l.s.Data, Catalog: l.s.Registry, Alg: l.s.Registry.Alg, Log: l.s.Registry.Log}
}
func (l localBackend) Data() dataplane.DataPlane { return l.s.Data }
func (l localBackend) Catalog() registry.Catalog { return l.s.Registry }
func (l localBackend) Refs(ctx context.Context, ns string) ([]eventlog.Ref, error) {
	return l.s.Meta.Refs(ctx, ns)
}
func (l localBackend) DeleteRef(ctx context.Context, actor string, r eventlog.RefName) error {
	return l.s.Meta.DeleteRef(ctx, actor, r, "deleted by "+actor)
}
func (l localBackend) PinRef(ctx context.Context, actor string, r eventlog.RefName, pinned bool) error {
	return l.s.Meta.PinRef(ctx, actor, r, pinned)
}
func (l localBackend) Policies(ctx context.Context, ns string) ([]eventlog.Policy, error) {
	return l.s.Meta.Policies(ctx, ns)
}
func (l localBackend) SetPolicy(ctx context.Context, actor string, p eventlog.Policy) error {
	return l.s.Meta.SetPolicy(ctx, actor, p)
}
func (l localBackend) DeletePolicy(ctx context.Context, actor, ns, sel string) error {
	return l.s.Meta.DeletePolicy(ctx, actor, ns, sel)
}
func (l localBackend) Retention(ctx context.Context, actor, ns string, apply bool) ([]retention.Decision, error) {
	if apply {
		return l.s.Registry.ApplyRetention(ctx, actor, ns)
	}
	return l.s.Registry.PlanRetention(ctx, ns)
}
func (l localBackend) GC(ctx context.Context, actor string, grace time.Duration) (registry.GCReport, error) {
	return l.s.Registry.GC(ctx, actor, grace)
}
func (l localBackend) Replay(ctx context.Context, opts eventlog.VerifyOptions) (eventlog.ReplayReport, error) {
	return l.s.Meta.ReplayWith(ctx, opts)
}
func (l localBackend) Audit(ctx context.Context, f eventlog.AuditFilter) ([]eventlog.Event, error) {
	return l.s.Meta.Audit(ctx, f)
}
func (l localBackend) Close() error { return l.s.Close() }

// backend opens what the flags name: the server, or a local store.
func (f *artifactFlags) backend(ctx context.Context, e env) (artifactBackend, error) {
	if err := f.resolve(ctx, e); err != nil {
		return nil, err
	}
	if f.server != "" {
		return newRemoteBackend(f.server, f.actor, f.token)
	}
	s, err := f.openLocal(ctx, e, nil)
	if err != nil {
		return nil, err
	}
	return localBackend{s}, nil
}
