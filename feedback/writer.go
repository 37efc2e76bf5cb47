package feedback

import (
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
	prev string           // set by the flush
	done chan writeResult // buffered: the writer never blocks on a caller that left
}

type writeResult struct {
	prev string
	err  error
}

type writer struct {
	log      *slog.Logger
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
		sw.shards[i] = startWriter(s.log, opts, flush)
	}
	return sw
}

func (sw *shardedWriter) submit(ctx context.Context, d Decision) (string, error) {
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

func (w *writer) submit(ctx context.Context, d Decision) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r := &writeReq{ctx: ctx, d: d, done: make(chan writeResult, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return "", ErrClosed
	}
	select {
	case w.queue <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return "", ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.prev, res.err
	case <-ctx.Done():
		return "", ctx.Err()
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
			r.done <- writeResult{prev: r.prev, err: translate(err)}
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
			r.done <- writeResult{prev: r.prev}
		}
	}
}

func (w *writer) tryFlush(batch []*writeReq) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decision batch panicked: %v", p)
		}
	}()
	err = w.flush(ctx, batch)
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		// Nothing reached the server (typically a connection that died
		// while idle): one retry on a fresh connection is safe.
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
// by id so that concurrent writers lock rows in the same order.
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
	}
	slices.SortFunc(plans, func(a, b convPlan) int { return strings.Compare(a.row.ID, b.row.ID) })
	return plans
}

// chainTiers sets each request's previous tier from the tiers stored before
// the batch, then from the batch's own earlier decisions, in order.
func chainTiers(batch []*writeReq, stored map[string]string) {
	for _, r := range batch {
		r.prev = stored[r.d.ConversationID]
		stored[r.d.ConversationID] = r.d.Tier
	}
}

const (
	// A join with unnest rather than "id = ANY($1)": with stale statistics
	// (a young, fast-growing table) the planner chose a sequential scan for
	// ANY, whose cost grows with the table; the join stays on the index.
	pgSelectConversations = `SELECT c.id, c.tier FROM unnest($1::text[]) AS k(id)
  JOIN conversations c ON c.id = k.id ORDER BY c.id FOR UPDATE OF c`
	pgUpsertConversations = `INSERT INTO conversations
  (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[], $7::timestamptz[], $8::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
  channel = excluded.channel, tier = excluded.tier, score = excluded.score,
  last_decision_id = excluded.last_decision_id,
  decisions = conversations.decisions + excluded.decisions,
  updated_at = excluded.updated_at`
	pgInsertDecisions = `INSERT INTO decisions
  (id, conversation_id, channel, signals, message, score, tier, reasons, route,
   model_version, policy_version, latency_us, occurred_at, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::float8[], $7::text[],
  $8::jsonb[], $9::jsonb[], $10::int4[], $11::int4[], $12::int8[], $13::timestamptz[], $14::timestamptz[])`
)

// flushPostgres commits a batch in one round trip: the three statements are
// pipelined with a single Sync, which PostgreSQL runs as one implicit
// transaction (all or nothing). The select locks the batch's existing
// conversations, in id order, before anything changes, and reads the tiers
// that the previous-tier chain starts from.
func (s *Store) flushPostgres(ctx context.Context, batch []*writeReq) error {
	plans := planConversations(batch)
	n, m := len(batch), len(plans)

	cIDs, cChannels, cTiers, cLast := make([]string, m), make([]string, m), make([]string, m), make([]string, m)
	cScores, cCounts := make([]float64, m), make([]int64, m)
	cFirst, cUpdated := make([]time.Time, m), make([]time.Time, m)
	for i, p := range plans {
		r := &p.row
		cIDs[i], cChannels[i], cTiers[i], cLast[i] = r.ID, r.Channel, r.Tier, r.LastDecisionID
		cScores[i], cCounts[i], cFirst[i], cUpdated[i] = r.Score, r.Decisions, r.FirstSeenAt, r.UpdatedAt
	}

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

	b := &pgx.Batch{}
	b.Queue(pgSelectConversations, cIDs)
	b.Queue(pgInsertDecisions, ids, convs, channels, signals, messages, scores, tiers, reasons, routes,
		models, policies, latencies, occurred, created)
	b.Queue(pgUpsertConversations, cIDs, cChannels, cTiers, cScores, cLast, cCounts, cFirst, cUpdated)
	br := s.pool.SendBatch(ctx, b)

	stored := make(map[string]string, m)
	err := func() error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, tier string
			if err := rows.Scan(&id, &tier); err != nil {
				rows.Close()
				return err
			}
			stored[id] = tier
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		_, err = br.Exec()
		return err
	}()
	// Close reads up to the Sync's ReadyForQuery, that is past the commit.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	chainTiers(batch, stored)
	return nil
}

// flushSQLite commits a batch in one transaction, with the same logic as
// flushPostgres.
func (s *Store) flushSQLite(ctx context.Context, batch []*writeReq) error {
	plans := planConversations(batch)
	ids := make([]string, len(plans))
	convRows := make([]conversationRow, len(plans))
	for i, p := range plans {
		ids[i], convRows[i] = p.row.ID, p.row
	}
	decRows := make([]decisionRow, len(batch))
	for i, r := range batch {
		decRows[i] = newDecisionRow(&r.d)
	}
	stored := make(map[string]string, len(plans))
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var cur []struct{ ID, Tier string }
		for chunk := range slices.Chunk(ids, 500) {
			var part []struct{ ID, Tier string }
			if err := tx.Model(&conversationRow{}).Select("id, tier").Where("id IN ?", chunk).Find(&part).Error; err != nil {
				return err
			}
			cur = append(cur, part...)
		}
		for _, c := range cur {
			stored[c.ID] = c.Tier
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
			}),
		}
		if err := tx.CreateInBatches(&decRows, 500).Error; err != nil {
			return err
		}
		return tx.Clauses(upsert).CreateInBatches(&convRows, 500).Error
	})
	if err != nil {
		return err
	}
	chainTiers(batch, stored)
	return nil
}
