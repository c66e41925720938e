package httpapi

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/jsonhttp"
)

const (
	blobsPath   = "/api/v1/blobs/"
	uploadsPath = "/api/v1/blobs/uploads/"
)

// blobHeaders are the headers of every blob response: the digest is the
// strongest possible validator, and, for an algorithm RFC 9530 names, the
// digest of the whole representation too.
func blobHeaders(w http.ResponseWriter, d digest.Digest) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	if v, ok := digest.FieldValue(d); ok {
		h.Set("Repr-Digest", v)
	}
}

// stat learns a blob's size through the data plane: an empty read at
// offset 0 is valid for every blob, and reads no bytes.
func (s *server) stat(r *http.Request, d digest.Digest) (int64, error) {
	rc, size, err := s.data.Open(r.Context(), d, 0, 0)
	if err != nil {
		return 0, err
	}
	_ = rc.Close()
	return size, nil
}

func (s *server) headBlob(w http.ResponseWriter, r *http.Request) error {
	d, err := digest.Parse(r.PathValue("digest"))
	if err != nil {
		return err
	}
	size, err := s.stat(r, d)
	if err != nil {
		return err
	}
	blobHeaders(w, d)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

// getBlob serves a blob or one range of it, verified as the data plane
// reads it (see blobstore.Store.Get): each chunk is checked against the
// digest recorded for it before its bytes are handed out, and a whole blob
// against its own digest before its last bytes are. send holds the status
// line back until the first chunk checked out, so damage there is a plain
// 500; damage found later cuts the connection (see writeError), and the
// client gets a body shorter than its Content-Length, never a complete one.
func (s *server) getBlob(w http.ResponseWriter, r *http.Request) error {
	d, err := digest.Parse(r.PathValue("digest"))
	if err != nil {
		return err
	}
	rng, partial := byteRange{length: -1}, false
	if h := r.Header.Get("Range"); h != "" {
		size, err := s.stat(r, d)
		if err != nil {
			return err
		}
		if rng, partial, err = parseRange(h, size); err != nil {
			return err
		}
		if !partial {
			rng = byteRange{length: -1}
		}
	}
	rc, size, err := s.data.Open(r.Context(), d, rng.start, rng.length)
	if err != nil {
		return err
	}
	defer rc.Close()
	start := func() {
		blobHeaders(w, d)
		status := http.StatusOK
		if partial {
			status = http.StatusPartialContent
			w.Header().Set("Content-Range", formatContentRange(rng, size))
		} else {
			rng.length = size
			if v, ok := digest.FieldValue(d); ok {
				// Without a content coding the body is the representation.
				w.Header().Set("Content-Digest", v)
			}
		}
		w.Header().Set("Content-Length", strconv.FormatInt(rng.length, 10))
		w.WriteHeader(status)
	}
	if err := send(w, rc, start); err != nil {
		if r.Context().Err() != nil {
			// The client went away; not the store's fault.
			return &core.Error{Kind: core.KindCanceled, Op: "send blob " + d.String(), Err: err}
		}
		return err
	}
	return nil
}

// sendBufSize is what send reads at a time, and so what it holds back: a
// blob no larger fails before its status line is sent.
const sendBufSize = 64 << 10

// fill reads into p until it is full, r ends (io.EOF, with the bytes read)
// or fails.
func fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := r.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// send copies rc to w one buffer behind: bytes go out only once the next
// buffer filled, so the last ones wait for rc's verdict, which a verified
// reader gives with io.EOF. start writes the status line, before the first
// bytes go out (or at the end, for an empty body). An error from rc is
// returned as it is; a failed write is KindInternal (or the client gone).
func send(w io.Writer, rc io.Reader, start func()) error {
	cur, spare := make([]byte, sendBufSize), make([]byte, sendBufSize)
	var held []byte
	started := false
	flush := func() error {
		if !started {
			start()
			started = true
		}
		if len(held) == 0 {
			return nil
		}
		if _, err := w.Write(held); err != nil {
			return core.Wrap(core.KindInternal, "send blob", err)
		}
		return nil
	}
	for {
		n, err := fill(rc, cur)
		if err != nil && err != io.EOF {
			return err
		}
		if n > 0 {
			if len(held) > 0 {
				if err := flush(); err != nil {
					return err
				}
			}
			held = cur[:n]
			cur, spare = spare, cur
		}
		if err == io.EOF {
			return flush()
		}
	}
}

// startUpload opens a resumable session, or with ?digest= stores the body
// as the whole blob in one request.
func (s *server) startUpload(w http.ResponseWriter, r *http.Request) error {
	who, err := actor(r)
	if err != nil {
		return err
	}
	if q := r.URL.Query(); q.Has("digest") {
		d, err := digest.Parse(q.Get("digest"))
		if err != nil {
			return err
		}
		body, err := s.chunkBody(w, r)
		if err != nil {
			return err
		}
		b, err := s.data.Upload(r.Context(), who, d.Algorithm(), d, body, r.ContentLength)
		if err != nil {
			return err
		}
		return blobCreated(w, b)
	}
	var req UploadStart
	if err := decodeJSON(w, r, s.maxJSON, true, &req); err != nil {
		return err
	}
	alg, expected := digest.Default, digest.Digest{}
	if req.Digest != "" {
		if expected, err = digest.Parse(req.Digest); err != nil {
			return err
		}
		alg = expected.Algorithm()
	}
	if req.Algorithm != "" {
		if alg, err = digest.ParseAlgorithm(req.Algorithm); err != nil {
			return err
		}
	}
	sess, err := s.data.StartUpload(r.Context(), alg, expected)
	if err != nil {
		return err
	}
	w.Header().Set("Location", uploadsPath+sess.ID)
	writeJSON(w, http.StatusAccepted, UploadStatus{ID: sess.ID, Offset: sess.Offset, ExpiresAt: formatTime(sess.ExpiresAt)})
	return nil
}

func blobCreated(w http.ResponseWriter, b dataplane.Blob) error {
	w.Header().Set("Location", blobsPath+b.Digest.String())
	writeJSON(w, http.StatusCreated, BlobInfo{Digest: b.Digest.String(), Size: b.Size})
	return nil
}

// chunkBody bounds a blob body by MaxChunkBytes; a body announced larger
// is refused before anything is read.
func (s *server) chunkBody(w http.ResponseWriter, r *http.Request) (io.Reader, error) {
	if r.ContentLength > s.maxChunk {
		return nil, &core.Error{Kind: core.KindInvalid, Op: "upload", Err: &http.MaxBytesError{Limit: s.maxChunk}}
	}
	return http.MaxBytesReader(w, r.Body, s.maxChunk), nil
}

// Bounds of an upload session id in a path: ids are opaque, but never
// long or exotic.
const maxSessionIDLen = 128

func sessionID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	ok := id != "" && len(id) <= maxSessionIDLen && strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}) < 0
	if !ok {
		return "", core.E(core.KindInvalid, "upload session", "%.40q is not an upload session id", id)
	}
	return id, nil
}

