package sqlite

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/eventlog/sqlite/sqlitedb"
)

// queries adapts sqlc's generated code; its row types mirror eventlog's
// field for field, so rows convert with type conversions.
type queries struct{ q *sqlitedb.Queries }

func conv[R, T any](rows []R, f func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}

func (x queries) GetHead(ctx context.Context) (eventlog.Head, error) {
	h, err := x.q.GetHead(ctx)
	return eventlog.Head(h), mapErr("get head", err)
}

func (x queries) SetHead(ctx context.Context, h eventlog.Head) error {
	return mapErr("set head", x.q.SetHead(ctx, sqlitedb.SetHeadParams(h)))
}

func (x queries) InsertEvent(ctx context.Context, e eventlog.EventRow) error {
	return mapErr("insert event", x.q.InsertEvent(ctx, sqlitedb.InsertEventParams(e)))
}

func (x queries) ListEvents(ctx context.Context, after, limit int64) ([]eventlog.EventRow, error) {
	rows, err := x.q.ListEvents(ctx, sqlitedb.ListEventsParams{After: after, Lim: limit})
	return conv(rows, func(r sqlitedb.StoreEvent) eventlog.EventRow { return eventlog.EventRow(r) }), mapErr("list events", err)
}

func (x queries) ListAudit(ctx context.Context, f eventlog.AuditFilter) ([]eventlog.EventRow, error) {
	rows, err := x.q.ListAudit(ctx, sqlitedb.ListAuditParams{Subject: f.Subject, Actor: f.Actor, Since: f.Since, After: f.After, Lim: f.Limit})
	return conv(rows, func(r sqlitedb.StoreEvent) eventlog.EventRow { return eventlog.EventRow(r) }), mapErr("list audit", err)
}

func (x queries) GetBlob(ctx context.Context, digest string) (eventlog.BlobRow, error) {
	b, err := x.q.GetBlob(ctx, digest)
	return eventlog.BlobRow(b), mapErr("get blob "+digest, err)
}

func (x queries) UpsertBlob(ctx context.Context, b eventlog.BlobRow) error {
	return mapErr("upsert blob", x.q.UpsertBlob(ctx, sqlitedb.UpsertBlobParams{Digest: b.Digest, Size: b.Size, State: b.State, At: b.UpdatedAt}))
}

func (x queries) SetBlobState(ctx context.Context, digest, state string, at int64) error {
	_, err := x.q.SetBlobState(ctx, sqlitedb.SetBlobStateParams{State: state, At: at, Digest: digest})
	return mapErr("set blob state", err)
}

func (x queries) ListBlobs(ctx context.Context) ([]eventlog.BlobRow, error) {
	rows, err := x.q.ListBlobs(ctx)
	return conv(rows, func(r sqlitedb.Blob) eventlog.BlobRow { return eventlog.BlobRow(r) }), mapErr("list blobs", err)
}

func (x queries) ListCollectableBlobs(ctx context.Context, before, limit int64) ([]eventlog.BlobRow, error) {
	rows, err := x.q.ListCollectableBlobs(ctx, sqlitedb.ListCollectableBlobsParams{Before: before, Lim: limit})
	return conv(rows, func(r sqlitedb.Blob) eventlog.BlobRow { return eventlog.BlobRow(r) }), mapErr("list collectable blobs", err)
}

func (x queries) CountBlobReferences(ctx context.Context, digest string) (int64, error) {
	n, err := x.q.CountBlobReferences(ctx, digest)
	return n, mapErr("count blob references", err)
}

func (x queries) GetManifest(ctx context.Context, digest string) (eventlog.ManifestRow, error) {
	m, err := x.q.GetManifest(ctx, digest)
	return eventlog.ManifestRow(m), mapErr("get manifest "+digest, err)
}

func (x queries) InsertManifest(ctx context.Context, m eventlog.ManifestRow) error {
	return mapErr("insert manifest", x.q.InsertManifest(ctx, sqlitedb.InsertManifestParams(m)))
}

func (x queries) DeleteManifest(ctx context.Context, digest string) error {
	return mapErr("delete manifest", x.q.DeleteManifest(ctx, digest))
}

func (x queries) ListManifests(ctx context.Context) ([]eventlog.ManifestRow, error) {
	rows, err := x.q.ListManifests(ctx)
	return conv(rows, func(r sqlitedb.Manifest) eventlog.ManifestRow { return eventlog.ManifestRow(r) }), mapErr("list manifests", err)
}

func (x queries) InsertManifestBlob(ctx context.Context, r eventlog.ManifestBlobRow) error {
	return mapErr("insert manifest blob", x.q.InsertManifestBlob(ctx, sqlitedb.InsertManifestBlobParams(r)))
}

func (x queries) ListManifestBlobs(ctx context.Context) ([]eventlog.ManifestBlobRow, error) {
	rows, err := x.q.ListManifestBlobs(ctx)
	return conv(rows, func(r sqlitedb.ManifestBlob) eventlog.ManifestBlobRow { return eventlog.ManifestBlobRow(r) }), mapErr("list manifest blobs", err)
}

