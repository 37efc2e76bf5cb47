package store

import (
	"context"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

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
	decisions := decisionsOf(batch)
	teams, since := feedback.AlertTeams(decisions)
	sampled := feedback.SampledConversations(decisions)
	stored := make(map[string]model.Tier, len(plans))
	var alerts feedback.BatchAlerts
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		state := make(map[string]feedback.AlertState, len(plans))
		for chunk := range slices.Chunk(ids, 500) {
			var part []conversationRow
			if err := tx.Select("id, tier, alerted_tier, last_alert_at").Where("id IN ?", chunk).Find(&part).Error; err != nil {
				return err
			}
			for _, c := range part {
				stored[c.ID] = parseTier(c.Tier)
				state[c.ID] = feedback.AlertState{AlertedTier: parseTier(c.AlertedTier), LastAlertAt: c.LastAlertAt}
			}
		}
		fired := map[string]int{}
		if len(teams) > 0 {
			var counts []struct {
				Team string
				N    int
			}
			err := tx.Model(&alertRow{}).Select("team, count(*) AS n").
				Where("status = ? AND kind = ? AND team IN ? AND created_at > ?", feedback.AlertStatusFired, feedback.AlertKindTier, teams, since).
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
				Where("conversation_id IN ? AND kind = ?", chunk, feedback.AlertKindReview).Pluck("conversation_id", &reviewed).Error
			if err != nil {
				return err
			}
			for _, id := range reviewed {
				st := state[id]
				st.Reviewed = true
				state[id] = st
			}
		}
		alerts = feedback.PlanAlerts(decisions, state, fired)
		setAlertState(plans, alerts.Final)
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
				"route_team":       gorm.Expr("excluded.route_team"),
				"route_owner":      gorm.Expr("excluded.route_owner"),
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
		if len(alerts.Alerts) > 0 {
			rows := make([]alertRow, len(alerts.Alerts))
			for i := range alerts.Alerts {
				rows[i] = newAlertRow(&alerts.Alerts[i])
			}
			return tx.CreateInBatches(&rows, 500).Error
		}
		return nil
	})
	if err != nil {
		return err
	}
	finishBatch(batch, stored, &alerts)
	return nil
}
