package feedback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The decision writer is a group commit. RecordDecision queues a request and
// waits; one goroutine takes everything queued (up to maxBatch), commits it
// in one transaction, answers every request, and starts again. There is no
// timer: requests that arrive during a commit form the next batch, so batches
// grow with load and a lone request is committed at once.

type writeReq struct {
	ctx  context.Context
	d    Decision
	rec  Recorded         // set by the flush
	done chan writeResult // buffered: the writer never blocks on a caller that left
}

type writeResult struct {
	rec Recorded
	err error
}

type writer struct {
	log      *slog.Logger
	observe  func(size int, took time.Duration, err error)
	maxBatch int
	timeout  time.Duration
	flush    func(ctx context.Context, batch []*writeReq) error

	mu      sync.RWMutex // held shared while enqueueing, exclusively by close
	closed  bool
	queue   chan *writeReq
	quit    chan struct{}
	stopped chan struct{}
}

// shardedWriter spreads conversations over several writers by a hash of
// the conversation id. Each conversation always lands on the same writer,
// so its decisions keep their order and two batches never contend for the
// same rows, while one writer's commit overlaps another's next batch.
type shardedWriter struct {
	shards []*writer
}

func newWriter(s *Store, opts Options) *shardedWriter {
	flush := s.flushSQLite
	n := 1 // SQLite has one writer at a time anyway
	if s.dialect == DialectPostgres {
		flush = s.flushPostgres
		n = opts.Writers
	}
	sw := &shardedWriter{shards: make([]*writer, n)}
	for i := range sw.shards {
		f := flush
		switch {
		case s.dialect != DialectPostgres:
		case n == 1 && opts.StateCache >= 0:
			// Several shards would share the teams' budgets, so only a
			// lone writer keeps a cache.
			c := newStateCache(cmp.Or(opts.StateCache, DefaultStateCache))
			f = func(ctx context.Context, batch []*writeReq) error {
				return s.flushPostgresCached(ctx, batch, c, opts.ObservePath)
			}
		case opts.ObservePath != nil:
			f = func(ctx context.Context, batch []*writeReq) error {
				defer opts.ObservePath(PathLocked)
				return flush(ctx, batch)
			}
		}
		sw.shards[i] = startWriter(s.log, opts, f)
	}
	return sw
}

func (sw *shardedWriter) submit(ctx context.Context, d Decision) (Recorded, error) {
	if len(sw.shards) == 1 {
		return sw.shards[0].submit(ctx, d)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(d.ConversationID))
	return sw.shards[h.Sum32()%uint32(len(sw.shards))].submit(ctx, d)
}

// close drains and stops every shard.
func (sw *shardedWriter) close() {
	var wg sync.WaitGroup
	for _, w := range sw.shards {
		wg.Go(w.close)
	}
	wg.Wait()
}

