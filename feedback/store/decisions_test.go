package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func newDecision(conv, tier string) feedback.Decision {
	return feedback.Decision{
		ID:             uuid.Must(uuid.NewV7()).String(),
		ConversationID: conv,
		Channel:        "web",
		Signals:        []byte(`{"deal_size":12000,"plan":"pro","returning":true}`),
		Score:          0.75,
		Tier:           parseTier(tier),
		Reasons:        []byte(`[{"kind":"rule","name":"big-deal","contribution":2.5}]`),
		Route:          []byte(`{"team":"sales","via":"route"}`),
		PolicyVersion:  1,
		LatencyMicros:  42,
	}
}

func TestRecordDecisionRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		msg := "I want a refund"
		d := newDecision("conv-1", "high")
		d.Message = &msg
		d.ModelVersion = 3
		d.OccurredAt = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("x", 3600))
		prev, err := s.RecordDecision(ctx, d)
		if err != nil || prev != model.TierNone {
			t.Fatalf("RecordDecision = %q, %v; want \"\", nil", prev, err)
		}
		got, err := s.Decision(ctx, d.ID)
		if err != nil {
			t.Fatalf("Decision: %v", err)
		}
		if got.Message == nil || *got.Message != msg || got.ModelVersion != 3 || got.PolicyVersion != 1 ||
			got.LatencyMicros != 42 || got.Score != 0.75 || got.Tier.String() != "high" || got.Channel != "web" {
			t.Errorf("Decision = %+v", got)
		}
		if want := time.Date(2025, 3, 4, 4, 6, 7, 123456000, time.UTC); !got.OccurredAt.Equal(want) {
			t.Errorf("OccurredAt = %v, want %v", got.OccurredAt, want)
		}
		if got.CreatedAt.IsZero() {
			t.Error("CreatedAt is zero")
		}
		for name, pair := range map[string][2][]byte{"signals": {got.Signals, d.Signals}, "reasons": {got.Reasons, d.Reasons}, "route": {got.Route, d.Route}} {
			if !jsonEqual(t, pair[0], pair[1]) {
				t.Errorf("%s = %s, want %s", name, pair[0], pair[1])
			}
		}

		plain := newDecision("conv-1", "low")
		plain.Signals, plain.Reasons, plain.Route = nil, nil, nil
		if prev, err := s.RecordDecision(ctx, plain); err != nil || prev != model.TierHigh {
			t.Fatalf("second RecordDecision = %q, %v; want high", prev, err)
		}
		got, err = s.Decision(ctx, plain.ID)
		if err != nil || got.Message != nil || got.ModelVersion != 0 || !jsonEqual(t, got.Signals, []byte("{}")) ||
			!jsonEqual(t, got.Reasons, []byte("[]")) {
			t.Errorf("Decision without message or model = %+v, %v", got, err)
		}

		c, err := s.Conversation(ctx, "conv-1")
		if err != nil {
			t.Fatalf("Conversation: %v", err)
		}
		if c.Decisions != 2 || c.Tier.String() != "low" || c.LastDecisionID != plain.ID || c.FirstSeenAt.After(c.UpdatedAt) {
			t.Errorf("Conversation = %+v, want 2 decisions, tier low, last %s", c, plain.ID)
		}
		list, err := s.ConversationDecisions(ctx, "conv-1", 0)
		if err != nil || len(list) != 2 || list[0].ID != plain.ID {
			t.Errorf("ConversationDecisions = %d decisions, %v; want 2, newest first", len(list), err)
		}

		if _, err := s.Decision(ctx, "nope"); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("Decision(nope) error = %v, want ErrNotFound", err)
		}
		if _, err := s.Conversation(ctx, "nope"); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("Conversation(nope) error = %v, want ErrNotFound", err)
		}
		// The same decision again (its id and the time it was recorded):
		// PostgreSQL's key is both, as the table is partitioned by time.
		first, err := s.Decision(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		d.CreatedAt = first.CreatedAt
		if _, err := s.RecordDecision(ctx, d); !errors.Is(err, feedback.ErrConflict) {
			t.Errorf("RecordDecision with a used id error = %v, want ErrConflict", err)
		}
	})
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("invalid JSON %s: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Errorf("invalid JSON %s: %v", b, err)
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

func TestRecordDecisionInvalid(t *testing.T) {
	s := openStore(t, t.TempDir()+"/hotlane.db", Options{})
	tests := []struct {
		name   string
		change func(*feedback.Decision)
	}{
		{"no id", func(d *feedback.Decision) { d.ID = "" }},
		{"no conversation", func(d *feedback.Decision) { d.ConversationID = "" }},
		{"bad signals", func(d *feedback.Decision) { d.Signals = []byte(`{"a":`) }},
		{"bad reasons", func(d *feedback.Decision) { d.Reasons = []byte(`[`) }},
		{"bad route", func(d *feedback.Decision) { d.Route = []byte(`nope`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecision("c", "low")
			tt.change(&d)
			if _, err := s.RecordDecision(context.Background(), d); !errors.Is(err, feedback.ErrInvalid) {
				t.Errorf("error = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestRecordDecisionConcurrent checks group commit under contention: every
// decision is stored, counts are exact, and the previous tiers returned form
// one chain per conversation. Each decision's tier is its own id, so the
// previous tier names the decision committed just before it.
func TestRecordDecisionConcurrent(t *testing.T) {
	forEachEngine(t, checkConcurrentChains)
}

// TestRecordDecisionConcurrentShardedWriters repeats the chain check with
// several writers: a conversation must stay on one of them.
func TestRecordDecisionConcurrentShardedWriters(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			s := openStore(t, e.dsn(t), Options{Writers: 3, WriterConns: 4})
			if e.name == DialectPostgres && len(s.w.shards) != 3 {
				t.Fatalf("writers = %d, want 3", len(s.w.shards))
			}
			checkConcurrentChains(t, s)
		})
	}
}

// checkConcurrentChains records decisions from many goroutines and checks
// that every conversation's previous tiers form one unbroken chain. Each
// decision is an edge from its previous tier to its own tier; the
// decisions of a conversation were committed in some order exactly when
// these edges form one trail from "no tier" to the conversation's last
// tier (an Eulerian trail): two decisions that saw the same predecessor,
// or a lost one, break the degree balance of some tier.
func checkConcurrentChains(t *testing.T, s *Store) {
	ctx := context.Background()
	const goroutines, perGoroutine, conversations = 200, 5, 20
	type result struct {
		d    feedback.Decision
		prev model.Tier
	}
	results := make(chan result, goroutines*perGoroutine)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range perGoroutine {
				d := newDecision(fmt.Sprintf("conv-%02d", (g+i)%conversations), "")
				d.Tier = model.TierLow + model.Tier(rng.IntN(4))
				prev, err := s.RecordDecision(ctx, d)
				if err != nil {
					t.Errorf("RecordDecision: %v", err)
					return
				}
				results <- result{d, prev}
			}
		})
	}
	wg.Wait()
	close(results)

	byConv := map[string][]result{}
	for r := range results {
		got, err := s.Decision(ctx, r.d.ID)
		if err != nil {
			t.Fatalf("Decision %s: %v", r.d.ID, err)
		}
		if got.ConversationID != r.d.ConversationID || got.Tier != r.d.Tier {
			t.Errorf("stored decision %+v does not match %+v", got, r.d)
		}
		byConv[r.d.ConversationID] = append(byConv[r.d.ConversationID], r)
	}
	if len(byConv) != conversations {
		t.Fatalf("got %d conversations, want %d", len(byConv), conversations)
	}
	for conv, rs := range byConv {
		c, err := s.Conversation(ctx, conv)
		if err != nil {
			t.Fatalf("Conversation %s: %v", conv, err)
		}
		if got, want := c.Decisions, int64(len(rs)); got != want {
			t.Errorf("conversation %s: Decisions = %d, want %d", conv, got, want)
		}
		var lastTier model.Tier
		found := false
		for _, r := range rs {
			if r.d.ID == c.LastDecisionID {
				lastTier, found = r.d.Tier, true
			}
		}
		if !found || c.Tier != lastTier {
			t.Errorf("conversation %s: last decision %s tier %s is not one of its decisions with that tier", conv, c.LastDecisionID, c.Tier)
		}
		// Degree balance: every tier is entered as often as it is left,
		// but "no tier" is left once more (the first decision) and the
		// last tier entered once more.
		left, entered := map[model.Tier]int{lastTier: 1}, map[model.Tier]int{model.TierNone: 1}
		adj := map[model.Tier][]model.Tier{}
		for _, r := range rs {
			left[r.prev]++
			entered[r.d.Tier]++
			adj[r.prev] = append(adj[r.prev], r.d.Tier)
			adj[r.d.Tier] = append(adj[r.d.Tier], r.prev)
		}
		for tier := range adj {
			if left[tier] != entered[tier] {
				t.Errorf("conversation %s: previous tiers do not chain: %d decisions follow tier %q but %d enter it",
					conv, left[tier]-boolInt(tier == lastTier), tier, entered[tier]-boolInt(tier == model.TierNone))
			}
		}
		// Connected: every tier on an edge is reached from "no tier".
		seen := map[model.Tier]bool{model.TierNone: true}
		queue := []model.Tier{model.TierNone}
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			for _, w := range adj[v] {
				if !seen[w] {
					seen[w] = true
					queue = append(queue, w)
				}
			}
		}
		for v := range adj {
			if !seen[v] {
				t.Errorf("conversation %s: decisions into tier %q are not chained to the first one", conv, v)
			}
		}
		stored, err := s.ConversationDecisions(ctx, conv, 1000)
		if err != nil || len(stored) != len(rs) {
			t.Errorf("conversation %s: %d stored decisions, %v; want %d", conv, len(stored), err, len(rs))
		}
	}
}

func newReq(d feedback.Decision) *writeReq {
	if err := prepareDecision(&d); err != nil {
		panic(err)
	}
	return &writeReq{ctx: context.Background(), d: d, done: make(chan writeResult, 1)}
}

// TestBatchRepeatsConversation commits one hand-made batch so repeats of a
// conversation are certain to share it.
func TestBatchRepeatsConversation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.RecordDecision(ctx, newDecision("a", "medium")); err != nil {
			t.Fatal(err)
		}
		batch := []*writeReq{
			newReq(newDecision("a", "low")),
			newReq(newDecision("b", "urgent")),
			newReq(newDecision("a", "high")),
			newReq(newDecision("b", "low")),
			newReq(newDecision("a", "urgent")),
		}
		s.w.shards[0].commit(batch)
		wantPrev := []string{"medium", "", "low", "urgent", "high"}
		for i, r := range batch {
			res := <-r.done
			if res.err != nil || res.rec.PreviousTier.String() != wantPrev[i] {
				t.Errorf("request %d: got %q, %v; want %q", i, res.rec.PreviousTier, res.err, wantPrev[i])
			}
		}
		for _, tt := range []struct {
			id    string
			count int64
			tier  string
			last  string
		}{{"a", 4, "urgent", batch[4].d.ID}, {"b", 2, "low", batch[3].d.ID}} {
			c, err := s.Conversation(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Decisions != tt.count || c.Tier.String() != tt.tier || c.LastDecisionID != tt.last {
				t.Errorf("conversation %s = %+v, want %d decisions, tier %s, last %s", tt.id, c, tt.count, tt.tier, tt.last)
			}
		}
	})
}

