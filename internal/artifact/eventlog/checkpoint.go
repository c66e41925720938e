package eventlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// Checkpoint is a signed record of the log's head: event Seq had hash Hash
// when it was signed at At. A verifier that holds a checkpoint detects a
// log that no longer reaches it, such as one whose last events were removed
// and whose store_head was rolled back, which the chain alone cannot show.
type Checkpoint struct {
	Seq       int64
	Hash      string
	At        time.Time // millisecond precision, UTC
	PublicKey ed25519.PublicKey
	Signature []byte
}

// checkpointDomain starts every signed checkpoint message, so that a
// signature made for something else with the same key (a deltaci server
// signs runner tokens with it) is never a valid checkpoint.
const checkpointDomain = "artifactstore checkpoint v1"

// checkpointMessage is what a checkpoint's signature covers: the canonical
// CBOR array ["artifactstore checkpoint v1", seq, hash, at (Unix ms)].
func checkpointMessage(seq int64, hash string, atMS int64) []byte {
	b, err := encMode.Marshal([]any{checkpointDomain, seq, hash, atMS})
	if err != nil {
		panic(fmt.Sprintf("encode checkpoint: %v", err)) // only plain types: cannot fail
	}
	return b
}

// SignCheckpoint signs head at time at with key.
func SignCheckpoint(key ed25519.PrivateKey, head Head, at time.Time) Checkpoint {
	at = at.UTC().Truncate(time.Millisecond)
	return Checkpoint{
		Seq: head.Seq, Hash: head.Hash, At: at,
		PublicKey: key.Public().(ed25519.PublicKey),
		Signature: ed25519.Sign(key, checkpointMessage(head.Seq, head.Hash, at.UnixMilli())),
	}
}

// Head is the (seq, hash) pair the checkpoint vouches for.
func (c Checkpoint) Head() Head { return Head{Seq: c.Seq, Hash: c.Hash} }

// KeyID names the signing key: the hex of the first 8 bytes of the SHA-256
// of its public key, the same id a deltaci server gives its token key.
func (c Checkpoint) KeyID() string { return KeyID(c.PublicKey) }

// KeyID is the id of a public key: the hex of the first 8 bytes of its
// SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// String describes the checkpoint for messages.
func (c Checkpoint) String() string {
	return fmt.Sprintf("the checkpoint of event %d signed %s by key %s", c.Seq, formatMS(c.At), c.KeyID())
}

// Verify checks the checkpoint's signature against the public key it
// carries and, when trusted is not empty, that this key is one of them.
// Errors are of kind core.KindConflict and name the checkpoint.
func (c Checkpoint) Verify(trusted []ed25519.PublicKey) error {
	const op = "verify checkpoint"
	if len(c.PublicKey) != ed25519.PublicKeySize || len(c.Signature) != ed25519.SignatureSize {
		return core.E(core.KindConflict, op, "the checkpoint of event %d has a %d-byte key and a %d-byte signature (want %d and %d): it is damaged",
			c.Seq, len(c.PublicKey), len(c.Signature), ed25519.PublicKeySize, ed25519.SignatureSize)
	}
	if !ed25519.Verify(c.PublicKey, checkpointMessage(c.Seq, c.Hash, c.At.UnixMilli()), c.Signature) {
		return core.E(core.KindConflict, op, "%s: the signature does not match its seq, hash and time: it was forged or altered", c)
	}
	if len(trusted) == 0 {
		return nil
	}
	for _, k := range trusted {
		if bytes.Equal(k, c.PublicKey) {
			return nil
		}
	}
	ids := make([]string, len(trusted))
	for i, k := range trusted {
		ids[i] = KeyID(k)
	}
	return core.E(core.KindConflict, op, "%s: key %s is not a checkpoint key of this store (trusted: %s): it was forged, or signed by a key rotated away; give that key's public half to trust it",
		c, c.KeyID(), strings.Join(ids, ", "))
}

func (c Checkpoint) row() CheckpointRow {
	return CheckpointRow{Seq: c.Seq, Hash: c.Hash, At: c.At.UnixMilli(), PublicKey: c.PublicKey, Signature: c.Signature}
}

func checkpointFromRow(r CheckpointRow) Checkpoint {
	return Checkpoint{Seq: r.Seq, Hash: r.Hash, At: time.UnixMilli(r.At).UTC(), PublicKey: r.PublicKey, Signature: r.Signature}
}

