package store

import (
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// The SQL of the PostgreSQL decision writer (writer_postgres.go). Each
// statement takes whole batches as arrays, so a batch is a few statements
// whatever its size.

const (
	// A join with unnest rather than "id = ANY($1)": with stale statistics
	// (a young, fast-growing table) the planner chose a sequential scan for
	// ANY, whose cost grows with the table; the join stays on the index.
	pgSelectConversations = `SELECT c.id, c.tier, c.alerted_tier, c.last_alert_at FROM unnest($1::text[]) AS k(id)
  JOIN conversations c ON c.id = k.id ORDER BY c.id FOR UPDATE OF c`
	// pgConversationUpdate is how every conversation upsert combines a
	// batch with the stored row: the last decision wins, counts add up, a
	// stored first_top_at stays; pgAlertStateUpdate adds the alert state.
	pgConversationUpdate = `ON CONFLICT (id) DO UPDATE SET
  channel = excluded.channel, tier = excluded.tier, score = excluded.score,
  last_decision_id = excluded.last_decision_id,
  decisions = conversations.decisions + excluded.decisions,
  updated_at = excluded.updated_at,
  first_top_at = COALESCE(conversations.first_top_at, excluded.first_top_at),
  route_team = excluded.route_team, route_owner = excluded.route_owner`
	pgAlertStateUpdate = `,
  alerted_tier = excluded.alerted_tier, last_alert_at = excluded.last_alert_at`
	// pgUpsertConversations leaves the alert state alone: the batch had no
	// decision that could change it.
	pgUpsertConversations = `INSERT INTO conversations
  (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at, route_team, route_owner)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[],
  $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[])
` + pgConversationUpdate
	// pgUpsertConversationsAlerted also writes the alert state the batch
	// computed from the locked rows.
	pgUpsertConversationsAlerted = `INSERT INTO conversations
  (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
   route_team, route_owner, alerted_tier, last_alert_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[],
  $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])
` + pgConversationUpdate + pgAlertStateUpdate
	// pgInsertPlaceholders makes sure every conversation of an alerting
	// batch has a row to lock before its alert state is read. Without it
	// two processes scoring the first decisions of a new conversation both
	// find no row, lock nothing and both fire. The placeholder counts no
	// decision and has no tier, so the tiers read back and the counts the
	// upsert adds up are those of a conversation without a row; the upsert
	// fills in the rest (first_seen_at, which the upsert keeps, is the
	// batch's own). Rows are inserted in id order, so two batches wait on
	// each other's placeholders in the order they lock rows; a row that
	// exists is left alone (and unlocked: the select after this locks it).
	pgInsertPlaceholders = `INSERT INTO conversations
  (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at)
SELECT k.id, '', '', 0, '', 0, k.at, k.at FROM unnest($1::text[], $2::timestamptz[]) AS k(id, at)
ON CONFLICT (id) DO NOTHING`
	pgInsertDecisions = `INSERT INTO decisions
  (id, conversation_id, channel, signals, message, score, tier, reasons, route,
   model_version, policy_version, latency_us, occurred_at, created_at, warnings)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::float8[], $7::text[],
  $8::jsonb[], $9::jsonb[], $10::int4[], $11::int4[], $12::int8[], $13::timestamptz[], $14::timestamptz[], $15::jsonb[])`
	// pgLockBudgets serialises the batches that may spend the same team's
	// budget (several writers or processes), so each counts the others'
	// fired alerts. Taken after the row locks, in team order; a batch
	// planned from the writer's cache takes it only for the teams it fires
	// an alert for.
	pgLockBudgets = `SELECT pg_advisory_xact_lock(hashtextextended('hotlane.alert_budget.' || t, 0))
  FROM unnest($1::text[]) AS t`
	pgCountFired = `SELECT team, count(*) FROM alerts
  WHERE status = 'fired' AND kind = 'tier' AND team = ANY($1::text[]) AND created_at > $2
  GROUP BY team`
	// pgSelectConversationState locks the batch's conversations, as
	// pgSelectConversations does, and reads all of their state: the alert
	// state, the decision count (the version the cache keeps) and whether a
	// review was requested before.
	pgSelectConversationState = `SELECT c.id, c.tier, c.alerted_tier, c.last_alert_at, c.decisions,
  EXISTS (SELECT 1 FROM alerts a WHERE a.conversation_id = c.id AND a.kind = 'review')
FROM unnest($1::text[]) AS k(id) JOIN conversations c ON c.id = k.id ORDER BY c.id FOR UPDATE OF c`
	// pgUpsertConversationsChecked is pgUpsertConversationsAlerted for a
	// batch planned from the writer's cache: $14 holds each conversation's
	// decision count as the cache knows it (0 for one it takes for new).
	// The upsert locks every row, new ones included, and the check fails the
	// statement unless every row now counts exactly the cached count plus
	// the batch's decisions, that is unless no other process wrote the
	// conversation since the cache learnt its state.
	pgUpsertConversationsChecked = `WITH k AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[],
    $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::int8[])
    AS u(id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
      route_team, route_owner, alerted_tier, last_alert_at, version)
), up AS (
  INSERT INTO conversations
    (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
     route_team, route_owner, alerted_tier, last_alert_at)
  SELECT id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
    route_team, route_owner, alerted_tier, last_alert_at FROM k
` + pgConversationUpdate + pgAlertStateUpdate + `
  RETURNING id, decisions
)
SELECT hotlane_expect(count(*) = cardinality($1::text[]), 'the conversation state')
FROM k JOIN up ON up.id = k.id AND up.decisions = k.version + k.decisions`
	// pgCheckFired fails the statement unless each team ($1) fired exactly
	// the cached number of tier alerts ($2) after $3. It runs after
	// pgLockBudgets, in a statement of its own so that it counts what the
	// batches that held the locks before committed.
	pgCheckFired = `SELECT hotlane_expect(bool_and(COALESCE(f.n, 0) = k.n), 'a team''s alert budget')
FROM unnest($1::text[], $2::int8[]) AS k(team, n)
LEFT JOIN (SELECT team, count(*) AS n FROM alerts
  WHERE status = 'fired' AND kind = 'tier' AND team = ANY($1::text[]) AND created_at > $3
  GROUP BY team) f ON f.team = k.team`
	// pgLoadFired reads the tier alerts the teams fired after $2, for the
	// cache.
	pgLoadFired = `SELECT team, created_at FROM alerts
  WHERE status = 'fired' AND kind = 'tier' AND team = ANY($1::text[]) AND created_at > $2`
	pgInsertAlerts = `INSERT INTO alerts
  (id, kind, conversation_id, decision_id, channel, tier, score, team, owner, status, reason, sample_rate, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
  $8::text[], $9::text[], $10::text[], $11::text[], $12::float8[], $13::timestamptz[])`
)

// pgConversationArgs are the arguments of the conversation upsert; with
// alert state for pgUpsertConversationsAlerted.
func pgConversationArgs(plans []convPlan, alertState bool) []any {
	m := len(plans)
	ids, channels, tiers, last := make([]string, m), make([]string, m), make([]string, m), make([]string, m)
	scores, counts := make([]float64, m), make([]int64, m)
	first, updated := make([]time.Time, m), make([]time.Time, m)
	top := make([]*time.Time, m)
	teams, owners := make([]string, m), make([]string, m)
	for i, p := range plans {
		r := &p.row
		ids[i], channels[i], tiers[i], last[i] = r.ID, r.Channel, r.Tier, r.LastDecisionID
		scores[i], counts[i], first[i], updated[i], top[i] = r.Score, r.Decisions, r.FirstSeenAt, r.UpdatedAt, r.FirstTopAt
		teams[i], owners[i] = r.RouteTeam, r.RouteOwner
	}
	args := []any{ids, channels, tiers, scores, last, counts, first, updated, top, teams, owners}
	if !alertState {
		return args
	}
	alerted, lastAlert := make([]string, m), make([]*time.Time, m)
	for i, p := range plans {
		alerted[i], lastAlert[i] = p.row.AlertedTier, p.row.LastAlertAt
	}
	return append(args, alerted, lastAlert)
}

func pgDecisionArgs(batch []*writeReq) []any {
	n := len(batch)
	ids, convs, channels, tiers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	signals, reasons, routes, warnings := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	messages, models := make([]*string, n), make([]*int32, n)
	scores := make([]float64, n)
	policies := make([]int32, n)
	latencies := make([]int64, n)
	occurred, created := make([]time.Time, n), make([]time.Time, n)
	for i, r := range batch {
		d := &r.d
		ids[i], convs[i], channels[i], tiers[i] = d.ID, d.ConversationID, d.Channel, d.Tier.String()
		signals[i], reasons[i], routes[i], warnings[i] = d.Signals, d.Reasons, d.Route, d.Warnings
		messages[i], scores[i], policies[i], latencies[i] = d.Message, d.Score, int32(d.PolicyVersion), d.LatencyMicros
		if d.ModelVersion != 0 {
			mv := int32(d.ModelVersion)
			models[i] = &mv
		}
		occurred[i], created[i] = d.OccurredAt, d.CreatedAt
	}
	return []any{ids, convs, channels, signals, messages, scores, tiers, reasons, routes,
		models, policies, latencies, occurred, created, warnings}
}

func pgAlertArgs(alerts []feedback.Alert) []any {
	n := len(alerts)
	ids, kinds, convs, decs, channels, tiers := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	teams, owners, statuses, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	scores, rates, created := make([]float64, n), make([]*float64, n), make([]time.Time, n)
	for i := range alerts {
		a := &alerts[i]
		ids[i], kinds[i], convs[i], decs[i], channels[i], tiers[i] = a.ID, a.Kind, a.ConversationID, a.DecisionID, a.Channel, a.Tier.String()
		teams[i], owners[i], statuses[i], reasons[i] = a.Team, a.Owner, a.Status, a.Reason
		scores[i], created[i] = a.Score, a.CreatedAt
		if a.SampleRate > 0 {
			rates[i] = &a.SampleRate
		}
	}
	return []any{ids, kinds, convs, decs, channels, tiers, scores, teams, owners, statuses, reasons, rates, created}
}
