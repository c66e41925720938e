package manifest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
)

// FuzzDecode checks that Decode never panics, that it fails only with
// KindInvalid, and that whatever it accepts re-encodes to the identical
// bytes and survives the JSON view both ways. The seed corpus, valid
// manifests and each kind of non-canonical input, is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("Decode(%x) error %v is not KindInvalid", b, err)
			}
			return
		}
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded manifest: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Decode accepted %x but it re-encodes to %x", b, again)
		}
		j, err := JSON(m)
		if err != nil {
			t.Fatalf("JSON of a decoded manifest: %v", err)
		}
		back, err := FromJSON(j)
		if err != nil {
			t.Fatalf("FromJSON(%s): %v", j, err)
		}
		if viaJSON, err := Encode(back); err != nil || !bytes.Equal(viaJSON, b) {
			t.Fatalf("CBOR → JSON → CBOR changed the bytes: %x, %v", viaJSON, err)
		}
	})
}

// FuzzFromJSON checks the JSON view's parser the same way: no panic,
// KindInvalid failures only, and whatever it accepts is reproduced by JSON
// up to layout.
func FuzzFromJSON(f *testing.F) {
	f.Add([]byte(fixtureJSON))
	f.Add([]byte(`{"entries":[],"version":1}`))
	f.Add([]byte(`{"entries":[{"digest":"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","mode":33188,"path":"a","size":"9007199254740993"}],"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := FromJSON(b)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("FromJSON(%q) error %v is not KindInvalid", b, err)
			}
			return
		}
		j, err := JSON(m)
		if err != nil {
			t.Fatalf("JSON of an accepted manifest: %v", err)
		}
		back, err := FromJSON(j)
		if err != nil {
			t.Fatalf("FromJSON(JSON(m)): %v", err)
		}
		b1, err1 := Encode(m)
		b2, err2 := Encode(back)
		if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("JSON round trip changed the manifest: %v %v", err1, err2)
		}
	})
}