// checkpointJSON is the exported form of a checkpoint: what the checkpoint
// command prints and replay --verify --checkpoint reads back.
type checkpointJSON struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	At        string `json:"at"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

const msLayout = "2006-01-02T15:04:05.000Z07:00"

func formatMS(t time.Time) string { return t.UTC().Format(msLayout) }

// MarshalJSON writes the exported form: seq, hash, at (RFC 3339, UTC,
// milliseconds), key_id, and the public key and signature in hex.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkpointJSON{
		Seq: c.Seq, Hash: c.Hash, At: formatMS(c.At), KeyID: c.KeyID(),
		PublicKey: hex.EncodeToString(c.PublicKey), Signature: hex.EncodeToString(c.Signature),
	})
}

// UnmarshalJSON reads the exported form strictly (see ParseCheckpoint).
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	got, err := ParseCheckpoint(b)
	if err != nil {
		return err
	}
	*c = got
	return nil
}

// ParseCheckpoint reads a checkpoint in its exported JSON form. Unknown or
// missing fields, a malformed hash, key or signature, a time that is not
// whole milliseconds, or a key_id that is not the key's are refused with
// core.KindInvalid. It does not check the signature: Verify does.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	const op = "parse checkpoint"
	var j checkpointJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Checkpoint{}, core.E(core.KindInvalid, op, "not a checkpoint: %v", err)
	}
	if dec.More() {
		return Checkpoint{}, core.E(core.KindInvalid, op, "not a checkpoint: more than one JSON value")
	}
	if j.Seq < 1 {
		return Checkpoint{}, core.E(core.KindInvalid, op, "seq %d: want an event number of 1 or more", j.Seq)
	}
	if !isHash(j.Hash) {
		return Checkpoint{}, core.E(core.KindInvalid, op, "hash %.80q is not 64 lowercase hex digits", j.Hash)
	}
	at, err := time.Parse(time.RFC3339Nano, j.At)
	if err != nil || at.Truncate(time.Millisecond) != at {
		return Checkpoint{}, core.E(core.KindInvalid, op, "at %.60q is not an RFC 3339 time in whole milliseconds", j.At)
	}
	pub, err := hex.DecodeString(j.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || j.PublicKey != strings.ToLower(j.PublicKey) {
		return Checkpoint{}, core.E(core.KindInvalid, op, "public_key is not %d bytes in lowercase hex", ed25519.PublicKeySize)
	}
	sig, err := hex.DecodeString(j.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || j.Signature != strings.ToLower(j.Signature) {
		return Checkpoint{}, core.E(core.KindInvalid, op, "signature is not %d bytes in lowercase hex", ed25519.SignatureSize)
	}
	c := Checkpoint{Seq: j.Seq, Hash: j.Hash, At: at.UTC(), PublicKey: pub, Signature: sig}
	if j.KeyID != c.KeyID() {
		return Checkpoint{}, core.E(core.KindInvalid, op, "key_id %.40q is not the id of its public key (%s)", j.KeyID, c.KeyID())
	}
	return c, nil
}

// ParsePublicKey reads an Ed25519 public key written as 64 hex digits, as
// the checkpoint command prints it.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, core.E(core.KindInvalid, "parse public key", "%.80q is not an Ed25519 public key in hex (%d digits)", s, 2*ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParseHead reads a head written SEQ:HASH, as replay --verify prints it:
// an event number of 1 or more and its 64-digit lowercase hex hash.
func ParseHead(s string) (Head, error) {
	const op = "parse head"
	seqText, hash, ok := strings.Cut(s, ":")
	if !ok {
		return Head{}, core.E(core.KindInvalid, op, "head %.80q: want SEQ:HASH, such as 45:0567bba3…", s)
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 1 || strconv.FormatInt(seq, 10) != seqText {
		return Head{}, core.E(core.KindInvalid, op, "head %.80q: %.20q is not an event number of 1 or more", s, seqText)
	}
	if !isHash(hash) {
		return Head{}, core.E(core.KindInvalid, op, "head %.80q: the hash is not 64 lowercase hex digits", s)
	}
	return Head{Seq: seq, Hash: hash}, nil
}

// String writes the head as SEQ:HASH.
func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
