package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/server"
	"github.com/hotlane/hotlane/templates"
)

// runServe serves the API until ctx ends, then drains in-flight requests
// and the decision writer before returning.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, osEnv, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, stderr, nil)
}

// serve runs the server with a parsed configuration. ready, when not nil,
// receives the listening address once requests are accepted (for tests).
func serve(ctx context.Context, cfg Config, stdout, stderr io.Writer, ready chan<- string) error {
	log := (&dbFlags{LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat}).logger(stderr)
	log.Info("starting hotlane", slog.String("version", version), slog.Any("config", cfg))

	// The metrics come first, so that the store's writer and the live
	// holder report to them from the start.
	// The pages parse first: a broken template stops here, before the
	// database is touched.
	pages, err := templates.Load()
	if err != nil {
		return err
	}
	// Bind before the database is touched: a port in use fails here,
	// before --demo seeds anything or prints a key for a server that
	// never ran.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	listening := false
	defer func() {
		if !listening {
			ln.Close()
		}
	}()
	metrics := server.NewMetrics()
	stateCache := cfg.StateCache
	if stateCache == 0 {
		stateCache = -1 // off
	}
	st, err := store.Open(ctx, cfg.DB, store.Options{Logger: log, WriterConns: cfg.WriterConns, Writers: cfg.Writers,
		StateCache: stateCache, ObserveFlush: metrics.ObserveFlush, ObservePath: metrics.ObservePath,
		SQLiteSynchronous: cfg.SQLiteSync})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close database", slog.Any("err", err))
		}
	}()
	if !cfg.NoMigrate {
		if err := st.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if cfg.Demo {
		if err := seedDemo(ctx, st, stdout, log, ln.Addr().String(), cfg.DemoHistory); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	// One live holder: the server scores with it, the SLA checker reads
	// its SLAs, the tuning job starts from it.
	live := feedback.NewLive(st, metrics.LiveOptions(log))
	if err := live.Refresh(ctx); err != nil {
		return fmt.Errorf("load ruleset: %w", err)
	}
	tuner := cfg.Tune.tuner(st, live, log)
	addresses, err := cfg.addressPolicy() // checked by validate
	if err != nil {
		return err
	}
	var chatwoot *server.ChatwootConfig
	var chatwootWriter *jobs.ChatwootWriter
	if cw := cfg.Chatwoot; cw.AccountID != 0 {
		chatwoot = &server.ChatwootConfig{AccountID: cw.AccountID, Secret: cw.Secret, WriteBack: cw.writeBack(), URL: cw.URL}
		if cw.URL != "" {
			chatwootWriter = &jobs.ChatwootWriter{Store: st, BaseURL: cw.URL, Token: cw.Token, Interval: cfg.DeliveryInterval,
				Observe: metrics.ObserveChatwootWrite, Log: log}
			chatwoot.Wake = chatwootWriter.Wake
		} else {
			log.Info("chatwoot: scoring webhooks without writing back (set --chatwoot-url and --chatwoot-api-token to write back)")
		}
		if cw.Secret == "" {
			log.Warn("chatwoot: webhooks are accepted unsigned; set --chatwoot-webhook-secret to the webhook's secret")
		}
	}
	proxies, _ := cfg.trustedProxies() // validated with the rest of cfg
	srv := server.New(server.Config{
		Chatwoot:       chatwoot,
		StoreMessages:  cfg.StoreMessages,
		KeyCacheTTL:    cfg.KeyCacheTTL,
		Version:        version,
		Live:           live,
		Metrics:        metrics,
		Tuning:         tuner,
		Addresses:      addresses,
		Pages:          pages,
		SecureCookies:  strings.HasPrefix(cfg.PublicURL, "https://"),
		Limits:         cfg.limits(),
		TrustedProxies: proxies,
	}, st, log)

	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { live.Watch(bg, cfg.ReloadInterval) })
	wg.Go(func() { runJob(bg, log, "live-events", srv.RunLiveEvents) })
	deliverer := &jobs.Deliverer{Store: st, PublicURL: cfg.PublicURL, Interval: cfg.DeliveryInterval, Log: log, Addresses: addresses}
	slaChecker := &jobs.SLAChecker{Store: st, SLA: jobs.LiveSLA(live), Interval: cfg.SLAInterval, Log: log}
	if cfg.Deliver {
		wg.Go(func() { runJob(bg, log, "deliver", deliverer.Run) })
	} else {
		log.Info("alert delivery off in this process (--deliver=false): another process must deliver")
	}
	if cfg.Deliver && chatwootWriter != nil {
		wg.Go(func() { runJob(bg, log, "chatwoot", chatwootWriter.Run) })
	}
	wg.Go(func() { runJob(bg, log, "sla", slaChecker.Run) })
	retention := &jobs.Retention{Store: st, Retain: cfg.RetainDecisions, Log: log}
	wg.Go(func() { runJob(bg, log, jobs.RetentionJob, retention.Run) })
	if next, loc, _ := parseSchedule(cfg.TuneSchedule, cfg.TZ, time.Now()); !next.IsZero() {
		sched, err := startTuneSchedule(bg, cfg.TuneSchedule, loc, tuner, log)
		if err != nil {
			stopBG()
			wg.Wait()
			return err
		}
		// Stop waits for a running tuning job, which ends with bg.
		defer func() { <-sched.Stop().Done() }()
		log.Info("tuning scheduled", slog.String("schedule", cfg.TuneSchedule), slog.String("tz", cfg.TZ),
			slog.Time("next_run", next))
	} else {
		log.Info("tuning schedule off: run it with hotlane tune or POST /v1/jobs/tune")
	}

	serveErr := make(chan error, 1)
	if cfg.DebugAddr != "" {
		dln, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			stopBG()
			wg.Wait()
			return fmt.Errorf("listen on --debug-addr: %w", err)
		}
		debugSrv := &http.Server{Handler: debugHandler(), ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { _ = debugSrv.Serve(dln) }()
		defer debugSrv.Close()
		log.Warn("profiler listening: it has no authentication, keep it private", slog.String("debug_addr", dln.Addr().String()))
	}
	listening = true // Serve closes ln from here on
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("listening", slog.String("addr", ln.Addr().String()))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err = <-serveErr:
		stopBG()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", slog.Int64("timeout_ms", cfg.ShutdownTimeout.Milliseconds()))
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	srv.CloseStreams() // open event streams would hold Shutdown until its timeout
	err = httpSrv.Shutdown(shutCtx)
	stopBG()
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// runJob runs a background job until ctx ends. A job that panics or
// returns early is logged and started again after a pause, so a bug in one
// pass cannot stop alert delivery for the life of the process.
func runJob(ctx context.Context, log *slog.Logger, name string, run func(context.Context) error) {
	for ctx.Err() == nil {
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return run(ctx)
		}()
		if ctx.Err() != nil {
			return
		}
		log.Error("background job stopped; restarting", slog.String("job", name), slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// debugHandler serves Go's profiler for --debug-addr: CPU, heap,
// allocation, goroutine and block profiles and execution traces, under
// /debug/pprof/.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
