package server

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hotlane/hotlane/feedback"
)

// Metrics holds the Prometheus collectors of one server, served at
// /metrics. Each has its own registry so tests can run several side by
// side. The process makes them first (NewMetrics) and hands their
// observers to the store and the live holder it builds before the server.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	ruleHits  *prometheus.CounterVec
	ruleErrs  *prometheus.CounterVec
	scoreTime prometheus.Histogram
	reloads   *prometheus.CounterVec
	batchSize prometheus.Histogram
	flushTime *prometheus.HistogramVec
	flushPath *prometheus.CounterVec
	served    *prometheus.GaugeVec
	cwHooks   *prometheus.CounterVec
	cwWrites  *prometheus.CounterVec
	limited   *prometheus.CounterVec
}

// NewMetrics makes a server's metrics on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_http_requests_total",
			Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotlane_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_decisions_total",
			Help: "Committed decisions by tier and channel (channels without thresholds of their own count as other).",
		}, []string{"tier", "channel"}),
		ruleHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_rule_hits_total",
			Help: "Rule hits in committed decisions, by rule name.",
		}, []string{"rule"}),
		ruleErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_rule_errors_total",
			Help: "Rule evaluations that failed at run time (counted as not fired), by rule name.",
		}, []string{"rule"}),
		scoreTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hotlane_scoring_duration_seconds",
			Help:    "In-process scoring time of one decision, without I/O.",
			Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 1e-3},
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hotlane_decision_batch_size",
			Help:    "Decisions committed together by the group-commit writer.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		flushTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hotlane_decision_flush_seconds",
			Help:    "Time to commit one decision batch, by outcome.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1, 5},
		}, []string{"outcome"}),
		flushPath: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_decision_batches_total",
			Help: "PostgreSQL decision batches by how they were committed: cached (one round trip from the writer's cache), stale (the cache was out of date: committed again with locks), locked (no cache).",
		}, []string{"path"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_scorer_reloads_total",
			Help: "Loads of a new live ruleset or model, by outcome.",
		}, []string{"outcome"}),
		served: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hotlane_served_version",
			Help: "The ruleset and model versions this process scores with (model 0: rules only).",
		}, []string{"kind"}),
		cwHooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_chatwoot_webhooks_total",
			Help: "Chatwoot webhooks received, by event (events Hotlane does not use count as other) and outcome.",
		}, []string{"event", "outcome"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_rate_limited_total",
			Help: "Requests answered 429 by an abuse limit: key (an API key over --key-rate) or address (an address over --anon-rate with requests that do not authenticate).",
		}, []string{"limit"}),
		cwWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotlane_chatwoot_writes_total",
			Help: "Attempts to write back to Chatwoot's API, by kind and outcome (delivered, retry, failed).",
		}, []string{"kind", "outcome"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.decisions, m.ruleHits, m.ruleErrs, m.scoreTime, m.reloads,
		m.batchSize, m.flushTime, m.flushPath, m.served, m.cwHooks, m.cwWrites, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveFlush records one decision batch commit of the store's writer;
// pass it as the store's Options.ObserveFlush.
func (m *Metrics) ObserveFlush(size int, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.batchSize.Observe(float64(size))
	m.flushTime.WithLabelValues(outcome).Observe(took.Seconds())
}

// ObservePath counts one PostgreSQL decision batch by the way it was
// committed; pass it as the store's Options.ObservePath.
func (m *Metrics) ObservePath(path string) {
	m.flushPath.WithLabelValues(path).Inc()
}

// ObserveChatwootWrite counts one attempt to write back to Chatwoot;
// pass it as the Chatwoot writer's Observe.
func (m *Metrics) ObserveChatwootWrite(kind, outcome string) {
	m.cwWrites.WithLabelValues(kind, outcome).Inc()
}

// LiveOptions are the options of a live holder whose loads these metrics
// count (hotlane_scorer_reloads_total, hotlane_served_version), logging to
// log.
func (m *Metrics) LiveOptions(log *slog.Logger) feedback.LiveOptions {
	return feedback.LiveOptions{
		Log: log,
		Loaded: func(_, next *feedback.Scoring) {
			m.reloads.WithLabelValues("ok").Inc()
			m.served.WithLabelValues("ruleset").Set(float64(next.PolicyVersion))
			m.served.WithLabelValues("model").Set(float64(next.ModelVersion))
		},
		Failed: func(error) { m.reloads.WithLabelValues("error").Inc() },
	}
}
