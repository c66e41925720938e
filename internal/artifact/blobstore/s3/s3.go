// Package s3 is the blobstore backend on an S3 bucket (AWS, MinIO or any
// S3 API), through minio-go.
//
// A store is named by a URL s3://<bucket>/<prefix>; blob d is the object
// <prefix>/blobs/<alg>/<hex>, and its chunk index (digest.ChunkIndex) the
// object <prefix>/chunks/<alg>/<hex>, written once the blob is.
//
// # Verification
//
// A blob must not become visible before its bytes proved to hash to its
// digest, and S3 offers no way to take back a completed PUT. So Put buffers
// one part at a time, hashes it on the way into the buffer, and sends it:
//
//   - A blob that fits in one part is read whole, verified, and only then
//     sent with a single PUT to its final key.
//   - A larger blob goes up as a multipart upload to its final key. Parts
//     are invisible until CompleteMultipartUpload, which is sent only after
//     the verifying reader reached the end of the content and accepted it;
//     on a mismatch, an error or cancellation the upload is aborted.
//
// A Put of a blob already stored first reads it back and verifies it; a
// corrupt object is replaced by the new one the same way, and S3 makes the
// replacement visible at once, whole.
//
// Nothing is copied server-side to store a blob: a staging object plus
// CopyObject would write every byte twice and need ComposeObject above
// 5 GiB. The only staging is the incomplete upload, which RemoveStale
// aborts if a crash left it behind. (A corrupt blob a scrub quarantines is
// copied to <prefix>/quarantine/, see Quarantine.)
//
// # Part size and memory
//
// S3 allows 10,000 parts per upload. For a known size the part size is the
// larger of 16 MiB and size/10,000, rounded up to a MiB; for an unknown size
// (-1) it is 105 MiB, so that 10,000 parts reach 1 TiB. Options.PartSize
// replaces this computation. One part is buffered per Put (parts go up one
// at a time), so a Put of known size holds at most one part of memory plus
// 64 KiB: 16 MiB for any blob up to 156 GiB. An unknown-size Put starts at
// 1 MiB and doubles its buffer as data arrives, so a small blob costs
// little; while the buffer grows the old one briefly coexists with it, so
// the bound is under two parts (169 MiB at the 105 MiB default).
package s3

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/deltaci/deltaci/internal/artifact/blobstore"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

const (
	mib = 1 << 20

	// MinPartSize and MaxPartSize are S3's limits on a part that is not
	// the last of its upload, and so the bounds of Options.PartSize.
	MinPartSize = 5 * mib
	MaxPartSize = 5 << 30

	defaultPartSize = 16 * mib
	maxParts        = 10_000
	// unknownReach is how far an upload of unknown size must be able to go.
	unknownReach = 1 << 40

	// abortTimeout bounds the abort of a failed upload, which must go out
	// even when the Put's own context is what ended it.
	abortTimeout = time.Minute
)

// Options configures the connection. The caller gives the credentials:
// keys, or a profile of a shared credentials file (EnvCredentials takes
// them from the environment as the AWS tools do).
type Options struct {
	// Endpoint is the server's URL, such as "https://s3.amazonaws.com" or
	// "http://127.0.0.1:9000". The scheme decides whether TLS is used.
	Endpoint string
	// AccessKey and SecretKey sign requests, with SessionToken for
	// temporary keys. All empty, and no ProfileFile, means anonymous.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// ProfileFile, when AccessKey is empty, is a shared credentials file
	// (the AWS tools' format) whose profile Profile ("default" if empty)
	// gives the keys: static, or through SSO or credential_process, renewed
	// as they expire. EnvCredentials fills these from the environment.
	ProfileFile string
	Profile     string
	// Region is the bucket's region; empty lets the client look it up.
	Region string
	// PartSize, when non-zero, replaces the computed part size (see the
	// package doc). It must lie in [MinPartSize, MaxPartSize], and it caps
	// a blob at 10,000 parts of this size. Tests use it to get multipart
	// uploads from small blobs.
	PartSize int64
}

// Store is a blobstore.Store on an S3 bucket. It is safe for concurrent
// use; call Close when done with it.
type Store struct {
	core      *minio.Core
	transport *http.Transport
	bucket    string
	prefix    string // "" or ending in "/"
	partSize  int64  // 0: computed per Put
}

