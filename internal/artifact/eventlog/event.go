package eventlog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/deltaci/deltaci/internal/core"
)

// Kind names what an event records.
type Kind string

// Event kinds. Each has a payload type below and a projection in apply.go.
const (
	BlobAdded         Kind = "blob.added"
	BlobDeleting      Kind = "blob.deleting"
	BlobGone          Kind = "blob.gone"
	BlobQuarantined   Kind = "blob.quarantined"
	ManifestCommitted Kind = "manifest.committed"
	ManifestDeleted   Kind = "manifest.deleted"
	RefSet            Kind = "ref.set"
	RefDeleted        Kind = "ref.deleted"
	RefPinned         Kind = "ref.pinned"
	RetentionSet      Kind = "retention.set"
	RetentionDeleted  Kind = "retention.deleted"
	GCCompleted       Kind = "gc.completed"
	ScrubCompleted    Kind = "scrub.completed"
)

// Event is one entry of the log. Hash covers every other field and the
// previous event's hash, so altering or removing a row breaks the chain.
type Event struct {
	Seq      int64
	At       time.Time
	Kind     Kind
	Subject  string
	Actor    string // empty for system events; events with an actor are the audit trail
	Payload  []byte // canonical CBOR of the kind's payload type
	PrevHash string
	Hash     string
}

// Payloads. Field names are the CBOR map keys; canonical encoding makes the
// bytes, and so the hashes, reproducible.

// BlobPayload is the payload of blob.added, blob.deleting and blob.gone.
type BlobPayload struct {
	Digest string `cbor:"digest"`
	Size   int64  `cbor:"size,omitempty"`
}

// ManifestPayload is the payload of manifest.committed and manifest.deleted.
type ManifestPayload struct {
	Digest string   `cbor:"digest"`
	Size   int64    `cbor:"size,omitempty"`
	Body   []byte   `cbor:"body,omitempty"`
	Blobs  []string `cbor:"blobs,omitempty"`
}

// RefPayload is the payload of ref.set, ref.deleted and ref.pinned.
type RefPayload struct {
	Namespace string `cbor:"namespace"`
	Name      string `cbor:"name"`
	Tag       string `cbor:"tag"`
	Manifest  string `cbor:"manifest,omitempty"`
	Previous  string `cbor:"previous,omitempty"`
	Pinned    bool   `cbor:"pinned,omitempty"`
	Reason    string `cbor:"reason,omitempty"`
}

// RetentionPayload is the payload of retention.set and retention.deleted.
type RetentionPayload struct {
	Namespace    string `cbor:"namespace"`
	Selector     string `cbor:"selector"`
	KeepLast     int64  `cbor:"keep_last,omitempty"`
	KeepWithinMS int64  `cbor:"keep_within_ms,omitempty"`
	KeepPinned   bool   `cbor:"keep_pinned,omitempty"`
}

// GCPayload is the payload of gc.completed.
type GCPayload struct {
	Manifests int64 `cbor:"manifests"`
	Blobs     int64 `cbor:"blobs"`
	Bytes     int64 `cbor:"bytes"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // fixed options; cannot fail
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// encode returns the canonical CBOR of v.
func encode(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "encode event payload", err)
	}
	return b, nil
}

// Decode decodes an event payload into v.
func (e Event) Decode(v any) error {
	if err := decMode.Unmarshal(e.Payload, v); err != nil {
		return core.E(core.KindInvalid, "decode event", "event %d (%s): bad payload: %v", e.Seq, e.Kind, err)
	}
	return nil
}

// chainHash is the hex SHA-256 of the canonical CBOR array
// [seq, at (Unix ms), kind, subject, actor, payload, prev_hash].
func chainHash(seq, atMS int64, kind Kind, subject, actor string, payload []byte, prev string) string {
	b, err := encMode.Marshal([]any{seq, atMS, string(kind), subject, actor, payload, prev})
	if err != nil {
		panic(fmt.Sprintf("encode chain record: %v", err)) // only plain types: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (e Event) row() EventRow {
	return EventRow{
		Seq: e.Seq, At: e.At.UnixMilli(), Kind: string(e.Kind), Subject: e.Subject, Actor: e.Actor,
		Payload: e.Payload, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

func eventFromRow(r EventRow) Event {
	return Event{
		Seq: r.Seq, At: time.UnixMilli(r.At).UTC(), Kind: Kind(r.Kind), Subject: r.Subject, Actor: r.Actor,
		Payload: r.Payload, PrevHash: r.PrevHash, Hash: r.Hash,
	}
}

// verifyLink checks that e follows prev (seq and hash) and that its own hash
// matches its contents. It names the event and what is wrong.
func verifyLink(prev Head, e EventRow) error {
	if e.Seq != prev.Seq+1 {
		return core.E(core.KindConflict, "verify log", "event %d follows event %d: the log has a gap or was reordered", e.Seq, prev.Seq)
	}
	if e.PrevHash != prev.Hash {
		return core.E(core.KindConflict, "verify log", "event %d (%s %s): prev_hash %s does not match event %d's hash %s: an earlier row was altered or removed",
			e.Seq, e.Kind, e.Subject, short(e.PrevHash), prev.Seq, short(prev.Hash))
	}
	if got := chainHash(e.Seq, e.At, Kind(e.Kind), e.Subject, e.Actor, e.Payload, e.PrevHash); got != e.Hash {
		return core.E(core.KindConflict, "verify log", "event %d (%s %s): stored hash %s does not match its contents (computed %s): the row was altered",
			e.Seq, e.Kind, e.Subject, short(e.Hash), short(got))
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
