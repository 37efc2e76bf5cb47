package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func TestStateCacheGenerations(t *testing.T) {
	c := newStateCache(4) // two generations of two
	put := func(id string, n int64) { c.put(id, cachedConversation{tier: model.TierLow, decisions: n}) }
	put("a", 1)
	put("b", 2)
	put("c", 3) // the current generation was full: a and b become the old one
	if _, ok := c.conversation("a"); !ok {
		t.Fatal("a dropped one generation too early")
	}
	// Reading a promoted it into the current generation, beside c.
	put("d", 4) // current full again: {c, a} become old, b is dropped
	if _, ok := c.conversation("b"); ok {
		t.Error("b is still cached after two generations without use")
	}
	for id, want := range map[string]int64{"a": 1, "c": 3, "d": 4} {
		if e, ok := c.conversation(id); !ok || e.decisions != want {
			t.Errorf("%s: %+v, %v; want decisions %d", id, e, ok, want)
		}
	}
	c.forget([]convPlan{{row: conversationRow{ID: "a"}}}, nil)
	if _, ok := c.conversation("a"); ok {
		t.Error("a is cached after forget")
	}
}

func TestStateCacheFiredCounts(t *testing.T) {
	c := newStateCache(10)
	t0 := alertT0
	if got := c.missingTeams([]string{"sales"}, t0); !slices.Equal(got, []string{"sales"}) {
		t.Fatalf("missing = %v before any load", got)
	}
	c.setTeam("sales", t0.Add(-time.Hour), []time.Time{t0.Add(-50 * time.Minute), t0.Add(-10 * time.Minute)})
	if got := c.missingTeams([]string{"sales"}, t0.Add(-30*time.Minute)); len(got) != 0 {
		t.Errorf("missing = %v for a window inside the loaded one", got)
	}
	if got := c.missingTeams([]string{"sales"}, t0.Add(-2*time.Hour)); len(got) != 1 {
		t.Errorf("missing = %v for a window starting before the loaded one", got)
	}
	c.committed(nil, nil, nil, []feedback.Alert{
		{Kind: feedback.AlertKindTier, Status: feedback.AlertStatusFired, Team: "sales", CreatedAt: t0},
		{Kind: feedback.AlertKindTier, Status: feedback.AlertStatusSuppressed, Team: "sales", CreatedAt: t0},
		{Kind: feedback.AlertKindReview, Status: feedback.AlertStatusFired, Team: "sales", CreatedAt: t0},
		{Kind: feedback.AlertKindTier, Status: feedback.AlertStatusFired, Team: "support", CreatedAt: t0}, // not cached
	})
	fired, counts := c.firedSince([]string{"sales"}, t0.Add(-30*time.Minute))
	if fired["sales"] != 2 || !slices.Equal(counts, []int64{2}) {
		t.Errorf("fired after -30m = %v %v, want 2 (the one at -10m and the new one)", fired, counts)
	}
	c.prune(t0.Add(-20 * time.Minute))
	if f := c.teams["sales"]; len(f.at) != 2 || !f.from.Equal(t0.Add(-20*time.Minute)) {
		t.Errorf("after prune: %+v", f)
	}
	if _, ok := c.teams["support"]; ok {
		t.Error("a fired alert cached a team that was never loaded")
	}
}

// pathRecorder collects the ways a store's batches were committed.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) observe(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = append(p.paths, path)
}

func (p *pathRecorder) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.paths
	p.paths = nil
	return out
}

