package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/singleflight"

	"github.com/hotlane/hotlane/feedback"
)

const (
	ctxRequestID = "hotlane.request_id"
	ctxAPIKey    = "hotlane.api_key"
)

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// withRequestID takes the caller's X-Request-Id when it is a sane token and
// makes one otherwise, so a request can be followed from the platform's logs
// to ours.
func withRequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if !validRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(ctxRequestID, id)
		c.Header("X-Request-Id", id)
		c.Next()
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// withAccessLog logs one line per request. Successful requests log at debug
// level so the hot score path does not pay for a line per decision by
// default; client and server errors log at info and above.
func withAccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelDebug
		switch {
		case status >= 500:
			level = slog.LevelWarn
		case status >= 400:
			level = slog.LevelInfo
		}
		if !log.Enabled(c.Request.Context(), level) {
			return
		}
		log.LogAttrs(c.Request.Context(), level, "request",
			slog.String("request_id", requestID(c)),
			slog.String("method", methodLabel(c.Request.Method)),
			slog.String("route", routeLabel(c)),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int("bytes_out", c.Writer.Size()),
		)
	}
}

// withMetrics counts requests by route and status and observes their
// latency. Every label comes from a closed set, so no request can grow the
// metrics: the method is one of the standard ones or "other", the route is
// the registered pattern (never the raw path) or "unmatched", and the
// status is the one the server wrote.
func withMetrics(m *Metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		method, route := methodLabel(c.Request.Method), routeLabel(c)
		status := strconv.Itoa(c.Writer.Status())
		m.requests.WithLabelValues(method, route, status).Inc()
		m.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
	}
}

// methodLabel maps a request method to a closed set of values: the
// methods of RFC 9110 and PATCH keep their name, anything else is "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// routeLabel is the registered route pattern, or "unmatched".
func routeLabel(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	return "unmatched"
}

// withRecovery turns a panic into a logged 500 with the JSON error body
// instead of a dropped connection.
func withRecovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				log.Error("panic serving request", slog.String("request_id", requestID(c)),
					slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				if !c.Writer.Written() {
					c.AbortWithStatusJSON(http.StatusInternalServerError,
						gin.H{"error": &APIError{Code: "internal", Message: "internal error"}})
				}
			}
		}()
		c.Next()
	}
}

// keyAuthenticator is what authentication needs from the store.
type keyAuthenticator interface {
	AuthenticateAPIKey(ctx context.Context, secret string) (feedback.APIKey, error)
}

// keyCache keeps recently seen keys so that the score path does not ask
// the database for its key on every request. A key is trusted for ttl
// after it was last read: past half of that, the first request to use it
// starts one refresh in the background and goes on with the key it has,
// so under steady traffic no request waits on a key lookup, and a burst of
// requests with a key that is not cached asks the database once (single
// flight). A refresh that finds the key revoked drops it, so a revocation
// applies within ttl.
type keyCache struct {
	store keyAuthenticator
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	entries map[[32]byte]*cachedKey
	lookups singleflight.Group
}

type cachedKey struct {
	key        feedback.APIKey
	refreshAt  time.Time // past it, the next use refreshes in the background
	expires    time.Time // past it, the key is read again before use
	refreshing atomic.Bool
}

// maxCachedKeys bounds the cache; past it the oldest entries go.
const maxCachedKeys = 10_000

func newKeyCache(store keyAuthenticator, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{store: store, ttl: ttl, now: now, entries: make(map[[32]byte]*cachedKey)}
}

func (k *keyCache) authenticate(ctx context.Context, secret string) (feedback.APIKey, error) {
	sum := sha256.Sum256([]byte(secret))
	now := k.now()
	k.mu.RLock()
	e := k.entries[sum]
	k.mu.RUnlock()
	if e != nil && now.Before(e.expires) {
		if !now.Before(e.refreshAt) && e.refreshing.CompareAndSwap(false, true) {
			go k.refresh(sum, secret, e)
		}
		return e.key, nil
	}
	// Not cached, or not used for a whole ttl: read it, once for all the
	// requests that ask at the same time.
	v, err, _ := k.lookups.Do(string(sum[:]), func() (any, error) {
		key, err := k.store.AuthenticateAPIKey(context.WithoutCancel(ctx), secret)
		if err != nil {
			return nil, err
		}
		k.put(sum, key)
		return key, nil
	})
	if err != nil {
		return feedback.APIKey{}, err
	}
	return v.(feedback.APIKey), nil
}

