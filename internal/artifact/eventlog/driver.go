// Package eventlog is the artifact store's metadata: an append-only,
// hash-chained log of events, and the current-state tables (blobs,
// manifests, refs, retention policies) projected from it in the same
// transaction. Every change goes through Append, so replaying the log
// rebuilds exactly the current state.
//
// Engines (eventlog/sqlite, eventlog/postgres) implement Driver; the rules
// live here once and eventlogtest runs them on both.
package eventlog

import "context"

// Driver is one database engine holding the metadata.
type Driver interface {
	// Write runs fn in one write transaction that serializes with every
	// other writer (BEGIN IMMEDIATE on SQLite, a lock on the head row on
	// PostgreSQL), and commits when fn returns nil.
	Write(ctx context.Context, fn func(Queries) error) error
	// Read returns queries outside any transaction.
	Read() Queries
	// Scratch creates an empty, migrated database of the same engine for
	// replay, and a function that drops it.
	Scratch(ctx context.Context) (Driver, func(), error)
	// Close releases the connections.
	Close() error
}

// The row types mirror the generated sqlc models of both engines field for
// field, so an adapter converts with a plain type conversion.

// Head is the last event's sequence number and hash.
type Head struct {
	Seq  int64
	Hash string
}

// EventRow is one row of store_events.
type EventRow struct {
	Seq      int64
	At       int64
	Kind     string
	Subject  string
	Actor    string
	Payload  []byte
	PrevHash string
	Hash     string
}

// BlobRow is one row of blobs.
type BlobRow struct {
	Digest    string
	Size      int64
	State     string
	CreatedAt int64
	UpdatedAt int64
}

// ManifestRow is one row of manifests.
type ManifestRow struct {
	Digest    string
	Size      int64
	Body      []byte
	CreatedAt int64
}

// ManifestBlobRow is one reference from a manifest to a blob.
type ManifestBlobRow struct {
	ManifestDigest string
	BlobDigest     string
}

// RefRow is one row of refs.
type RefRow struct {
	Namespace      string
	Name           string
	Tag            string
	ManifestDigest string
	Pinned         bool
	CreatedAt      int64
	UpdatedAt      int64
}

// PolicyRow is one row of retention_policies.
type PolicyRow struct {
	Namespace    string
	Selector     string
	KeepLast     int64
	KeepWithinMs int64
	KeepPinned   bool
	UpdatedAt    int64
}

// SessionRow is one upload session.
type SessionRow struct {
	ID             string
	Algorithm      string
	ExpectedDigest string
	Received       int64
	CreatedAt      int64
	ExpiresAt      int64
}

// CheckpointRow is one row of store_checkpoints: a signed record of the
// log's head.
type CheckpointRow struct {
	Seq       int64
	Hash      string
	At        int64
	PublicKey []byte
	Signature []byte
}

// AuditFilter selects audit events; empty fields match everything.
type AuditFilter struct {
	Subject string
	Actor   string
	Since   int64 // Unix ms
	After   int64 // sequence number
	Limit   int64
}

// Queries is the row-level access an engine provides. Lookups of a missing
// row return an error of kind core.KindNotFound.
type Queries interface {
	GetHead(ctx context.Context) (Head, error)
	SetHead(ctx context.Context, h Head) error
	InsertEvent(ctx context.Context, e EventRow) error
	ListEvents(ctx context.Context, after, limit int64) ([]EventRow, error)
	ListAudit(ctx context.Context, f AuditFilter) ([]EventRow, error)

	InsertCheckpoint(ctx context.Context, c CheckpointRow) error
	LatestCheckpoint(ctx context.Context) (CheckpointRow, error)
	ListCheckpoints(ctx context.Context, after, limit int64) ([]CheckpointRow, error)

	GetBlob(ctx context.Context, digest string) (BlobRow, error)
	UpsertBlob(ctx context.Context, b BlobRow) error
	SetBlobState(ctx context.Context, digest, state string, at int64) error
	ListBlobs(ctx context.Context) ([]BlobRow, error)
	ListCollectableBlobs(ctx context.Context, before, limit int64) ([]BlobRow, error)
	CountBlobReferences(ctx context.Context, digest string) (int64, error)
	ListLiveBlobsIn(ctx context.Context, digests []string) ([]string, error)

	GetManifest(ctx context.Context, digest string) (ManifestRow, error)
	InsertManifest(ctx context.Context, m ManifestRow) error
	DeleteManifest(ctx context.Context, digest string) error
	ListManifests(ctx context.Context) ([]ManifestRow, error)
	InsertManifestBlob(ctx context.Context, r ManifestBlobRow) error
	ListManifestBlobs(ctx context.Context) ([]ManifestBlobRow, error)
	ListCollectableManifests(ctx context.Context, before, limit int64) ([]ManifestRow, error)
	CountManifestRefs(ctx context.Context, digest string) (int64, error)

	GetRef(ctx context.Context, namespace, name, tag string) (RefRow, error)
	UpsertRef(ctx context.Context, r RefRow) error
	DeleteRef(ctx context.Context, namespace, name, tag string) error
	ListRefs(ctx context.Context, namespace string) ([]RefRow, error)

	UpsertPolicy(ctx context.Context, p PolicyRow) error
	DeletePolicy(ctx context.Context, namespace, selector string) (int64, error)
	ListPolicies(ctx context.Context, namespace string) ([]PolicyRow, error)

	InsertSession(ctx context.Context, s SessionRow) error
	GetSession(ctx context.Context, id string) (SessionRow, error)
	SetSessionReceived(ctx context.Context, id string, from, to, expiresAt int64) (int64, error)
	DeleteSession(ctx context.Context, id string) error
	ListExpiredSessions(ctx context.Context, now int64) ([]SessionRow, error)
	CountActiveSessionsFor(ctx context.Context, digest string, now int64) (int64, error)

	// InsertLease leases every digest under id until expiresAt.
	InsertLease(ctx context.Context, id string, digests []string, expiresAt int64) error
	// RenewLease moves an unexpired lease's expiry and returns how many of
	// its rows it moved: 0 when the lease expired or was released.
	RenewLease(ctx context.Context, id string, now, expiresAt int64) (int64, error)
	DeleteLease(ctx context.Context, id string) error
	DeleteExpiredLeases(ctx context.Context, now int64) (int64, error)
	CountActiveLeasesFor(ctx context.Context, digest string, now int64) (int64, error)

	// NamespaceBytes sums, per ref namespace, the sizes of the distinct
	// blobs its refs reach.
	NamespaceBytes(ctx context.Context) (map[string]int64, error)
}
