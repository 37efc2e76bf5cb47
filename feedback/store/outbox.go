package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hotlane/hotlane/feedback"
)

var (
	clauseForUpdate = clause.Locking{Strength: "UPDATE"}
	clauseForShare  = clause.Locking{Strength: "SHARE"}
	clauseSkipLock  = clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}
)

type deliveryRow struct {
	ID            string `gorm:"primaryKey"`
	AlertID       string
	DestinationID string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	Claim         string
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

func (deliveryRow) TableName() string { return "deliveries" }

func (r deliveryRow) toDelivery() feedback.Delivery {
	return feedback.Delivery{
		ID: r.ID, AlertID: r.AlertID, DestinationID: r.DestinationID, Status: r.Status, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(), LastStatus: r.LastStatus, LastError: r.LastError,
		CreatedAt: r.CreatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt),
	}
}

type deliveryAttemptRow struct {
	ID         int64 `gorm:"primaryKey"`
	DeliveryID string
	Attempt    int
	At         time.Time
	StatusCode int
	Error      string
	DurationUs int64 `gorm:"column:duration_us"`
}

func (deliveryAttemptRow) TableName() string { return "delivery_attempts" }

// DispatchAlerts queues up to limit fired alerts that are not yet queued:
// in one transaction it creates one pending delivery per destination of
// the alert's team (due at) and marks the alerts dispatched. Safe to run
// from several processes at once. It returns how many alerts it took.
//
// On PostgreSQL the destinations are read FOR SHARE: a DeleteDestination
// that has marked one deleted makes the read wait and then skip it, and one
// that comes after waits for the commit, so that its cancel sees the
// deliveries made here. (The foreign key of a delivery only takes a key
// share lock, which a delete's update does not conflict with.) SQLite runs
// one write transaction at a time and needs no lock.
func (s *Store) DispatchAlerts(ctx context.Context, at time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	at = normTime(at)
	var n int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Select("id, kind, team, tier").Where("status = ? AND dispatched_at IS NULL", "fired").
			Order("created_at, id").Limit(limit)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clauseSkipLock)
		}
		var alerts []alertRow
		if err := q.Find(&alerts).Error; err != nil {
			return translate(err)
		}
		if len(alerts) == 0 {
			return nil
		}
		n = len(alerts)
		var teams, ids []string
		for _, a := range alerts {
			ids = append(ids, a.ID)
			if !slices.Contains(teams, a.Team) {
				teams = append(teams, a.Team)
			}
		}
		var dests []destinationRow
		dq := tx.Select("id, team, kind, lead, tiers").Where("team IN ? AND deleted_at IS NULL", teams).Order("created_at, id")
		if s.dialect == DialectPostgres {
			dq = dq.Clauses(clauseForShare)
		}
		if err := dq.Find(&dests).Error; err != nil {
			return translate(err)
		}
		var rows []deliveryRow
		for _, a := range alerts {
			for _, d := range dests {
				if d.Team == a.Team && feedback.RoutesTo(a.Kind, d.Kind, d.Lead) &&
					(a.Kind == feedback.AlertKindReview || feedback.TakesTier(parseTiers(d.Tiers), parseTier(a.Tier))) {
					rows = append(rows, deliveryRow{
						ID: uuid.Must(uuid.NewV7()).String(), AlertID: a.ID, DestinationID: d.ID,
						Status: feedback.DeliveryPending, NextAttemptAt: at, CreatedAt: at,
					})
				}
			}
		}
		if len(rows) > 0 {
			err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "alert_id"}, {Name: "destination_id"}}, DoNothing: true}).
				CreateInBatches(&rows, 200).Error
			if err != nil {
				return translate(err)
			}
		}
		return translate(tx.Model(&alertRow{}).Where("id IN ?", ids).Update("dispatched_at", at).Error)
	})
	if err != nil {
		return 0, fmt.Errorf("store: dispatch alerts: %w", err)
	}
	return n, nil
}

