package api

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of the per-address limit on the registration and session
// endpoints: a fleet restarting behind one address gets its burst at once,
// a guesser gets a few tries a second.
const (
	DefaultAuthRate  = 5.0
	DefaultAuthBurst = 50
	// maxBuckets bounds the limiter's memory under a flood of addresses.
	maxBuckets = 10000
)

// limiter is a token bucket per source address.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens added per second
	burst   float64
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
	warned bool // a refusal was logged since the last admitted request
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}, now: time.Now}
}

// allow takes a token of addr's bucket, or says how long until one is
// there and whether this is the first refusal since a request was let in.
func (l *limiter) allow(addr string) (ok bool, wait time.Duration, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.forgetFull(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[addr] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.warned = false
		return true, 0, false
	}
	first = !b.warned
	b.warned = true
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), first
}

// forgetFull drops the buckets that have refilled: forgetting them changes
// nothing. If a flood keeps every bucket busy, new addresses still get
// theirs (the map may then exceed maxBuckets until they refill).
func (l *limiter) forgetFull(now time.Time) {
	for addr, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, addr)
		}
	}
}

// rateLimited is a request refused by the limiter.
type rateLimited struct{ retryAfter time.Duration }

func (e *rateLimited) Error() string {
	return "too many requests from this address; try again in " + e.retryAfter.Round(time.Millisecond).String()
}

// retryAfterHeader is the Retry-After value, in whole seconds (at least 1).
func (e *rateLimited) retryAfterHeader() string {
	return strconv.Itoa(max(1, int((e.retryAfter+time.Second-1)/time.Second)))
}

// sourceAddr is the request's peer address without its port. Forwarded
// headers are not believed: anybody can send them.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limit admits a request to endpoint or refuses it, counted and logged.
func (s *Server) limit(r *http.Request, endpoint string) error {
	// A bucket per endpoint: a flood of one does not lock out the other.
	ok, wait, first := s.authLimit.allow(endpoint + " " + sourceAddr(r))
	if ok {
		return nil
	}
	s.metrics.RateLimited.WithLabelValues(endpoint).Inc()
	// One line per flood, not per request: the metric counts them all.
	if first {
		s.log.WarnContext(r.Context(), "rate limited", "endpoint", endpoint, "remote_addr", sourceAddr(r))
	}
	return &rateLimited{retryAfter: wait}
}
