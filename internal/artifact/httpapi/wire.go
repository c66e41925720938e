package httpapi

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/artifact/retention"
	"github.com/deltaci/deltaci/internal/core"
)

// The JSON bodies of the API, shared by the server and the Client so that
// the two cannot drift. The OpenAPI document describes the same shapes.

// formatTime prints a time of the store the way the CLI does too
// (eventlog.TimeLayout: RFC 3339, UTC, milliseconds).
func formatTime(t time.Time) string { return eventlog.FormatTime(t) }

// UploadStart is the optional body of POST /blobs/uploads.
type UploadStart struct {
	Algorithm string `json:"algorithm,omitempty"`
	Digest    string `json:"digest,omitempty"`
}

// UploadStatus is an upload session's state: where the next chunk starts,
// which is how many bytes it received. GET on the session also says its
// algorithm and, when announced, the digest it expects.
type UploadStatus struct {
	ID        string `json:"id"`
	Offset    int64  `json:"offset"`
	ExpiresAt string `json:"expires_at,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	Digest    string `json:"digest,omitempty"`
}

// BlobInfo names a stored blob.
type BlobInfo struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// FindMissingRequest is the body of POST /blobs/find-missing.
type FindMissingRequest struct {
	Digests []string `json:"digests"`
}

// FindMissingResponse lists, in request order, the digests not stored.
type FindMissingResponse struct {
	Missing []string `json:"missing"`
}

// RefBody is a ref as the API shows it.
type RefBody struct {
	Ref       string `json:"ref"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	Manifest  string `json:"manifest"`
	Pinned    bool   `json:"pinned"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func refBody(r eventlog.Ref) RefBody {
	return RefBody{
		Ref: r.String(), Namespace: r.Namespace, Name: r.Name, Tag: r.Tag, Manifest: r.Manifest.String(),
		Pinned: r.Pinned, CreatedAt: formatTime(r.CreatedAt), UpdatedAt: formatTime(r.UpdatedAt),
	}
}

func (b RefBody) ref() (eventlog.Ref, error) {
	const op = "decode ref"
	m, err := digest.Parse(b.Manifest)
	if err != nil {
		return eventlog.Ref{}, err
	}
	created, err := parseTime(op, b.CreatedAt)
	if err != nil {
		return eventlog.Ref{}, err
	}
	updated, err := parseTime(op, b.UpdatedAt)
	if err != nil {
		return eventlog.Ref{}, err
	}
	return eventlog.Ref{RefName: eventlog.RefName{Namespace: b.Namespace, Name: b.Name, Tag: b.Tag},
		Manifest: m, Pinned: b.Pinned, CreatedAt: created, UpdatedAt: updated}, nil
}

// RefList is the body of GET /refs.
type RefList struct {
	Refs []RefBody `json:"refs"`
}

// RefUpdate is the body of PUT /refs/{namespace}/{ref}. Pinned, when
// present, pins or unpins the ref after it is set.
type RefUpdate struct {
	Manifest string `json:"manifest"`
	Pinned   *bool  `json:"pinned,omitempty"`
}

// Event is one event of the log: the payload is decoded from CBOR to JSON
// (byte strings become base64 strings), and At is written in RFC 3339
// with nine fraction digits.
type Event struct {
	Seq      int64
	At       time.Time
	Kind     string
	Subject  string
	Actor    string
	Payload  json.RawMessage
	PrevHash string
	Hash     string
}

type eventJSON struct {
	Seq      int64           `json:"seq"`
	At       string          `json:"at"`
	Kind     string          `json:"kind"`
	Subject  string          `json:"subject"`
	Actor    string          `json:"actor"`
	Payload  json.RawMessage `json:"payload"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// MarshalJSON writes the wire form.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{Seq: e.Seq, At: formatTime(e.At), Kind: e.Kind, Subject: e.Subject, Actor: e.Actor,
		Payload: e.Payload, PrevHash: e.PrevHash, Hash: e.Hash})
}

// UnmarshalJSON reads the wire form.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w eventJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	at, err := parseTime("decode event", w.At)
	if err != nil {
		return err
	}
	*e = Event{Seq: w.Seq, At: at, Kind: w.Kind, Subject: w.Subject, Actor: w.Actor, Payload: w.Payload,
		PrevHash: w.PrevHash, Hash: w.Hash}
	return nil
}

// payloadMode decodes event payloads into values encoding/json can write.
var payloadMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DefaultMapType:        reflect.TypeOf(map[string]any(nil)),
		DupMapKey:             cbor.DupMapKeyEnforcedAPF,
		IndefLength:           cbor.IndefLengthForbidden,
		DefaultByteStringType: reflect.TypeOf([]byte(nil)),
	}.DecMode()
	if err != nil {
		panic(err) // fixed options
	}
	return dm
}()

func eventBody(e eventlog.Event) (Event, error) {
	var v any
	if err := payloadMode.Unmarshal(e.Payload, &v); err != nil {
		return Event{}, core.Wrap(core.KindInternal, "event payload "+string(e.Kind), err)
	}
	p, err := json.Marshal(v)
	if err != nil {
		return Event{}, core.Wrap(core.KindInternal, "event payload "+string(e.Kind), err)
	}
	return Event{Seq: e.Seq, At: e.At, Kind: string(e.Kind), Subject: e.Subject,
		Actor: e.Actor, Payload: p, PrevHash: e.PrevHash, Hash: e.Hash}, nil
}

// EventList is the body of GET /events and GET /audit.
type EventList struct {
	Events []Event `json:"events"`
}