var (
	_ blobstore.Store        = (*Store)(nil)
	_ blobstore.StaleRemover = (*Store)(nil)
)

// Open connects to the store named by rawURL (s3://bucket/prefix) and
// checks that the bucket exists. Errors: KindInvalid for a malformed URL
// or option, KindNotFound for a missing bucket, KindUnavailable when the
// endpoint cannot be reached.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	const op = "s3.Open"
	bucket, prefix, err := parseURL(rawURL)
	if err != nil {
		return nil, core.Wrap(core.KindInvalid, op, err)
	}
	ep, err := url.Parse(opts.Endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" || strings.Trim(ep.Path, "/") != "" {
		return nil, core.E(core.KindInvalid, op, "endpoint %q is not an http(s)://host[:port] URL", opts.Endpoint)
	}
	if opts.PartSize != 0 && (opts.PartSize < MinPartSize || opts.PartSize > MaxPartSize) {
		return nil, core.E(core.KindInvalid, op, "part size %d is outside [%d, %d]", opts.PartSize, MinPartSize, MaxPartSize)
	}
	// Our own transport, so that Close can release its connections.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	creds, err := opts.credentials(&credentials.CredContext{Client: &http.Client{Transport: tr}})
	if err != nil {
		tr.CloseIdleConnections()
		return nil, core.Wrap(core.KindInvalid, op, err)
	}
	client, err := minio.New(ep.Host, &minio.Options{
		Creds:     creds,
		Secure:    ep.Scheme == "https",
		Transport: tr,
		Region:    opts.Region,
	})
	if err != nil {
		return nil, core.Wrap(core.KindInvalid, op, err)
	}
	s := &Store{core: &minio.Core{Client: client}, transport: tr, bucket: bucket, prefix: prefix, partSize: opts.PartSize}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		s.Close()
		return nil, s.fail(ctx, op, digest.Digest{}, err)
	}
	if !ok {
		s.Close()
		return nil, core.E(core.KindNotFound, op, "bucket %q does not exist", bucket)
	}
	return s, nil
}

// credentials are the options' keys, or their profile's, checked now so
// that a bad profile is named at Open rather than as a refused request.
func (o Options) credentials(cc *credentials.CredContext) (*credentials.Credentials, error) {
	switch {
	case o.AccessKey != "" || o.SecretKey != "":
		if o.AccessKey == "" || o.SecretKey == "" {
			return nil, errors.New("an access key needs its secret key, and a secret key its access key")
		}
		return credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken), nil
	case o.SessionToken != "":
		return nil, errors.New("a session token needs its access and secret keys")
	case o.ProfileFile == "":
		return credentials.NewStaticV4("", "", ""), nil // anonymous
	}
	profile := cmp.Or(o.Profile, "default")
	if _, err := os.Stat(o.ProfileFile); err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	c := credentials.NewFileAWSCredentials(o.ProfileFile, profile)
	v, err := c.GetWithContext(cc)
	if err != nil {
		return nil, fmt.Errorf("profile %q of %s: %w", profile, o.ProfileFile, err)
	}
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, fmt.Errorf("profile %q of %s gives no keys (aws_access_key_id and aws_secret_access_key, SSO or credential_process)", profile, o.ProfileFile)
	}
	return c, nil
}

// EnvCredentials reads the keys as the AWS tools do, through get (an
// environment lookup): AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with
// AWS_SESSION_TOKEN for temporary keys; without them, the profile
// AWS_PROFILE ("default") of the shared credentials file
// AWS_SHARED_CREDENTIALS_FILE (HOME/.aws/credentials), when one of the two
// variables is set or that file exists. Otherwise requests are anonymous.
// Instance and container roles are not read. It sets the credential
// fields of o and returns it.
func EnvCredentials(o Options, get func(string) string) Options {
	o.AccessKey, o.SecretKey, o.SessionToken = get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"), get("AWS_SESSION_TOKEN")
	o.ProfileFile, o.Profile = "", ""
	if o.AccessKey != "" || o.SecretKey != "" || o.SessionToken != "" {
		return o // Open refuses an incomplete set
	}
	file, profile := get("AWS_SHARED_CREDENTIALS_FILE"), get("AWS_PROFILE")
	if file == "" {
		home := get("HOME")
		if home == "" {
			return o
		}
		file = filepath.Join(home, ".aws", "credentials")
		if _, err := os.Stat(file); err != nil && profile == "" {
			return o
		}
	}
	o.ProfileFile, o.Profile = file, profile
	return o
}

