package eventlog_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// fixedKey is a key from a fixed seed, so that exported checkpoints in the
// tests and the seed corpus are reproducible.
func fixedKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// exported is the checkpoint of fixedKey for event 45, as the checkpoint
// command prints it; the docs show the same line.
const exported = `{"seq":45,"hash":"0567bba30567bba30567bba30567bba30567bba30567bba30567bba30567bba3","at":"2026-11-23T19:21:02.058Z","key_id":"65b60673d6ed884b","public_key":"79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664","signature":"e75011b0e30889ff22ebc3b1fa61be3b26643a867ee2e3a3497463c2ec758eb448b256e90005af922394464810aa0b48d3ec196c9b62064a77da55f14e690c0e"}`

func TestCheckpointExportedForm(t *testing.T) {
	t.Parallel()
	key := fixedKey()
	c := eventlog.SignCheckpoint(key, eventlog.Head{Seq: 45, Hash: strings.Repeat("0567bba3", 8)}, time.Date(2026, 11, 23, 19, 21, 2, 58_123_456, time.UTC))
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != exported {
		t.Errorf("exported form changed (signatures are deterministic):\n got %s\nwant %s", b, exported)
	}
	back, err := eventlog.ParseCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify([]ed25519.PublicKey{key.Public().(ed25519.PublicKey)}); err != nil {
		t.Errorf("round trip: %v", err)
	}
	if back.KeyID() != "65b60673d6ed884b" {
		t.Errorf("key id %s", back.KeyID())
	}
}

func TestCheckpointSignatureBindsEveryField(t *testing.T) {
	t.Parallel()
	c, err := eventlog.ParseCheckpoint([]byte(exported))
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("1", 64)
	for name, alter := range map[string]func(*eventlog.Checkpoint){
		"Seq":  func(c *eventlog.Checkpoint) { c.Seq++ },
		"Hash": func(c *eventlog.Checkpoint) { c.Hash = other },
		"At":   func(c *eventlog.Checkpoint) { c.At = c.At.Add(time.Millisecond) },
		"Key": func(c *eventlog.Checkpoint) {
			c.PublicKey = ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
		},
	} {
		t.Run(name, func(t *testing.T) {
			altered := c
			alter(&altered)
			err := altered.Verify(nil)
			if core.KindOf(err) != core.KindConflict || !strings.Contains(err.Error(), "forged or altered") {
				t.Errorf("altered %s: %v", name, err)
			}
		})
	}
}

func TestParseCheckpointRefuses(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"Empty":        ``,
		"NotJSON":      `seq 45`,
		"UnknownField": strings.Replace(exported, `"seq"`, `"extra":1,"seq"`, 1),
		"Trailing":     exported + `{}`,
		"ZeroSeq":      strings.Replace(exported, `"seq":45`, `"seq":0`, 1),
		"UpperHash":    strings.Replace(exported, `0567bba3`, `0567BBA3`, 1),
		"ShortHash":    strings.Replace(exported, `0567bba3",`, `",`, 1),
		"Nanoseconds":  strings.Replace(exported, `02.058Z`, `02.058000001Z`, 1),
		"NoTime":       strings.Replace(exported, `"2026-11-23T19:21:02.058Z"`, `""`, 1),
		"WrongKeyID":   strings.Replace(exported, `65b60673d6ed884b`, `0000000000000000`, 1),
		"ShortKey":     strings.Replace(exported, `"79b5`, `"`, 1),
		"UpperKey":     strings.Replace(exported, `79b5562e8fe6`, `79B5562E8FE6`, 1),
		"ShortSig":     strings.Replace(exported, `"e750`, `"`, 1),
	} {
		if _, err := eventlog.ParseCheckpoint([]byte(in)); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestParseHead(t *testing.T) {
	t.Parallel()
	hash := strings.Repeat("ab", 32)
	h, err := eventlog.ParseHead("45:" + hash)
	if err != nil || h.Seq != 45 || h.Hash != hash || h.String() != "45:"+hash {
		t.Errorf("ParseHead = %v, %v", h, err)
	}
	for _, bad := range []string{"", "45", ":" + hash, "0:" + hash, "-1:" + hash, "+4:" + hash, "045:" + hash, "45:" + strings.ToUpper(hash),
		"45:" + hash[:62], "45:" + hash + "00", "45 :" + hash, "99999999999999999999:" + hash, "45:" + hash + ":x"} {
		if _, err := eventlog.ParseHead(bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("ParseHead(%q) = %v, want invalid", bad, err)
		}
	}
}

// FuzzParseCheckpoint checks that ParseCheckpoint never panics, fails only
// with KindInvalid, and that what it accepts writes back to the same
// checkpoint. The seed corpus is in testdata/fuzz/FuzzParseCheckpoint.
func FuzzParseCheckpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := eventlog.ParseCheckpoint(b)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("ParseCheckpoint(%q) error %v is not KindInvalid", b, err)
			}
			return
		}
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := eventlog.ParseCheckpoint(out)
		if err != nil {
			t.Fatalf("ParseCheckpoint of its own output %s: %v", out, err)
		}
		if again.Head() != c.Head() || !again.At.Equal(c.At) || string(again.Signature) != string(c.Signature) || !again.PublicKey.Equal(c.PublicKey) {
			t.Fatalf("%q → %s changed the checkpoint", b, out)
		}
		_ = c.Verify(nil) // must not panic, whatever the key and signature
	})
}

// FuzzParseHead checks that ParseHead never panics, fails only with
// KindInvalid, and that what it accepts it writes back identically. The
// seed corpus is in testdata/fuzz/FuzzParseHead.
func FuzzParseHead(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		h, err := eventlog.ParseHead(s)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("ParseHead(%q) error %v is not KindInvalid", s, err)
			}
			return
		}
		if h.String() != s {
			t.Fatalf("ParseHead(%q) writes back as %q", s, h.String())
		}
	})
}