func startWriter(log *slog.Logger, opts Options, flush func(context.Context, []*writeReq) error) *writer {
	w := &writer{
		log:      log,
		observe:  opts.ObserveFlush,
		maxBatch: opts.MaxBatch,
		timeout:  opts.WriteTimeout,
		flush:    flush,
		queue:    make(chan *writeReq, 4*opts.MaxBatch),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go w.run()
	return w
}

func (w *writer) submit(ctx context.Context, d Decision) (Recorded, error) {
	if err := ctx.Err(); err != nil {
		return Recorded{}, err
	}
	r := &writeReq{ctx: ctx, d: d, done: make(chan writeResult, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return Recorded{}, ErrClosed
	}
	select {
	case w.queue <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return Recorded{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.rec, res.err
	case <-ctx.Done():
		return Recorded{}, ctx.Err()
	}
}

// close refuses new requests, waits for the writer to commit everything
// already queued, and returns when its goroutine has ended.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return
	}
	// Every enqueue happens under the read lock, so once the write lock is
	// held the queue only shrinks.
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.stopped
}

func (w *writer) run() {
	defer close(w.stopped)
	batch := make([]*writeReq, 0, w.maxBatch)
	for {
		select {
		case r := <-w.queue:
			batch = w.collect(append(batch[:0], r))
			w.commit(batch)
		case <-w.quit:
			for {
				batch = w.collect(batch[:0])
				if len(batch) == 0 {
					return
				}
				w.commit(batch)
			}
		}
	}
}

// collect adds whatever is already queued, without waiting.
func (w *writer) collect(batch []*writeReq) []*writeReq {
	for len(batch) < w.maxBatch {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit writes batch and answers its requests. A batch refused because of
// its data (a constraint or an invalid value) is retried one request at a
// time so that one bad decision fails alone; any other failure fails the
// whole batch.
func (w *writer) commit(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- writeResult{err: err} // the caller has gone: skip its write
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	err := w.tryFlush(live)
	if err != nil && len(live) > 1 && isDataError(err) {
		w.log.Warn("decision batch refused, retrying one by one", slog.Int("batch_size", len(live)), slog.Any("error", err))
		for _, r := range live {
			err := w.tryFlush([]*writeReq{r})
			r.done <- writeResult{rec: r.rec, err: translate(err)}
		}
		return
	}
	if err != nil {
		w.log.Error("decision batch failed", slog.Int("batch_size", len(live)), slog.Any("error", err))
		err = translate(err)
	}
	for _, r := range live {
		if err != nil {
			r.done <- writeResult{err: err}
		} else {
			r.done <- writeResult{rec: r.rec}
		}
	}
}

func (w *writer) tryFlush(batch []*writeReq) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	if w.observe != nil {
		start := time.Now()
		defer func() { w.observe(len(batch), time.Since(start), err) }()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decision batch panicked: %v", p)
		}
	}()
	err = w.flush(ctx, batch)
	if err != nil && (pgconn.SafeToRetry(err) || isDeadlock(err)) && ctx.Err() == nil {
		// Nothing reached the server (typically a connection that died
		// while idle), or PostgreSQL rolled the batch back to break a
		// deadlock with another process: one retry is safe.
		err = w.flush(ctx, batch)
	}
	return err
}

// isDataError reports whether err is the database refusing the data (class
// 22 data exception or 23 integrity violation) rather than failing to run.
func isDataError(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.Is(err, gorm.ErrCheckConstraintViolated) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	}
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code()&0xff == 19 // SQLITE_CONSTRAINT and its extended codes
	}
	return false
}

// convPlan is the combined effect of a batch on one conversation: the last
// decision wins, counts add up.
type convPlan struct {
	row   conversationRow
	first int // index in the batch of the conversation's first decision
}

// planConversations combines the batch's decisions per conversation, sorted
// by id so that concurrent writers lock rows in the same order. FirstTopAt
// is the batch's first urgent or high decision; the upsert keeps a stored
// one.
func planConversations(batch []*writeReq) []convPlan {
	idx := make(map[string]int, len(batch))
	plans := make([]convPlan, 0, len(batch))
	for i, r := range batch {
		d := &r.d
		j, ok := idx[d.ConversationID]
		if !ok {
			j = len(plans)
			idx[d.ConversationID] = j
			plans = append(plans, convPlan{first: i, row: conversationRow{ID: d.ConversationID, FirstSeenAt: d.CreatedAt}})
		}
		p := &plans[j]
		p.row.Channel, p.row.Tier, p.row.Score, p.row.LastDecisionID = d.Channel, d.Tier, d.Score, d.ID
		p.row.UpdatedAt = d.CreatedAt
		p.row.Decisions++
		if p.row.FirstTopAt == nil && isTopTier(d.Tier) {
			at := d.CreatedAt
			p.row.FirstTopAt = &at
		}
	}
	slices.SortFunc(plans, func(a, b convPlan) int { return strings.Compare(a.row.ID, b.row.ID) })
	return plans
}

// setAlertState copies the conversations' alert state after the batch into
// their plans.
func setAlertState(plans []convPlan, final map[string]alertState) {
	for i := range plans {
		st := final[plans[i].row.ID]
		plans[i].row.AlertedTier, plans[i].row.LastAlertAt = st.alertedTier, st.lastAlertAt
	}
}

