package eventlog

import (
	"context"

	"github.com/deltaci/deltaci/internal/core"
)

// apply writes one event's projection. It is the only code that changes the
// current-state tables, so replaying the log through it rebuilds them.
// It trusts the event: commands check preconditions before emitting.
func apply(ctx context.Context, q Queries, e Event) error {
	at := e.At.UnixMilli()
	switch e.Kind {
	case BlobAdded:
		var p BlobPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		return q.UpsertBlob(ctx, BlobRow{Digest: p.Digest, Size: p.Size, State: string(StateLive), CreatedAt: at, UpdatedAt: at})
	case BlobDeleting, BlobGone:
		var p BlobPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		state := StateDeleting
		if e.Kind == BlobGone {
			state = StateGone
		}
		return q.SetBlobState(ctx, p.Digest, string(state), at)
	case BlobQuarantined:
		return applyQuarantine(ctx, q, e)
	case ManifestCommitted:
		var p ManifestPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := q.InsertManifest(ctx, ManifestRow{Digest: p.Digest, Size: p.Size, Body: p.Body, CreatedAt: at}); err != nil {
			return err
		}
		for _, b := range p.Blobs {
			if err := q.InsertManifestBlob(ctx, ManifestBlobRow{ManifestDigest: p.Digest, BlobDigest: b}); err != nil {
				return err
			}
		}
		return nil
	case ManifestDeleted:
		var p ManifestPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		return q.DeleteManifest(ctx, p.Digest)
	case RefSet:
		var p RefPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		// The upsert keeps created_at of an existing ref.
		return q.UpsertRef(ctx, RefRow{Namespace: p.Namespace, Name: p.Name, Tag: p.Tag, ManifestDigest: p.Manifest,
			Pinned: p.Pinned, CreatedAt: at, UpdatedAt: at})
	case RefPinned:
		var p RefPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		cur, err := q.GetRef(ctx, p.Namespace, p.Name, p.Tag)
		if err != nil {
			return err
		}
		// Pinning is not an update of what the ref points to: retention's
		// "newest" order must not change because someone pinned an old ref.
		cur.Pinned = p.Pinned
		return q.UpsertRef(ctx, cur)
	case RefDeleted:
		var p RefPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		return q.DeleteRef(ctx, p.Namespace, p.Name, p.Tag)
	case RetentionSet:
		var p RetentionPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		return q.UpsertPolicy(ctx, PolicyRow{Namespace: p.Namespace, Selector: p.Selector, KeepLast: p.KeepLast,
			KeepWithinMs: p.KeepWithinMS, KeepPinned: p.KeepPinned, UpdatedAt: at})
	case RetentionDeleted:
		var p RetentionPayload
		if err := e.Decode(&p); err != nil {
			return err
		}
		_, err := q.DeletePolicy(ctx, p.Namespace, p.Selector)
		return err
	case GCCompleted, ScrubCompleted:
		return nil // audit only
	}
	return core.E(core.KindInvalid, "apply event", "event %d has unknown kind %q", e.Seq, e.Kind)
}
