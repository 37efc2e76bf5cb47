package server

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// Limits are the server's abuse limits. A zero rate turns its limit off.
type Limits struct {
	// KeyRate is how many requests per second one API key may make on
	// average, KeyBurst how many at once (a token bucket per key). A key
	// over its limit gets 429 with Retry-After.
	KeyRate  float64
	KeyBurst int
	// AnonRate and AnonBurst are the same per client address, for the
	// requests that do not authenticate: no credential, an API key or
	// session that is not valid, a Chatwoot webhook with a bad signature.
	// Each such request takes a token; an address with none left gets 429
	// before any credential of it that the server does not already trust
	// (an API key it has not cached, a session cookie) is looked up.
	// Requests with valid credentials take nothing.
	AnonRate  float64
	AnonBurst int
}

// maxBuckets bounds a limiter's memory under a flood of distinct keys or
// addresses.
const maxBuckets = 100_000

// limiter holds a token bucket per name (an API key's id, a client
// address).
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// newLimiter returns a limiter of perSecond with bursts of burst, or nil
// (no limit) when perSecond is not positive.
func newLimiter(perSecond float64, burst int, now func() time.Time) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

func (l *limiter) bucket(name string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[name]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			// Buckets that have filled up again hold nothing a new one
			// would not; drop them, and everything if that is not enough.
			for n, old := range l.buckets {
				if old.TokensAt(now) >= float64(l.burst) {
					delete(l.buckets, n)
				}
			}
			if len(l.buckets) >= maxBuckets {
				clear(l.buckets)
			}
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[name] = b
	}
	return b
}

// take spends one of name's tokens. When there is none it returns false
// and how long until there is.
func (l *limiter) take(name string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	b := l.bucket(name, now)
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(b, now)
}

// spent reports whether name has no token left, without spending one, and
// how long until it has.
func (l *limiter) spent(name string) (bool, time.Duration) {
	if l == nil {
		return false, 0
	}
	now := l.now()
	b := l.bucket(name, now)
	if b.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, l.wait(b, now)
}

func (l *limiter) wait(b *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	return time.Duration(missing / float64(l.rate) * float64(time.Second))
}

// tooMany answers 429 with Retry-After in whole seconds, at least one.
func (s *Server) tooMany(c *gin.Context, limit string, wait time.Duration) {
	s.metrics.limited.WithLabelValues(limit).Inc()
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Header("Retry-After", strconv.Itoa(secs))
	msg := "too many requests with this API key: retry after " + strconv.Itoa(secs) + " s"
	if limit == limitAddress {
		msg = "too many requests without valid credentials from this address: retry after " + strconv.Itoa(secs) + " s"
	}
	if !strings.HasPrefix(c.Request.URL.Path, "/v1/") && !wantsJSON(c) {
		// A page: the browser shows the sentence.
		c.Abort()
		c.Data(http.StatusTooManyRequests, "text/plain; charset=utf-8", []byte(msg+".\n"))
		return
	}
	writeError(c, s.log, &APIError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: msg})
}

// The limits, as hotlane_rate_limited_total names them.
const (
	limitKey     = "key"
	limitAddress = "address"
)

// anonSpent answers 429 and returns true when c's address has no token
// left for unauthenticated requests.
func (s *Server) anonSpent(c *gin.Context) bool {
	if spent, wait := s.anon.spent(c.ClientIP()); spent {
		s.tooMany(c, limitAddress, wait)
		return true
	}
	return false
}

// anonFailed spends a token of c's address for a request that did not
// authenticate; it answers 429 and returns true when there was none.
func (s *Server) anonFailed(c *gin.Context) bool {
	if ok, wait := s.anon.take(c.ClientIP()); !ok {
		s.tooMany(c, limitAddress, wait)
		return true
	}
	return false
}