// TestCachedWriterSeesOtherProcess has two processes take turns on one
// conversation. Each time, the writer whose cache is out of date must
// notice, leave nothing of its first attempt and commit the decision again
// with the state the other process wrote: previous tiers chain, the tier
// alert fires once per tier, and every decision is counted once.
func TestCachedWriterSeesOtherProcess(t *testing.T) {
	dsn := freshPostgres(t)
	var pa, pb pathRecorder
	sa := openStore(t, dsn, Options{ObservePath: pa.observe})
	sb := openStore(t, dsn, Options{ObservePath: pb.observe})
	ctx := context.Background()

	steps := []struct {
		store     *Store
		paths     *pathRecorder
		tier      string
		wantPrev  string
		wantAlert string
		wantPath  string
	}{
		{sa, &pa, "low", "", "-", PathCached},                               // new everywhere
		{sa, &pa, "medium", "low", "-", PathCached},                         // A's cache is right
		{sb, &pb, "high", "medium", "tier/fired/", PathStale},               // B took it for new
		{sa, &pa, "high", "high", "tier/deduplicated/duplicate", PathStale}, // A has not seen B's alert
		{sa, &pa, "urgent", "high", "tier/suppressed/cooldown", PathCached},
		{sb, &pb, "urgent", "urgent", "tier/suppressed/cooldown", PathStale},
	}
	for i, st := range steps {
		d := alertingDecision("conv-x", st.tier, time.Duration(i)*time.Minute)
		rec, err := st.store.Record(ctx, d)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if rec.PreviousTier.String() != st.wantPrev || alertString(rec.Alert) != st.wantAlert {
			t.Errorf("step %d (%s): previous %q, alert %s; want %q, %s", i, st.tier, rec.PreviousTier,
				alertString(rec.Alert), st.wantPrev, st.wantAlert)
		}
		if got := st.paths.take(); !slices.Equal(got, []string{st.wantPath}) {
			t.Errorf("step %d: committed by %v, want %s", i, got, st.wantPath)
		}
	}
	c, err := sa.Conversation(ctx, "conv-x")
	if err != nil {
		t.Fatal(err)
	}
	var decisions, fired int64
	sa.db.Table("decisions").Where("conversation_id = ?", "conv-x").Count(&decisions)
	sa.db.Table("alerts").Where("conversation_id = ? AND status = ?", "conv-x", feedback.AlertStatusFired).Count(&fired)
	if c.Decisions != int64(len(steps)) || decisions != int64(len(steps)) || c.Tier.String() != "urgent" || fired != 1 {
		t.Errorf("conversation counts %d decisions (%d rows), tier %s, %d fired alerts; want %d, %d, urgent, 1",
			c.Decisions, decisions, c.Tier, fired, len(steps), len(steps))
	}
}

// TestCachedWriterSeesOtherProcessBudget: a team's budget spent by another
// process is noticed under the budget lock, and the alert held back.
func TestCachedWriterSeesOtherProcessBudget(t *testing.T) {
	dsn := freshPostgres(t)
	var pa, pb pathRecorder
	sa := openStore(t, dsn, Options{ObservePath: pa.observe})
	sb := openStore(t, dsn, Options{ObservePath: pb.observe})
	ctx := context.Background()
	fire := func(s *Store, conv string, at time.Duration) string {
		d := alertingDecision(conv, "urgent", at)
		d.Alert.HourlyBudget = 2
		rec, err := s.Record(ctx, d)
		if err != nil {
			t.Fatalf("%s: %v", conv, err)
		}
		return alertString(rec.Alert)
	}
	if got := fire(sa, "c1", 0); got != "tier/fired/" {
		t.Fatalf("c1 on A: %s", got)
	}
	if got := fire(sb, "c2", time.Minute); got != "tier/fired/" { // B loads the team: one fired
		t.Fatalf("c2 on B: %s", got)
	}
	// A's cache counts one fired alert for sales; the database two.
	if got := fire(sa, "c3", 2*time.Minute); got != "tier/suppressed/budget" {
		t.Errorf("c3 on A: %s, want tier/suppressed/budget", got)
	}
	if got := pa.take(); !slices.Equal(got, []string{PathCached, PathStale}) {
		t.Errorf("A committed by %v, want [cached stale]", got)
	}
	// Both caches are now right: the next one needs no second attempt.
	if got := fire(sb, "c4", 3*time.Minute); got != "tier/suppressed/budget" {
		t.Errorf("c4 on B: %s, want tier/suppressed/budget", got)
	}
	if got := pb.take(); !slices.Equal(got, []string{PathCached, PathCached}) {
		t.Errorf("B committed by %v, want [cached cached]", got)
	}
	var fired int64
	sa.db.Table("alerts").Where("team = ? AND status = ?", "sales", feedback.AlertStatusFired).Count(&fired)
	if fired != 2 {
		t.Errorf("%d fired alerts for a budget of 2", fired)
	}
}

