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
}

// Resolve turns "namespace/name:tag" or a manifest digest into the digest.
func (r *Registry) Resolve(ctx context.Context, target string) (digest.Digest, error) {
	if strings.HasPrefix(target, string(digest.SHA256)+":") || strings.HasPrefix(target, string(digest.BLAKE3)+":") {
		return digest.Parse(target)
	}
	name, err := eventlog.ParseRef(target)
	if err != nil {
		return digest.Digest{}, err
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
	body, err := manifest.Encode(m)
	if err != nil {
		return digest.Digest{}, nil, err
	}
	d, err := digest.FromBytes(r.alg(), body)
	if err != nil {
		return digest.Digest{}, nil, err
	}
	blobs := make([]digest.Digest, 0, len(m.Entries))
	for _, e := range m.Entries {
		if !e.IsSymlink() {
			blobs = append(blobs, e.Digest)
		}
	}
	return d, body, r.Meta.CommitManifest(ctx, actor, d, body, blobs)
}

func (r *Registry) alg() digest.Algorithm {
	if r.Alg == "" {
		return digest.Default
	}
	return r.Alg
}

func (r *Registry) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