// parseURL splits s3://bucket/prefix into the bucket and a prefix that is
// empty or ends in "/".
func parseURL(rawURL string) (bucket, prefix string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", core.E(core.KindInvalid, "", "store URL %q is not s3://bucket/prefix (credentials go in options, not the URL)", u.Redacted())
	}
	if err := s3utils.CheckValidBucketNameStrict(u.Host); err != nil {
		return "", "", err
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := s3utils.CheckValidObjectNamePrefix(prefix); err != nil {
			return "", "", err
		}
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// Close releases idle connections. Calls in progress are not interrupted.
func (s *Store) Close() {
	s.transport.CloseIdleConnections()
}

func (s *Store) blobsPrefix() string { return s.prefix + "blobs/" }

func (s *Store) key(d digest.Digest) string {
	return s.blobsPrefix() + string(d.Algorithm()) + "/" + d.Hex()
}

func (s *Store) indexKey(d digest.Digest) string {
	return s.prefix + "chunks/" + string(d.Algorithm()) + "/" + d.Hex()
}

// digestOf is the inverse of key; foreign objects do not parse.
func (s *Store) digestOf(key string) (digest.Digest, bool) {
	alg, hex, ok := strings.Cut(strings.TrimPrefix(key, s.blobsPrefix()), "/")
	if !ok {
		return digest.Digest{}, false
	}
	d, err := digest.Parse(alg + ":" + hex)
	return d, err == nil
}

// fail classifies an error from minio-go.
func (s *Store) fail(ctx context.Context, op string, d digest.Digest, err error) error {
	if ctx.Err() != nil {
		return blobstore.Canceled(ctx, op)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey && !d.IsZero():
		return blobstore.NotFound(op, d)
	case resp.Code == "" || resp.StatusCode >= 500:
		// No S3 answer at all (network) or a server-side failure.
		return core.Wrap(core.KindUnavailable, op, err)
	}
	// An S3 refusal: credentials, permissions, a missing bucket.
	return core.Wrap(core.KindInternal, op, err)
}

// Put implements blobstore.Store; see the package doc for how it verifies
// before anything becomes visible. A blob already stored is read back and
// verified first; a corrupt one is replaced.
func (s *Store) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) error {
	const op = "s3.Put"
	if err := blobstore.CheckPut(op, d, size); err != nil {
		return err
	}
	if done, err := blobstore.Existing(ctx, op, raw{s}, d, size); done {
		return err
	}
	ps, err := partSize(size, s.partSize)
	if err != nil {
		return core.Wrap(core.KindInvalid, op, err)
	}
	ch, err := digest.NewChunkHasher(d.Algorithm())
	if err != nil {
		return err
	}
	if err := s.put(ctx, op, d, io.TeeReader(blobstore.ContextReader(ctx, r), ch), size, ps); err != nil {
		return err
	}
	blobstore.SaveIndex(ctx, raw{s}, ch.Index(d))
	return nil
}

// put uploads the bytes of r, which must prove to be d, in one PUT or as a
// multipart upload of parts of ps bytes.
func (s *Store) put(ctx context.Context, op string, d digest.Digest, r io.Reader, size, ps int64) error {
	src := bufio.NewReaderSize(digest.NewVerifyingReader(r, d, size), 64<<10)
	// A known size gets its exact buffer; one byte more lets readPart see
	// the end without growing it.
	initial := min(ps, mib)
	if size >= 0 {
		initial = min(ps, size+1)
	}
	buf, last, err := readPart(src, make([]byte, 0, initial), ps)
	if err != nil {
		return blobstore.PutError(ctx, op, err)
	}
	if !last {
		return s.putMultipart(ctx, op, d, src, buf, ps)
	}
	_, err = s.core.PutObject(ctx, s.bucket, s.key(d), bytes.NewReader(buf), int64(len(buf)), "", "", putOptions)
	if err != nil {
		return s.fail(ctx, op, d, err)
	}
	return nil
}

var putOptions = minio.PutObjectOptions{ContentType: "application/octet-stream"}

