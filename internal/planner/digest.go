package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/deltaci/deltaci/internal/core"
)

// Recipe is the version of the input digest recipe (see the package doc).
// It is part of every digest, so changing the recipe changes every digest.
const Recipe = 1

// Executors whose results a digest tells apart.
const (
	ExecutorShell   = "shell"
	ExecutorSandbox = "sandbox"
)

// encMode is RFC 8949 core deterministic encoding, as the artifact store
// uses for manifests.
var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// definition is the part of a job's definition that can change its
// result, as the digest encodes it under key "j". The name is there too: a
// result (its log, its outputs) belongs to one job, and two jobs with the
// same command and inputs must not take each other's.
type definition struct {
	Env      map[string]string `cbor:"env"`
	Executor string            `cbor:"executor"`
	// Hermetic is left out when false, so that the digests of the jobs
	// that are not hermetic are those they had before the key existed.
	Hermetic bool     `cbor:"hermetic,omitempty"`
	Name     string   `cbor:"name"`
	Network  bool     `cbor:"network"`
	Run      string   `cbor:"run"`
	RunsOn   []string `cbor:"runs_on"`
	Secrets  []string `cbor:"secrets"`
}

// need is one entry of the digest's "n" array.
type need struct {
	_      struct{} `cbor:",toarray"`
	Name   string
	Digest string
}

func newDefinition(j core.JobSpec, executor string) definition {
	d := definition{
		Env:      map[string]string{}, // never nil: nil would encode as null
		Executor: executor,
		Hermetic: j.Hermetic,
		Name:     j.Name,
		Network:  j.Sandbox.Network,
		Run:      j.Run,
		RunsOn:   sortedSet(j.RunsOn),
		Secrets:  sortedSet(j.Secrets),
	}
	for k, v := range j.Env {
		d.Env[k] = v
	}
	return d
}

// sortedSet returns the distinct strings of s, sorted, never nil: labels
// and secret names are sets, their order in the file means nothing.
func sortedSet(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func encodeDefinition(d definition) ([]byte, error) {
	b, err := encMode.Marshal(d)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "encode job definition", err)
	}
	return b, nil
}

// CBOR major types used by the hand-written parts of the encoding.
const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
)

// appendHead appends a CBOR head in its shortest form, as core
// deterministic encoding requires.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= 0xff:
		return append(dst, m|24, byte(n))
	case n <= 0xffff:
		return append(dst, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// hashFiles starts a digest input over files (entries, by index, sorted by
// path): the map head, "f", and the array of [path, mode, id]. The array is
// written by hand, in the encoding the canonical encoder would produce (a
// test holds the two together), because a tree of 100,000 files goes
// through here on every plan.
//
// The input starts with the head of a map of keys entries (5, plus "i" and
// "l" when the job has them) and its first key, "f", so that the hash state
// after the files can be shared by every job with the same inputs.
func hashFiles(entries *entries, files []int32, keys int) hash.Cloner {
	h := sha256.New().(hash.Cloner)
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, majorMap<<5|byte(keys), majorText<<5|1, 'f')
	buf = appendHead(buf, majorArray, uint64(len(files)))
	for _, i := range files {
		e := entries.at(i)
		if len(buf) > 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, majorArray<<5|3)
		buf = appendHead(buf, majorBytes, uint64(len(e.Path)))
		buf = append(buf, e.Path...)
		buf = appendHead(buf, majorUint, uint64(e.Mode))
		buf = appendHead(buf, majorText, uint64(len(e.ObjectID)))
		buf = append(buf, e.ObjectID...)
	}
	h.Write(buf)
	return h
}

// digestRest is the digest input after the files: keys "i" (only with
// inputs_from), "j", "l" (only with lockfile slices), "n", "r", "s" in
// canonical order.
type digestRest struct {
	From   []need          `cbor:"i,omitempty"`
	Job    cbor.RawMessage `cbor:"j"`
	Locks  []lockPart      `cbor:"l,omitempty"`
	Needs  []need          `cbor:"n"`
	Recipe uint64          `cbor:"r"`
	Salt   string          `cbor:"s"`
}

// finishDigest completes a digest started by hashFiles (which it leaves
// untouched) with the encoded definition, the digests of inputs_from, the
// lockfile slices, the needs' digests and the salt. rest's Job, Recipe and
// Salt are set here.
func finishDigest(files hash.Cloner, def []byte, rest digestRest, salt string) (string, error) {
	h, err := files.Clone()
	if err != nil {
		return "", core.Wrap(core.KindInternal, "job digest", err)
	}
	if rest.Needs == nil {
		rest.Needs = []need{}
	}
	rest.Job, rest.Recipe, rest.Salt = def, Recipe, salt
	// A map encodes as its head and then the entries: drop the head and
	// what is left are the map's entries after "f".
	b, err := encMode.Marshal(rest)
	if err != nil {
		return "", core.Wrap(core.KindInternal, "job digest", err)
	}
	h.Write(b[1:])
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// DefaultSalt is mixed into every job digest; changing it invalidates every
// recorded result at once (docs/planner.md).
const DefaultSalt = "deltaci/1"
