// Package server is Hotlane's HTTP face: the Gin router, its middleware
// (request ids, access logs, metrics, authentication by API key, and the
// abuse limits of ratelimit.go: a token bucket per key and per client
// address for requests that do not authenticate), the JSON
// handlers of the /v1 API, health and readiness probes, Prometheus metrics
// and the OpenAPI document. Handlers validate requests, score with the live
// pairing of ruleset and model (feedback.Live), call the store through the
// small interfaces declared beside them, and map errors to one JSON error
// shape (errors.go). It also serves the web UI (web.go, and a file per
// area: web_pages.go for agents, web_lead.go, web_rules.go and web_kpis.go
// for leads, web_settings.go for admins, charts.go for the SVG charts,
// apiref.go for the API reference rendered from openapi.yaml):
// server-rendered pages from templates on a session cookie, and the live
// events the queue and /v1/stream carry (live_events.go, shared between
// processes by live_relay.go). chatwoot.go receives Chatwoot's webhooks:
// signatures, payload shapes and their signals; it queues the write-back
// that jobs.ChatwootWriter sends.
//
// server imports feedback, model and templates, and nothing else of
// Hotlane's: cmd
// builds it on the store, the live holder, the metrics and the tuning job
// (the Tuning interface), so the server never reaches the database or the
// jobs except through what it is handed.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/templates"
)

// Config is the part of Hotlane's configuration the HTTP server uses.
type Config struct {
	// StoreMessages keeps the visitor's message text with each decision;
	// off by default so that chat text stays out of the database.
	StoreMessages bool
	// KeyCacheTTL bounds how long an authenticated API key is trusted
	// without asking the database again (and so how long a revoked key may
	// still work). Zero means 10 seconds.
	KeyCacheTTL time.Duration
	// Version is reported by /healthz.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Live is the live ruleset and model the server scores with, shared
	// with the process's jobs; nil means a holder of the server's own over
	// its store, its loads counted in the server's metrics.
	Live *feedback.Live
	// Metrics are the server's Prometheus metrics, made before the store so
	// the store's writer can report to them; nil means new ones.
	Metrics *Metrics
	// Tuning runs the tuning job and applies reports for the tuning
	// endpoints; nil makes them answer 503.
	Tuning Tuning
	// Pages are the web UI's parsed templates; nil parses them in New,
	// which panics on a broken template (cmd loads them first to report
	// the error cleanly).
	Pages *templates.Engine
	// SecureCookies marks the session cookie Secure, for a UI served over
	// https (--public-url).
	SecureCookies bool
	// Chatwoot turns the Chatwoot integration on; nil answers its webhook
	// with 404 and how to turn it on.
	Chatwoot *ChatwootConfig
	// Addresses says which addresses a destination's URL may name; the
	// zero value allows public addresses only. The sender checks resolved
	// addresses again on every delivery.
	Addresses feedback.AddressPolicy
	// Limits are the abuse limits: per API key and per client address for
	// requests that do not authenticate. The zero value limits nothing.
	Limits Limits
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For names the client; with none, the client is the
	// connection's peer, so that no one can choose the address the limits
	// count.
	TrustedProxies []string
}

// Tuning is what the tuning endpoints need of the tuning job. Its errors
// are of feedback's kinds: feedback.ErrLocked while another run holds the
// job's lock, ErrConflict (ErrNothingToApply, ErrApplied, ErrStaleReport,
// ErrNotPromoted) for a report that cannot be applied.
type Tuning interface {
	RunNow(ctx context.Context, req feedback.TuneRequest) (feedback.TuneResult, error)
	ApplyReport(ctx context.Context, id, author string) (feedback.PolicyVersion, error)
}

// Store is everything the server needs from the store. Each
// handler depends only on the narrow interface it uses; this union exists
// so that New can take one value.
type Store interface {
	keyAuthenticator
	feedback.LiveSource
	decisionRecorder
	policyAdmin
	modelAdmin
	readStore
	destinationAdmin
	feedbackStore
	kpiStore
	tuningStore
	healthChecker
	webStore
	liveShare
	auditLog
	chatwootStore
}

// healthChecker is what /readyz asks the store.
type healthChecker interface {
	Ping(ctx context.Context) error
	WriteHealth() feedback.WriteHealth
}

// Server is the HTTP API. Build one with New and serve Handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	metrics   *Metrics
	live      *feedback.Live
	keys      *keyCache
	decisions decisionRecorder
	policies  policyAdmin
	models    modelAdmin
	reads     readStore
	pinger    healthChecker
	engine    *gin.Engine

	destinations destinationAdmin
	fb           feedbackAPI
	tuning       tuningStore
	tuner        Tuning

	web      webStore
	auditLog auditLog
	chatwoot chatwootStore
	// receiptsPurged is when Chatwoot's old delivery receipts were last
	// purged (Unix seconds).
	receiptsPurged atomic.Int64
	pages          *templates.Engine
	logins         *loginLimiter
	keyLimit       *limiter // nil: no limit
	anon           *limiter // nil: no limit

	backtests    chan struct{} // one backtest at a time
	events       *broker
	relay        *relay // nil unless the database shares live events
	stopStreams  chan struct{}
	closeStreams sync.Once
}

