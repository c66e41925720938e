package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"pgregory.net/rapid"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gitx"
)

// TestDigestRecipe pins the recipe of the package doc byte for byte: the
// digest input below is written out by hand.
func TestDigestRecipe(t *testing.T) {
	t.Parallel()
	const blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
	needDigest := "sha256:" + strings.Repeat("0", 64)
	input := strings.Join([]string{
		"a5",     // map of 5
		"6166",   // "f"
		"81",     //   array of 1 file
		"83",     //     [path, mode, id]
		"4161",   //     bytes "a"
		"1981a4", //     0o100644 = 33188
		"7828" + hex.EncodeToString([]byte(blob)), // text(40) blob id
		"616a",                                // "j"
		"a7",                                  //   map of 7, keys in canonical order
		"63656e76" + "a1614b6176",             //   "env": {"K": "v"}
		"6372756e" + "6474727565",             //   "run": "true"
		"646e616d65" + "6178",                 //   "name": "x"
		"676e6574776f726b" + "f4",             //   "network": false
		"6772756e735f6f6e" + "81656c696e7578", // "runs_on": ["linux"]
		"6773656372657473" + "8163544f4b",     // "secrets": ["TOK"]
		"686578656375746f72" + "657368656c6c", // "executor": "shell"
		"616e",                                // "n"
		"81" + "82" + "63646570" + "7847" + hex.EncodeToString([]byte(needDigest)), // [["dep", digest]]
		"6172" + "01",         // "r": 1
		"6173" + "6473616c74", // "s": "salt"
	}, "")
	b, err := hex.DecodeString(input)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := "sha256:" + hex.EncodeToString(sum[:])

	job := core.JobSpec{Name: "x", Run: "true", Env: map[string]string{"K": "v"}, RunsOn: []string{"linux", "linux"},
		Secrets: []string{"TOK"}, Timeout: 5, Outputs: []string{"ignored"}, Branches: []string{"main"}}
	def, err := encodeDefinition(newDefinition(job, ExecutorShell))
	if err != nil {
		t.Fatal(err)
	}
	var entries entries
	entries.add(gitx.TreeEntry{Path: "a", Mode: gitx.ModeFile, Type: gitx.TypeBlob, ObjectID: blob})
	got, err := finishDigest(hashFiles(&entries, []int32{0}, 5), def, digestRest{Needs: []need{{Name: "dep", Digest: needDigest}}}, "salt")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("digest = %s, want %s", got, want)
	}
}

// fullInput is the whole digest input for the canonical encoder, to check
// the hand-written streaming encoding against.
type fullInput struct {
	Files  []fileTuple `cbor:"f"`
	From   []need      `cbor:"i,omitempty"`
	Job    definition  `cbor:"j"`
	Locks  []lockPart  `cbor:"l,omitempty"`
	Needs  []need      `cbor:"n"`
	Recipe uint64      `cbor:"r"`
	Salt   string      `cbor:"s"`
}

type fileTuple struct {
	_    struct{} `cbor:",toarray"`
	Path cbor.ByteString
	Mode uint32
	ID   string
}

func TestDigestMatchesCanonicalEncoder(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 300).Draw(t, "files")
		var entries entries
		idx := make([]int32, n)
		tuples := make([]fileTuple, n)
		for i := range n {
			// Any bytes, long enough to need every head size now and then.
			path := string(rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "path"))
			mode := rapid.SampledFrom([]uint32{gitx.ModeFile, gitx.ModeExecutable, gitx.ModeSymlink, gitx.ModeGitlink, 0}).Draw(t, "mode")
			id := rapid.StringMatching(`[0-9a-f]{40}|[0-9a-f]{64}`).Draw(t, "id")
			idx[i] = entries.add(gitx.TreeEntry{Path: path, Mode: mode, ObjectID: id})
			tuples[i] = fileTuple{Path: cbor.ByteString(path), Mode: mode, ID: id}
		}
		job := core.JobSpec{
			Run:     rapid.String().Draw(t, "run"),
			Env:     rapid.MapOf(rapid.String(), rapid.String()).Draw(t, "env"),
			Secrets: rapid.SliceOf(rapid.String()).Draw(t, "secrets"),
			RunsOn:  rapid.SliceOf(rapid.String()).Draw(t, "runs-on"),
			Sandbox: core.Sandbox{Network: rapid.Bool().Draw(t, "network")},
		}
		needs := []need{}
		for _, name := range sortedSet(rapid.SliceOf(rapid.String()).Draw(t, "needs")) {
			needs = append(needs, need{Name: name, Digest: "sha256:" + name})
		}
		var from []need
		for _, name := range sortedSet(rapid.SliceOf(rapid.String()).Draw(t, "inputs_from")) {
			from = append(from, need{Name: name, Digest: "sha256:" + name})
		}
		var locks []lockPart
		for _, p := range sortedSet(rapid.SliceOf(rapid.String()).Draw(t, "lockfiles")) {
			locks = append(locks, lockPart{Path: []byte(p), ID: rapid.StringMatching(`sha256:[0-9a-f]{64}|[0-9a-f]{40}`).Draw(t, "lock id")})
		}
		keys := 5
		if len(from) > 0 {
			keys++
		}
		if len(locks) > 0 {
			keys++
		}
		salt := rapid.String().Draw(t, "salt")
		d := newDefinition(job, ExecutorSandbox)

		def, err := encodeDefinition(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := finishDigest(hashFiles(&entries, idx, keys), def, digestRest{From: from, Locks: locks, Needs: needs}, salt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := encMode.Marshal(fullInput{Files: tuples, From: from, Job: d, Locks: locks, Needs: needs, Recipe: Recipe, Salt: salt})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if want := "sha256:" + hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("streamed digest %s, canonical encoder %s", got, want)
		}
	})
}

func TestHeadSizes(t *testing.T) {
	t.Parallel()
	for _, n := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32} {
		want, err := encMode.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendHead(nil, majorUint, n); !slices.Equal(got, want) {
			t.Errorf("head of %d = %x, want %x", n, got, want)
		}
	}
}

// TestDigestHermetic pins how hermetic enters a job's definition: as a
// last key "hermetic": true, and not at all when false, so that the jobs
// that are not hermetic keep the digests recorded before the key existed.
func TestDigestHermetic(t *testing.T) {
	t.Parallel()
	job := core.JobSpec{Name: "x", Run: "true"}
	plain, err := encodeDefinition(newDefinition(job, ExecutorShell))
	if err != nil {
		t.Fatal(err)
	}
	wantPlain := strings.Join([]string{
		"a7",
		"63656e76" + "a0",
		"6372756e" + "6474727565",
		"646e616d65" + "6178",
		"676e6574776f726b" + "f4",
		"6772756e735f6f6e" + "80",
		"6773656372657473" + "80",
		"686578656375746f72" + "657368656c6c",
	}, "")
	if got := hex.EncodeToString(plain); got != wantPlain {
		t.Errorf("definition of a job that is not hermetic = %s, want %s", got, wantPlain)
	}
	job.Hermetic = true
	herm, err := encodeDefinition(newDefinition(job, ExecutorShell))
	if err != nil {
		t.Fatal(err)
	}
	// A map of 8: the same seven entries, then "hermetic": true (8 bytes,
	// after "executor" bytewise).
	wantHerm := "a8" + wantPlain[2:] + "68" + hex.EncodeToString([]byte("hermetic")) + "f5"
	if got := hex.EncodeToString(herm); got != wantHerm {
		t.Errorf("definition of a hermetic job = %s, want %s", got, wantHerm)
	}
}
