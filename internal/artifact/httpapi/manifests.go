package httpapi

import (
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/manifest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jsonhttp"
)

const manifestsPath = "/api/v1/manifests/"

// The media types a manifest travels in. The generic types are accepted
// too, for clients (curl, browsers) that do not know ours.
var (
	cborTypes = []string{manifest.MediaTypeCBOR, "application/cbor"}
	jsonTypes = []string{manifest.MediaTypeJSON, "application/json"}
)

// putManifest stores a manifest under the digest of its canonical CBOR.
// A JSON body is converted to that CBOR first, so the digest is the same
// whichever encoding the client sent.
func (s *server) putManifest(w http.ResponseWriter, r *http.Request) error {
	const op = "put manifest"
	who, err := actor(r)
	if err != nil {
		return err
	}
	d, err := digest.Parse(r.PathValue("digest"))
	if err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	isJSON := slices.Contains(jsonTypes, mt)
	if !isJSON && !slices.Contains(cborTypes, mt) {
		return &jsonhttp.MediaTypeError{Got: ct, Want: append(slices.Clone(cborTypes), jsonTypes...)}
	}
	if alg := s.alg(); d.Algorithm() != alg {
		return core.E(core.KindInvalid, op, "this store names manifests by %s digests, not %s", alg, d.Algorithm())
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxManifest))
	if err != nil {
		return jsonhttp.BodyError(op, err)
	}
	if isJSON {
		m, err := manifest.FromJSON(body)
		if err != nil {
			return err
		}
		if body, err = manifest.Encode(m); err != nil {
			return err
		}
	}
	got, err := digest.FromBytes(d.Algorithm(), body)
	if err != nil {
		return err
	}
	if got != d {
		return &core.Error{Kind: core.KindInvalid, Op: op, Err: &digest.MismatchError{Expected: d, Actual: got}}
	}
	m, err := manifest.Decode(body)
	if err != nil {
		return err
	}
	committed, _, err := s.reg.CommitManifest(r.Context(), who, m)
	if core.KindOf(err) == core.KindNotFound {
		return s.missingBlobs(r, d, m, err)
	}
	if err != nil {
		return err
	}
	if committed != d {
		return core.E(core.KindInternal, op, "the registry stored the manifest as %s, not %s", committed, d)
	}
	w.Header().Set("Location", manifestsPath+d.String())
	writeJSON(w, http.StatusCreated, BlobInfo{Digest: d.String(), Size: int64(len(body))})
	return nil
}

func (s *server) alg() digest.Algorithm {
	if s.reg.Alg == "" {
		return digest.Default
	}
	return s.reg.Alg
}

// missingBlobs turns a commit refused for a missing blob into the list of
// every missing blob, so the client uploads them all in one round.
func (s *server) missingBlobs(r *http.Request, d digest.Digest, m manifest.Manifest, cause error) error {
	var blobs []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, e := range m.Entries {
		if !e.IsSymlink() && !seen[e.Digest] {
			seen[e.Digest] = true
			blobs = append(blobs, e.Digest)
		}
	}
	var missing []digest.Digest
	for batch := range slices.Chunk(blobs, dataplane.MaxFindMissing) {
		got, err := s.data.FindMissing(r.Context(), batch)
		if err != nil {
			return err
		}
		missing = append(missing, got...)
	}
	if len(missing) == 0 {
		return cause // stored in the meantime; the client retries anyway
	}
	return &MissingBlobsError{Manifest: d, Missing: missing}
}

// getManifest serves a manifest as stored (CBOR) or as its JSON view, as
// the Accept header prefers. The stored bytes are verified against the
// digest on the way out.
func (s *server) getManifest(w http.ResponseWriter, r *http.Request) error {
	const op = "get manifest"
	d, err := digest.Parse(r.PathValue("digest"))
	if err != nil {
		return err
	}
	rec, err := s.meta.Manifest(r.Context(), d)
	if core.KindOf(err) == core.KindNotFound {
		return core.E(core.KindNotFound, op, "manifest %s is not stored", d)
	}
	if err != nil {
		return err
	}
	body := rec.Body
	if got, err := digest.FromBytes(d.Algorithm(), body); err != nil || got != d {
		return core.E(core.KindInternal, op, "stored manifest %s does not hash to its digest", d)
	}
	ct := negotiate(r.Header.Get("Accept"))
	if slices.Contains(jsonTypes, ct) {
		m, err := manifest.Decode(body)
		if err != nil {
			return core.Wrap(core.KindInternal, "stored manifest "+d.String(), err)
		}
		if body, err = manifest.JSON(m); err != nil {
			return core.Wrap(core.KindInternal, "stored manifest "+d.String(), err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Vary", "Accept")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // a failed write is a client that went away
	return nil
}

// negotiate picks the manifest media type an Accept header prefers: the
// offered type with the highest quality, where each type takes its
// quality from the most specific media range that matches it. Ties, and
// headers that accept none of the types, get the canonical CBOR.
func negotiate(accept string) string {
	best, bestQ := manifest.MediaTypeCBOR, -1.0
	for _, offer := range append(slices.Clone(cborTypes), jsonTypes...) {
		if q := quality(accept, offer); q > bestQ {
			best, bestQ = offer, q
		}
	}
	if bestQ <= 0 {
		return manifest.MediaTypeCBOR
	}
	return best
}

// quality is offer's q-value under an Accept header (1 when there is none).
func quality(accept, offer string) float64 {
	if strings.TrimSpace(accept) == "" {
		return 1
	}
	offerType, _, _ := strings.Cut(offer, "/")
	spec, q := -1, 0.0
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		var level int
		switch {
		case mt == offer:
			level = 2
		case mt == offerType+"/*":
			level = 1
		case mt == "*/*":
			level = 0
		default:
			continue
		}
		if level <= spec {
			continue
		}
		pq := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			pq = f
		}
		spec, q = level, pq
	}
	return q
}
