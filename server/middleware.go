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
	"time"

	"github.com/gin-gonic/gin"

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

// keyCache keeps recently seen keys for a short time so that the score path
// does not pay a database round trip per request. A revoked key stops
// working within the TTL, on every process.
type keyCache struct {
	store keyAuthenticator
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	entries map[[32]byte]cachedKey
}

type cachedKey struct {
	key     feedback.APIKey
	expires time.Time
}

func newKeyCache(store keyAuthenticator, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{store: store, ttl: ttl, now: now, entries: make(map[[32]byte]cachedKey)}
}

func (k *keyCache) authenticate(ctx context.Context, secret string) (feedback.APIKey, error) {
	sum := sha256.Sum256([]byte(secret))
	now := k.now()
	k.mu.RLock()
	e, ok := k.entries[sum]
	k.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	key, err := k.store.AuthenticateAPIKey(ctx, secret)
	if err != nil {
		return feedback.APIKey{}, err
	}
	k.mu.Lock()
	if len(k.entries) > 10000 {
		clear(k.entries)
	}
	k.entries[sum] = cachedKey{key: key, expires: now.Add(k.ttl)}
	k.mu.Unlock()
	return key, nil
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
func requireScope(keys *keyCache, log *slog.Logger, scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		secret, ok := strings.CutPrefix(h, "Bearer ")
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" {
			c.Header("WWW-Authenticate", `Bearer realm="hotlane"`)
			writeError(c, log, &APIError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "missing API key: send Authorization: Bearer <key>"})
			return
		}
		key, err := keys.authenticate(c.Request.Context(), secret)
		if errors.Is(err, feedback.ErrNotFound) {
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
