package eventlog

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// BlobState is a blob row's place in its life. A manifest commit and a
// blob deletion are serialized through it: a commit requires every blob
// live, and GC moves a blob to deleting only while nothing references it.
type BlobState string

// Blob states: live → deleting → gone, and gone → live on re-upload.
const (
	StateLive     BlobState = "live"
	StateDeleting BlobState = "deleting"
	StateGone     BlobState = "gone"
)

// Blob is the metadata of one stored blob.
type Blob struct {
	Digest    digest.Digest
	Size      int64
	State     BlobState
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ManifestRecord is a committed manifest: its canonical CBOR bytes and digest.
type ManifestRecord struct {
	Digest    digest.Digest
	Size      int64
	Body      []byte
	CreatedAt time.Time
}

// RefName is a mutable name namespace/name:tag.
type RefName struct {
	Namespace string
	Name      string
	Tag       string
}

// String renders namespace/name:tag.
func (r RefName) String() string { return r.Namespace + "/" + r.Name + ":" + r.Tag }

var (
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	tagRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// ParseRef parses namespace/name:tag. The name may contain slashes
// (namespace/a/b:tag); the tag defaults to "latest".
func ParseRef(s string) (RefName, error) {
	bad := func(why string) (RefName, error) {
		return RefName{}, core.E(core.KindInvalid, "parse ref", "%q is not a valid ref (%s); write namespace/name:tag, e.g. outputs/build:latest", s, why)
	}
	ns, rest, ok := strings.Cut(s, "/")
	if !ok || ns == "" || rest == "" {
		return bad("missing namespace/")
	}
	name, tag := rest, "latest"
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		name, tag = rest[:i], rest[i+1:]
	}
	r := RefName{Namespace: ns, Name: name, Tag: tag}
	if err := r.Validate(); err != nil {
		return bad(err.Error())
	}
	return r, nil
}

// Validate checks each part of the name.
func (r RefName) Validate() error {
	if !segmentRE.MatchString(r.Namespace) {
		return fmt.Errorf("namespace %q must be letters, digits, '.', '_' or '-'", r.Namespace)
	}
	for _, seg := range strings.Split(r.Name, "/") {
		if !segmentRE.MatchString(seg) {
			return fmt.Errorf("name segment %q must be letters, digits, '.', '_' or '-'", seg)
		}
	}
	if !tagRE.MatchString(r.Tag) {
		return fmt.Errorf("tag %q must be letters, digits, '.', '_' or '-'", r.Tag)
	}
	return nil
}

// Ref is a ref and the manifest it points to.
type Ref struct {
	RefName
	Manifest  digest.Digest
	Pinned    bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Policy is a retention rule for the refs of a namespace whose name:tag
// matches Selector. Kept: the KeepLast newest, those updated within
// KeepWithin, and pinned ones when KeepPinned. The union is kept.
type Policy struct {
	Namespace  string
	Selector   string
	KeepLast   int
	KeepWithin time.Duration
	KeepPinned bool
	UpdatedAt  time.Time
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func blobFromRow(r BlobRow) (Blob, error) {
	d, err := digest.Parse(r.Digest)
	if err != nil {
		return Blob{}, err
	}
	return Blob{Digest: d, Size: r.Size, State: BlobState(r.State), CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}, nil
}

func refFromRow(r RefRow) (Ref, error) {
	d, err := digest.Parse(r.ManifestDigest)
	if err != nil {
		return Ref{}, err
	}
	return Ref{RefName: RefName{r.Namespace, r.Name, r.Tag}, Manifest: d, Pinned: r.Pinned,
		CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}, nil
}

func policyFromRow(r PolicyRow) Policy {
	return Policy{Namespace: r.Namespace, Selector: r.Selector, KeepLast: int(r.KeepLast),
		KeepWithin: time.Duration(r.KeepWithinMs) * time.Millisecond, KeepPinned: r.KeepPinned, UpdatedAt: fromMS(r.UpdatedAt)}
}
