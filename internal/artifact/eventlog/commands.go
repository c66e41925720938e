package eventlog

import (
	"context"
	"sort"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// TouchAfter is how old a live blob's last add must be before adding it
// again appends an event. The refresh restarts GC's grace window for a blob
// an upload is about to reference, at the cost of one event per blob per
// TouchAfter; it must stay well under the grace window.
const TouchAfter = 10 * time.Minute

// AddBlob records that the blob's verified bytes are in the blob store. For
// a blob already live it only refreshes the grace window (see TouchAfter).
// A blob being deleted by GC gets core.KindConflict: the caller uploads it
// again once GC has finished with it.
func (s *Store) AddBlob(ctx context.Context, actor string, d digest.Digest, size int64) error {
	return s.AddStoredBlob(ctx, actor, d, size, nil)
}

// ErrBytesGone is returned by AddStoredBlob when the bytes an upload relied
// on were deleted by GC before the blob could be recorded; uploading the
// bytes again and retrying succeeds.
var ErrBytesGone = core.E(core.KindConflict, "add blob", "the blob's bytes were garbage-collected while it was being uploaded; upload it again")

// AddStoredBlob is AddBlob for an uploader that may have skipped writing
// bytes it found already stored. When the blob is not live, present is
// asked, inside the transaction, whether the bytes are still there: GC
// deletes bytes only of blobs it has marked, and that mark serializes with
// this transaction, so bytes present now stay until the blob is collected
// again. If they are gone, it returns ErrBytesGone and records nothing.
func (s *Store) AddStoredBlob(ctx context.Context, actor string, d digest.Digest, size int64, present func(context.Context) (bool, error)) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		cur, err := tx.q.GetBlob(ctx, d.String())
		switch {
		case core.KindOf(err) == core.KindNotFound:
		case err != nil:
			return err
		case cur.State == string(StateLive):
			if cur.Size != size {
				return core.E(core.KindConflict, "add blob", "blob %s is recorded with %d bytes, not %d", d, cur.Size, size)
			}
			if cur.UpdatedAt > tx.now.Add(-TouchAfter).UnixMilli() {
				return nil
			}
			_, err = tx.emit(ctx, BlobAdded, d.String(), BlobPayload{Digest: d.String(), Size: size})
			return err
		case cur.State == string(StateDeleting):
			return core.E(core.KindConflict, "add blob", "blob %s is being garbage-collected; upload it again in a moment", d)
		}
		if present != nil {
			ok, err := present(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return ErrBytesGone
			}
		}
		_, err = tx.emit(ctx, BlobAdded, d.String(), BlobPayload{Digest: d.String(), Size: size})
		return err
	})
}

// Blob returns a blob's metadata.
func (s *Store) Blob(ctx context.Context, d digest.Digest) (Blob, error) {
	r, err := s.drv.Read().GetBlob(ctx, d.String())
	if err != nil {
		return Blob{}, err
	}
	return blobFromRow(r)
}

// Missing returns, in input order, the digests that are not live blobs,
// with one query per call.
func (s *Store) Missing(ctx context.Context, ds []digest.Digest) ([]digest.Digest, error) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.String()
	}
	live, err := s.drv.Read().ListLiveBlobsIn(ctx, ids)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(live))
	for _, id := range live {
		have[id] = true
	}
	missing := []digest.Digest{}
	for i, d := range ds {
		if !have[ids[i]] {
			missing = append(missing, d)
		}
	}
	return missing, nil
}

// CommitManifest records a manifest whose blobs must all be live. Committing
// a manifest that exists is a no-op. A missing blob is core.KindNotFound and
// one being deleted is core.KindConflict, each naming the blob; the caller
// uploads it (again) and retries.
func (s *Store) CommitManifest(ctx context.Context, actor string, d digest.Digest, body []byte, blobs []digest.Digest) error {
	return s.Update(ctx, actor, func(tx *Tx) error { return tx.commitManifest(ctx, d, body, blobs) })
}

// CommitManifestRef is CommitManifest and SetRef in one transaction: no GC
// can take the manifest between its commit and the ref that keeps it,
// however short its grace window. On an error nothing is recorded.
func (s *Store) CommitManifestRef(ctx context.Context, actor string, d digest.Digest, body []byte, blobs []digest.Digest, r RefName) error {
	if err := r.Validate(); err != nil {
		return core.E(core.KindInvalid, "set ref", "%s: %v", r, err)
	}
	return s.Update(ctx, actor, func(tx *Tx) error {
		if err := tx.commitManifest(ctx, d, body, blobs); err != nil {
			return err
		}
		return tx.setRef(ctx, r, d)
	})
}

