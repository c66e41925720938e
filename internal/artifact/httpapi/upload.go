package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// Upload implements dataplane.DataPlane over HTTP. A blob of known size
// that fits in one chunk goes in one request (POST
// /blobs/uploads?digest=, hashed first when expected is zero); anything
// else goes through a resumable session, one chunk of Client.ChunkSize at
// a time, so memory stays at one chunk whatever the size.
//
// A chunk that fails transiently (no answer, 503) is sent again; when the
// server says it is at another offset (416, e.g. it had stored the chunk
// whose answer was lost) Upload resumes from there. Without expected, the
// bytes are hashed as they are read and the session is finished under
// that digest. On failure the session is canceled.
func (c *Client) Upload(ctx context.Context, actor string, alg digest.Algorithm, expected digest.Digest, r io.Reader, size int64) (dataplane.Blob, error) {
	if alg == "" {
		alg = c.alg()
	}
	if !expected.IsZero() {
		alg = expected.Algorithm()
	}
	chunk := c.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	if size >= 0 && size <= chunk {
		return c.uploadWhole(ctx, actor, alg, expected, r, size)
	}
	sess, err := c.StartUpload(ctx, alg, expected)
	if err != nil {
		return dataplane.Blob{}, err
	}
	b, err := c.uploadChunks(ctx, actor, sess, expected, r, size, chunk)
	if err != nil {
		// Best effort: an abandoned session also expires on its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Cancel(cctx, sess.ID)
	}
	return b, err
}

// uploadWhole sends a small blob in one request, read into memory first so
// that a transient failure can send it again.
func (c *Client) uploadWhole(ctx context.Context, actor string, alg digest.Algorithm, d digest.Digest, r io.Reader, size int64) (dataplane.Blob, error) {
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return dataplane.Blob{}, core.Wrap(core.KindInvalid, "upload: read", err)
	}
	if int64(len(data)) != size {
		return dataplane.Blob{}, &core.Error{Kind: core.KindInvalid, Op: "upload", Err: &digest.SizeError{Expected: size, Actual: int64(len(data))}}
	}
	if d.IsZero() {
		if d, err = digest.FromBytes(alg, data); err != nil {
			return dataplane.Blob{}, err
		}
	}
	var b dataplane.Blob
	err = retry(ctx, func() error {
		req := request{
			method: http.MethodPost, path: "/blobs/uploads", query: url.Values{"digest": {d.String()}},
			header: http.Header{"Content-Type": {"application/octet-stream"}},
			body:   bytes.NewReader(data), actor: actor, want: []int{http.StatusCreated},
		}
		var out BlobInfo
		if err := c.call(ctx, req, nil, &out); err != nil {
			return err
		}
		var perr error
		b, perr = blobInfo(out)
		return perr
	})
	return b, err
}

// uploadChunks streams r into a session and finishes it.
func (c *Client) uploadChunks(ctx context.Context, actor string, sess dataplane.Session, expected digest.Digest,
	r io.Reader, size, chunk int64) (dataplane.Blob, error) {
	var h *digest.Hasher
	if expected.IsZero() {
		var err error
		if h, err = digest.NewHasher(sess.Algorithm); err != nil {
			return dataplane.Blob{}, err
		}
	}
	buf := make([]byte, chunk)
	offset := sess.Offset
	for {
		n, rerr := io.ReadFull(r, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return dataplane.Blob{}, core.Wrap(core.KindInvalid, "upload: read", rerr)
		}
		if n > 0 {
			if h != nil {
				_, _ = h.Write(buf[:n])
			}
			if err := c.sendChunk(ctx, sess.ID, offset, buf[:n]); err != nil {
				return dataplane.Blob{}, err
			}
			offset += int64(n)
		}
		if rerr != nil {
			break
		}
	}
	if size >= 0 && offset != size {
		return dataplane.Blob{}, &core.Error{Kind: core.KindInvalid, Op: "upload", Err: &digest.SizeError{Expected: size, Actual: offset}}
	}
	d := expected
	if h != nil {
		d = h.Digest()
	}
	var b dataplane.Blob
	err := retry(ctx, func() error {
		var ferr error
		b, ferr = c.Finish(ctx, actor, sess.ID, d)
		return ferr
	})
	if core.KindOf(err) == core.KindNotFound {
		// A Finish whose answer was lost ended the session; the retry
		// then finds none. The blob being there is the answer we missed.
		if got, serr := c.Stat(ctx, d); serr == nil && got == offset {
			return dataplane.Blob{Digest: d, Size: got}, nil
		}
	}
	return b, err
}

// sendChunk appends data at offset, resuming from wherever the server
// says the session is, as long as that lies within data.
func (c *Client) sendChunk(ctx context.Context, id string, offset int64, data []byte) error {
	end := offset + int64(len(data))
	return retry(ctx, func() error {
		next, err := c.Append(ctx, id, offset, bytes.NewReader(data))
		var oe *dataplane.OffsetError
		switch {
		case errors.As(err, &oe) && oe.Offset >= offset && oe.Offset <= end:
			data, offset = data[oe.Offset-offset:], oe.Offset
			if len(data) == 0 {
				return nil
			}
			return errResume
		case err != nil:
			return err
		case next != end:
			return core.E(core.KindInternal, "upload chunk", "session %s is at offset %d after a chunk ending at %d", id, next, end)
		}
		return nil
	})
}

// errResume asks retry to go again at once: the server told us where to
// continue, nothing failed.
var errResume = errors.New("resume at the server's offset")

// retry runs fn until it succeeds, fails for good, or uploadAttempts
// transient failures have passed. Transient means KindUnavailable: the
// request got no answer or the server said to try later.
func retry(ctx context.Context, fn func() error) error {
	wait := retryBase
	failures := 0
	for {
		err := fn()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errResume):
			// A resume moves forward, so it cannot loop for ever; but a
			// server that keeps moving the offset counts against the budget.
			failures++
			if failures >= uploadAttempts*4 {
				return core.E(core.KindConflict, "upload", "the session offset kept moving; is another client writing to it?")
			}
			continue
		case core.KindOf(err) != core.KindUnavailable:
			return err
		}
		failures++
		if failures >= uploadAttempts {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &core.Error{Kind: core.KindCanceled, Op: "upload", Err: ctx.Err()}
		case <-t.C:
		}
		wait *= 2
	}
}