// TestBatchBadDecisionFailsAlone: a decision the database refuses fails with
// an error while the rest of its batch commits.
func TestBatchBadDecisionFailsAlone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		good1, good2 := newDecision("x", "low"), newDecision("y", "high")
		good1.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
		dup := good1
		dup.Tier = model.TierUrgent
		batch := []*writeReq{newReq(good1), newReq(dup), newReq(good2)}
		wantErr := []error{nil, feedback.ErrConflict, nil}
		if s.Dialect() == DialectPostgres {
			// Valid JSON and Go strings that PostgreSQL cannot store.
			nul := newDecision("z", "low")
			nul.Signals = []byte(`{"name":"a\u0000b"}`)
			msg := "nul\x00byte"
			nulMsg := newDecision("z", "low")
			nulMsg.Message = &msg
			batch = append(batch, newReq(nul), newReq(nulMsg))
			wantErr = append(wantErr, feedback.ErrInvalid, feedback.ErrInvalid)
		}
		s.w.shards[0].commit(batch)
		for i, r := range batch {
			res := <-r.done
			if (res.err == nil) != (wantErr[i] == nil) || (wantErr[i] != nil && !errors.Is(res.err, wantErr[i])) {
				t.Errorf("request %d: error = %v, want %v", i, res.err, wantErr[i])
			}
		}
		for _, id := range []string{good1.ID, good2.ID} {
			if _, err := s.Decision(ctx, id); err != nil {
				t.Errorf("Decision %s: %v", id, err)
			}
		}
		if c, err := s.Conversation(ctx, "x"); err != nil || c.Decisions != 1 || c.Tier.String() != "low" {
			t.Errorf("conversation x = %+v, %v; want one decision, tier low", c, err)
		}
		if _, err := s.Conversation(ctx, "z"); !errors.Is(err, feedback.ErrNotFound) {
			t.Errorf("conversation z error = %v, want ErrNotFound", err)
		}
	})
}