// New builds the server and its routes. It does not load the live ruleset:
// call Live().Refresh before serving, and run Live().Watch to follow
// changes.
func New(cfg Config, store Store, log *slog.Logger) *Server {
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = 10 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics()
	}
	live := cfg.Live
	if live == nil {
		live = feedback.NewLive(store, m.LiveOptions(log))
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		now:       now,
		metrics:   m,
		live:      live,
		keys:      newKeyCache(store, cfg.KeyCacheTTL, now),
		decisions: store,
		policies:  store,
		models:    store,
		reads:     store,
		pinger:    store,
	}
	s.destinations = store
	s.tuning = store
	s.tuner = cfg.Tuning
	s.fb = feedbackAPI{store: store, kpis: store}
	s.web = store
	s.auditLog = store
	s.chatwoot = store
	s.pages = cfg.Pages
	if s.pages == nil {
		pages, err := templates.Load()
		if err != nil {
			panic(err)
		}
		s.pages = pages
	}
	s.logins = &loginLimiter{fails: map[string][]time.Time{}}
	s.keyLimit = newLimiter(cfg.Limits.KeyRate, cfg.Limits.KeyBurst, now)
	s.anon = newLimiter(cfg.Limits.AnonRate, cfg.Limits.AnonBurst, now)
	s.backtests = make(chan struct{}, 1)
	s.events, s.stopStreams = newBroker(), make(chan struct{})
	s.relay = newRelay(store)
	if _, err := apiReference(); err != nil {
		log.Error("the API reference page cannot be shown", slog.Any("err", err))
	}
	s.engine = s.routes()
	return s
}

// Live returns the holder of the live ruleset and model the server scores
// with, for the owner of the process to refresh and watch.
func (s *Server) Live() *feedback.Live { return s.live }

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		// Gin then trusts no proxy: the limits count connections' peers.
		s.log.Error("trusted proxies ignored", slog.Any("error", err))
	}
	r.Use(withRequestID(), withRecovery(s.log), withAccessLog(s.log), withMetrics(s.metrics), withSaneParams())
	r.NoRoute(func(c *gin.Context) {
		writeError(c, s.log, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint"})
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, s.log, &APIError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "method not allowed on this endpoint"})
	})

	r.GET("/healthz", s.handleHealth)
	r.GET("/readyz", s.handleReady)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))
	r.GET("/openapi.yaml", s.handleOpenAPI)

	v1 := r.Group("/v1")
	score := s.requireScope(feedback.ScopeScore)
	admin := s.requireScope(feedback.ScopeAdmin)

	v1.POST("/score", score, s.handleScore)
	v1.GET("/decisions/:id", score, s.handleGetDecision)
	v1.GET("/conversations/:id", score, s.handleGetConversation)

	v1.GET("/rules", admin, s.handleGetRules)
	v1.PUT("/rules", admin, s.handlePutRules)
	v1.POST("/rules/validate", admin, s.handleValidateRules)
	v1.GET("/rulesets", admin, s.handleListRulesets)
	v1.GET("/rulesets/:version", admin, s.handleGetRuleset)
	v1.POST("/rulesets/:version/activate", admin, s.handleActivateRuleset)
	s.draftRoutes(v1, admin)

	v1.GET("/models", admin, s.handleListModels)
	v1.POST("/models", admin, s.handleCreateModel)
	v1.GET("/models/:version", admin, s.handleGetModel)
	v1.POST("/models/:version/activate", admin, s.handleActivateModel)
	v1.POST("/models/:version/promote", admin, s.handleActivateModel)
	v1.POST("/models/rollback", admin, s.handleRollbackModel)

	v1.POST("/jobs/tune", admin, s.handleTune)
	v1.GET("/jobs/runs", admin, s.handleJobRuns)
	v1.GET("/reports", admin, s.handleListReports)
	v1.GET("/reports/:id", admin, s.handleGetReport)
	v1.POST("/reports/:id/apply", admin, s.handleApplyReport)
	v1.GET("/audit", admin, s.handleAudit)
	s.destinationRoutes(v1, admin)
	s.feedbackRoutes(v1)
	// Chatwoot cannot send an API key: the webhook's signature
	// authenticates it (ChatwootConfig.Secret).
	v1.POST("/integrations/chatwoot", s.handleChatwoot)
	s.webRoutes(r)
	return r
}