// chunkOffset reads where a chunk starts, from Content-Range or ?offset=,
// and wraps the body so that it must be exactly as long as Content-Range
// says. has is false when the request names no offset.
func (s *server) chunkOffset(w http.ResponseWriter, r *http.Request) (offset int64, body io.Reader, has bool, err error) {
	body, err = s.chunkBody(w, r)
	if err != nil {
		return 0, nil, false, err
	}
	offset = -1
	if q := r.URL.Query(); q.Has("offset") {
		if offset, err = parseOffset(q.Get("offset")); err != nil {
			return 0, nil, false, err
		}
	}
	if h := r.Header.Get("Content-Range"); h != "" {
		start, length, err := parseContentRange(h)
		if err != nil {
			return 0, nil, false, err
		}
		if offset >= 0 && offset != start {
			return 0, nil, false, core.E(core.KindInvalid, "upload chunk", "?offset=%d contradicts Content-Range %.60q", offset, h)
		}
		if r.ContentLength >= 0 && r.ContentLength != length {
			return 0, nil, false, core.E(core.KindInvalid, "upload chunk", "Content-Length %d contradicts Content-Range %.60q", r.ContentLength, h)
		}
		offset, body = start, &exactReader{r: body, left: length}
	}
	return offset, body, offset >= 0, nil
}

