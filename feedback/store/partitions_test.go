package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

func recordAt(t *testing.T, s *Store, conv string, at time.Time) feedback.Decision {
	t.Helper()
	d := newDecision(conv, "low")
	d.CreatedAt, d.OccurredAt = at, at
	if _, err := s.RecordDecision(context.Background(), d); err != nil {
		t.Fatalf("RecordDecision at %v: %v", at, err)
	}
	return d
}

func partitionOf(t *testing.T, s *Store, id string) string {
	t.Helper()
	var part string
	if err := s.sqlDB.QueryRow(`SELECT tableoid::regclass::text FROM decisions WHERE id = $1`, id).Scan(&part); err != nil {
		t.Fatalf("partition of %s: %v", id, err)
	}
	return part
}

// The server keeps months ahead created, so a decision recorded in a new
// month lands in that month's partition, not the default one.
func TestMaintainDecisionsCreatesAhead(t *testing.T) {
	s := openStore(t, freshPostgres(t), Options{})
	ctx := context.Background()
	now := time.Date(2031, 6, 15, 12, 0, 0, 0, time.UTC)
	res, err := s.MaintainDecisions(ctx, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"decisions_p203106", "decisions_p203107", "decisions_p203108"}; !slices.Equal(res.Created, want) {
		t.Errorf("Created = %v, want %v", res.Created, want)
	}
	d := recordAt(t, s, "c", time.Date(2031, 8, 31, 23, 59, 0, 0, time.UTC))
	if got := partitionOf(t, s, d.ID); got != "decisions_p203108" {
		t.Errorf("a decision of August 2031 is in %s, want decisions_p203108", got)
	}
	later := recordAt(t, s, "c", time.Date(2031, 9, 1, 0, 0, 0, 0, time.UTC))
	if got := partitionOf(t, s, later.ID); got != "decisions_default" {
		t.Errorf("a decision of September 2031 is in %s before its month exists, want decisions_default", got)
	}
	// A second pass has nothing to do.
	if res, err := s.MaintainDecisions(ctx, now, 0); err != nil || len(res.Created)+len(res.Dropped) != 0 {
		t.Errorf("second pass = %+v, %v; want nothing done", res, err)
	}
}

// Retention drops whole months that ended before now-retain, with their
// decisions, and keeps the month that straddles the cutoff.
func TestMaintainDecisionsDropsExpiredMonths(t *testing.T) {
	s := openStore(t, freshPostgres(t), Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	retain := 200 * 24 * time.Hour
	cutoff := now.Add(-retain)
	old := recordAt(t, s, "old", monthOf(cutoff).AddDate(0, -1, 3))
	straddling := recordAt(t, s, "mid", monthOf(cutoff).Add(time.Hour))
	recent := recordAt(t, s, "new", now.Add(-time.Hour))
	before, err := s.DecisionPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.MaintainDecisions(ctx, now, retain)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.DecisionPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dropped) == 0 || len(after) != len(before)-len(res.Dropped) {
		t.Fatalf("Dropped = %v: %d partitions before, %d after", res.Dropped, len(before), len(after))
	}
	if !after[0].Equal(monthOf(cutoff)) {
		t.Errorf("oldest month kept = %v, want the month of the cutoff %v", after[0], monthOf(cutoff))
	}
	if _, err := s.Decision(ctx, old.ID); !errors.Is(err, feedback.ErrNotFound) {
		t.Errorf("decision of an expired month: err = %v, want ErrNotFound", err)
	}
	for _, d := range []feedback.Decision{straddling, recent} {
		if _, err := s.Decision(ctx, d.ID); err != nil {
			t.Errorf("kept decision %s: %v", d.ConversationID, err)
		}
	}
	var gone bool
	if err := s.sqlDB.QueryRow(`SELECT to_regclass($1) IS NULL`, partitionName(monthOf(old.CreatedAt))).Scan(&gone); err != nil || !gone {
		t.Errorf("the expired month's table is still there (%v); want it dropped", err)
	}
}