func (tx *Tx) commitManifest(ctx context.Context, d digest.Digest, body []byte, blobs []digest.Digest) error {
	ids := make([]string, 0, len(blobs))
	seen := map[string]bool{}
	for _, b := range blobs {
		if !seen[b.String()] {
			seen[b.String()] = true
			ids = append(ids, b.String())
		}
	}
	sort.Strings(ids)
	if _, err := tx.q.GetManifest(ctx, d.String()); err == nil {
		return nil
	} else if core.KindOf(err) != core.KindNotFound {
		return err
	}
	for _, id := range ids {
		b, err := tx.q.GetBlob(ctx, id)
		if core.KindOf(err) == core.KindNotFound || (err == nil && b.State == string(StateGone)) {
			return core.E(core.KindNotFound, "commit manifest", "manifest %s references blob %s, which is not stored; upload it first", d, id)
		}
		if err != nil {
			return err
		}
		if b.State == string(StateDeleting) {
			return core.E(core.KindConflict, "commit manifest", "manifest %s references blob %s, which is being garbage-collected; upload it again and retry", d, id)
		}
	}
	_, err := tx.emit(ctx, ManifestCommitted, d.String(), ManifestPayload{Digest: d.String(), Size: int64(len(body)), Body: body, Blobs: ids})
	return err
}

// Manifest returns a committed manifest.
func (s *Store) Manifest(ctx context.Context, d digest.Digest) (ManifestRecord, error) {
	r, err := s.drv.Read().GetManifest(ctx, d.String())
	if err != nil {
		return ManifestRecord{}, err
	}
	return ManifestRecord{Digest: d, Size: r.Size, Body: r.Body, CreatedAt: fromMS(r.CreatedAt)}, nil
}

// SetRef points a ref at a committed manifest (core.KindNotFound if it is
// not). Setting a ref to the manifest it already has is a no-op.
func (s *Store) SetRef(ctx context.Context, actor string, r RefName, m digest.Digest) error {
	if err := r.Validate(); err != nil {
		return core.E(core.KindInvalid, "set ref", "%s: %v", r, err)
	}
	return s.Update(ctx, actor, func(tx *Tx) error { return tx.setRef(ctx, r, m) })
}

func (tx *Tx) setRef(ctx context.Context, r RefName, m digest.Digest) error {
	if _, err := tx.q.GetManifest(ctx, m.String()); err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return notFound("set ref", "manifest %s is not stored; push it before tagging", m)
		}
		return err
	}
	p := RefPayload{Namespace: r.Namespace, Name: r.Name, Tag: r.Tag, Manifest: m.String()}
	cur, err := tx.q.GetRef(ctx, r.Namespace, r.Name, r.Tag)
	switch {
	case err == nil:
		if cur.ManifestDigest == m.String() {
			return nil
		}
		p.Previous, p.Pinned = cur.ManifestDigest, cur.Pinned
	case core.KindOf(err) != core.KindNotFound:
		return err
	}
	_, err = tx.emit(ctx, RefSet, r.String(), p)
	return err
}

// Ref returns a ref.
func (s *Store) Ref(ctx context.Context, r RefName) (Ref, error) {
	row, err := s.drv.Read().GetRef(ctx, r.Namespace, r.Name, r.Tag)
	if err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return Ref{}, notFound("get ref", "ref %s does not exist", r)
		}
		return Ref{}, err
	}
	return refFromRow(row)
}

// Refs lists refs, of one namespace or (namespace "") all.
func (s *Store) Refs(ctx context.Context, namespace string) ([]Ref, error) {
	rows, err := s.drv.Read().ListRefs(ctx, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]Ref, 0, len(rows))
	for _, r := range rows {
		ref, err := refFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// DeleteRef removes a ref; reason says why (e.g. a retention rule).
func (s *Store) DeleteRef(ctx context.Context, actor string, r RefName, reason string) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		cur, err := tx.q.GetRef(ctx, r.Namespace, r.Name, r.Tag)
		if err != nil {
			if core.KindOf(err) == core.KindNotFound {
				return notFound("delete ref", "ref %s does not exist", r)
			}
			return err
		}
		_, err = tx.emit(ctx, RefDeleted, r.String(), RefPayload{Namespace: r.Namespace, Name: r.Name, Tag: r.Tag,
			Manifest: cur.ManifestDigest, Reason: reason})
		return err
	})
}