// putMultipart uploads first and the rest of src as parts of ps bytes and
// completes the upload only once src has ended with a positive verdict.
func (s *Store) putMultipart(ctx context.Context, op string, d digest.Digest, src *bufio.Reader, first []byte, ps int64) (err error) {
	key := s.key(d)
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, putOptions)
	if err != nil {
		return s.fail(ctx, op, d, err)
	}
	defer func() {
		if err != nil {
			s.abort(ctx, key, id)
		}
	}()
	var parts []minio.CompletePart
	buf, last := first, false
	for {
		if len(parts) == maxParts {
			return core.E(core.KindInvalid, op, "%s needs more than %d parts of %d bytes; pass its size to Put", d, maxParts, ps)
		}
		num := len(parts) + 1
		p, err := s.core.PutObjectPart(ctx, s.bucket, key, id, num, bytes.NewReader(buf), int64(len(buf)), minio.PutObjectPartOptions{})
		if err != nil {
			return s.fail(ctx, op, d, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
		if last {
			break
		}
		if buf, last, err = readPart(src, buf, ps); err != nil {
			return blobstore.PutError(ctx, op, err)
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, id, parts, putOptions); err != nil {
		return s.fail(ctx, op, d, err)
	}
	return nil
}

// abort cancels a failed upload. If that fails too, the upload stays
// incomplete and invisible until RemoveStale (or a bucket lifecycle rule)
// aborts it.
func (s *Store) abort(ctx context.Context, key, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_ = s.core.AbortMultipartUpload(ctx, s.bucket, key, id)
}

// partSize returns the part size for a Put of size bytes (-1: unknown), or
// the override when one is set.
func partSize(size, override int64) (int64, error) {
	if override > 0 {
		if size > override*maxParts {
			return 0, core.E(core.KindInvalid, "", "%d bytes need more than %d parts of %d bytes", size, maxParts, override)
		}
		return override, nil
	}
	reach := size
	if size < 0 {
		reach = unknownReach
	}
	ps := max(defaultPartSize, (reach+maxParts*mib-1)/(maxParts*mib)*mib)
	if ps > MaxPartSize {
		return 0, core.E(core.KindInvalid, "", "%d bytes exceed %d parts of %d bytes", size, maxParts, MaxPartSize)
	}
	return ps, nil
}

// readPart refills buf with up to limit bytes of src and reports whether
// src ended with them. src ends in the verifying reader, so an error here
// may be the verdict that the content is not what was announced.
func readPart(src *bufio.Reader, buf []byte, limit int64) ([]byte, bool, error) {
	buf = buf[:0]
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			// Doubling, so an unknown size costs about what it turns out to be.
			buf = slices.Grow(buf, int(min(max(int64(cap(buf)), 64<<10), limit-int64(len(buf)))))
		}
		n, err := src.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	// A full part may be the last one; only the next byte tells.
	if _, err := src.Peek(1); err == io.EOF {
		return buf, true, nil
	} else if err != nil {
		return buf, false, err
	}
	return buf, false, nil
}

// Get implements blobstore.Store, verified as Store describes: a HEAD
// request, the chunk index, then one ranged GET of the chunks covered.
func (s *Store) Get(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	return blobstore.Read(ctx, "s3.Get", raw{s}, d, offset, length)
}

// Verify implements blobstore.Store.
func (s *Store) Verify(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	return blobstore.Verify(ctx, "s3.Verify", raw{s}, d)
}

// raw is the store's blobstore.Raw: its objects, unverified, and the chunk
// index objects.
type raw struct{ s *Store }

func (r raw) StatRaw(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	return r.s.stat(ctx, "s3.Stat", d)
}

func (r raw) OpenRaw(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	const op = "s3.Get"
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	body, _, _, err := r.s.core.GetObject(ctx, r.s.bucket, r.s.key(d), opts)
	if err != nil {
		return nil, r.s.fail(ctx, op, d, err)
	}
	return body, nil
}

// maxIndexBytes bounds an index object read: the index of a 16 TiB blob.
const maxIndexBytes = 1 << 29

func (r raw) LoadIndex(ctx context.Context, d digest.Digest) ([]byte, error) {
	const op = "s3.LoadIndex"
	body, _, _, err := r.s.core.GetObject(ctx, r.s.bucket, r.s.indexKey(d), minio.GetObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, core.E(core.KindNotFound, op, "no chunk index of %s", d)
		}
		return nil, r.s.fail(ctx, op, digest.Digest{}, err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxIndexBytes))
	if err != nil {
		return nil, r.s.fail(ctx, op, digest.Digest{}, err)
	}
	return b, nil
}