// TestRecordDecisionDeadDatabase: once the connections are gone every
// request fails with an error rather than waiting.
func TestRecordDecisionDeadDatabase(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			s := openStore(t, e.dsn(t), Options{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard, not an assertion
			defer cancel()
			if _, err := s.RecordDecision(ctx, newDecision("c", "low")); err != nil {
				t.Fatalf("RecordDecision before the database goes: %v", err)
			}
			if s.pool != nil {
				s.pool.Close()
			} else {
				s.sqlDB.Close()
			}
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					_, err := s.RecordDecision(ctx, newDecision(fmt.Sprint("c", i%3), "low"))
					if err == nil || errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("RecordDecision on a dead database error = %v, want a database error", err)
					}
				})
			}
			wg.Wait()
			if err := s.Ping(ctx); err == nil {
				t.Error("Ping on a dead database succeeded")
			}
		})
	}
}

func TestRecordDecisionTerminatedConnections(t *testing.T) {
	s := openStore(t, freshPostgres(t), Options{})
	ctx := context.Background()
	if _, err := s.RecordDecision(ctx, newDecision("c", "low")); err != nil {
		t.Fatal(err)
	}
	// Kill the writer's connections behind its back, as a database restart would.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := conn.Conn().PgConn().PID()
	conn.Release()
	if _, err := s.sqlDB.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	// A request may fail on the broken connection, but later ones succeed.
	var lastErr error
	for range 5 {
		if _, lastErr = s.RecordDecision(ctx, newDecision("c", "high")); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("RecordDecision after the connection was terminated: %v", lastErr)
	}
}

