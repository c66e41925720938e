package protocol_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/protocol"
)

// TestLeaseRefusesAttemptIDThatIsAPath: the runner names directories after
// the attempt id, so a lease whose id is a path is refused, not followed.
func TestLeaseRefusesAttemptIDThatIsAPath(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"../../mirrors", "01a2490f-171f-71bd-bedc-1ddf8f41476e/../../x", "", "."} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"attempt_id":` + strconv.Quote(id) + `,"lease_token":"t"}`))
		}))
		c := &protocol.Client{BaseURL: hs.URL}
		l, err := c.Lease(t.Context(), time.Second)
		hs.Close()
		if err == nil || !strings.Contains(err.Error(), "malformed attempt id") {
			t.Errorf("attempt id %q: lease %+v, error %v", id, l, err)
		}
	}
}