func (x queries) ListCollectableManifests(ctx context.Context, before, limit int64) ([]eventlog.ManifestRow, error) {
	rows, err := x.q.ListCollectableManifests(ctx, sqlitedb.ListCollectableManifestsParams{Before: before, Lim: limit})
	return conv(rows, func(r sqlitedb.Manifest) eventlog.ManifestRow { return eventlog.ManifestRow(r) }), mapErr("list collectable manifests", err)
}

func (x queries) CountManifestRefs(ctx context.Context, digest string) (int64, error) {
	n, err := x.q.CountManifestRefs(ctx, digest)
	return n, mapErr("count manifest refs", err)
}

func (x queries) GetRef(ctx context.Context, namespace, name, tag string) (eventlog.RefRow, error) {
	r, err := x.q.GetRef(ctx, sqlitedb.GetRefParams{Namespace: namespace, Name: name, Tag: tag})
	return eventlog.RefRow(r), mapErr("get ref", err)
}

func (x queries) UpsertRef(ctx context.Context, r eventlog.RefRow) error {
	return mapErr("upsert ref", x.q.UpsertRef(ctx, sqlitedb.UpsertRefParams{Namespace: r.Namespace, Name: r.Name, Tag: r.Tag,
		ManifestDigest: r.ManifestDigest, Pinned: r.Pinned, At: r.UpdatedAt}))
}

func (x queries) DeleteRef(ctx context.Context, namespace, name, tag string) error {
	return mapErr("delete ref", x.q.DeleteRef(ctx, sqlitedb.DeleteRefParams{Namespace: namespace, Name: name, Tag: tag}))
}

func (x queries) ListRefs(ctx context.Context, namespace string) ([]eventlog.RefRow, error) {
	rows, err := x.q.ListRefs(ctx, namespace)
	return conv(rows, func(r sqlitedb.Ref) eventlog.RefRow { return eventlog.RefRow(r) }), mapErr("list refs", err)
}

func (x queries) UpsertPolicy(ctx context.Context, p eventlog.PolicyRow) error {
	return mapErr("upsert policy", x.q.UpsertPolicy(ctx, sqlitedb.UpsertPolicyParams(p)))
}

func (x queries) DeletePolicy(ctx context.Context, namespace, selector string) (int64, error) {
	n, err := x.q.DeletePolicy(ctx, sqlitedb.DeletePolicyParams{Namespace: namespace, Selector: selector})
	return n, mapErr("delete policy", err)
}

func (x queries) ListPolicies(ctx context.Context, namespace string) ([]eventlog.PolicyRow, error) {
	rows, err := x.q.ListPolicies(ctx, namespace)
	return conv(rows, func(r sqlitedb.RetentionPolicy) eventlog.PolicyRow { return eventlog.PolicyRow(r) }), mapErr("list policies", err)
}

func (x queries) InsertSession(ctx context.Context, s eventlog.SessionRow) error {
	return mapErr("insert session", x.q.InsertSession(ctx, sqlitedb.InsertSessionParams(s)))
}

func (x queries) GetSession(ctx context.Context, id string) (eventlog.SessionRow, error) {
	s, err := x.q.GetSession(ctx, id)
	return eventlog.SessionRow(s), mapErr("get session", err)
}

func (x queries) SetSessionReceived(ctx context.Context, id string, from, to, expiresAt int64) (int64, error) {
	n, err := x.q.SetSessionReceived(ctx, sqlitedb.SetSessionReceivedParams{Received: to, ExpiresAt: expiresAt, ID: id, FromReceived: from})
	return n, mapErr("advance session", err)
}

func (x queries) DeleteSession(ctx context.Context, id string) error {
	return mapErr("delete session", x.q.DeleteSession(ctx, id))
}

func (x queries) ListExpiredSessions(ctx context.Context, now int64) ([]eventlog.SessionRow, error) {
	rows, err := x.q.ListExpiredSessions(ctx, now)
	return conv(rows, func(r sqlitedb.UploadSession) eventlog.SessionRow { return eventlog.SessionRow(r) }), mapErr("list expired sessions", err)
}

func (x queries) CountActiveSessionsFor(ctx context.Context, digest string, now int64) (int64, error) {
	n, err := x.q.CountActiveSessionsFor(ctx, sqlitedb.CountActiveSessionsForParams{Digest: digest, Now: now})
	return n, mapErr("count sessions", err)
}

func (x queries) ListLiveBlobsIn(ctx context.Context, digests []string) ([]string, error) {
	if len(digests) == 0 {
		return nil, nil
	}
	rows, err := x.q.ListLiveBlobsIn(ctx, digests)
	return rows, mapErr("list live blobs", err)
}

func (x queries) NamespaceBytes(ctx context.Context) (map[string]int64, error) {
	rows, err := x.q.NamespaceBytes(ctx)
	if err != nil {
		return nil, mapErr("namespace bytes", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Namespace] = r.Bytes
	}
	return out, nil
}