// PinRef pins or unpins a ref; pinned refs survive retention rules with
// keep_pinned.
func (s *Store) PinRef(ctx context.Context, actor string, r RefName, pinned bool) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		cur, err := tx.q.GetRef(ctx, r.Namespace, r.Name, r.Tag)
		if err != nil {
			if core.KindOf(err) == core.KindNotFound {
				return notFound("pin ref", "ref %s does not exist", r)
			}
			return err
		}
		if cur.Pinned == pinned {
			return nil
		}
		_, err = tx.emit(ctx, RefPinned, r.String(), RefPayload{Namespace: r.Namespace, Name: r.Name, Tag: r.Tag,
			Manifest: cur.ManifestDigest, Pinned: pinned})
		return err
	})
}

// SetPolicy creates or replaces the retention policy of (namespace, selector).
func (s *Store) SetPolicy(ctx context.Context, actor string, p Policy) error {
	if !segmentRE.MatchString(p.Namespace) {
		return core.E(core.KindInvalid, "set retention", "namespace %q must be letters, digits, '.', '_' or '-'", p.Namespace)
	}
	if p.Selector == "" || !doublestar.ValidatePattern(p.Selector) {
		return core.E(core.KindInvalid, "set retention", "selector %q is not a valid glob over name:tag (e.g. \"*\" or \"build/**\")", p.Selector)
	}
	if p.KeepLast < 0 || p.KeepWithin < 0 {
		return core.E(core.KindInvalid, "set retention", "keep_last and keep_within must not be negative")
	}
	if p.KeepLast == 0 && p.KeepWithin == 0 && !p.KeepPinned {
		return core.E(core.KindInvalid, "set retention", "policy keeps nothing: set keep_last, keep_within or keep_pinned")
	}
	return s.Update(ctx, actor, func(tx *Tx) error {
		_, err := tx.emit(ctx, RetentionSet, "retention:"+p.Namespace+"/"+p.Selector, RetentionPayload{
			Namespace: p.Namespace, Selector: p.Selector, KeepLast: int64(p.KeepLast),
			KeepWithinMS: p.KeepWithin.Milliseconds(), KeepPinned: p.KeepPinned,
		})
		return err
	})
}

// DeletePolicy removes a retention policy (core.KindNotFound if absent).
func (s *Store) DeletePolicy(ctx context.Context, actor, namespace, selector string) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		rows, err := tx.q.ListPolicies(ctx, namespace)
		if err != nil {
			return err
		}
		found := false
		for _, r := range rows {
			found = found || (r.Namespace == namespace && r.Selector == selector)
		}
		if !found {
			return notFound("delete retention", "no retention policy for %s with selector %q", namespace, selector)
		}
		_, err = tx.emit(ctx, RetentionDeleted, "retention:"+namespace+"/"+selector, RetentionPayload{Namespace: namespace, Selector: selector})
		return err
	})
}

// Policies lists retention policies, of one namespace or all.
func (s *Store) Policies(ctx context.Context, namespace string) ([]Policy, error) {
	rows, err := s.drv.Read().ListPolicies(ctx, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, len(rows))
	for i, r := range rows {
		out[i] = policyFromRow(r)
	}
	return out, nil
}

// CollectableManifests lists manifests no ref points to that were committed
// before the cut-off.
func (s *Store) CollectableManifests(ctx context.Context, before time.Time, limit int) ([]digest.Digest, error) {
	rows, err := s.drv.Read().ListCollectableManifests(ctx, before.UnixMilli(), int64(limit))
	if err != nil {
		return nil, err
	}
	return parseAll(rows, func(r ManifestRow) string { return r.Digest })
}

// DeleteManifest removes an unreferenced manifest, checking again inside the
// transaction that no ref points to it, no lease holds it and it is older
// than before. It
// reports whether it deleted it.
func (s *Store) DeleteManifest(ctx context.Context, actor string, d digest.Digest, before time.Time) (bool, error) {
	deleted := false
	err := s.Update(ctx, actor, func(tx *Tx) error {
		m, err := tx.q.GetManifest(ctx, d.String())
		if core.KindOf(err) == core.KindNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := tx.q.CountManifestRefs(ctx, d.String())
		if err != nil || n > 0 || m.CreatedAt >= before.UnixMilli() {
			return err
		}
		if held, err := tx.leased(ctx, d.String()); err != nil || held {
			return err
		}
		_, err = tx.emit(ctx, ManifestDeleted, d.String(), ManifestPayload{Digest: d.String()})
		deleted = err == nil
		return err
	})
	return deleted, err
}