func TestRecordDecisionContextCancelled(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w := startWriter(discardLogger(), Options{MaxBatch: 10, WriteTimeout: time.Minute},
		func(ctx context.Context, batch []*writeReq) error {
			once.Do(func() { close(started) })
			<-release
			return nil
		})
	defer w.close()
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := w.submit(ctx, newDecision("c", "low"))
		errc <- err
	}()
	<-started // the request is in the blocked flush
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("submit error = %v, want context.Canceled", err)
	}
	if _, err := w.submit(ctx, newDecision("c", "low")); !errors.Is(err, context.Canceled) {
		t.Errorf("submit with a cancelled context error = %v, want context.Canceled", err)
	}
}

// TestCloseDrains: requests queued behind a running batch are committed
// before Close returns; requests after Close get ErrClosed.
func TestCloseDrains(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	committed := 0
	first := true
	w := startWriter(discardLogger(), Options{MaxBatch: 20, WriteTimeout: time.Minute},
		func(ctx context.Context, batch []*writeReq) error {
			mu.Lock()
			block := first
			first = false
			mu.Unlock()
			if block {
				close(started)
				<-release
			}
			mu.Lock()
			committed += len(batch)
			mu.Unlock()
			return nil
		})

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	wg.Go(func() {
		_, err := w.submit(context.Background(), newDecision("c", "low"))
		errs <- err
	})
	<-started // the first request is in the blocked flush
	for range n {
		wg.Go(func() {
			_, err := w.submit(context.Background(), newDecision("c", "low"))
			errs <- err
		})
	}
	waitQueued(t, w, n)
	closed := make(chan struct{})
	go func() { w.close(); close(closed) }()
	close(release)
	<-closed
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("queued request error = %v, want nil", err)
		}
	}
	if committed != n+1 {
		t.Errorf("committed %d decisions, want %d", committed, n+1)
	}
	if _, err := w.submit(context.Background(), newDecision("c", "low")); !errors.Is(err, feedback.ErrClosed) {
		t.Errorf("submit after close error = %v, want ErrClosed", err)
	}
}

