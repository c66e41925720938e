package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deltaci/deltaci/internal/artifact/dataplane"
	"github.com/deltaci/deltaci/internal/artifact/digest"
)

// uploadStatus says where an upload session is: what it received so far
// (offset, and a Range header as PATCH answers give it), when it expires,
// its algorithm and the digest it announced. A client that lost track of
// a session asks here rather than sending a chunk to learn it from a 416.
func (s *server) uploadStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := sessionID(r)
	if err != nil {
		return err
	}
	sess, err := s.meta.Session(r.Context(), id)
	if err != nil {
		return err
	}
	out := UploadStatus{ID: sess.ID, Offset: sess.Received, ExpiresAt: formatTime(sess.ExpiresAt), Algorithm: string(sess.Algorithm)}
	if !sess.Expected.IsZero() {
		out.Digest = sess.Expected.String()
	}
	w.Header().Set("Location", uploadsPath+id)
	if sess.Received > 0 {
		w.Header().Set("Range", "0-"+strconv.FormatInt(sess.Received-1, 10))
	}
	// Another client's chunk may move it at any moment.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// SessionStatus is an upload session as GET /blobs/uploads/{id} shows it.
type SessionStatus struct {
	dataplane.Session
	// Expected is the digest the session announced; zero when none.
	Expected digest.Digest
}

// UploadStatus reads an upload session's state (GET /blobs/uploads/{id}):
// Offset is how many bytes it received, where the next chunk starts. An
// unknown, finished or expired session is core.KindNotFound.
func (c *Client) UploadStatus(ctx context.Context, id string) (SessionStatus, error) {
	var out UploadStatus
	req := request{method: http.MethodGet, path: "/blobs/uploads/" + url.PathEscape(id), want: []int{http.StatusOK}}
	if err := c.call(ctx, req, nil, &out); err != nil {
		return SessionStatus{}, err
	}
	st := SessionStatus{Session: dataplane.Session{ID: out.ID, Algorithm: digest.Algorithm(out.Algorithm), Offset: out.Offset}}
	if out.ExpiresAt != "" {
		t, err := parseTime("upload status", out.ExpiresAt)
		if err != nil {
			return SessionStatus{}, err
		}
		st.ExpiresAt = t
	}
	if out.Digest != "" {
		d, err := digest.Parse(out.Digest)
		if err != nil {
			return SessionStatus{}, err
		}
		st.Expected = d
	}
	return st, nil
}