// CollectableBlobs lists live blobs no manifest references, last added
// before the cut-off.
func (s *Store) CollectableBlobs(ctx context.Context, before time.Time, limit int) ([]digest.Digest, error) {
	rows, err := s.drv.Read().ListCollectableBlobs(ctx, before.UnixMilli(), int64(limit))
	if err != nil {
		return nil, err
	}
	return parseAll(rows, func(r BlobRow) string { return r.Digest })
}

// MarkDeleting moves a blob live → deleting if, inside the transaction, no
// manifest references it, it was last added before the cut-off and no
// active lease or upload session holds it. Only then may its bytes be deleted.
func (s *Store) MarkDeleting(ctx context.Context, actor string, d digest.Digest, before time.Time) (bool, error) {
	marked := false
	err := s.Update(ctx, actor, func(tx *Tx) error {
		b, err := tx.q.GetBlob(ctx, d.String())
		if core.KindOf(err) == core.KindNotFound {
			return nil
		}
		if err != nil || b.State != string(StateLive) || b.UpdatedAt >= before.UnixMilli() {
			return err
		}
		refs, err := tx.q.CountBlobReferences(ctx, d.String())
		if err != nil || refs > 0 {
			return err
		}
		if held, err := tx.leased(ctx, d.String()); err != nil || held {
			return err
		}
		_, err = tx.emit(ctx, BlobDeleting, d.String(), BlobPayload{Digest: d.String()})
		marked = err == nil
		return err
	})
	return marked, err
}

// MarkGone records that a deleting blob's bytes are gone.
func (s *Store) MarkGone(ctx context.Context, actor string, d digest.Digest) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		b, err := tx.q.GetBlob(ctx, d.String())
		if err != nil {
			return err
		}
		if b.State != string(StateDeleting) {
			return core.E(core.KindConflict, "mark blob gone", "blob %s is %s, not deleting", d, b.State)
		}
		_, err = tx.emit(ctx, BlobGone, d.String(), BlobPayload{Digest: d.String()})
		return err
	})
}

// DeletingBlobs lists blobs left in deleting (a GC that died mid-sweep).
func (s *Store) DeletingBlobs(ctx context.Context) ([]digest.Digest, error) {
	rows, err := s.drv.Read().ListBlobs(ctx)
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, r := range rows {
		if r.State == string(StateDeleting) {
			d, err := digest.Parse(r.Digest)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// RecordGC appends the audit event of one GC cycle.
func (s *Store) RecordGC(ctx context.Context, actor string, p GCPayload) error {
	return s.Update(ctx, actor, func(tx *Tx) error {
		_, err := tx.emit(ctx, GCCompleted, "gc", p)
		return err
	})
}

func parseAll[R any](rows []R, id func(R) string) ([]digest.Digest, error) {
	out := make([]digest.Digest, 0, len(rows))
	for _, r := range rows {
		d, err := digest.Parse(id(r))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// AdoptOrphan records stored bytes no live blob row accounts for as a blob
// being deleted, so that GC removes them through the same live → deleting
// → gone path that uploads serialize with. It reports false, changing
// nothing, when the blob is known and not gone, or leased.
func (s *Store) AdoptOrphan(ctx context.Context, actor string, d digest.Digest, size int64) (bool, error) {
	adopted := false
	err := s.Update(ctx, actor, func(tx *Tx) error {
		b, err := tx.q.GetBlob(ctx, d.String())
		if err == nil && b.State != string(StateGone) {
			return nil
		}
		if err != nil && core.KindOf(err) != core.KindNotFound {
			return err
		}
		// Bytes an upload in flight has stored but not recorded yet: their
		// age (an S3 multipart object's is its start) says nothing.
		if held, err := tx.leased(ctx, d.String()); err != nil || held {
			return err
		}
		if _, err := tx.emit(ctx, BlobAdded, d.String(), BlobPayload{Digest: d.String(), Size: size}); err != nil {
			return err
		}
		_, err = tx.emit(ctx, BlobDeleting, d.String(), BlobPayload{Digest: d.String()})
		adopted = err == nil
		return err
	})
	return adopted, err
}
