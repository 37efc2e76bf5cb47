package store

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hotlane/hotlane/feedback"
)

// The decision writer is a group commit. RecordDecision queues a request and
// waits; one goroutine takes everything queued (up to maxBatch), commits it
// in one transaction, answers every request, and starts again. There is no
// timer: requests that arrive during a commit form the next batch, so batches
// grow with load and a lone request is committed at once.

type writeReq struct {
	ctx  context.Context
	d    feedback.Decision
	rec  feedback.Recorded // set by the flush
	done chan writeResult  // buffered: the writer never blocks on a caller that left
}

type writeResult struct {
	rec feedback.Recorded
	err error
}

type writer struct {
	log      *slog.Logger
	observe  func(size int, took time.Duration, err error)
	maxBatch int
	timeout  time.Duration
	flush    func(ctx context.Context, batch []*writeReq) error

	// flushing is when the batch being committed started (unix ns), 0 when
	// none is; failingSince is when the current run of failed batches
	// began, 0 when the last batch committed; lastFailure is when the last
	// batch failed.
	flushing, failingSince, lastFailure atomic.Int64

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

func (sw *shardedWriter) submit(ctx context.Context, d feedback.Decision) (feedback.Recorded, error) {
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

func (w *writer) submit(ctx context.Context, d feedback.Decision) (feedback.Recorded, error) {
	if err := ctx.Err(); err != nil {
		return feedback.Recorded{}, err
	}
	r := &writeReq{ctx: ctx, d: d, done: make(chan writeResult, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return feedback.Recorded{}, feedback.ErrClosed
	}
	select {
	case w.queue <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return feedback.Recorded{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.rec, res.err
	case <-ctx.Done():
		return feedback.Recorded{}, ctx.Err()
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
	switch {
	case err == nil:
		w.failingSince.Store(0)
	case !isDataError(err):
		t := time.Now().UnixNano()
		w.failingSince.CompareAndSwap(0, t)
		w.lastFailure.Store(t)
	}
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
	w.flushing.Store(time.Now().UnixNano())
	defer w.flushing.Store(0)
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

// failureMemory is how long a failed batch counts when no batch came
// since: a process taken out of service for failing writes gets no more
// decisions to learn that writes work again, so it reports healthy once
// this has passed and the next batch tells.
const failureMemory = 10 * time.Second

// health reports how long w's batches have been failing and how long its
// current batch has been committing, at now.
func (w *writer) health(now time.Time) feedback.WriteHealth {
	var h feedback.WriteHealth
	if t := w.failingSince.Load(); t != 0 && now.Sub(time.Unix(0, w.lastFailure.Load())) < failureMemory {
		h.FailingFor = now.Sub(time.Unix(0, t))
	}
	if t := w.flushing.Load(); t != 0 {
		h.StalledFor = now.Sub(time.Unix(0, t))
	}
	return h
}

// WriteHealth reports the worst of the decision writers: how long their
// batches have been failing and how long a batch has been committing.
func (s *Store) WriteHealth() feedback.WriteHealth {
	now := time.Now()
	var out feedback.WriteHealth
	for _, w := range s.w.shards {
		h := w.health(now)
		out.FailingFor = max(out.FailingFor, h.FailingFor)
		out.StalledFor = max(out.StalledFor, h.StalledFor)
	}
	return out
}