// TestCachedWriterLocksOnlyTheBudgetsItSpends: while another process holds
// a team's budget lock (as its batch spending that budget does until it
// commits), a batch planned from the cache that fires no tier alert for the
// team commits without waiting for it; one that fires waits, and commits
// once the lock is released.
func TestCachedWriterLocksOnlyTheBudgetsItSpends(t *testing.T) {
	dsn := freshPostgres(t)
	var p pathRecorder
	s := openStore(t, dsn, Options{ObservePath: p.observe})
	ctx := context.Background()
	// Advisory locks belong to the whole database, which other packages'
	// tests share while this one runs: the team's name is this test's own,
	// and only a wait for its lock counts.
	const team = "budget-lock-probe"
	urgent := func(conv string, at time.Duration, budget int) feedback.Decision {
		d := alertingDecision(conv, "urgent", at)
		d.Alert.Team, d.Alert.HourlyBudget = team, budget
		return d
	}
	if got := alertString(recordAlerting(t, s, urgent("c1", 0, 1)).Alert); got != "tier/fired/" {
		t.Fatalf("c1: %s, want tier/fired/", got)
	}
	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	lock := `SELECT pg_advisory_lock(hashtextextended('hotlane.alert_budget.' || $1, 0))`
	if _, err := holder.Exec(ctx, lock, team); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rec feedback.Recorded
		err error
	}
	// record records d and reports its result, or nil if it waits for the
	// team's budget lock instead (a bigint advisory key is held in pg_locks
	// as classid, its high 32 bits, and objid, its low ones).
	record := func(d feedback.Decision) (chan result, *result) {
		done := make(chan result, 1)
		go func() {
			rec, err := s.Record(ctx, d)
			done <- result{rec, err}
		}()
		for range 500 {
			select {
			case r := <-done:
				return done, &r
			case <-time.After(20 * time.Millisecond):
			}
			var waiting int64
			if err := s.db.Raw(`SELECT count(*) FROM pg_locks
  WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND (classid::int8 << 32 | objid::int8) = hashtextextended('hotlane.alert_budget.' || ?, 0)`, team).Scan(&waiting).Error; err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				return done, nil
			}
		}
		t.Fatalf("%s neither committed nor waited for a lock in 10 s", d.ConversationID)
		return nil, nil
	}

	// The budget of one is spent: c2's alert is held back, by the cache's
	// count, without the lock.
	_, r := record(urgent("c2", time.Minute, 1))
	switch {
	case r == nil:
		t.Fatal("c2, whose alert the budget holds back, waited for the team's budget lock")
	case r.err != nil:
		t.Fatal(r.err)
	case alertString(r.rec.Alert) != "tier/suppressed/budget":
		t.Errorf("c2: %s, want tier/suppressed/budget", alertString(r.rec.Alert))
	}
	// With a budget of five c3's alert fires: it must wait for the lock.
	done, r := record(urgent("c3", 2*time.Minute, 5))
	if r != nil {
		t.Fatalf("c3 committed (%v, alert %s) while another process held the budget lock", r.err, alertString(r.rec.Alert))
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err != nil || alertString(res.rec.Alert) != "tier/fired/" {
		t.Errorf("c3 after the lock was released: %v, alert %s; want tier/fired/", res.err, alertString(res.rec.Alert))
	}
	if got := p.take(); !slices.Equal(got, []string{PathCached, PathCached, PathCached}) {
		t.Errorf("committed by %v, want three cached batches", got)
	}
}

