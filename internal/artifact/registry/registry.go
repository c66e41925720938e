// Package registry is the artifact store's orchestrator over its parts:
// push a directory as a manifest, pull it back, tag, apply retention and
// collect garbage.
package registry

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
)

// DefaultGrace is how old an unreferenced blob or manifest must be before
// GC may delete it.
const DefaultGrace = time.Hour

// Registry ties the metadata store, the data plane and the blob store.
type Registry struct {
	Meta  *eventlog.Store
	Data  dataplane.DataPlane
	Blobs blobstore.Store // GC deletes bytes here
	Alg   digest.Algorithm
	Log   *slog.Logger
	// StaleAge is how long a blob store's staging item must sit idle
	// before GC removes it; StaleUploadAge when zero.
	StaleAge time.Duration
}

// Catalog is the metadata side of a transfer: naming, manifests and refs.
// A Registry is the local Catalog; the HTTP client is a remote one.
type Catalog interface {
	// Resolve turns a ref or a manifest digest into the manifest digest.
	Resolve(ctx context.Context, target string) (digest.Digest, error)
	// Manifest loads a committed manifest by ref or digest.
	Manifest(ctx context.Context, target string) (digest.Digest, manifest.Manifest, error)
	// CommitManifest stores a manifest whose blobs are stored.
	CommitManifest(ctx context.Context, actor string, m manifest.Manifest) (digest.Digest, []byte, error)
	// SetRef points a ref at a committed manifest.
	SetRef(ctx context.Context, actor string, ref eventlog.RefName, d digest.Digest) error
}

// Transfer moves trees in and out of a store through a data plane and a
// catalog, local or remote alike.
type Transfer struct {
	Data    dataplane.DataPlane
	Catalog Catalog
	Alg     digest.Algorithm
	Log     *slog.Logger
	// Lease sets the GC lease a push holds when Catalog is a Leaser.
	Lease LeaseTerms
}

func (t *Transfer) alg() digest.Algorithm {
	if t.Alg == "" {
		return digest.Default
	}
	return t.Alg
}

func (t *Transfer) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

func (r *Registry) transfer() *Transfer {
	return &Transfer{Data: r.Data, Catalog: r, Alg: r.Alg, Log: r.Log}
}

// Push stores src as a manifest through the local data plane; see Transfer.Push.
func (r *Registry) Push(ctx context.Context, actor, src, ref string, opts PushOptions) (PushResult, error) {
	return r.transfer().Push(ctx, actor, src, ref, opts)
}

// Pull writes a manifest's tree into dest; see Transfer.Pull.
func (r *Registry) Pull(ctx context.Context, target, dest string, progress func(int64)) (PullResult, error) {
	return r.transfer().Pull(ctx, target, dest, progress)
}

// SetRef points ref at a committed manifest.
func (r *Registry) SetRef(ctx context.Context, actor string, ref eventlog.RefName, d digest.Digest) error {
	return r.Meta.SetRef(ctx, actor, ref, d)
}

// ParseTarget reads a target: a manifest digest (sha256:… or blake3:…) or
// a ref namespace/name:tag. Exactly one of the results is set.
func ParseTarget(target string) (digest.Digest, eventlog.RefName, error) {
	if strings.HasPrefix(target, string(digest.SHA256)+":") || strings.HasPrefix(target, string(digest.BLAKE3)+":") {
		d, err := digest.Parse(target)
		return d, eventlog.RefName{}, err
	}
	name, err := eventlog.ParseRef(target)
	return digest.Digest{}, name, err
}

// Resolve turns "namespace/name:tag" or a manifest digest into the digest.
func (r *Registry) Resolve(ctx context.Context, target string) (digest.Digest, error) {
	d, name, err := ParseTarget(target)
	if err != nil || !d.IsZero() {
		return d, err
	}
	ref, err := r.Meta.Ref(ctx, name)
	if err != nil {
		return digest.Digest{}, err
	}
	return ref.Manifest, nil
}

// Manifest loads and decodes a committed manifest by ref or digest.
func (r *Registry) Manifest(ctx context.Context, target string) (digest.Digest, manifest.Manifest, error) {
	d, err := r.Resolve(ctx, target)
	if err != nil {
		return digest.Digest{}, manifest.Manifest{}, err
	}
	rec, err := r.Meta.Manifest(ctx, d)
	if err != nil {
		if core.KindOf(err) == core.KindNotFound {
			return d, manifest.Manifest{}, core.E(core.KindNotFound, "manifest", "manifest %s is not stored", d)
		}
		return d, manifest.Manifest{}, err
	}
	m, err := manifest.Decode(rec.Body)
	if err != nil {
		return d, manifest.Manifest{}, core.Wrap(core.KindInternal, "stored manifest "+d.String(), err)
	}
	return d, m, nil
}

// Tag points ref at target (a ref or a manifest digest).
func (r *Registry) Tag(ctx context.Context, actor, ref, target string) (digest.Digest, error) {
	name, err := eventlog.ParseRef(ref)
	if err != nil {
		return digest.Digest{}, err
	}
	d, err := r.Resolve(ctx, target)
	if err != nil {
		return digest.Digest{}, err
	}
	return d, r.Meta.SetRef(ctx, actor, name, d)
}

// CommitManifest stores a manifest built elsewhere (a runner's outputs, a
// client's push) once its blobs are stored, and returns its digest.
func (r *Registry) CommitManifest(ctx context.Context, actor string, m manifest.Manifest) (digest.Digest, []byte, error) {
	d, body, blobs, err := r.prepareCommit(ctx, m)
	if err != nil {
		return d, nil, err
	}
	return d, body, r.Meta.CommitManifest(ctx, actor, d, body, blobs)
}

// prepareCommit encodes a manifest, checks its sizes against the stored
// blobs (CheckSizes) and lists the blobs it references.
func (r *Registry) prepareCommit(ctx context.Context, m manifest.Manifest) (digest.Digest, []byte, []digest.Digest, error) {
	body, err := manifest.Encode(m)
	if err != nil {
		return digest.Digest{}, nil, nil, err
	}
	d, err := digest.FromBytes(r.transfer().alg(), body)
	if err != nil {
		return digest.Digest{}, nil, nil, err
	}
	if err := r.CheckSizes(ctx, d, m); err != nil {
		return d, nil, nil, err
	}
	blobs := make([]digest.Digest, 0, len(m.Entries))
	for _, e := range m.Entries {
		if !e.IsSymlink() {
			blobs = append(blobs, e.Digest)
		}
	}
	return d, body, blobs, nil
}
