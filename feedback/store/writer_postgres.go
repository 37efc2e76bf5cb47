package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// flushPostgres commits a batch. A batch in which no decision can alert
// (none in an alerting tier, none in the exploration sample) takes one round
// trip: its statements are pipelined with a single Sync, which PostgreSQL
// runs as one implicit transaction (all or nothing). The select locks the
// batch's existing conversations, in id order, before anything changes, and
// reads the tiers that the previous-tier chain starts from. Any other batch
// needs the locked alert state before it can decide its alerts, so it takes
// two: see flushPostgresAlerts.
func (s *Store) flushPostgres(ctx context.Context, batch []*writeReq) error {
	plans := planConversations(batch)
	if needsAlertState(batch) {
		return s.flushPostgresAlerts(ctx, batch, plans, nil)
	}
	cIDs := make([]string, len(plans))
	for i, p := range plans {
		cIDs[i] = p.row.ID
	}
	b := &pgx.Batch{}
	b.Queue(pgSelectConversations, cIDs)
	b.Queue(pgInsertDecisions, pgDecisionArgs(batch)...)
	b.Queue(pgUpsertConversations, pgConversationArgs(plans, false)...)
	br := s.pool.SendBatch(ctx, b)

	stored := make(map[string]model.Tier, len(plans))
	err := func() error {
		if err := scanTiers(br, stored); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		_, err := br.Exec()
		return err
	}()
	// Close reads up to the Sync's ReadyForQuery, that is past the commit.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	finishBatch(batch, stored, nil)
	return nil
}

// scanTiers reads the stored tiers of pgSelectConversations.
func scanTiers(br pgx.BatchResults, tiers map[string]model.Tier) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, tier, alerted string
		var last *time.Time
		if err := rows.Scan(&id, &tier, &alerted, &last); err != nil {
			return err
		}
		tiers[id] = parseTier(tier)
	}
	return rows.Err()
}