// trusted reports whether secret is a key the cache holds and has not
// expired: one that authenticate answers without asking the database.
func (k *keyCache) trusted(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	k.mu.RLock()
	e := k.entries[sum]
	k.mu.RUnlock()
	return e != nil && k.now().Before(e.expires)
}

// refresh reads a cached key again, in the background: a revoked key is
// dropped; a failure keeps the cached key until it expires.
func (k *keyCache) refresh(sum [32]byte, secret string, e *cachedKey) {
	defer e.refreshing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key, err := k.store.AuthenticateAPIKey(ctx, secret)
	switch {
	case errors.Is(err, feedback.ErrNotFound):
		k.mu.Lock()
		if k.entries[sum] == e {
			delete(k.entries, sum)
		}
		k.mu.Unlock()
	case err == nil:
		k.put(sum, key)
	}
}

func (k *keyCache) put(sum [32]byte, key feedback.APIKey) {
	now := k.now()
	e := &cachedKey{key: key, refreshAt: now.Add(k.ttl / 2), expires: now.Add(k.ttl)}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.entries) >= maxCachedKeys {
		// Drop the entries closest to expiry rather than all of them, so
		// the keys in use stay cached.
		for s, old := range k.entries {
			if len(k.entries) < maxCachedKeys*9/10 {
				break
			}
			if old.expires.Before(now.Add(k.ttl / 2)) {
				delete(k.entries, s)
			}
		}
		for s := range k.entries { // all fresh: drop any
			if len(k.entries) < maxCachedKeys*9/10 {
				break
			}
			delete(k.entries, s)
		}
	}
	k.entries[sum] = e
}

// forget drops a key from the cache, so that a revocation made through
// this process applies to it at once.
func (k *keyCache) forget(id int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for sum, e := range k.entries {
		if e.key.ID == id {
			delete(k.entries, sum)
		}
	}
}

// requireScope authenticates the bearer key and checks it holds scope:
// 401 without a valid key, 403 with a valid key lacking the scope.
func (s *Server) requireScope(scope string) gin.HandlerFunc {
	keys, log := s.keys, s.log
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		secret, ok := strings.CutPrefix(h, "Bearer ")
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" {
			if s.anonFailed(c) {
				return
			}
			c.Header("WWW-Authenticate", `Bearer realm="hotlane"`)
			writeError(c, log, &APIError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "missing API key: send Authorization: Bearer <key>"})
			return
		}
		if s.anon != nil && !keys.trusted(secret) && s.anonSpent(c) {
			return
		}
		key, err := keys.authenticate(c.Request.Context(), secret)
		if errors.Is(err, feedback.ErrNotFound) {
			if s.anonFailed(c) {
				return
			}
			c.Header("WWW-Authenticate", `Bearer realm="hotlane", error="invalid_token"`)
			writeError(c, log, &APIError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "invalid or revoked API key"})
			return
		}
		if err != nil {
			writeError(c, log, fmt.Errorf("authenticate: %w: %w", errUnavailable, err))
			return
		}
		if !slices.Contains(key.Scopes, scope) {
			writeError(c, log, &APIError{Status: http.StatusForbidden, Code: "forbidden",
				Message: fmt.Sprintf("this API key lacks the %q scope", scope)})
			return
		}
		if s.keyLimit != nil {
			if ok, wait := s.keyLimit.take(strconv.FormatInt(key.ID, 10)); !ok {
				s.tooMany(c, limitKey, wait)
				return
			}
		}
		c.Set(ctxAPIKey, key)
		c.Next()
	}
}

// apiKeyName names the caller for audit fields such as a policy's author.
func apiKeyName(c *gin.Context) string {
	if v, ok := c.Get(ctxAPIKey); ok {
		if k, ok := v.(feedback.APIKey); ok {
			return "apikey:" + k.Name
		}
	}
	return ""
}