// waitQueued yields until the writer's queue holds n requests.
func waitQueued(t *testing.T, w *writer, n int) {
	t.Helper()
	for i := 0; len(w.queue) != n; i++ {
		if i > 1e7 {
			t.Fatalf("queue length %d, want %d", len(w.queue), n)
		}
		runtime.Gosched()
	}
}

// TestCloseDrainsStore: on a real store, decisions racing with Close are
// either committed or refused with ErrClosed; none is lost or left waiting.
func TestCloseDrainsStore(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			s := openStore(t, dsn, Options{})
			ctx := context.Background()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var ok []string
			for i := range 100 {
				wg.Go(func() {
					d := newDecision(fmt.Sprint("conv-", i%10), "low")
					_, err := s.RecordDecision(ctx, d)
					switch {
					case err == nil:
						mu.Lock()
						ok = append(ok, d.ID)
						mu.Unlock()
					case !errors.Is(err, feedback.ErrClosed):
						t.Errorf("RecordDecision error = %v, want nil or ErrClosed", err)
					}
				})
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wg.Wait()
			s2 := openStore(t, dsn, Options{})
			var total int64
			for i := range 10 {
				c, err := s2.Conversation(ctx, fmt.Sprint("conv-", i))
				if err == nil {
					total += c.Decisions
				} else if !errors.Is(err, feedback.ErrNotFound) {
					t.Fatal(err)
				}
			}
			if total != int64(len(ok)) {
				t.Errorf("conversations count %d decisions, want the %d acknowledged", total, len(ok))
			}
			for _, id := range ok {
				if _, err := s2.Decision(ctx, id); err != nil {
					t.Errorf("acknowledged decision %s: %v", id, err)
				}
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestObserveFlushSeesEveryBatch(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			var mu sync.Mutex
			total, calls := 0, 0
			s := openStore(t, e.dsn(t), Options{ObserveFlush: func(n int, took time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					total += n
				}
				calls++
			}})
			for i := range 5 {
				if _, err := s.RecordDecision(context.Background(), newDecision(fmt.Sprintf("obs-%d", i), "low")); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if total != 5 || calls < 1 || calls > 5 {
				t.Errorf("observed %d decisions in %d calls, want 5 in 1 to 5", total, calls)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WarnedDecisions lists only the decisions with warnings recorded after
// since, newest first, at most limit; a decision without warnings stores
// none and a bad warnings list is refused like bad reasons.
func TestWarnedDecisions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		var warned []string
		for i := range 5 {
			d := newDecision(fmt.Sprintf("conv-%d", i), "low")
			d.CreatedAt = base.Add(time.Duration(i) * time.Minute)
			if i%2 == 0 {
				d.Warnings = []byte(fmt.Sprintf(`[{"rule":"big-deal","message":"not evaluated %d"}]`, i))
				warned = append(warned, d.ID)
			}
			if _, err := s.RecordDecision(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.WarnedDecisions(ctx, base.Add(30*time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != warned[2] || got[1].ID != warned[1] {
			t.Fatalf("WarnedDecisions since the second = %d decisions, want the 5th then the 3rd", len(got))
		}
		if ws := feedback.DecodeWarnings(got[0].Warnings); len(ws) != 1 || ws[0].Message != "not evaluated 4" {
			t.Errorf("warnings read back = %s", got[0].Warnings)
		}
		if got, _ := s.WarnedDecisions(ctx, base.Add(-time.Minute), 1); len(got) != 1 || got[0].ID != warned[2] {
			t.Errorf("limit 1 = %d decisions, want the newest", len(got))
		}
		bad := newDecision("conv-bad", "low")
		bad.Warnings = []byte(`[{"rule":`)
		if _, err := s.RecordDecision(ctx, bad); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("bad warnings JSON: err = %v, want ErrInvalid", err)
		}
	})
}