// A month whose lock is held by a long read is skipped at once, not
// waited for (writes would queue behind the waiting drop), and dropped
// on a later pass.
func TestMaintainDecisionsSkipsBusyMonth(t *testing.T) {
	s := openStore(t, freshPostgres(t), Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	retain := 200 * 24 * time.Hour
	recordAt(t, s, "old", monthOf(now.Add(-retain)).AddDate(0, -1, 3))
	reader, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRow(`SELECT count(*) FROM decisions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	res, err := s.MaintainDecisions(ctx, now, retain)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) == 0 || len(res.Dropped) != 0 {
		t.Errorf("with a reader holding decisions: %+v, want the expired months skipped", res)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	res, err = s.MaintainDecisions(ctx, now, retain)
	if err != nil || len(res.Dropped) == 0 || len(res.Skipped) != 0 {
		t.Errorf("after the reader: %+v, %v; want the expired months dropped", res, err)
	}
}

// SQLite has no partitions: retention deletes the expired decisions.
func TestMaintainDecisionsSQLite(t *testing.T) {
	s := openStore(t, engines[0].dsn(t), Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	old := recordAt(t, s, "old", now.Add(-500*24*time.Hour))
	recent := recordAt(t, s, "new", now.Add(-time.Hour))
	res, err := s.MaintainDecisions(ctx, now, 400*24*time.Hour)
	if err != nil || res.Deleted != 1 {
		t.Fatalf("MaintainDecisions = %+v, %v; want one decision deleted", res, err)
	}
	if _, err := s.Decision(ctx, old.ID); !errors.Is(err, feedback.ErrNotFound) {
		t.Errorf("expired decision: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Decision(ctx, recent.ID); err != nil {
		t.Errorf("recent decision: %v", err)
	}
}

// The tuning job's read of a window touches only the months recorded
// since the window began (less feedback.MaxAhead), not the older ones.
func TestWindowReadsOnlyItsMonths(t *testing.T) {
	s := openStore(t, freshPostgres(t), Options{})
	now := time.Now().UTC()
	from, to := now.Add(-12*7*24*time.Hour), now
	rows, err := s.db.Raw(`EXPLAIN `+windowDecisionsSQL(` COLLATE "C"`), from, to, from.Add(-feedback.MaxAhead)).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	read := map[string]bool{}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		for m := monthOf(now).AddDate(-2, 0, 0); !m.After(monthOf(now).AddDate(0, PartitionsAhead, 0)); m = m.AddDate(0, 1, 0) {
			if name := partitionName(m); strings.Contains(line, name+" ") {
				read[name] = true
			}
		}
	}
	first := monthOf(from.Add(-feedback.MaxAhead))
	for m := monthOf(now).AddDate(-2, 0, 0); !m.After(monthOf(now)); m = m.AddDate(0, 1, 0) {
		if want := !m.Before(first); read[partitionName(m)] != want {
			t.Errorf("window read of %s = %v, want %v (the window starts %s)", partitionName(m), read[partitionName(m)], want, from.Format(time.DateOnly))
		}
	}
}

// Window reads rely on a decision occurring at most feedback.MaxAhead
// after it is recorded; the store refuses one that claims otherwise.
func TestDecisionOccurringAfterRecordedRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		d := newDecision("c", "low")
		d.CreatedAt = time.Now().UTC()
		d.OccurredAt = d.CreatedAt.Add(feedback.MaxAhead + time.Minute)
		if _, err := s.RecordDecision(context.Background(), d); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("RecordDecision occurring after MaxAhead: err = %v, want ErrInvalid", err)
		}
		d.OccurredAt = d.CreatedAt.Add(feedback.MaxAhead - time.Minute)
		if _, err := s.RecordDecision(context.Background(), d); err != nil {
			t.Errorf("RecordDecision within MaxAhead: %v", err)
		}
	})
}
