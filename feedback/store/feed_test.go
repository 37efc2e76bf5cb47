package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// seedAlert records a decision of conv (creating the conversation) and an
// alert for it.
func seedAlert(t *testing.T, s *Store, a feedback.Alert) feedback.Alert {
	t.Helper()
	ctx := context.Background()
	d := newDecision(a.ConversationID, a.Tier.String())
	d.Channel = a.Channel
	d.CreatedAt = a.CreatedAt
	if _, err := s.RecordDecision(ctx, d); err != nil {
		t.Fatalf("record decision: %v", err)
	}
	a.DecisionID = d.ID
	if a.Kind == "" {
		a.Kind = "tier"
	}
	if a.Status == "" {
		a.Status = "fired"
	}
	if err := s.InsertAlertRow(ctx, a); err != nil {
		t.Fatalf("insert alert: %v", err)
	}
	return a
}

func TestLabelAlert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		seedAlert(t, s, feedback.Alert{ID: "a1", ConversationID: "c1", Channel: "web", Tier: model.TierHigh, Team: "sales", CreatedAt: t0})

		first, err := s.LabelAlert(ctx, "a1", "ana", feedback.LabelUseful, "real buyer")
		if err != nil {
			t.Fatal(err)
		}
		if first.Label != feedback.LabelUseful || first.ConversationID != "c1" || first.Note != "real buyer" {
			t.Errorf("label = %+v", first)
		}
		// The same agent relabelling replaces their label.
		second, err := s.LabelAlert(ctx, "a1", "ana", feedback.LabelNoise, "")
		if err != nil {
			t.Fatal(err)
		}
		if second.Label != feedback.LabelNoise || second.Note != "" || !second.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("relabel = %+v, want noise keeping created_at %v", second, first.CreatedAt)
		}
		// Another agent's label is kept beside it.
		if _, err := s.LabelAlert(ctx, "a1", "bo", feedback.LabelUseful, ""); err != nil {
			t.Fatal(err)
		}
		a, err := s.Alert(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range a.Labels {
			got[l.Agent] = l.Label
		}
		if len(a.Labels) != 2 || got["ana"] != feedback.LabelNoise || got["bo"] != feedback.LabelUseful {
			t.Errorf("labels = %+v, want ana noise and bo useful", a.Labels)
		}
		labels, err := s.ConversationLabels(ctx, "c1")
		if err != nil || len(labels) != 2 {
			t.Errorf("ConversationLabels = %d, %v; want 2", len(labels), err)
		}

		tests := []struct {
			name, alert, agent, label, note string
			want                            error
		}{
			{"unknown alert", "nope", "ana", feedback.LabelUseful, "", feedback.ErrNotFound},
			{"bad label", "a1", "ana", "meh", "", feedback.ErrInvalid},
			{"no agent", "a1", "", feedback.LabelUseful, "", feedback.ErrInvalid},
			{"long agent", "a1", string(make([]byte, 129)), feedback.LabelUseful, "", feedback.ErrInvalid},
			{"control in agent", "a1", "a\nb", feedback.LabelUseful, "", feedback.ErrInvalid},
		}
		for _, tt := range tests {
			if _, err := s.LabelAlert(ctx, tt.alert, tt.agent, tt.label, tt.note); !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
		}
	})
}

func TestAlertFeed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		// Seven alerts, one a second apart; a6 and a5 share a timestamp so
		// that paging must order by id too.
		for i := range 7 {
			at := t0.Add(time.Duration(i) * time.Second)
			if i == 6 {
				at = t0.Add(5 * time.Second)
			}
			a := feedback.Alert{ID: fmt.Sprintf("a%d", i), ConversationID: fmt.Sprintf("c%d", i), Channel: "web",
				Tier: model.TierHigh, Team: "sales", CreatedAt: at}
			switch i {
			case 2:
				a.Team = "retention"
			case 3:
				a.Status, a.Reason = "suppressed", "budget"
			case 4:
				a.Status, a.Reason = "deduplicated", "duplicate"
			}
			seedAlert(t, s, a)
		}
		if _, err := s.LabelAlert(ctx, "a1", "ana", feedback.LabelUseful, ""); err != nil {
			t.Fatal(err)
		}

		ids := func(q feedback.AlertQuery) []string {
			t.Helper()
			var out []string
			for page := 0; ; page++ {
				p, err := s.Alerts(ctx, q)
				if err != nil {
					t.Fatalf("Alerts(%+v): %v", q, err)
				}
				for _, a := range p.Alerts {
					out = append(out, a.ID)
				}
				if p.NextCursor == "" {
					return out
				}
				if page > 10 {
					t.Fatal("paging does not end")
				}
				q.Cursor = p.NextCursor
			}
		}
		tests := []struct {
			name string
			q    feedback.AlertQuery
			want string
		}{
			{"all", feedback.AlertQuery{}, "[a6 a5 a4 a3 a2 a1 a0]"},
			{"all in pages of 2", feedback.AlertQuery{Limit: 2}, "[a6 a5 a4 a3 a2 a1 a0]"},
			{"unlabelled", feedback.AlertQuery{Status: feedback.FeedUnlabelled, Limit: 1}, "[a6 a5 a2 a0]"},
			{"labelled", feedback.AlertQuery{Status: feedback.FeedLabelled}, "[a1]"},
			{"suppressed", feedback.AlertQuery{Status: feedback.FeedSuppressed}, "[a3]"},
			{"team", feedback.AlertQuery{Team: "retention"}, "[a2]"},
			{"since", feedback.AlertQuery{Since: t0.Add(4 * time.Second), Limit: 1}, "[a6 a5 a4]"},
		}
		for _, tt := range tests {
			if got := fmt.Sprint(ids(tt.q)); got != tt.want {
				t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
			}
		}
		p, err := s.Alerts(ctx, feedback.AlertQuery{Status: feedback.FeedLabelled})
		if err != nil || len(p.Alerts) != 1 || len(p.Alerts[0].Labels) != 1 {
			t.Fatalf("labelled page = %+v, %v; want a1 with its label", p, err)
		}
		if _, err := s.Alerts(ctx, feedback.AlertQuery{Status: "bogus"}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("bad status: err = %v, want ErrInvalid", err)
		}
		if _, err := s.Alerts(ctx, feedback.AlertQuery{Cursor: "!!"}); !errors.Is(err, feedback.ErrInvalid) {
			t.Errorf("bad cursor: err = %v, want ErrInvalid", err)
		}
	})
}
