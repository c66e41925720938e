package registry

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/retention"
	"github.com/deltaci/deltaci/internal/core"
)

// GCReport says what one collection did.
type GCReport struct {
	Manifests int   // manifests deleted
	Blobs     int   // blobs deleted
	Bytes     int64 // bytes freed
	Orphans   int   // stored bytes no metadata knew of, deleted
	Stale     int   // abandoned staging (temp files, multipart uploads) removed
}

// StaleUploadAge is how long a blob store's staging item (an fs temp file,
// an S3 multipart upload) must sit idle before GC removes it; far above any
// pause of a live upload.
const StaleUploadAge = 24 * time.Hour

const gcBatch = 500

// GC deletes manifests no ref points to, then blobs no manifest references,
// all older than grace; a grace of 0 means exactly that, and a negative
// one is core.KindInvalid. Each blob moves live → deleting in a
// transaction that re-checks it is unreferenced and unleased, so a
// manifest committed at the same moment either keeps it or fails and
// uploads it again; its bytes are deleted only after that. Blobs a crashed
// earlier GC left in deleting are finished first.
//
// The grace window is not what keeps a push safe: its lease is (see
// Leaser), whatever the grace. The window protects what clients without a
// lease uploaded and have not referenced yet.
func (r *Registry) GC(ctx context.Context, actor string, grace time.Duration) (GCReport, error) {
	if grace < 0 {
		return GCReport{}, core.E(core.KindInvalid, "gc", "grace %s is negative; use 0 to collect everything unreferenced and unleased", grace)
	}
	var rep GCReport
	if _, err := r.Meta.ExpireLeases(ctx); err != nil {
		return rep, err
	}
	cut := r.Meta.Now().Add(-grace)
	for {
		ms, err := r.Meta.CollectableManifests(ctx, cut, gcBatch)
		if err != nil {
			return rep, err
		}
		n := 0
		for _, d := range ms {
			ok, err := r.Meta.DeleteManifest(ctx, actor, d, cut)
			if err != nil {
				return rep, err
			}
			if ok {
				n++
			}
		}
		rep.Manifests += n
		if len(ms) < gcBatch || n == 0 {
			break
		}
	}
	leftover, err := r.Meta.DeletingBlobs(ctx)
	if err != nil {
		return rep, err
	}
	for _, d := range leftover {
		if err := r.sweep(ctx, actor, d, &rep); err != nil {
			return rep, err
		}
	}
	for {
		bs, err := r.Meta.CollectableBlobs(ctx, cut, gcBatch)
		if err != nil {
			return rep, err
		}
		n := 0
		for _, d := range bs {
			ok, err := r.Meta.MarkDeleting(ctx, actor, d, cut)
			if err != nil {
				return rep, err
			}
			if !ok {
				continue
			}
			n++
			if err := r.sweep(ctx, actor, d, &rep); err != nil {
				return rep, err
			}
		}
		if len(bs) < gcBatch || n == 0 {
			break
		}
	}
	if err := r.sweepOrphans(ctx, actor, cut, &rep); err != nil {
		return rep, err
	}
	// Staging left by uploads that died (temp files, S3 multipart uploads),
	// sparing what a live upload's lease holds, however old.
	age := cmp.Or(r.StaleAge, StaleUploadAge)
	if ss, ok := r.Blobs.(blobstore.StaleSparer); ok {
		n, err := ss.RemoveStaleExcept(ctx, age, func(d digest.Digest) (bool, error) { return r.Meta.Held(ctx, d) })
		if err != nil {
			return rep, err
		}
		rep.Stale = n
	} else if sr, ok := r.Blobs.(blobstore.StaleRemover); ok {
		n, err := sr.RemoveStale(ctx, age)
		if err != nil {
			return rep, err
		}
		rep.Stale = n
	}
	err = r.Meta.RecordGC(ctx, actor, eventlog.GCPayload{Manifests: int64(rep.Manifests), Blobs: int64(rep.Blobs), Bytes: rep.Bytes})
	r.transfer().log().InfoContext(ctx, "gc finished", slog.Int("manifests", rep.Manifests), slog.Int("blobs", rep.Blobs),
		slog.Int64("bytes", rep.Bytes), slog.Int("orphans", rep.Orphans))
	return rep, err
}

// sweep deletes a deleting blob's bytes and records it gone.
func (r *Registry) sweep(ctx context.Context, actor string, d digest.Digest, rep *GCReport) error {
	b, err := r.Meta.Blob(ctx, d)
	if err != nil {
		return err
	}
	if err := r.Blobs.Delete(ctx, d); err != nil {
		return fmt.Errorf("gc: delete blob %s: %w", d, err)
	}
	if err := r.Meta.MarkGone(ctx, actor, d); err != nil {
		return err
	}
	rep.Blobs++
	rep.Bytes += b.Size
	return nil
}

// sweepOrphans deletes stored bytes that no live blob row accounts for
// (an upload that died between storing and recording), once they are older
// than the cut-off and no lease or upload session holds them. Each is first
// adopted as a deleting blob, so an upload of the same content racing with
// the sweep fails and retries instead of recording a blob whose bytes are
// about to go.
func (r *Registry) sweepOrphans(ctx context.Context, actor string, cut time.Time, rep *GCReport) error {
	var orphans []blobstore.Info
	for info, err := range r.Blobs.List(ctx) {
		if err != nil {
			return err
		}
		if !info.ModTime.Before(cut) {
			continue
		}
		b, err := r.Meta.Blob(ctx, info.Digest)
		if core.KindOf(err) == core.KindNotFound || (err == nil && b.State == eventlog.StateGone) {
			orphans = append(orphans, info)
		} else if err != nil {
			return err
		}
	}
	for _, info := range orphans {
		ok, err := r.Meta.AdoptOrphan(ctx, actor, info.Digest, info.Size)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := r.Blobs.Delete(ctx, info.Digest); err != nil {
			return fmt.Errorf("gc: delete orphan %s: %w", info.Digest, err)
		}
		if err := r.Meta.MarkGone(ctx, actor, info.Digest); err != nil {
			return err
		}
		rep.Orphans++
	}
	return nil
}

// PlanRetention evaluates the retention policies of a namespace ("" for all).
func (r *Registry) PlanRetention(ctx context.Context, namespace string) ([]retention.Decision, error) {
	refs, err := r.Meta.Refs(ctx, namespace)
	if err != nil {
		return nil, err
	}
	policies, err := r.Meta.Policies(ctx, namespace)
	if err != nil {
		return nil, err
	}
	return retention.Plan(refs, policies, r.Meta.Now()), nil
}

// ApplyRetention deletes every ref the plan does not keep, each as a
// ref.deleted event carrying the reason, and returns the decisions.
func (r *Registry) ApplyRetention(ctx context.Context, actor, namespace string) ([]retention.Decision, error) {
	plan, err := r.PlanRetention(ctx, namespace)
	if err != nil {
		return nil, err
	}
	for _, d := range plan {
		if d.Keep {
			continue
		}
		err := r.Meta.DeleteRef(ctx, actor, d.Ref.RefName, d.Reason)
		if err != nil && core.KindOf(err) != core.KindNotFound {
			return plan, err
		}
	}
	return plan, nil
}
