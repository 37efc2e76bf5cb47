package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics holds the Prometheus collectors of one server. Each server has its
// own registry so tests can run several side by side.
type metrics struct {
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
}

func newMetrics() *metrics {
	m := &metrics{
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
	}
	m.registry.MustRegister(m.requests, m.latency, m.decisions, m.ruleHits, m.ruleErrs, m.scoreTime, m.reloads,
		m.batchSize, m.flushTime, m.flushPath, m.served,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveFlush records one decision batch commit of the store's writer;
// pass it as feedback.Options.ObserveFlush.
func (s *Server) ObserveFlush(size int, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.metrics.batchSize.Observe(float64(size))
	s.metrics.flushTime.WithLabelValues(outcome).Observe(took.Seconds())
}

// ObservePath counts one PostgreSQL decision batch by the way it was
// committed; pass it as feedback.Options.ObservePath.
func (s *Server) ObservePath(path string) {
	s.metrics.flushPath.WithLabelValues(path).Inc()
}
