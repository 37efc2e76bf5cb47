package store

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/model"
)

// The rulesets of the backtest at scale: 26 live rules over the seeded
// signals (two on the message, which is not stored, so they never fire),
// and a draft that changes two of them and adds two. BENCHMARKS.md runs
// the CLI with these two documents as live.yaml and draft.yaml.
const (
	scaleLive = `
base: -3
rules:
  - {name: big-deal, expression: 'deal_size >= 10000 and lifecycle_stage in ["opportunity", "customer"]', points: 2.5, tier_floor: high}
  - {name: enterprise-deal, expression: 'deal_size >= 50000', points: 2, tier_floor: urgent}
  - {name: mid-deal, expression: 'deal_size >= 2000 and deal_size < 10000', points: 0.8}
  - {name: pricing-intent, expression: 'pricing_page_views >= 3', points: 1.5}
  - {name: pricing-glance, expression: 'pricing_page_views >= 1 and pricing_page_views < 3', points: 0.4}
  - {name: returning-customer, expression: 'returning == true and plan in ["pro", "enterprise"]', points: 1}
  - {name: returning-visitor, expression: 'returning == true and plan == "free"', points: 0.3}
  - {name: long-wait, expression: 'wait_seconds > 120', points: 1}
  - {name: very-long-wait, expression: 'wait_seconds > 600', points: 0.8}
  - {name: free-plan-browsing, expression: 'plan == "free" and pricing_page_views == 0', points: -1.5}
  - {name: enterprise-plan, expression: 'plan == "enterprise"', points: 1.2}
  - {name: team-plan, expression: 'plan == "team"', points: 0.5}
  - {name: opportunity-stage, expression: 'lifecycle_stage == "opportunity"', points: 0.9}
  - {name: customer-stage, expression: 'lifecycle_stage == "customer"', points: 0.4}
  - {name: churned, expression: 'lifecycle_stage == "churned"', points: -0.8}
  - {name: large-company, expression: 'company_size >= 500', points: 1}
  - {name: small-company, expression: 'company_size < 10', points: -0.5}
  - {name: many-seats, expression: 'seats >= 50', points: 0.7}
  - {name: deep-visit, expression: 'pages_viewed >= 8', points: 0.6}
  - {name: frequent-visitor, expression: 'visits >= 5 and returning == true', points: 0.5}
  - {name: paid-campaign, expression: 'utm_source in ["google-ads", "linkedin"]', points: 0.6}
  - {name: partner-referral, expression: 'utm_source == "partner"', points: 1.1}
  - {name: target-country, expression: 'country in ["US", "GB", "DE", "FR", "CA"]', points: 0.3}
  - {name: whatsapp-customer, expression: 'lifecycle_stage == "customer" and wait_seconds > 60', points: 0.8, channels: [whatsapp]}
  - {name: demo-request, expression: 'message matches "(?i)\\b(demo|quote|trial|pricing for)\\b"', points: 1.5}
  - {name: churn-risk, expression: 'lifecycle_stage == "customer" and message matches "(?i)cancel|refund|downgrade|terminate"', points: 2.5, tier_floor: high}
thresholds:
  default:  {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.65, medium: 0.35}
routes:
  - {rule: churn-risk, team: retention}
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, channel: whatsapp, team: whatsapp-sales}
  - {tier: high, team: sales}
  - {tier: medium, team: sales}
  - {team: general-queue}
`
	scaleDraft = `
base: -3
rules:
  - {name: big-deal, expression: 'deal_size >= 10000 and lifecycle_stage in ["opportunity", "customer"]', points: 2.5, tier_floor: high}
  - {name: enterprise-deal, expression: 'deal_size >= 50000', points: 2, tier_floor: urgent}
  - {name: mid-deal, expression: 'deal_size >= 2000 and deal_size < 10000', points: 0.8}
  - {name: pricing-intent, expression: 'pricing_page_views >= 4', points: 1.8}
  - {name: pricing-glance, expression: 'pricing_page_views >= 1 and pricing_page_views < 3', points: 0.4}
  - {name: returning-customer, expression: 'returning == true and plan in ["pro", "enterprise"]', points: 1}
  - {name: returning-visitor, expression: 'returning == true and plan == "free"', points: 0.3}
  - {name: long-wait, expression: 'wait_seconds > 180', points: 1.2}
  - {name: very-long-wait, expression: 'wait_seconds > 600', points: 0.8}
  - {name: free-plan-browsing, expression: 'plan == "free" and pricing_page_views == 0', points: -1.5}
  - {name: enterprise-plan, expression: 'plan == "enterprise"', points: 1.2}
  - {name: team-plan, expression: 'plan == "team"', points: 0.5}
  - {name: opportunity-stage, expression: 'lifecycle_stage == "opportunity"', points: 0.9}
  - {name: customer-stage, expression: 'lifecycle_stage == "customer"', points: 0.4}
  - {name: churned, expression: 'lifecycle_stage == "churned"', points: -0.8}
  - {name: large-company, expression: 'company_size >= 500', points: 1}
  - {name: small-company, expression: 'company_size < 10', points: -0.5}
  - {name: many-seats, expression: 'seats >= 50', points: 0.7}
  - {name: deep-visit, expression: 'pages_viewed >= 8', points: 0.6}
  - {name: frequent-visitor, expression: 'visits >= 5 and returning == true', points: 0.5}
  - {name: paid-campaign, expression: 'utm_source in ["google-ads", "linkedin"]', points: 0.6}
  - {name: partner-referral, expression: 'utm_source == "partner"', points: 1.1}
  - {name: target-country, expression: 'country in ["US", "GB", "DE", "FR", "CA"]', points: 0.3}
  - {name: whatsapp-customer, expression: 'lifecycle_stage == "customer" and wait_seconds > 60', points: 0.8, channels: [whatsapp]}
  - {name: hot-opportunity, expression: 'lifecycle_stage == "opportunity" and pricing_page_views >= 2 and deal_size >= 5000', points: 1.5, tier_floor: high}
  - {name: large-company-pricing, expression: 'company_size >= 200 and pricing_page_views >= 2', points: 0.9}
  - {name: demo-request, expression: 'message matches "(?i)\\b(demo|quote|trial|pricing for)\\b"', points: 1.5}
  - {name: churn-risk, expression: 'lifecycle_stage == "customer" and message matches "(?i)cancel|refund|downgrade|terminate"', points: 2.5, tier_floor: high}
thresholds:
  default:  {urgent: 0.9, high: 0.7, medium: 0.4}
  whatsapp: {urgent: 0.85, high: 0.65, medium: 0.35}
routes:
  - {rule: churn-risk, team: retention}
  - {tier: urgent, team: enterprise-sales}
  - {tier: high, channel: whatsapp, team: whatsapp-sales}
  - {tier: high, team: sales}
  - {tier: medium, team: sales}
  - {team: general-queue}
`
)