// PolicyBody is a retention policy; KeepWithin is a Go duration ("72h").
type PolicyBody struct {
	Namespace  string `json:"namespace"`
	Selector   string `json:"selector"`
	KeepLast   int    `json:"keep_last"`
	KeepWithin string `json:"keep_within"`
	KeepPinned bool   `json:"keep_pinned"`
	UpdatedAt  string `json:"updated_at,omitempty"`
}

func policyBody(p eventlog.Policy) PolicyBody {
	return PolicyBody{Namespace: p.Namespace, Selector: p.Selector, KeepLast: p.KeepLast,
		KeepWithin: p.KeepWithin.String(), KeepPinned: p.KeepPinned, UpdatedAt: formatTime(p.UpdatedAt)}
}

func (b PolicyBody) policy() (eventlog.Policy, error) {
	p := eventlog.Policy{Namespace: b.Namespace, Selector: b.Selector, KeepLast: b.KeepLast, KeepPinned: b.KeepPinned}
	if b.KeepWithin != "" {
		d, err := time.ParseDuration(b.KeepWithin)
		if err != nil {
			return p, core.E(core.KindInvalid, "retention policy", "keep_within %.40q is not a duration such as \"72h\"", b.KeepWithin)
		}
		p.KeepWithin = d
	}
	if b.UpdatedAt != "" {
		t, err := parseTime("retention policy", b.UpdatedAt)
		if err != nil {
			return p, err
		}
		p.UpdatedAt = t
	}
	return p, nil
}

// PolicyUpdate is the body of PUT /retention/{namespace}.
type PolicyUpdate struct {
	Selector   string `json:"selector"`
	KeepLast   int    `json:"keep_last,omitempty"`
	KeepWithin string `json:"keep_within,omitempty"`
	KeepPinned bool   `json:"keep_pinned,omitempty"`
}

// PolicyList is the body of GET /retention.
type PolicyList struct {
	Policies []PolicyBody `json:"policies"`
}

// DecisionBody is retention's verdict on one ref.
type DecisionBody struct {
	Ref       string `json:"ref"`
	Manifest  string `json:"manifest"`
	Pinned    bool   `json:"pinned"`
	UpdatedAt string `json:"updated_at"`
	Keep      bool   `json:"keep"`
	Reason    string `json:"reason"`
}

// RetentionPlan is the body of POST /retention/apply.
type RetentionPlan struct {
	DryRun    bool           `json:"dry_run"`
	Decisions []DecisionBody `json:"decisions"`
}

func decisionBody(d retention.Decision) DecisionBody {
	return DecisionBody{Ref: d.Ref.String(), Manifest: d.Ref.Manifest.String(), Pinned: d.Ref.Pinned,
		UpdatedAt: formatTime(d.Ref.UpdatedAt), Keep: d.Keep, Reason: d.Reason}
}

func (b DecisionBody) decision() (retention.Decision, error) {
	const op = "decode retention decision"
	name, err := eventlog.ParseRef(b.Ref)
	if err != nil {
		return retention.Decision{}, err
	}
	m, err := digest.Parse(b.Manifest)
	if err != nil {
		return retention.Decision{}, err
	}
	updated, err := parseTime(op, b.UpdatedAt)
	if err != nil {
		return retention.Decision{}, err
	}
	return retention.Decision{Ref: eventlog.Ref{RefName: name, Manifest: m, Pinned: b.Pinned, UpdatedAt: updated},
		Keep: b.Keep, Reason: b.Reason}, nil
}

// GCRequest is the optional body of POST /gc; Grace is a Go duration of
// zero or more ("0s" is zero) and defaults to registry.DefaultGrace.
type GCRequest struct {
	Grace string `json:"grace,omitempty"`
}

// GCReport is what one collection did.
type GCReport struct {
	Manifests int   `json:"manifests"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	Orphans   int   `json:"orphans"`
	// Stale counts abandoned staging removed (temp files, multipart uploads).
	Stale int `json:"stale"`
}

func gcBody(r registry.GCReport) GCReport {
	return GCReport{Manifests: r.Manifests, Blobs: r.Blobs, Bytes: r.Bytes, Orphans: r.Orphans, Stale: r.Stale}
}

// HeadBody is the last event of the log.
type HeadBody struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// ReplayReport is the body of /replay/verify: Match says whether the
// projections rebuilt from the log equal the live ones.
type ReplayReport struct {
	Events      int64    `json:"events"`
	Head        HeadBody `json:"head"`
	StateDigest string   `json:"state_digest"`
	LiveDigest  string   `json:"live_digest"`
	Match       bool     `json:"match"`
	// Checkpoints counts the signed checkpoints the log was checked
	// against; LatestCheckpoint is the newest of them.
	Checkpoints      int64                `json:"checkpoints"`
	LatestCheckpoint *eventlog.Checkpoint `json:"latest_checkpoint,omitempty"`
	// SignersChecked says whether the checkpoints' keys were checked
	// against the store's keys, not only against the key each carries.
	SignersChecked bool `json:"signers_checked"`
}

// VerifyRequest is the optional body of POST /replay/verify: what the log
// must reach beyond its stored checkpoints.
type VerifyRequest struct {
	// ExpectHead is SEQ:HASH: the log must end exactly there.
	ExpectHead string `json:"expect_head,omitempty"`
	// Checkpoints were exported earlier (GET /checkpoints/latest) and kept
	// outside the store: the log must reach each with the same hash.
	Checkpoints []eventlog.Checkpoint `json:"checkpoints,omitempty"`
	// TrustedPublicKeys are hex Ed25519 public keys whose checkpoints are
	// genuine besides the store's own: keys of earlier rotations.
	TrustedPublicKeys []string `json:"trusted_public_keys,omitempty"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
}

func parseTime(op, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, core.E(core.KindInvalid, op, "%.60q is not an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
