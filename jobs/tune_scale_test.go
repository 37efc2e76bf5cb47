package jobs_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/jobs"
)

// TestTuneAtScale measures one tuning run over a large window: set
// HOTLANE_TUNE_SCALE_ROWS (for example 1000000) and HOTLANE_TEST_POSTGRES.
// It fills a fresh schema with that many conversations, each with one
// decision and an outcome, then runs the job and logs its time and peak
// heap. It asserts what the run produced, not how fast: the figures go to
// BENCHMARKS.md.
func TestTuneAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOTLANE_TUNE_SCALE_ROWS"))
	if n <= 0 {
		t.Skip("set HOTLANE_TUNE_SCALE_ROWS (and HOTLANE_TEST_POSTGRES) to measure a tuning run at scale")
	}
	ctx := context.Background()
	dsn := storetest.DSN(t, "postgres")
	s := openTuneStoreDSN(t, dsn)

	start := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Deterministic signals per row; the outcome follows a known logit in
	// log deal size, plan and a rule hit, drawn with a seeded random.
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`SELECT setseed(0.42)`, nil},
		{`CREATE TEMP TABLE gen AS
SELECT g, exp(5 + (g::bigint * 7919 % 1000) / 200.0) AS deal, (ARRAY['free','pro','team'])[1 + g % 3] AS plan,
       g % 2 = 0 AS is_returning, (g::bigint * 31 % 600) AS wait,
       $2::timestamptz - make_interval(secs => (g::float8 / $1) * 20 * 86400) AS at
FROM generate_series(1, $1::int) g`, []any{n, asOf}},
		{`INSERT INTO decisions (id, conversation_id, channel, signals, score, tier, reasons, route, policy_version, latency_us, occurred_at, created_at)
SELECT 'd' || g, 'c' || g, CASE WHEN g % 4 = 0 THEN 'whatsapp' ELSE 'web' END,
       jsonb_build_object('deal_size', round(deal::numeric, 2), 'plan', plan, 'returning', is_returning, 'wait_seconds', wait),
       0.5, 'medium',
       CASE WHEN deal >= 5000 THEN '[{"kind":"rule","name":"big-deal","contribution":0.5}]'::jsonb ELSE '[]'::jsonb END,
       '{}'::jsonb, 1, 100, at, at
FROM gen`, nil},
		{`INSERT INTO conversation_events (id, conversation_id, type, at, created_at)
SELECT 'e' || g, 'c' || g,
       CASE WHEN random() < 1 / (1 + exp(-(-4 + 0.5 * ln(deal) + CASE plan WHEN 'pro' THEN 1 ELSE 0 END))) THEN 'converted' ELSE 'lost' END,
       at, at
FROM gen`, nil},
	} {
		if _, err := conn.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("%.40s: %v", stmt.sql, err)
		}
	}
	t.Logf("seeded %d conversations in %s", n, time.Since(start).Round(time.Millisecond))

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	began := time.Now()
	// Every labelled conversation is held (no sampling), as in the figures
	// of BENCHMARKS.md this test gives.
	res, err := (&jobs.Tuner{Store: s, MaxRows: max(n, jobs.DefaultTuneMaxRows)}).RunNow(ctx, feedback.TuneRequest{AsOf: asOf})
	took := time.Since(began)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if rep.Data.Conversations != n || rep.Data.Labelled != n || rep.CandidateModelVersion == 0 {
		t.Fatalf("report data %+v, candidate %d", rep.Data, rep.CandidateModelVersion)
	}
	t.Logf("tuning run over %d decisions: %s, peak heap %d MB, candidate ROC-AUC %.4f (live %.4f), promoted %v; %d features, L2 %g (from CV %v), interactions %v",
		n, took.Round(time.Millisecond), peak.Load()>>20, rep.Candidate.ROCAUC, rep.Live.ROCAUC, rep.Promotion.Promoted,
		rep.Fit.Features, rep.L2, rep.L2FromCV, rep.Interactions)
}

func openTuneStoreDSN(t *testing.T, dsn string) *store.Store {
	t.Helper()
	return openTuneStoreWith(t, func() string { return dsn })
}