// finishBatch answers each request: its previous tier, from the tiers
// stored before the batch then from the batch's own earlier decisions in
// order, and its alert (alerts may be nil when no decision needed one).
func finishBatch(batch []*writeReq, stored map[string]string, alerts *batchAlerts) {
	for i, r := range batch {
		r.rec = Recorded{PreviousTier: stored[r.d.ConversationID]}
		if alerts != nil {
			r.rec.Alert = alerts.outcomes[i]
		}
		stored[r.d.ConversationID] = r.d.Tier
	}
}

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
  first_top_at = COALESCE(conversations.first_top_at, excluded.first_top_at)`
	pgAlertStateUpdate = `,
  alerted_tier = excluded.alerted_tier, last_alert_at = excluded.last_alert_at`
	// pgUpsertConversations leaves the alert state alone: the batch had no
	// decision that could change it.
	pgUpsertConversations = `INSERT INTO conversations
  (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[],
  $8::timestamptz[], $9::timestamptz[])
` + pgConversationUpdate
	// pgUpsertConversationsAlerted also writes the alert state the batch
	// computed from the locked rows.
	pgUpsertConversationsAlerted = `INSERT INTO conversations
  (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
   alerted_tier, last_alert_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[],
  $8::timestamptz[], $9::timestamptz[], $10::text[], $11::timestamptz[])
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
   model_version, policy_version, latency_us, occurred_at, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::float8[], $7::text[],
  $8::jsonb[], $9::jsonb[], $10::int4[], $11::int4[], $12::int8[], $13::timestamptz[], $14::timestamptz[])`
	// pgLockBudgets serialises the batches that may spend the same team's
	// budget (several writers or processes), so each counts the others'
	// fired alerts. Taken after the row locks, in team order.
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
	// batch planned from the writer's cache: $12 holds each conversation's
	// decision count as the cache knows it (0 for one it takes for new).
	// The upsert locks every row, new ones included, and the check fails the
	// statement unless every row now counts exactly the cached count plus
	// the batch's decisions, that is unless no other process wrote the
	// conversation since the cache learnt its state.
	pgUpsertConversationsChecked = `WITH k AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[],
    $8::timestamptz[], $9::timestamptz[], $10::text[], $11::timestamptz[], $12::int8[])
    AS u(id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
      alerted_tier, last_alert_at, version)
), up AS (
  INSERT INTO conversations
    (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
     alerted_tier, last_alert_at)
  SELECT id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, first_top_at,
    alerted_tier, last_alert_at FROM k
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
	for i, p := range plans {
		r := &p.row
		ids[i], channels[i], tiers[i], last[i] = r.ID, r.Channel, r.Tier, r.LastDecisionID
		scores[i], counts[i], first[i], updated[i], top[i] = r.Score, r.Decisions, r.FirstSeenAt, r.UpdatedAt, r.FirstTopAt
	}
	args := []any{ids, channels, tiers, scores, last, counts, first, updated, top}
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
	signals, reasons, routes := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	messages, models := make([]*string, n), make([]*int32, n)
	scores := make([]float64, n)
	policies := make([]int32, n)
	latencies := make([]int64, n)
	occurred, created := make([]time.Time, n), make([]time.Time, n)
	for i, r := range batch {
		d := &r.d
		ids[i], convs[i], channels[i], tiers[i] = d.ID, d.ConversationID, d.Channel, d.Tier
		signals[i], reasons[i], routes[i] = d.Signals, d.Reasons, d.Route
		messages[i], scores[i], policies[i], latencies[i] = d.Message, d.Score, int32(d.PolicyVersion), d.LatencyMicros
		if d.ModelVersion != 0 {
			mv := int32(d.ModelVersion)
			models[i] = &mv
		}
		occurred[i], created[i] = d.OccurredAt, d.CreatedAt
	}
	return []any{ids, convs, channels, signals, messages, scores, tiers, reasons, routes,
		models, policies, latencies, occurred, created}
}