// scaleModel is a model of the shape the tuning job fits on the seeded
// signals: 36 features (logs, numbers, categories, a flag).
func scaleModel(t *testing.T) *model.Model {
	t.Helper()
	feats := []model.Feature{
		{Name: "company_size", Signal: "company_size", Kind: model.KindLog, Center: 4, Scale: 2.9, Min: 0.69, Max: 7.96},
		{Name: "deal_size", Signal: "deal_size", Kind: model.KindLog, Center: 7.55, Scale: 2.63, Min: 4.06, Max: 10.97},
		{Name: "pages_viewed", Signal: "pages_viewed", Kind: model.KindNumber, Center: 11, Scale: 1.5, Min: 4, Max: 13},
		{Name: "pricing_page_views", Signal: "pricing_page_views", Kind: model.KindNumber, Center: 3, Scale: 3, Min: 0, Max: 12},
		{Name: "returning", Signal: "returning", Kind: model.KindBool},
		{Name: "seats", Signal: "seats", Kind: model.KindLog, Center: 2.56, Scale: 1.76, Min: 0.69, Max: 4.98},
		{Name: "visits", Signal: "visits", Kind: model.KindNumber, Center: 7, Scale: 4.45, Min: 1, Max: 12},
		{Name: "wait_seconds", Signal: "wait_seconds", Kind: model.KindNumber, Center: 154, Scale: 78.6, Min: 40, Max: 258},
	}
	for signal, values := range map[string][]string{
		"country":         {"US", "GB", "DE", "FR", "CA", "BR", "IN", "ES", "NL", "JP"},
		"lifecycle_stage": {"lead", "opportunity", "customer", "churned"},
		"plan":            {"free", "pro", "team", "enterprise"},
		"utm_source":      {"organic", "google-ads", "linkedin", "partner", "newsletter", "direct"},
	} {
		for _, v := range values {
			feats = append(feats, model.Feature{Name: signal + "=" + v, Signal: signal, Kind: model.KindCategory, Value: v})
		}
		feats = append(feats, model.Feature{Name: signal + "=other", Signal: signal, Kind: model.KindOther})
	}
	beta := make([]float64, len(feats))
	for i := range beta {
		beta[i] = 0.3 * math.Cos(1.7*float64(i))
	}
	body, err := json.Marshal(&model.Model{Intercept: -3.2, RuleWeights: map[string]float64{"big-deal": 1.9, "pricing-intent": 1.1, "long-wait": 0.2},
		Encoder: model.Encoder{Version: 1, Features: feats}, Beta: beta})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ParseModel(body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBacktestAtScale measures one backtest over a large window: set
// HOTLANE_BACKTEST_SCALE_ROWS (for example 1000000) and
// HOTLANE_TEST_POSTGRES. It fills a fresh schema with about that many
// decisions, 2 to 6 for each of a quarter as many conversations over four
// weeks, outcomes on 65 % of the conversations, tier alerts, review
// samples, agents' labels and tier feedback, then replays the window
// through the draft and live rulesets above with a 36-feature model and
// logs the time and peak heap. It asserts what the run produced, not how
// fast: the figures go to BENCHMARKS.md.
func TestBacktestAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOTLANE_BACKTEST_SCALE_ROWS"))
	if n <= 0 {
		t.Skip("set HOTLANE_BACKTEST_SCALE_ROWS (and HOTLANE_TEST_POSTGRES) to measure a backtest at scale")
	}
	convs := max(n/4, 1)
	ctx := context.Background()
	dsn := storetest.DSN(t, DialectPostgres)
	s := openStore(t, dsn, Options{})
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	from := to.AddDate(0, 0, -28)

	start := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`SELECT setseed(0.12)`, nil},
		// Each conversation's visitor; its decisions follow 40 s apart.
		{`CREATE TEMP TABLE gconv AS
SELECT c, 'conv_' || substr(md5('conv' || c), 1, 20) AS id,
       CASE WHEN random() < 0.3 THEN 'whatsapp' ELSE 'web' END AS channel,
       2 + (c * 7919 % 5) AS n, c % 3 AS ppv_step,
       $2::timestamptz - interval '1 hour' - make_interval(secs => c * 27 * 86400.0 / $1) AS start,
       round(exp(4 + random() * 7)) AS deal,
       (ARRAY['free','free','free','pro','pro','team','enterprise'])[1 + floor(random() * 7)::int] AS plan,
       (ARRAY['lead','lead','lead','opportunity','opportunity','customer','churned'])[1 + floor(random() * 7)::int] AS stage,
       floor(random() * 3)::int AS ppv0, random() < 0.4 AS is_returning,
       floor(exp(random() * 8))::int AS company_size,
       (ARRAY['US','GB','DE','FR','CA','BR','IN','ES','NL','JP'])[1 + floor(random() * 10)::int] AS country,
       (ARRAY['organic','organic','google-ads','linkedin','partner','newsletter','direct'])[1 + floor(random() * 7)::int] AS utm,
       1 + floor(random() * 12)::int AS visits, floor(exp(random() * 5))::int AS seats,
       random() AS u1, random() AS u2, random() AS u3, random() AS u4
FROM generate_series(1, $1::int) c`, []any{convs, to}},
		{`CREATE TEMP TABLE gdec AS
SELECT g.*, k, md5('dec' || c || '-' || k)::uuid::text AS did, g.start + make_interval(secs => k * 40) AS at,
       g.ppv0 + k * g.ppv_step AS ppv, k * 40 + c * 13 % 60 AS wait, 2 + 2 * k + c % 5 AS pages,
       CASE WHEN deal >= 50000 OR g.ppv0 + k * g.ppv_step >= 5 THEN 'high' WHEN deal >= 10000 THEN 'medium' ELSE 'low' END AS tier
FROM gconv g, generate_series(0, g.n - 1) k`, nil},
		{`INSERT INTO decisions (id, conversation_id, channel, signals, score, tier, reasons, route, policy_version, latency_us, occurred_at, created_at)
SELECT did, id, channel,
       jsonb_build_object('deal_size', deal, 'plan', plan, 'lifecycle_stage', stage, 'pricing_page_views', ppv,
                          'returning', is_returning, 'wait_seconds', wait, 'company_size', company_size, 'country', country,
                          'utm_source', utm, 'visits', visits, 'seats', seats, 'pages_viewed', pages),
       0.5, tier, CASE WHEN deal >= 10000 THEN '[{"kind":"rule","name":"big-deal","contribution":2.5}]'::jsonb ELSE '[]'::jsonb END,
       '{"team":"sales","via":"route"}'::jsonb, 1, 150, at, at + interval '3 milliseconds'
FROM gdec`, nil},
		// Outcomes with a known logit in the signals on 65 %.
		{`INSERT INTO conversation_events (id, conversation_id, type, at, created_at)
SELECT md5('out' || c)::uuid::text, id,
       CASE WHEN u2 < 1 / (1 + exp(-(-4.2 + 0.35 * ln(deal) + 0.3 * (ppv0 + (n - 1) * ppv_step)
                  + CASE plan WHEN 'enterprise' THEN 1 WHEN 'pro' THEN 0.5 WHEN 'free' THEN -0.7 ELSE 0 END
                  + CASE stage WHEN 'opportunity' THEN 0.8 WHEN 'churned' THEN -1 ELSE 0 END)))
            THEN 'converted' ELSE 'lost' END,
       start + make_interval(secs => n * 40) + interval '20 minutes', start + make_interval(secs => n * 40) + interval '20 minutes'
FROM gconv WHERE u1 < 0.65`, nil},
		// Agents' tier feedback on 2 %.
		{`INSERT INTO conversation_events (id, conversation_id, type, at, tier, agent, created_at)
SELECT md5('fb' || c)::uuid::text, id, 'tier_feedback', start + interval '10 minutes',
       CASE WHEN u3 < 0.01 THEN 'high' ELSE 'low' END, 'agent' || (c % 40), start + interval '10 minutes'
FROM gconv WHERE u3 < 0.02`, nil},
		// A tier alert at the first high decision, a review request for 3 %
		// of the rest, and agents' labels on 40 % of them.
		{`INSERT INTO alerts (id, kind, conversation_id, decision_id, channel, tier, score, team, status, created_at, dispatched_at)
SELECT DISTINCT ON (id) md5('al' || did)::uuid::text, 'tier', id, did, channel, tier, 0.8, 'sales', 'fired', at, at
FROM gdec WHERE tier = 'high' ORDER BY id, k`, nil},
		{`INSERT INTO alerts (id, kind, conversation_id, decision_id, channel, tier, score, team, status, sample_rate, created_at, dispatched_at)
SELECT md5('rv' || c)::uuid::text, 'review', id, md5('dec' || c || '-0')::uuid::text, channel, 'low', 0.1, 'sales', 'fired', 0.03, start, start
FROM gconv WHERE u4 < 0.03 AND id NOT IN (SELECT conversation_id FROM alerts)`, nil},
		{`INSERT INTO alert_labels (alert_id, agent, conversation_id, label, created_at, updated_at)
SELECT a.id, 'agent' || (g.c % 40), a.conversation_id, CASE WHEN g.u2 < 0.5 THEN 'useful' ELSE 'noise' END,
       a.created_at + interval '5 minutes', a.created_at + interval '5 minutes'
FROM alerts a JOIN gconv g ON g.id = a.conversation_id WHERE g.u4 < 0.4 OR a.kind = 'review'`, nil},
		{`ANALYZE`, nil},
	} {
		if _, err := conn.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("%.40s: %v", stmt.sql, err)
		}
	}
	// What the run must find, counted in SQL.
	var decisions, outcomes, agentOnly int
	if err := conn.QueryRow(ctx, `SELECT
  (SELECT count(*) FROM decisions),
  (SELECT count(DISTINCT conversation_id) FROM conversation_events WHERE type IN ('converted', 'lost')),
  (SELECT count(*) FROM gconv g WHERE NOT EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = g.id AND e.type IN ('converted', 'lost'))
     AND (EXISTS (SELECT 1 FROM alert_labels l WHERE l.conversation_id = g.id)
          OR EXISTS (SELECT 1 FROM conversation_events e WHERE e.conversation_id = g.id AND e.type = 'tier_feedback')))`).
		Scan(&decisions, &outcomes, &agentOnly); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d decisions of %d conversations in %s", decisions, convs, time.Since(start).Round(time.Millisecond))

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
	rep, err := feedback.Backtest(ctx, s, feedback.BacktestRequest{
		Draft: compileTestPolicy(t, scaleDraft), DraftVersion: 2, Live: compileTestPolicy(t, scaleLive), LiveVersion: 1,
		Model: scaleModel(t), ModelVersion: 1, From: from, To: to})
	took := time.Since(began)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}

	if rep.Conversations != convs || rep.Decisions != decisions {
		t.Errorf("replayed %d conversations, %d decisions; want %d, %d", rep.Conversations, rep.Decisions, convs, decisions)
	}
	// Every conversation with an outcome is labelled (by its agents or its
	// outcome); without one, only those agents labelled can be.
	if rep.Labelled < outcomes || rep.Labelled > outcomes+agentOnly || rep.Positives == 0 || rep.Positives > rep.Labelled {
		t.Errorf("labelled %d, positive %d; want %d to %d labelled, some positive", rep.Labelled, rep.Positives, outcomes, outcomes+agentOnly)
	}
	for _, side := range []feedback.BacktestSide{rep.Draft, rep.Live} {
		tiers := 0
		for _, c := range side.Tiers {
			tiers += c
		}
		if tiers != convs || side.Alerted == 0 || side.Alerted > convs || side.Useful+side.Noise > side.Alerted {
			t.Errorf("side %d: %d conversations by tier, %d alerted (%d useful, %d noise) of %d", side.Version, tiers, side.Alerted, side.Useful, side.Noise, convs)
		}
	}
	changes := map[string]string{}
	for _, r := range rep.Rules {
		changes[r.Name] = r.Change
	}
	if len(rep.Rules) != 28 || changes["pricing-intent"] != feedback.RuleChanged || changes["long-wait"] != feedback.RuleChanged ||
		changes["hot-opportunity"] != feedback.RuleNew || changes["big-deal"] != feedback.RuleSame {
		t.Errorf("rules: %d, changes %v", len(rep.Rules), changes)
	}
	if len(rep.ByWeek) < 4 || len(rep.ByWeek) > 5 {
		t.Errorf("%d weeks in the report, want 4 or 5", len(rep.ByWeek))
	}
	t.Logf("backtest over %d decisions (%d conversations): %s, %.0f decisions/s, peak heap %d MB; draft alerted %d (precision %.3f), live %d (precision %.3f)",
		rep.Decisions, rep.Conversations, took.Round(time.Millisecond), float64(rep.Decisions)/took.Seconds(), peak.Load()>>20,
		rep.Draft.Alerted, orZero(rep.Draft.Precision), rep.Live.Alerted, orZero(rep.Live.Precision))
}

func orZero(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
