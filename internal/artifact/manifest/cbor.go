package manifest

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// wireManifest and wireEntry are the CBOR schema of the package doc. They
// stay separate from Manifest and Entry so that the encoding can only change
// on purpose, and so that "absent" and "zero" can be told apart.
type wireManifest struct {
	Annotations map[string]string `cbor:"a,omitempty"`
	Created     *int64            `cbor:"c,omitempty"`
	Entries     []wireEntry       `cbor:"e"`
	Version     uint64            `cbor:"v"`
}

type wireEntry struct {
	Digest    string  `cbor:"d,omitempty"`
	Target    string  `cbor:"l,omitempty"`
	Mode      uint32  `cbor:"m"`
	Path      string  `cbor:"p"`
	Size      *uint64 `cbor:"s,omitempty"`
	MediaType string  `cbor:"t,omitempty"`
}

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}

// mustDecMode builds the strict decoder. Most of what it refuses would also
// fail the re-encode comparison in Decode; refusing it here gives a precise
// message and never builds huge values from hostile input.
func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
		MaxArrayElements:  MaxEntries,
		MaxMapPairs:       MaxAnnotations,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

// Encode returns the canonical CBOR of m (see the package doc). It fails
// with a KindInvalid error if m does not pass Validate.
func Encode(m Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return encode(m)
}

// encode writes an already validated manifest.
func encode(m Manifest) ([]byte, error) {
	b, err := encMode.Marshal(toWire(m))
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "manifest.Encode", err)
	}
	return b, nil
}

// Digest returns the digest of m's canonical CBOR under alg: the manifest's
// identity.
func Digest(m Manifest, alg digest.Algorithm) (digest.Digest, error) {
	b, err := Encode(m)
	if err != nil {
		return digest.Digest{}, err
	}
	return digest.FromBytes(alg, b)
}

// Decode parses canonical manifest CBOR. It returns a KindInvalid error for
// anything Encode would not have written; in particular, well-formed CBOR
// of a valid manifest in another form (longer integer heads, unsorted keys)
// fails with "manifest is not in canonical CBOR form". The digest of the
// input bytes is therefore the digest of the returned manifest.
func Decode(b []byte) (Manifest, error) {
	const op = "manifest.Decode"
	var w wireManifest
	if err := decMode.Unmarshal(b, &w); err != nil {
		return Manifest{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "manifest CBOR does not match the schema", Err: err}
	}
	m, err := fromWire(w)
	if err != nil {
		return Manifest{}, err
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	again, err := encode(m)
	if err != nil {
		return Manifest{}, err
	}
	if !bytes.Equal(again, b) {
		return Manifest{}, core.E(core.KindInvalid, op, "manifest is not in canonical CBOR form")
	}
	return m, nil
}

func toWire(m Manifest) wireManifest {
	w := wireManifest{
		Version:     Version,
		Entries:     make([]wireEntry, len(m.Entries)),
		Annotations: m.Annotations,
	}
	if !m.Created.IsZero() {
		ns := m.Created.UnixNano()
		w.Created = &ns
	}
	for i, e := range m.Entries {
		we := wireEntry{Path: e.Path, Mode: e.Mode, MediaType: e.MediaType, Target: e.Target}
		if !e.IsSymlink() {
			size := uint64(e.Size)
			we.Digest = e.Digest.String()
			we.Size = &size
		}
		w.Entries[i] = we
	}
	return w
}

// fromWire checks what the Manifest type cannot express (version, key
// presence by entry type, size range) and converts; Validate does the rest.
func fromWire(w wireManifest) (Manifest, error) {
	const op = "manifest.Decode"
	if w.Version != Version {
		return Manifest{}, core.E(core.KindInvalid, op, "unsupported manifest version %d (want %d)", w.Version, Version)
	}
	if w.Entries == nil {
		return Manifest{}, core.E(core.KindInvalid, op, `manifest has no entries array "e"`)
	}
	m := Manifest{Entries: make([]Entry, len(w.Entries)), Annotations: w.Annotations}
	if w.Created != nil {
		m.Created = time.Unix(0, *w.Created).UTC()
	}
	for i, we := range w.Entries {
		e := Entry{Path: we.Path, Mode: we.Mode, MediaType: we.MediaType, Target: we.Target}
		if e.IsSymlink() {
			if we.Digest != "" || we.Size != nil {
				return Manifest{}, core.E(core.KindInvalid, op, `entry %d (%.200q): a symlink has no "d" or "s"`, i, we.Path)
			}
		} else {
			if we.Digest == "" || we.Size == nil {
				return Manifest{}, core.E(core.KindInvalid, op, `entry %d (%.200q): "d" and "s" are required`, i, we.Path)
			}
			d, err := digest.Parse(we.Digest)
			if err != nil {
				return Manifest{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: fmt.Sprintf("entry %d (%.200q)", i, we.Path), Err: err}
			}
			if *we.Size > math.MaxInt64 {
				return Manifest{}, core.E(core.KindInvalid, op, "entry %d (%.200q): size %d does not fit in int64", i, we.Path, *we.Size)
			}
			e.Digest, e.Size = d, int64(*we.Size)
		}
		m.Entries[i] = e
	}
	return m, nil
}
