package digest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/deltaci/deltaci/internal/core"
)

// NIST FIPS 180-2 / CAVP example vectors for SHA-256.
var sha256Vectors = []struct {
	name, in, hex string
}{
	{"Empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{"448Bit", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	{"896Bit", "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		"cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
	{"MillionA", strings.Repeat("a", 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
}

// The unkeyed 32-byte hashes from the BLAKE3 team's test_vectors.json
// (input byte i is i % 251). All 22 lengths of the official file are here.
var blake3Vectors = []struct {
	n   int
	hex string
}{
	{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
	{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
	{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
	{2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
	{2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
	{3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
	{3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"},
	{4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"},
	{4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"},
	{5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"},
	{5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"},
	{6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"},
	{6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"},
	{7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"},
	{7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"},
	{8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63"},
	{8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
	{16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
	{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	{102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
}

func blake3Input(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// checkAllWays hashes in with FromBytes, FromReader (one byte per Read) and
// a Hasher fed in uneven chunks, so that buffering bugs cannot hide.
func checkAllWays(t *testing.T, alg Algorithm, in []byte, wantHex string) {
	t.Helper()
	want := MustParse(string(alg) + ":" + wantHex)
	got, err := FromBytes(alg, in)
	if err != nil || got != want {
		t.Errorf("FromBytes = %v, %v; want %v", got, err, want)
	}
	got, n, err := FromReader(alg, iotest.OneByteReader(bytes.NewReader(in)))
	if err != nil || got != want || n != int64(len(in)) {
		t.Errorf("FromReader = %v, %d, %v; want %v, %d", got, n, err, want, len(in))
	}
	h, err := NewHasher(alg)
	if err != nil {
		t.Fatal(err)
	}
	for rest, k := in, 1; len(rest) > 0; k = k*3 + 1 {
		k = min(k, len(rest))
		_, _ = h.Write(rest[:k])
		rest = rest[k:]
	}
	if got := h.Digest(); got != want || h.Algorithm() != alg {
		t.Errorf("chunked Hasher = %v, want %v", got, want)
	}
}

func TestSHA256Vectors(t *testing.T) {
	t.Parallel()
	for _, v := range sha256Vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			checkAllWays(t, SHA256, []byte(v.in), v.hex)
		})
	}
}

func TestBLAKE3Vectors(t *testing.T) {
	t.Parallel()
	for _, v := range blake3Vectors {
		t.Run(fmt.Sprintf("Len%d", v.n), func(t *testing.T) {
			t.Parallel()
			checkAllWays(t, BLAKE3, blake3Input(v.n), v.hex)
		})
	}
}

func TestHasherReset(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(BLAKE3)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = h.Write([]byte("junk"))
	mid := h.Digest()
	_, _ = h.Write([]byte("more"))
	if h.Digest() == mid {
		t.Error("Digest did not change after more writes")
	}
	h.Reset()
	if got, want := h.Digest(), MustParse("blake3:"+blake3Vectors[0].hex); got != want {
		t.Errorf("after Reset: %v, want the empty-input digest %v", got, want)
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	t.Parallel()
	if _, err := NewHasher("md5"); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("NewHasher(md5) error = %v, want KindInvalid", err)
	}
	if _, err := FromBytes("", nil); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("FromBytes(\"\") error = %v, want KindInvalid", err)
	}
	if _, _, err := FromReader("sha1", strings.NewReader("")); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("FromReader(sha1) error = %v, want KindInvalid", err)
	}
}

func TestFromReaderError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, n, err := FromReader(SHA256, io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || n != 3 {
		t.Errorf("FromReader = %d, %v; want 3, boom", n, err)
	}
}
