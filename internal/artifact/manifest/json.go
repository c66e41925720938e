package manifest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// createdLayout is RFC 3339 with exactly nine fraction digits, so that each
// instant has one spelling and the strings sort chronologically.
const createdLayout = "2006-01-02T15:04:05.000000000Z07:00"

// maxSafeInt is 2^53, the largest integer every JSON parser that uses
// IEEE 754 doubles holds exactly; larger sizes are written as strings.
const maxSafeInt = 1 << 53

type jsonManifest struct {
	Version     int               `json:"version"`
	Entries     []jsonEntry       `json:"entries"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     string            `json:"created,omitempty"`
}

type jsonEntry struct {
	Path      string    `json:"path"`
	Mode      uint32    `json:"mode"`
	Digest    string    `json:"digest,omitempty"`
	Size      *jsonSize `json:"size,omitempty"`
	MediaType string    `json:"media_type,omitempty"`
	Target    string    `json:"target,omitempty"`
}

// jsonSize is a size that is a JSON number up to 2^53 and a decimal string
// above.
type jsonSize int64

func (s jsonSize) MarshalJSON() ([]byte, error) {
	b := strconv.AppendInt(nil, int64(s), 10)
	if s > maxSafeInt {
		return strconv.AppendQuote(nil, string(b)), nil
	}
	return b, nil
}

func (s *jsonSize) UnmarshalJSON(b []byte) error {
	const op = "manifest.FromJSON"
	quoted := len(b) > 0 && b[0] == '"'
	text := string(b)
	if quoted {
		var err error
		if text, err = strconv.Unquote(text); err != nil {
			return core.E(core.KindInvalid, op, "size %.40s is not a JSON string or number", b)
		}
	}
	// Reading the literal digits, rather than a float64, keeps sizes
	// above 2^53 exact; the round trip through FormatInt refuses leading
	// zeros, signs, fractions and exponents.
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != text {
		return core.E(core.KindInvalid, op, "size %.40s is not a decimal integer", b)
	}
	if quoted != (n > maxSafeInt) {
		return core.E(core.KindInvalid, op, "size %.40s: sizes up to 2^53 are JSON numbers and larger ones are strings", b)
	}
	*s = jsonSize(n)
	return nil
}

// JSON returns the JCS (RFC 8785) canonical JSON view of m described in
// the package doc. It fails with a KindInvalid error if m does not pass
// Validate.
func JSON(m Manifest) ([]byte, error) {
	const op = "manifest.JSON"
	if err := m.Validate(); err != nil {
		return nil, err
	}
	jm := jsonManifest{
		Version:     Version,
		Entries:     make([]jsonEntry, len(m.Entries)),
		Annotations: m.Annotations,
	}
	if !m.Created.IsZero() {
		jm.Created = m.Created.UTC().Format(createdLayout)
	}
	for i, e := range m.Entries {
		je := jsonEntry{Path: e.Path, Mode: e.Mode, MediaType: e.MediaType, Target: e.Target}
		if !e.IsSymlink() {
			size := jsonSize(e.Size)
			je.Digest = e.Digest.String()
			je.Size = &size
		}
		jm.Entries[i] = je
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jm); err != nil {
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	out, err := jcs.Transform(buf.Bytes())
	if err != nil {
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	return out, nil
}

// FromJSON parses the JSON view back into a manifest. Key order and
// whitespace are free, but everything else must be exactly what JSON
// writes: known keys only, no duplicates, sizes and times in their one
// spelling, a valid manifest. Errors are KindInvalid.
func FromJSON(b []byte) (Manifest, error) {
	const op = "manifest.FromJSON"
	// JCS parsing refuses duplicate keys, which encoding/json would let
	// the last one win; its output is also the form JSON must reproduce.
	canon, err := jcs.Transform(b)
	if err != nil {
		return Manifest{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "manifest JSON is malformed", Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var jm jsonManifest
	if err := dec.Decode(&jm); err != nil {
		return Manifest{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "manifest JSON does not match the schema", Err: err}
	}
	if jm.Version != Version {
		return Manifest{}, core.E(core.KindInvalid, op, "unsupported manifest version %d (want %d)", jm.Version, Version)
	}
	m := Manifest{Entries: make([]Entry, len(jm.Entries)), Annotations: jm.Annotations}
	if jm.Created != "" {
		if m.Created, err = time.Parse(time.RFC3339Nano, jm.Created); err != nil {
			return Manifest{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "created is not an RFC 3339 time", Err: err}
		}
		m.Created = m.Created.UTC()
	}
	for i, je := range jm.Entries {
		e := Entry{Path: je.Path, Mode: je.Mode, MediaType: je.MediaType, Target: je.Target}
		if je.Digest != "" {
			if e.Digest, err = digest.Parse(je.Digest); err != nil {
				return Manifest{}, &core.Error{Kind: core.KindInvalid, Op: op, Msg: "entry " + strconv.Itoa(i), Err: err}
			}
		}
		if je.Size != nil {
			e.Size = int64(*je.Size)
		}
		m.Entries[i] = e
	}
	again, err := JSON(m)
	if err != nil {
		return Manifest{}, err
	}
	// Case-insensitive key matching, a missing entries array, a size on a
	// symlink or a time with an offset all decode to a manifest whose view
	// differs from the input, so this one comparison refuses them all.
	if !bytes.Equal(again, canon) {
		return Manifest{}, core.E(core.KindInvalid, op, "manifest JSON is not in its canonical form (a misspelled key or a value written differently from the JSON view)")
	}
	return m, nil
}