// TestCachedWriterEvicted: a conversation that left the cache is taken
// for new, found to exist, and committed with its stored state.
func TestCachedWriterEvicted(t *testing.T) {
	var p pathRecorder
	s := openStore(t, freshPostgres(t), Options{StateCache: 2, ObservePath: p.observe})
	ctx := context.Background()
	recordAlerting(t, s, alertingDecision("old", "high", 0))
	for i := range 4 {
		recordAlerting(t, s, alertingDecision(fmt.Sprintf("new-%d", i), "low", time.Minute))
	}
	p.take()
	rec := recordAlerting(t, s, alertingDecision("old", "high", 2*time.Minute))
	if rec.PreviousTier.String() != "high" || alertString(rec.Alert) != "tier/deduplicated/duplicate" {
		t.Errorf("evicted conversation: previous %q, alert %s; want high, tier/deduplicated/duplicate",
			rec.PreviousTier, alertString(rec.Alert))
	}
	if got := p.take(); !slices.Equal(got, []string{PathStale}) {
		t.Errorf("committed by %v, want [stale]", got)
	}
	c, err := s.Conversation(ctx, "old")
	if err != nil || c.Decisions != 2 {
		t.Errorf("old: %+v, %v; want 2 decisions", c, err)
	}
}

// TestCachedAndLockingWritersTogether has a process with the cache and one
// without it write the same conversations at once, in batches that can and
// cannot alert: every decision is committed and counted once, and no
// conversation fires a tier twice.
func TestCachedAndLockingWritersTogether(t *testing.T) {
	dsn := freshPostgres(t)
	stores := []*Store{openStore(t, dsn, Options{}), openStore(t, dsn, Options{StateCache: -1})}
	ctx := context.Background()
	tiers := []string{"low", "medium", "high", "urgent"}
	const workers, each, convs = 8, 60, 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := stores[w%2]
			for i := range each {
				conv := fmt.Sprintf("c%02d", (w*7+i*5)%convs)
				d := alertingDecision(conv, tiers[(w+i)%len(tiers)], time.Duration(i)*time.Second)
				if _, err := s.Record(ctx, d); err != nil {
					t.Errorf("worker %d, decision %d (%s): %v", w, i, conv, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var total int64
	var twice []string
	if err := stores[0].db.Raw(`SELECT coalesce(sum(decisions), 0) FROM conversations`).Scan(&total).Error; err != nil {
		t.Fatal(err)
	}
	if err := stores[0].db.Raw(`SELECT conversation_id || '/' || tier FROM alerts WHERE kind = 'tier' AND status = 'fired'
		GROUP BY conversation_id, tier HAVING count(*) > 1`).Scan(&twice).Error; err != nil {
		t.Fatal(err)
	}
	if total != workers*each || len(twice) > 0 {
		t.Errorf("conversations count %d decisions, want %d; tiers fired twice: %v", total, workers*each, twice)
	}
}

func TestStateCacheSetAsideWhileMostlyStale(t *testing.T) {
	c := newStateCache(10)
	for range 20 {
		c.observe(false)
		c.observe(true) // every other batch stale: not enough
	}
	if !c.useCache() {
		t.Fatal("cache set aside with half of the batches stale")
	}
	n := 0
	for c.useCache() {
		c.observe(true)
		if n++; n > 100 {
			t.Fatal("cache still used after 100 stale batches in a row")
		}
	}
	locked := 1 // the call that ended the loop
	for !c.useCache() {
		locked++
	}
	if locked != lockedBatches {
		t.Errorf("set aside for %d batches, want %d", locked, lockedBatches)
	}
}

// TestCachedWriterSetAsideAcrossProcesses: two processes that take turns on
// the same conversations find their caches out of date nearly every time;
// each soon commits on the locking path directly, and every decision still
// counts once.
func TestCachedWriterSetAsideAcrossProcesses(t *testing.T) {
	dsn := freshPostgres(t)
	var pa pathRecorder
	sa := openStore(t, dsn, Options{ObservePath: pa.observe})
	sb := openStore(t, dsn, Options{})
	const rounds = 40
	for i := range rounds {
		for _, s := range []*Store{sa, sb} {
			recordAlerting(t, s, alertingDecision("shared", "low", time.Duration(i)*time.Second))
		}
	}
	paths := pa.take()
	count := map[string]int{}
	for _, p := range paths {
		count[p]++
	}
	if count[PathLocked] < rounds/2 || count[PathStale] > rounds/2 {
		t.Errorf("A's paths: %v; want most batches locked once the cache proved stale", count)
	}
	c, err := sa.Conversation(context.Background(), "shared")
	if err != nil || c.Decisions != 2*rounds {
		t.Errorf("shared: %+v, %v; want %d decisions", c, err, 2*rounds)
	}
}