// exactReader fails a chunk whose body is longer or shorter than its
// Content-Range, before the data plane accepts it.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		var one [1]byte
		if n, _ := io.ReadFull(e.r, one[:]); n > 0 {
			return 0, core.E(core.KindInvalid, "upload chunk", "the body is longer than its Content-Range")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, core.E(core.KindInvalid, "upload chunk", "the body is %d bytes shorter than its Content-Range", e.left)
	}
	if errors.Is(err, io.EOF) {
		err = nil // the next Read checks that nothing follows
	}
	return n, err
}

// appendChunk writes one chunk at the session's offset; a chunk at another
// offset is refused with 416 and the offset to resume from.
func (s *server) appendChunk(w http.ResponseWriter, r *http.Request) error {
	id, err := sessionID(r)
	if err != nil {
		return err
	}
	offset, body, has, err := s.chunkOffset(w, r)
	if err != nil {
		return err
	}
	if !has {
		return core.E(core.KindInvalid, "upload chunk", "a chunk needs its offset: send Content-Range: bytes first-last or ?offset=")
	}
	next, err := s.data.Append(r.Context(), id, offset, body)
	if err != nil {
		return err
	}
	w.Header().Set("Location", uploadsPath+id)
	if next > 0 {
		w.Header().Set("Range", "0-"+strconv.FormatInt(next-1, 10))
	}
	writeJSON(w, http.StatusAccepted, UploadStatus{ID: id, Offset: next})
	return nil
}

// finishUpload appends an optional last chunk and commits the session as
// the blob ?digest= names.
func (s *server) finishUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := sessionID(r)
	if err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	d, err := digest.Parse(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	offset, body, has, err := s.chunkOffset(w, r)
	if err != nil {
		return err
	}
	if has {
		if _, err := s.data.Append(r.Context(), id, offset, body); err != nil {
			return err
		}
	} else if err := emptyBody(body); err != nil {
		return err
	}
	b, err := s.data.Finish(r.Context(), who, id, d)
	if err != nil {
		return err
	}
	return blobCreated(w, b)
}

// emptyBody refuses a final chunk that does not say where it goes.
func emptyBody(body io.Reader) error {
	if _, err := bufio.NewReaderSize(body, 16).ReadByte(); err == nil {
		return core.E(core.KindInvalid, "finish upload", "a final chunk needs its offset: send Content-Range: bytes first-last or ?offset=")
	} else if !errors.Is(err, io.EOF) {
		return jsonhttp.BodyError("finish upload", err)
	}
	return nil
}

func (s *server) cancelUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := sessionID(r)
	if err != nil {
		return err
	}
	if err := s.data.Cancel(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) findMissing(w http.ResponseWriter, r *http.Request) error {
	var req FindMissingRequest
	if err := decodeJSON(w, r, s.maxJSON, false, &req); err != nil {
		return err
	}
	if len(req.Digests) > dataplane.MaxFindMissing {
		return core.E(core.KindInvalid, "find missing", "%d digests in one request; send at most %d", len(req.Digests), dataplane.MaxFindMissing)
	}
	ds := make([]digest.Digest, len(req.Digests))
	for i, s := range req.Digests {
		d, err := digest.Parse(s)
		if err != nil {
			return err
		}
		ds[i] = d
	}
	missing, err := s.data.FindMissing(r.Context(), ds)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FindMissingResponse{Missing: digestStrings(missing)})
	return nil
}
