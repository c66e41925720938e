package httpapi

import (
	"context"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
)

// Catalog is registry.Catalog over the API, so a registry.Transfer can
// push and pull through a remote store: Transfer{Data: c, Catalog: Catalog{c}}.
type Catalog struct{ C *Client }

var _ registry.Catalog = Catalog{}

// Resolve implements registry.Catalog.
func (r Catalog) Resolve(ctx context.Context, target string) (digest.Digest, error) {
	d, name, err := registry.ParseTarget(target)
	if err != nil || !d.IsZero() {
		return d, err
	}
	ref, err := r.C.GetRef(ctx, name.String())
	if err != nil {
		return digest.Digest{}, err
	}
	return ref.Manifest, nil
}

// Manifest implements registry.Catalog.
func (r Catalog) Manifest(ctx context.Context, target string) (digest.Digest, manifest.Manifest, error) {
	d, err := r.Resolve(ctx, target)
	if err != nil {
		return d, manifest.Manifest{}, err
	}
	m, err := r.C.GetManifest(ctx, d)
	return d, m, err
}

// CommitManifest implements registry.Catalog; the server records the actor.
func (r Catalog) CommitManifest(ctx context.Context, _ string, m manifest.Manifest) (digest.Digest, []byte, error) {
	body, err := manifest.Encode(m)
	if err != nil {
		return digest.Digest{}, nil, err
	}
	d, err := r.C.PutManifest(ctx, m)
	return d, body, err
}

// SetRef implements registry.Catalog.
func (r Catalog) SetRef(ctx context.Context, _ string, ref eventlog.RefName, d digest.Digest) error {
	_, err := r.C.SetRef(ctx, ref.String(), d, nil)
	return err
}
