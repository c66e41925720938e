package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/goleak"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/blobstoretest"
	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3/miniotest"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

var server miniotest.Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(server.StopAfter(m)) }

// open returns a store under a fresh prefix of the shared server's bucket,
// so that parallel tests do not see each other's blobs.
func open(t *testing.T, partSize int64) *Store {
	t.Helper()
	srv := server.Server(t)
	prefix := make([]byte, 6)
	_, _ = rand.Read(prefix)
	s, err := Open(t.Context(), "s3://"+srv.Bucket+"/t/"+hex.EncodeToString(prefix), Options{
		Endpoint:  srv.Endpoint,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PartSize:  partSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func harness(t *testing.T) blobstoretest.Harness {
	// The smallest part size S3 allows, so that the suite's blobs of a few
	// MiB go through multipart uploads too.
	s := open(t, MinPartSize)
	return blobstoretest.Harness{
		Store: s,
		Rewrite: func(t *testing.T, d digest.Digest, edit func([]byte) []byte) {
			t.Helper()
			b := edit(getObject(t, s, s.key(d)))
			putObject(t, s, s.key(d), b)
		},
		Index: func(t *testing.T, d digest.Digest) []byte {
			t.Helper()
			ctx := t.Context()
			if _, err := s.core.StatObject(ctx, s.bucket, s.indexKey(d), minio.StatObjectOptions{}); err != nil {
				if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
					return nil
				}
				t.Fatal(err)
			}
			return getObject(t, s, s.indexKey(d))
		},
		SetIndex: func(t *testing.T, d digest.Digest, b []byte) {
			t.Helper()
			if b == nil {
				if err := s.core.RemoveObject(t.Context(), s.bucket, s.indexKey(d), minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				return
			}
			putObject(t, s, s.indexKey(d), b)
		},
		Leftovers: func(t *testing.T) []string {
			t.Helper()
			uploads, err := s.incomplete(t.Context(), "test")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, u := range uploads {
				keys = append(keys, u.Key)
			}
			return keys
		},
		Strand: func(t *testing.T) { strand(t, s) },
	}
}

func getObject(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	obj, _, _, err := s.core.GetObject(t.Context(), s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t *testing.T, s *Store, key string, b []byte) {
	t.Helper()
	if _, err := s.core.PutObject(t.Context(), s.bucket, key, bytes.NewReader(b), int64(len(b)), "", "", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// strand starts a multipart upload with one part and walks away from it,
// as a crashed Put would.
func strand(t *testing.T, s *Store) {
	t.Helper()
	d, _ := digest.FromBytes(digest.SHA256, []byte("stranded"))
	key := s.key(d)
	id, err := s.core.NewMultipartUpload(t.Context(), s.bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("x"), 1000)
	if _, err := s.core.PutObjectPart(t.Context(), s.bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	blobstoretest.Run(t, harness)
}

// TestMultipart checks where Put switches to multipart uploads and that
// such blobs read back intact. A multipart object's ETag ends in
// -<parts>; a single PUT's has no dash.
func TestMultipart(t *testing.T) {
	t.Parallel()
	s := open(t, MinPartSize)
	data := make([]byte, 4*MinPartSize+12345)
	_, _ = rand.Read(data)
	for _, tc := range []struct {
		name  string
		alg   digest.Algorithm
		n     int
		known bool
		parts int // 0: a single PUT
	}{
		{"KnownSize", digest.SHA256, len(data), true, 5},
		{"UnknownSize", digest.BLAKE3, len(data), false, 5},
		{"OnePartExactly", digest.SHA256, MinPartSize, false, 0},
		{"TwoPartsExactly", digest.BLAKE3, 2 * MinPartSize, false, 2},
		{"TwoPartsExactlyKnown", digest.SHA256, 2 * MinPartSize, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := data[:tc.n]
			d, _ := digest.FromBytes(tc.alg, data)
			size := int64(-1)
			if tc.known {
				size = int64(tc.n)
			}
			if err := s.Put(t.Context(), d, bytes.NewReader(data), size); err != nil {
				t.Fatal(err)
			}
			oi, err := s.core.StatObject(t.Context(), s.bucket, s.key(d), minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, parts, multipart := strings.Cut(oi.ETag, "-")
			if want := strconv.Itoa(tc.parts); multipart != (tc.parts > 0) || multipart && parts != want {
				t.Errorf("ETag %q: want %d parts (0: single PUT)", oi.ETag, tc.parts)
			}
			rc, err := s.Get(t.Context(), d, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, err %v; want the %d put", len(got), err, len(data))
			}
			// A range across the first part boundary.
			rc, err = s.Get(t.Context(), d, MinPartSize-10, 10+min(10, int64(tc.n)-MinPartSize))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data[MinPartSize-10:min(MinPartSize+10, tc.n)]) {
				t.Errorf("range across parts: %d bytes, err %v", len(got), err)
			}
		})
	}
}

// TestRemoveStaleKeepsOtherPrefixes checks that RemoveStale, which lists the
// whole bucket, aborts only uploads under its own store's prefix.
func TestRemoveStaleKeepsOtherPrefixes(t *testing.T) {
	t.Parallel()
	mine, other := open(t, 0), open(t, 0)
	strand(t, mine)
	strand(t, other)
	n, err := mine.RemoveStale(t.Context(), 0)
	if err != nil || n != 1 {
		t.Fatalf("RemoveStale = %d, %v; want 1", n, err)
	}
	left, err := other.incomplete(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Errorf("other prefix has %d incomplete uploads, want its 1", len(left))
	}
	if _, err := other.RemoveStale(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	srv := server.Server(t)
	opts := Options{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	for _, tc := range []struct {
		name string
		url  string
		opts func(*Options)
		want core.Kind
	}{
		{"ErrScheme", "https://" + srv.Bucket + "/p", nil, core.KindInvalid},
		{"ErrNoBucket", "s3:///p", nil, core.KindInvalid},
		{"ErrBadBucket", "s3://No_Such/p", nil, core.KindInvalid},
		{"ErrCredentialsInURL", "s3://key:secret@" + srv.Bucket + "/p", nil, core.KindInvalid},
		{"ErrQuery", "s3://" + srv.Bucket + "/p?region=x", nil, core.KindInvalid},
		{"ErrEndpoint", "s3://" + srv.Bucket, func(o *Options) { o.Endpoint = "127.0.0.1:9000" }, core.KindInvalid},
		{"ErrPartSize", "s3://" + srv.Bucket, func(o *Options) { o.PartSize = MinPartSize - 1 }, core.KindInvalid},
		{"ErrMissingBucket", "s3://missing-bucket/p", nil, core.KindNotFound},
		{"ErrBadSecret", "s3://" + srv.Bucket, func(o *Options) { o.SecretKey = "wrong-secret" }, core.KindInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := opts
			if tc.opts != nil {
				tc.opts(&o)
			}
			s, err := Open(t.Context(), tc.url, o)
			if err == nil {
				s.Close()
			}
			if got := core.KindOf(err); got != tc.want {
				t.Errorf("Open(%q) = %v (kind %s), want kind %s", tc.url, err, got, tc.want)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{"s3://" + srv.Bucket, "s3://" + srv.Bucket + "/", "s3://" + srv.Bucket + "/a/b/"} {
			s, err := Open(t.Context(), u, opts)
			if err != nil {
				t.Errorf("Open(%q): %v", u, err)
				continue
			}
			s.Close()
		}
	})
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: refused at once, and retried until ctx ends.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := Open(ctx, "s3://bucket/p", Options{Endpoint: "http://127.0.0.1:1"})
	if k := core.KindOf(err); k != core.KindUnavailable && k != core.KindCanceled {
		t.Errorf("Open on a dead endpoint = %v (kind %s), want unavailable or canceled", err, k)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	d := digest.MustParse("sha256:" + strings.Repeat("ab", 32))
	for _, tc := range []struct{ url, want string }{
		{"s3://bkt", "blobs/sha256/" + d.Hex()},
		{"s3://bkt/", "blobs/sha256/" + d.Hex()},
		{"s3://bkt/ci/artifacts/", "ci/artifacts/blobs/sha256/" + d.Hex()},
	} {
		bucket, prefix, err := parseURL(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		s := &Store{bucket: bucket, prefix: prefix}
		if got := s.key(d); got != tc.want {
			t.Errorf("%s: key = %q, want %q", tc.url, got, tc.want)
		}
		if got, ok := s.digestOf(s.key(d)); !ok || got != d {
			t.Errorf("%s: digestOf(key) = %v, %v", tc.url, got, ok)
		}
	}
}
