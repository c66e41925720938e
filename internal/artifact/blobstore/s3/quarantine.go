package s3

import (
	"context"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
)

var _ blobstore.Quarantiner = (*Store)(nil)

// Quarantine implements blobstore.Quarantiner. S3 cannot rename, so the
// object is copied server-side to <prefix>/quarantine/<alg>/<hex>.<time>
// (a multipart copy above 5 GiB), and only then are it and its index
// deleted: a failure half-way leaves the blob where it was, to be
// quarantined again. This is the one place the store copies an object;
// it happens only to a blob found corrupt.
func (s *Store) Quarantine(ctx context.Context, d digest.Digest) (string, error) {
	const op = "s3.Quarantine"
	if err := blobstore.CheckDigest(op, d); err != nil {
		return "", err
	}
	dst := s.prefix + blobstore.QuarantineDir + "/" + blobstore.QuarantineName(d, time.Now())
	_, err := s.core.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: dst},
		minio.CopySrcOptions{Bucket: s.bucket, Object: s.key(d)})
	if err != nil {
		return "", s.fail(ctx, op, d, err)
	}
	for _, key := range []string{s.indexKey(d), s.key(d)} {
		if err := s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return "", s.fail(ctx, op, d, err)
		}
	}
	return "s3://" + s.bucket + "/" + dst, nil
}