// ClaimDeliveries takes up to limit pending deliveries due at or before at
// and leases them to the caller until at+lease: no other worker takes them
// meanwhile, and if the caller dies they are due again when the lease ends.
// A due delivery whose destination has been deleted is canceled instead of
// claimed (one made by a dispatch that raced the delete). Safe to run from
// several processes at once.
func (s *Store) ClaimDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]feedback.PendingDelivery, error) {
	return s.ClaimDeliveriesFor(ctx, feedback.DeliveryClaim{At: at, Lease: lease, Limit: limit})
}

// ClaimDeliveriesFor is ClaimDeliveries with the sender's bounds: at most
// c.PerDestination deliveries of one destination, none of the destinations
// in c.Skip (those it has requests in flight to, or holds back).
func (s *Store) ClaimDeliveriesFor(ctx context.Context, c feedback.DeliveryClaim) ([]feedback.PendingDelivery, error) {
	at, lease, limit := normTime(c.At), c.Lease, c.Limit
	if limit <= 0 {
		limit = 50
	}
	claim := uuid.Must(uuid.NewV7()).String()
	var ids []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var due []struct {
			ID   string
			Dead bool // its destination is deleted
		}
		q := tx.Model(&deliveryRow{}).
			Select(`id, EXISTS (SELECT 1 FROM destinations d
  WHERE d.id = deliveries.destination_id AND d.deleted_at IS NOT NULL) AS dead`).
			Where("status = ? AND next_attempt_at <= ?", feedback.DeliveryPending, at).
			Order("next_attempt_at, id").Limit(limit)
		if len(c.Skip) > 0 {
			q = q.Where("destination_id NOT IN ?", c.Skip)
		}
		if c.PerDestination > 0 {
			// The first PerDestination due deliveries of each destination.
			// PostgreSQL does not lock rows of a window query, so the
			// candidates are chosen first and locked below.
			q = q.Where(`id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY destination_id ORDER BY next_attempt_at, id) AS rn
  FROM deliveries WHERE status = ? AND next_attempt_at <= ?) ranked WHERE rn <= ?)`, feedback.DeliveryPending, at, c.PerDestination)
		}
		if s.dialect == DialectPostgres {
			q = q.Clauses(clauseSkipLock)
		}
		if err := q.Find(&due).Error; err != nil {
			return translate(err)
		}
		var dead []string
		for _, d := range due {
			if d.Dead {
				dead = append(dead, d.ID)
			} else {
				ids = append(ids, d.ID)
			}
		}
		if len(dead) > 0 {
			// As DeleteDestination does with the deliveries it sees.
			err := tx.Model(&deliveryRow{}).Where("id IN ? AND status = ?", dead, feedback.DeliveryPending).
				Updates(map[string]any{"status": feedback.DeliveryCanceled, "claim": ""}).Error
			if err != nil {
				return translate(err)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return translate(tx.Model(&deliveryRow{}).Where("id IN ?", ids).
			Updates(map[string]any{"claim": claim, "next_attempt_at": at.Add(lease)}).Error)
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := s.loadPending(ctx, ids, claim, at)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	return out, nil
}

// loadPending reads what the sender needs for the deliveries claimed with
// claim. A delivery canceled since the claim (its destination deleted) no
// longer matches and is left out, and so is one whose destination is
// deleted: nothing is sent to a deleted destination.
func (s *Store) loadPending(ctx context.Context, ids []string, claim string, at time.Time) ([]feedback.PendingDelivery, error) {
	db := s.db.WithContext(ctx)
	var rows []deliveryRow
	if err := db.Where("id IN ? AND claim = ? AND status = ?", ids, claim, feedback.DeliveryPending).
		Order("next_attempt_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	var alertIDs, destIDs []string
	for _, r := range rows {
		alertIDs = append(alertIDs, r.AlertID)
		destIDs = append(destIDs, r.DestinationID)
	}
	var alerts []alertRow
	if err := db.Where("id IN ?", alertIDs).Find(&alerts).Error; err != nil {
		return nil, translate(err)
	}
	var dests []destinationRow
	if err := db.Where("id IN ?", destIDs).Find(&dests).Error; err != nil {
		return nil, translate(err)
	}
	var decisionIDs []string
	for _, a := range alerts {
		decisionIDs = append(decisionIDs, a.DecisionID)
	}
	var reasons []struct {
		ID      string
		Reasons string
	}
	if err := db.Table("decisions").Select("id, reasons").Where("id IN ?", decisionIDs).Find(&reasons).Error; err != nil {
		return nil, translate(err)
	}
	alertByID := make(map[string]alertRow, len(alerts))
	for _, a := range alerts {
		alertByID[a.ID] = a
	}
	destByID := make(map[string]destinationRow, len(dests))
	for _, d := range dests {
		destByID[d.ID] = d
	}
	reasonsByID := make(map[string]string, len(reasons))
	for _, r := range reasons {
		reasonsByID[r.ID] = r.Reasons
	}
	out := make([]feedback.PendingDelivery, 0, len(rows))
	for _, r := range rows {
		a, d := alertByID[r.AlertID], destByID[r.DestinationID]
		if d.DeletedAt != nil {
			continue // deleted since its row was read, and canceled by that delete
		}
		oa := a.toAlert()
		oa.Reasons = []byte(reasonsByID[a.DecisionID])
		if len(oa.Reasons) == 0 {
			oa.Reasons = []byte("[]")
		}
		out = append(out, feedback.PendingDelivery{
			ID: r.ID, Claim: claim, Attempts: r.Attempts, CreatedAt: r.CreatedAt.UTC(),
			Alert: oa, Destination: d.toDestination(at), Secrets: d.activeSecrets(at),
		})
	}
	return out, nil
}

// FinishDelivery records one attempt and moves its delivery on: delivered,
// due again at RetryAt, or failed. The attempt is always recorded; the
// delivery only changes when the caller still holds its claim (a worker
// whose lease ran out does not overwrite the one that took over).
func (s *Store) FinishDelivery(ctx context.Context, o feedback.DeliveryOutcome) error {
	at := normTime(o.At)
	errText := o.Error
	if len(errText) > 1000 {
		errText = errText[:1000]
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		att := deliveryAttemptRow{
			DeliveryID: o.DeliveryID, Attempt: o.Attempt, At: at, StatusCode: o.StatusCode,
			Error: errText, DurationUs: o.Duration.Microseconds(),
		}
		if err := tx.Create(&att).Error; err != nil {
			return translate(err)
		}
		upd := map[string]any{
			"attempts": gorm.Expr("attempts + 1"), "claim": "", "last_status": o.StatusCode, "last_error": errText,
		}
		switch {
		case o.Delivered:
			upd["status"], upd["delivered_at"] = feedback.DeliveryDelivered, at
		case o.RetryAt != nil:
			upd["next_attempt_at"] = normTime(*o.RetryAt)
		default:
			upd["status"] = feedback.DeliveryFailed
		}
		return translate(tx.Model(&deliveryRow{}).Where("id = ? AND claim = ? AND status = ?", o.DeliveryID, o.Claim, feedback.DeliveryPending).
			Updates(upd).Error)
	})
	if err != nil {
		return fmt.Errorf("store: finish delivery %q: %w", o.DeliveryID, err)
	}
	return nil
}

// AlertDeliveries returns the deliveries of an alert, oldest first.
func (s *Store) AlertDeliveries(ctx context.Context, alertID string) ([]feedback.Delivery, error) {
	var rows []deliveryRow
	if err := s.db.WithContext(ctx).Where("alert_id = ?", alertID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: deliveries of alert %q: %w", alertID, translate(err))
	}
	out := make([]feedback.Delivery, len(rows))
	for i, r := range rows {
		out[i] = r.toDelivery()
	}
	return out, nil
}

// DeliveryAttempts returns every attempt of a delivery, first first.
func (s *Store) DeliveryAttempts(ctx context.Context, deliveryID string) ([]feedback.DeliveryAttempt, error) {
	var rows []deliveryAttemptRow
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: attempts of delivery %q: %w", deliveryID, translate(err))
	}
	out := make([]feedback.DeliveryAttempt, len(rows))
	for i, r := range rows {
		out[i] = feedback.DeliveryAttempt{
			DeliveryID: r.DeliveryID, Attempt: r.Attempt, At: r.At.UTC(), StatusCode: r.StatusCode,
			Error: r.Error, Duration: time.Duration(r.DurationUs) * time.Microsecond,
		}
	}
	return out, nil
}