// flushPostgresAlerts commits a batch that may alert in one explicit
// transaction of two round trips. The first locks the conversations and
// reads their alert state (whether a review was requested before
// included), locks and counts the budgets of the teams the batch may alert,
// and inserts the decisions; feedback.PlanAlerts then decides every alert, and the
// second upserts the conversations with their new alert state, inserts the
// alerts and commits.
//
// The conversations are locked in three steps so that every conversation
// is locked, new ones too, and in the order flushPostgres takes its locks
// (rows that exist, then rows it inserts), which keeps the two paths from
// deadlocking each other: lock the rows that exist, insert placeholders for
// the others (waiting for, then skipping, those another batch is inserting),
// and lock and read them all. The last select runs after any wait, so it
// reads the alert state a concurrent batch committed.
//
// It is also the path of a batch the writer's cache was out of date for
// (c not nil): it leaves the cache holding the state it read and wrote, and
// drops the cached fired alerts of the batch's teams, whose counts it reads
// but not their times.
func (s *Store) flushPostgresAlerts(ctx context.Context, batch []*writeReq, plans []convPlan, c *stateCache) (err error) {
	cIDs := make([]string, len(plans))
	firstSeen := make([]time.Time, len(plans))
	for i, p := range plans {
		cIDs[i], firstSeen[i] = p.row.ID, p.row.FirstSeenAt
	}
	teams, since := feedback.AlertTeams(decisionsOf(batch))
	if c != nil {
		defer func() {
			if err != nil {
				c.forget(plans, teams)
			}
		}()
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().IsClosed() {
			// Release destroys a connection left in a transaction; a
			// rollback keeps it for the next batch.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		conn.Release()
	}()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(pgSelectConversations, cIDs)
	b.Queue(pgInsertPlaceholders, cIDs, firstSeen)
	b.Queue(pgSelectConversationState, cIDs)
	if len(teams) > 0 {
		b.Queue(pgLockBudgets, teams)
		b.Queue(pgCountFired, teams, since)
	}
	b.Queue(pgInsertDecisions, pgDecisionArgs(batch)...)
	br := conn.SendBatch(ctx, b)

	stored := make(map[string]model.Tier, len(plans))
	state := make(map[string]feedback.AlertState, len(plans))
	counts := make(map[string]int64, len(plans))
	fired := map[string]int{}
	err = func() error {
		for range 3 { // BEGIN, the first lock, the placeholders
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var id, tier, alerted string
		var last *time.Time
		var n int64
		var reviewed bool
		if _, err := pgx.ForEachRow(rows, []any{&id, &tier, &alerted, &last, &n, &reviewed}, func() error {
			stored[id], counts[id] = parseTier(tier), n
			state[id] = feedback.AlertState{AlertedTier: parseTier(alerted), LastAlertAt: last, Reviewed: reviewed}
			return nil
		}); err != nil {
			return err
		}
		if len(teams) > 0 {
			if _, err := br.Exec(); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			var team string
			var n int
			if _, err := pgx.ForEachRow(rows, []any{&team, &n}, func() error { fired[team] = n; return nil }); err != nil {
				return err
			}
		}
		_, err = br.Exec()
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	alerts := feedback.PlanAlerts(decisionsOf(batch), state, fired)
	setAlertState(plans, alerts.Final)
	b = &pgx.Batch{}
	b.Queue(pgUpsertConversationsAlerted, pgConversationArgs(plans, true)...)
	if len(alerts.Alerts) > 0 {
		b.Queue(pgInsertAlerts, pgAlertArgs(alerts.Alerts)...)
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		// COMMIT of a transaction that failed is a rollback that reports
		// no error; an open transaction here means something went wrong.
		return errors.New("decision batch: transaction did not commit")
	}
	if c != nil {
		version := make([]int64, len(plans))
		for i, p := range plans {
			version[i] = counts[p.row.ID]
		}
		c.committed(plans, version, alerts.Final, alerts.Alerts)
		c.forget(nil, teams)
	}
	finishBatch(batch, stored, &alerts)
	return nil
}

// flushPostgresCached commits a batch on a writer that keeps a stateCache.
// The batch is planned from the cache, conversations it does not hold taken
// for new ones, and committed in one round trip (flushPostgresFromCache);
// when the database turns out to hold something else, because another
// process wrote a conversation or fired an alert of a budgeted team, or a
// conversation was evicted from the cache, nothing of that round trip
// remains and the batch is committed again on the locking path, which
// leaves the cache up to date.
//
// While most batches find the cache out of date, the writer commits on the
// locking path directly for a while (stateCache.useCache).
func (s *Store) flushPostgresCached(ctx context.Context, batch []*writeReq, c *stateCache, observe func(string)) error {
	plans := planConversations(batch)
	var path string
	var err error
	if c.useCache() {
		path = PathCached
		err = s.flushPostgresFromCache(ctx, batch, plans, c)
		stale := isStale(err) || isDeadlock(err)
		c.observe(stale)
		if stale {
			path = PathStale
			err = s.flushPostgresAlerts(ctx, batch, plans, c)
		}
	} else {
		path = PathLocked
		err = s.flushPostgresAlerts(ctx, batch, plans, c)
	}
	if observe != nil {
		observe(path)
	}
	return err
}

// flushPostgresFromCache plans a batch from the cache and commits it in one
// round trip: the statements are pipelined with a single Sync, which
// PostgreSQL runs as one implicit transaction. The conversation upsert
// locks the batch's rows, those the cache knows and then the others, and
// checks their versions; the budget locks of the teams the batch fires a
// tier alert for follow, in team order, and their fired counts are checked
// under them. Any failure leaves nothing written and the cache without the
// batch's conversations and teams.
//
// A team the batch fires nothing for needs neither: another process can
// only have fired more of its alerts than the cache counts, never fewer, so
// a candidate the cache holds back for the budget is held back by the
// database's count too, and the batch spends none of the budget another
// process's batch may be spending under the lock.
func (s *Store) flushPostgresFromCache(ctx context.Context, batch []*writeReq, plans []convPlan, c *stateCache) (err error) {
	teams, since := feedback.AlertTeams(decisionsOf(batch))
	defer func() {
		if err != nil {
			c.forget(plans, teams)
		}
	}()
	if missing := c.missingTeams(teams, since); len(missing) > 0 {
		if err := s.loadFired(ctx, c, missing, since.Add(-teamLoadMargin)); err != nil {
			return err
		}
	}
	stored := make(map[string]model.Tier, len(plans))
	state := make(map[string]feedback.AlertState, len(plans))
	version := make([]int64, len(plans))
	for i, p := range plans {
		e, ok := c.conversation(p.row.ID)
		if !ok {
			continue // taken for new; the upsert's check tells otherwise
		}
		stored[p.row.ID], state[p.row.ID] = e.tier, e.alert
		version[i] = e.decisions
	}
	// The upsert locks the conversations the cache knows, then inserts
	// the others, each in id order: the order of the locking paths (rows
	// that exist, then new rows), so that this batch and another process's
	// locking batch wait on each other instead of deadlocking while the
	// cache is right. Were it wrong, the deadlock is detected and the batch
	// committed again on the locking path.
	plans, version = knownFirst(plans, version)
	var fired map[string]int
	var counts []int64
	if len(teams) > 0 {
		fired, counts = c.firedSince(teams, since)
	}
	alerts := feedback.PlanAlerts(decisionsOf(batch), state, fired)
	setAlertState(plans, alerts.Final)

	b := &pgx.Batch{}
	b.Queue(pgInsertDecisions, pgDecisionArgs(batch)...)
	b.Queue(pgUpsertConversationsChecked, append(pgConversationArgs(plans, true), version)...)
	if spending, n := spendingTeams(teams, counts, alerts.Alerts); len(spending) > 0 {
		b.Queue(pgLockBudgets, spending)
		b.Queue(pgCheckFired, spending, n, since)
	}
	if len(alerts.Alerts) > 0 {
		b.Queue(pgInsertAlerts, pgAlertArgs(alerts.Alerts)...)
	}
	// Close reads up to the Sync's ReadyForQuery, that is past the commit.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	c.committed(plans, version, alerts.Final, alerts.Alerts)
	if len(teams) > 0 {
		c.prune(since.Add(-teamLoadMargin))
	}
	finishBatch(batch, stored, &alerts)
	return nil
}

// spendingTeams returns the teams (in their order) that alerts fire a tier
// alert for, with their cached fired counts.
func spendingTeams(teams []string, counts []int64, alerts []feedback.Alert) ([]string, []int64) {
	var spending []string
	var n []int64
	for i, t := range teams {
		if slices.ContainsFunc(alerts, func(a feedback.Alert) bool {
			return a.Team == t && a.Kind == feedback.AlertKindTier && a.Status == feedback.AlertStatusFired
		}) {
			spending, n = append(spending, t), append(n, counts[i])
		}
	}
	return spending, n
}

// knownFirst returns plans and their versions reordered: the conversations
// with a version (known to exist) first, then the others, each in the id
// order plans have.
func knownFirst(plans []convPlan, version []int64) ([]convPlan, []int64) {
	p2, v2 := make([]convPlan, 0, len(plans)), make([]int64, 0, len(plans))
	for pass := range 2 {
		for i := range plans {
			if (version[i] > 0) == (pass == 0) {
				p2, v2 = append(p2, plans[i]), append(v2, version[i])
			}
		}
	}
	return p2, v2
}

// loadFired caches the tier alerts each of teams fired after from.
func (s *Store) loadFired(ctx context.Context, c *stateCache, teams []string, from time.Time) error {
	rows, err := s.pool.Query(ctx, pgLoadFired, teams, from)
	if err != nil {
		return err
	}
	at := make(map[string][]time.Time, len(teams))
	var team string
	var t time.Time
	if _, err := pgx.ForEachRow(rows, []any{&team, &t}, func() error {
		at[team] = append(at[team], t)
		return nil
	}); err != nil {
		return err
	}
	for _, team := range teams {
		c.setTeam(team, from, at[team])
	}
	return nil
}