func (r raw) SaveIndex(ctx context.Context, d digest.Digest, index []byte) error {
	_, err := r.s.core.PutObject(ctx, r.s.bucket, r.s.indexKey(d), bytes.NewReader(index), int64(len(index)), "", "", putOptions)
	if err != nil {
		return r.s.fail(ctx, "s3.SaveIndex", digest.Digest{}, err)
	}
	return nil
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blobstore.Info, error) {
	const op = "s3.Stat"
	if err := blobstore.CheckDigest(op, d); err != nil {
		return blobstore.Info{}, err
	}
	return s.stat(ctx, op, d)
}

func (s *Store) stat(ctx context.Context, op string, d digest.Digest) (blobstore.Info, error) {
	oi, err := s.core.StatObject(ctx, s.bucket, s.key(d), minio.StatObjectOptions{})
	if err != nil {
		return blobstore.Info{}, s.fail(ctx, op, d, err)
	}
	return blobstore.Info{Digest: d, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Delete implements blobstore.Store, the index first (see fs.Delete). S3
// itself treats deleting an absent key as success.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	const op = "s3.Delete"
	if err := blobstore.CheckDigest(op, d); err != nil {
		return err
	}
	for _, key := range []string{s.indexKey(d), s.key(d)} {
		if err := s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return s.fail(ctx, op, d, err)
		}
	}
	return nil
}

// List implements blobstore.Store, in key order.
func (s *Store) List(ctx context.Context) iter.Seq2[blobstore.Info, error] {
	const op = "s3.List"
	return func(yield func(blobstore.Info, error) bool) {
		noOwner := false
		objects := s.core.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{
			Prefix: s.blobsPrefix(), Recursive: true, FetchOwner: &noOwner,
		})
		for o := range objects {
			if o.Err != nil {
				yield(blobstore.Info{}, s.fail(ctx, op, digest.Digest{}, o.Err))
				return
			}
			d, ok := s.digestOf(o.Key)
			if !ok {
				continue // not ours: never list, so never delete
			}
			if !yield(blobstore.Info{Digest: d, Size: o.Size, ModTime: o.LastModified}, nil) {
				return
			}
		}
		// minio-go ends a canceled listing silently.
		if ctx.Err() != nil {
			yield(blobstore.Info{}, blobstore.Canceled(ctx, op))
		}
	}
}

// RemoveStale implements blobstore.StaleRemover: it aborts the multipart
// uploads under the store's prefix that were initiated more than olderThan
// ago, which only a crashed Put leaves (a failed one aborts its own).
//
// It lists the uploads of the whole bucket and filters by prefix, because
// MinIO reads a ListMultipartUploads prefix as an exact object name. MinIO
// only lists uploads begun since it started; it expires older ones itself
// (its api stale_uploads_expiry, 24 h by default). On AWS, a lifecycle
// rule AbortIncompleteMultipartUpload is a good second line.
func (s *Store) RemoveStale(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.RemoveStaleExcept(ctx, olderThan, nil)
}

// RemoveStaleExcept implements blobstore.StaleSparer: RemoveStale sparing
// the uploads of blobs keep holds (keep nil spares none).
func (s *Store) RemoveStaleExcept(ctx context.Context, olderThan time.Duration, keep func(digest.Digest) (bool, error)) (int, error) {
	const op = "s3.RemoveStale"
	uploads, err := s.incomplete(ctx, op)
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	for _, u := range uploads {
		if !u.Initiated.Before(cutoff) {
			continue
		}
		if d, ok := s.digestOf(u.Key); ok && keep != nil {
			held, err := keep(d)
			if err != nil {
				return removed, err
			}
			if held {
				continue
			}
		}
		err := s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID)
		if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchUpload {
			return removed, s.fail(ctx, op, digest.Digest{}, err)
		}
		removed++
	}
	return removed, nil
}

// incomplete lists the multipart uploads under the store's prefix.
func (s *Store) incomplete(ctx context.Context, op string) ([]minio.ObjectMultipartInfo, error) {
	var uploads []minio.ObjectMultipartInfo
	var keyMarker, idMarker string
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, "", keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, s.fail(ctx, op, digest.Digest{}, err)
		}
		for _, u := range res.Uploads {
			if strings.HasPrefix(u.Key, s.blobsPrefix()) {
				uploads = append(uploads, u)
			}
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return uploads, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}