func pgAlertArgs(rows []alertRow) []any {
	n := len(rows)
	ids, kinds, convs, decs, channels, tiers := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	teams, owners, statuses, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	scores, rates, created := make([]float64, n), make([]*float64, n), make([]time.Time, n)
	for i, a := range rows {
		ids[i], kinds[i], convs[i], decs[i], channels[i], tiers[i] = a.ID, a.Kind, a.ConversationID, a.DecisionID, a.Channel, a.Tier
		teams[i], owners[i], statuses[i], reasons[i] = a.Team, a.Owner, a.Status, a.Reason
		scores[i], rates[i], created[i] = a.Score, a.SampleRate, a.CreatedAt
	}
	return []any{ids, kinds, convs, decs, channels, tiers, scores, teams, owners, statuses, reasons, rates, created}
}

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
	if slices.ContainsFunc(batch, func(r *writeReq) bool { return needsAlertState(&r.d) }) {
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

	stored := make(map[string]string, len(plans))
	err := func() error {
		if err := scanConversations(br, stored, nil); err != nil {
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

// scanConversations reads pgSelectConversations into the stored tiers and,
// when state is not nil, the alert state.
func scanConversations(br pgx.BatchResults, tiers map[string]string, state map[string]alertState) error {
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
		tiers[id] = tier
		if state != nil {
			state[id] = alertState{alertedTier: alerted, lastAlertAt: last}
		}
	}
	return rows.Err()
}

// flushPostgresAlerts commits a batch that may alert in one explicit
// transaction of two round trips. The first locks the conversations and
// reads their alert state (whether a review was requested before
// included), locks and counts the budgets of the teams the batch may alert,
// and inserts the decisions; planAlerts then decides every alert, and the
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
	teams, since := alertTeams(batch)
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

	stored := make(map[string]string, len(plans))
	state := make(map[string]alertState, len(plans))
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
			stored[id], counts[id] = tier, n
			state[id] = alertState{alertedTier: alerted, lastAlertAt: last, reviewed: reviewed}
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

	alerts := planAlerts(batch, state, fired)
	setAlertState(plans, alerts.final)
	b = &pgx.Batch{}
	b.Queue(pgUpsertConversationsAlerted, pgConversationArgs(plans, true)...)
	if len(alerts.rows) > 0 {
		b.Queue(pgInsertAlerts, pgAlertArgs(alerts.rows)...)
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
		c.committed(plans, version, alerts.final, alerts.rows)
		c.forget(nil, teams)
	}
	finishBatch(batch, stored, &alerts)
	return nil
}

// isStale reports whether err is the error of a cached batch that found
// the database changed since the cache learnt it (hotlane_expect, SQLSTATE
// HL001).
func isStale(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "HL001"
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
// checks their versions; the budget locks follow, in team order, and the fired
// counts are checked under them. Any failure leaves nothing written and the
// cache without the batch's conversations and teams.
func (s *Store) flushPostgresFromCache(ctx context.Context, batch []*writeReq, plans []convPlan, c *stateCache) (err error) {
	teams, since := alertTeams(batch)
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
	stored := make(map[string]string, len(plans))
	state := make(map[string]alertState, len(plans))
	version := make([]int64, len(plans))
	for i, p := range plans {
		e, ok := c.conversation(p.row.ID)
		if !ok {
			continue // taken for new; the upsert's check tells otherwise
		}
		stored[p.row.ID] = e.tier
		state[p.row.ID] = alertState{alertedTier: e.alertedTier, lastAlertAt: e.lastAlertAt, reviewed: e.reviewed}
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
	alerts := planAlerts(batch, state, fired)
	setAlertState(plans, alerts.final)

	b := &pgx.Batch{}
	b.Queue(pgInsertDecisions, pgDecisionArgs(batch)...)
	b.Queue(pgUpsertConversationsChecked, append(pgConversationArgs(plans, true), version)...)
	if len(teams) > 0 {
		b.Queue(pgLockBudgets, teams)
		b.Queue(pgCheckFired, teams, counts, since)
	}
	if len(alerts.rows) > 0 {
		b.Queue(pgInsertAlerts, pgAlertArgs(alerts.rows)...)
	}
	// Close reads up to the Sync's ReadyForQuery, that is past the commit.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	c.committed(plans, version, alerts.final, alerts.rows)
	if len(teams) > 0 {
		c.prune(since.Add(-teamLoadMargin))
	}
	finishBatch(batch, stored, &alerts)
	return nil
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

// isDeadlock reports whether PostgreSQL aborted err's transaction to break
// a deadlock (SQLSTATE 40P01).
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
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

// flushSQLite commits a batch in one transaction, with the same logic as
// flushPostgres; SQLite runs one writer at a time, so the budget needs no
// lock of its own.
func (s *Store) flushSQLite(ctx context.Context, batch []*writeReq) error {
	plans := planConversations(batch)
	ids := make([]string, len(plans))
	for i, p := range plans {
		ids[i] = p.row.ID
	}
	decRows := make([]decisionRow, len(batch))
	for i, r := range batch {
		decRows[i] = newDecisionRow(&r.d)
	}
	teams, since := alertTeams(batch)
	sampled := sampledConversations(batch)
	stored := make(map[string]string, len(plans))
	var alerts batchAlerts
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		state := make(map[string]alertState, len(plans))
		for chunk := range slices.Chunk(ids, 500) {
			var part []conversationRow
			if err := tx.Select("id, tier, alerted_tier, last_alert_at").Where("id IN ?", chunk).Find(&part).Error; err != nil {
				return err
			}
			for _, c := range part {
				stored[c.ID] = c.Tier
				state[c.ID] = alertState{alertedTier: c.AlertedTier, lastAlertAt: c.LastAlertAt}
			}
		}
		fired := map[string]int{}
		if len(teams) > 0 {
			var counts []struct {
				Team string
				N    int
			}
			err := tx.Model(&alertRow{}).Select("team, count(*) AS n").
				Where("status = ? AND kind = ? AND team IN ? AND created_at > ?", AlertStatusFired, AlertKindTier, teams, since).
				Group("team").Find(&counts).Error
			if err != nil {
				return err
			}
			for _, c := range counts {
				fired[c.Team] = c.N
			}
		}
		for chunk := range slices.Chunk(sampled, 500) {
			var reviewed []string
			err := tx.Model(&alertRow{}).Distinct("conversation_id").
				Where("conversation_id IN ? AND kind = ?", chunk, AlertKindReview).Pluck("conversation_id", &reviewed).Error
			if err != nil {
				return err
			}
			for _, id := range reviewed {
				st := state[id]
				st.reviewed = true
				state[id] = st
			}
		}
		alerts = planAlerts(batch, state, fired)
		setAlertState(plans, alerts.final)
		convRows := make([]conversationRow, len(plans))
		for i, p := range plans {
			convRows[i] = p.row
		}

		upsert := clause.OnConflict{
			Columns: []clause.Column{{Name: "id"}},
			DoUpdates: clause.Assignments(map[string]any{
				"channel":          gorm.Expr("excluded.channel"),
				"tier":             gorm.Expr("excluded.tier"),
				"score":            gorm.Expr("excluded.score"),
				"last_decision_id": gorm.Expr("excluded.last_decision_id"),
				"decisions":        gorm.Expr("conversations.decisions + excluded.decisions"),
				"updated_at":       gorm.Expr("excluded.updated_at"),
				"first_top_at":     gorm.Expr("COALESCE(conversations.first_top_at, excluded.first_top_at)"),
				"alerted_tier":     gorm.Expr("excluded.alerted_tier"),
				"last_alert_at":    gorm.Expr("excluded.last_alert_at"),
			}),
		}
		if err := tx.CreateInBatches(&decRows, 500).Error; err != nil {
			return err
		}
		if err := tx.Clauses(upsert).CreateInBatches(&convRows, 500).Error; err != nil {
			return err
		}
		if len(alerts.rows) > 0 {
			return tx.CreateInBatches(&alerts.rows, 500).Error
		}
		return nil
	})
	if err != nil {
		return err
	}
	finishBatch(batch, stored, &alerts)
	return nil
}
