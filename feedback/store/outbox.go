package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Delivery statuses.
const (
	// DeliveryPending is waiting for its first or next attempt.
	DeliveryPending = "pending"
	// DeliveryDelivered got a 2xx answer.
	DeliveryDelivered = "delivered"
	// DeliveryFailed ran out of retries.
	DeliveryFailed = "failed"
	// DeliveryCanceled belonged to a destination deleted before delivery.
	DeliveryCanceled = "canceled"
)

// Alert kinds, as stored in alerts.kind.
const (
	AlertKindTier   = "tier"
	AlertKindReview = "review"
	AlertKindSLA    = "sla"
)

var (
	clauseForUpdate = clause.Locking{Strength: "UPDATE"}
	clauseForShare  = clause.Locking{Strength: "SHARE"}
	clauseSkipLock  = clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}
)

// OutboxAlert is a fired alert as delivery sees it: what a receiver is told.
type OutboxAlert struct {
	ID             string // UUIDv7; RaiseAlert makes one when empty
	Kind           string // tier, review or sla
	ConversationID string
	DecisionID     string
	Channel        string
	Tier           string
	Score          float64
	Team           string
	Owner          string
	SampleRate     *float64 // review alerts: the probability they were sampled with
	CreatedAt      time.Time
	// Reasons is the JSON array of the decision's reasons; filled when a
	// delivery is claimed.
	Reasons []byte
}

func (r alertRow) toOutboxAlert() OutboxAlert {
	return OutboxAlert{
		ID: r.ID, Kind: r.Kind, ConversationID: r.ConversationID, DecisionID: r.DecisionID, Channel: r.Channel,
		Tier: r.Tier, Score: r.Score, Team: r.Team, Owner: r.Owner, SampleRate: r.SampleRate, CreatedAt: r.CreatedAt.UTC(),
	}
}

// Delivery is one alert on its way to one destination. Its ID is the
// Hotlane-Delivery header, the same on every attempt.
type Delivery struct {
	ID            string
	AlertID       string
	DestinationID string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int // HTTP status of the last attempt; 0 when none came back
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

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

func (r deliveryRow) toDelivery() Delivery {
	return Delivery{
		ID: r.ID, AlertID: r.AlertID, DestinationID: r.DestinationID, Status: r.Status, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(), LastStatus: r.LastStatus, LastError: r.LastError,
		CreatedAt: r.CreatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt),
	}
}

// DeliveryAttempt is one try at sending a delivery.
type DeliveryAttempt struct {
	DeliveryID string
	Attempt    int // 1 for the first
	At         time.Time
	StatusCode int // 0 when no HTTP answer came back
	Error      string
	Duration   time.Duration
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

// PendingDelivery is a delivery claimed for sending, with everything the
// sender needs. Secrets must never be logged.
type PendingDelivery struct {
	ID          string
	Claim       string // token that FinishDelivery must present
	Attempts    int    // attempts made before this one
	CreatedAt   time.Time
	Alert       OutboxAlert
	Destination Destination
	// Secrets are the destination's active signing secrets, current first.
	Secrets []string
}

// DeliveryOutcome is the result of one attempt, for FinishDelivery.
type DeliveryOutcome struct {
	DeliveryID string
	Claim      string
	Attempt    int // 1 for the first
	At         time.Time
	StatusCode int
	Error      string
	Duration   time.Duration
	// Delivered is true when the receiver accepted the delivery.
	Delivered bool
	// RetryAt is when to try again after a failure; nil gives up (failed).
	RetryAt *time.Time
}

// RaiseAlert stores a fired alert outside the score path (an SLA
// escalation, an alert raised by hand) and returns it. Its deliveries are
// queued by the next DispatchAlerts. ID and CreatedAt are filled when zero.
func (s *Store) RaiseAlert(ctx context.Context, a OutboxAlert) (OutboxAlert, error) {
	if err := raiseAlert(s.db.WithContext(ctx), &a); err != nil {
		return OutboxAlert{}, fmt.Errorf("feedback: raise alert: %w", err)
	}
	return a, nil
}

func raiseAlert(tx *gorm.DB, a *OutboxAlert) error {
	if !slices.Contains([]string{AlertKindTier, AlertKindReview, AlertKindSLA}, a.Kind) {
		return fmt.Errorf("%w: alert kind must be tier, review or sla", ErrInvalid)
	}
	if a.ConversationID == "" {
		return fmt.Errorf("%w: conversation id is required", ErrInvalid)
	}
	if a.ID == "" {
		a.ID = uuid.Must(uuid.NewV7()).String()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	} else {
		a.CreatedAt = normTime(a.CreatedAt)
	}
	row := alertRow{
		ID: a.ID, Kind: a.Kind, ConversationID: a.ConversationID, DecisionID: a.DecisionID, Channel: a.Channel,
		Tier: a.Tier, Score: a.Score, Team: a.Team, Owner: a.Owner, Status: "fired", SampleRate: a.SampleRate,
		CreatedAt: a.CreatedAt,
	}
	return translate(tx.Create(&row).Error)
}

// routesTo reports whether an alert of kind goes to destination d. The
// feed reads alerts itself; SLA escalations go to lead destinations only,
// other alerts to the rest; review requests ask for a label in the UI and
// go to webhooks but not to Slack, where they would be noise.
func routesTo(kind string, d destinationRow) bool {
	switch {
	case d.Kind == DestinationFeed:
		return false
	case kind == AlertKindSLA:
		return d.Lead
	case d.Lead:
		return false
	case kind == AlertKindReview:
		return d.Kind == DestinationWebhook
	default:
		return true
	}
}

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
		q := tx.Select("id, kind, team").Where("status = ? AND dispatched_at IS NULL", "fired").
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
		dq := tx.Select("id, team, kind, lead").Where("team IN ? AND deleted_at IS NULL", teams).Order("created_at, id")
		if s.dialect == DialectPostgres {
			dq = dq.Clauses(clauseForShare)
		}
		if err := dq.Find(&dests).Error; err != nil {
			return translate(err)
		}
		var rows []deliveryRow
		for _, a := range alerts {
			for _, d := range dests {
				if d.Team == a.Team && routesTo(a.Kind, d) {
					rows = append(rows, deliveryRow{
						ID: uuid.Must(uuid.NewV7()).String(), AlertID: a.ID, DestinationID: d.ID,
						Status: DeliveryPending, NextAttemptAt: at, CreatedAt: at,
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
		return 0, fmt.Errorf("feedback: dispatch alerts: %w", err)
	}
	return n, nil
}

// ClaimDeliveries takes up to limit pending deliveries due at or before at
// and leases them to the caller until at+lease: no other worker takes them
// meanwhile, and if the caller dies they are due again when the lease ends.
// A due delivery whose destination has been deleted is canceled instead of
// claimed (one made by a dispatch that raced the delete). Safe to run from
// several processes at once.
func (s *Store) ClaimDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]PendingDelivery, error) {
	if limit <= 0 {
		limit = 50
	}
	at = normTime(at)
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
			Where("status = ? AND next_attempt_at <= ?", DeliveryPending, at).
			Order("next_attempt_at, id").Limit(limit)
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
			err := tx.Model(&deliveryRow{}).Where("id IN ? AND status = ?", dead, DeliveryPending).
				Updates(map[string]any{"status": DeliveryCanceled, "claim": ""}).Error
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
		return nil, fmt.Errorf("feedback: claim deliveries: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := s.loadPending(ctx, ids, claim, at)
	if err != nil {
		return nil, fmt.Errorf("feedback: claim deliveries: %w", err)
	}
	return out, nil
}

// loadPending reads what the sender needs for the deliveries claimed with
// claim. A delivery canceled since the claim (its destination deleted) no
// longer matches and is left out, and so is one whose destination is
// deleted: nothing is sent to a deleted destination.
func (s *Store) loadPending(ctx context.Context, ids []string, claim string, at time.Time) ([]PendingDelivery, error) {
	db := s.db.WithContext(ctx)
	var rows []deliveryRow
	if err := db.Where("id IN ? AND claim = ? AND status = ?", ids, claim, DeliveryPending).
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
	out := make([]PendingDelivery, 0, len(rows))
	for _, r := range rows {
		a, d := alertByID[r.AlertID], destByID[r.DestinationID]
		if d.DeletedAt != nil {
			continue // deleted since its row was read, and canceled by that delete
		}
		oa := a.toOutboxAlert()
		oa.Reasons = []byte(reasonsByID[a.DecisionID])
		if len(oa.Reasons) == 0 {
			oa.Reasons = []byte("[]")
		}
		out = append(out, PendingDelivery{
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
func (s *Store) FinishDelivery(ctx context.Context, o DeliveryOutcome) error {
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
			upd["status"], upd["delivered_at"] = DeliveryDelivered, at
		case o.RetryAt != nil:
			upd["next_attempt_at"] = normTime(*o.RetryAt)
		default:
			upd["status"] = DeliveryFailed
		}
		return translate(tx.Model(&deliveryRow{}).Where("id = ? AND claim = ? AND status = ?", o.DeliveryID, o.Claim, DeliveryPending).
			Updates(upd).Error)
	})
	if err != nil {
		return fmt.Errorf("feedback: finish delivery %q: %w", o.DeliveryID, err)
	}
	return nil
}

// AlertDeliveries returns the deliveries of an alert, oldest first.
func (s *Store) AlertDeliveries(ctx context.Context, alertID string) ([]Delivery, error) {
	var rows []deliveryRow
	if err := s.db.WithContext(ctx).Where("alert_id = ?", alertID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("feedback: deliveries of alert %q: %w", alertID, translate(err))
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = r.toDelivery()
	}
	return out, nil
}

// DeliveryAttempts returns every attempt of a delivery, first first.
func (s *Store) DeliveryAttempts(ctx context.Context, deliveryID string) ([]DeliveryAttempt, error) {
	var rows []deliveryAttemptRow
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("feedback: attempts of delivery %q: %w", deliveryID, translate(err))
	}
	out := make([]DeliveryAttempt, len(rows))
	for i, r := range rows {
		out[i] = DeliveryAttempt{
			DeliveryID: r.DeliveryID, Attempt: r.Attempt, At: r.At.UTC(), StatusCode: r.StatusCode,
			Error: r.Error, Duration: time.Duration(r.DurationUs) * time.Microsecond,
		}
	}
	return out, nil
}

// SLABreaches returns up to limit ids of conversations that reached an
// alerting tier, have had no first response and no escalation yet, whose
// current tier has a deadline in deadlines (tier -> latest first_top_at
// still in breach) and whose first_top_at is at or before it.
func (s *Store) SLABreaches(ctx context.Context, deadlines map[string]time.Time, limit int) ([]string, error) {
	if len(deadlines) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = 100
	}
	tiers := make([]string, 0, len(deadlines))
	for t := range deadlines {
		tiers = append(tiers, t)
	}
	slices.Sort(tiers)
	var breach *gorm.DB
	for _, t := range tiers {
		cond := s.db.Where("tier = ? AND first_top_at <= ?", t, normTime(deadlines[t]))
		if breach == nil {
			breach = cond
		} else {
			breach = breach.Or(cond)
		}
	}
	var ids []string
	err := s.db.WithContext(ctx).Table("conversations").
		Where("first_top_at IS NOT NULL AND first_response_at IS NULL AND sla_escalated_at IS NULL").
		Where(breach).Order("first_top_at, id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("feedback: sla breaches: %w", translate(err))
	}
	return ids, nil
}

// EscalateSLA raises the SLA escalation of a conversation, once: in one
// transaction it marks the conversation escalated at `at` and stores a
// fired alert of kind sla for the team and owner of its latest decision.
// It returns false, and no alert, when the conversation was escalated
// already or has had its first response meanwhile.
func (s *Store) EscalateSLA(ctx context.Context, conversationID string, at time.Time) (OutboxAlert, bool, error) {
	at = normTime(at)
	var out OutboxAlert
	var raised bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Table("conversations").
			Where("id = ? AND first_top_at IS NOT NULL AND first_response_at IS NULL AND sla_escalated_at IS NULL", conversationID).
			Update("sla_escalated_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		var conv conversationRow
		if err := tx.Where("id = ?", conversationID).Take(&conv).Error; err != nil {
			return translate(err)
		}
		var route struct{ Route string }
		if err := tx.Table("decisions").Select("route").Where("id = ?", conv.LastDecisionID).Take(&route).Error; err != nil {
			return translate(err)
		}
		var r struct {
			Team  string `json:"team"`
			Owner string `json:"owner"`
		}
		_ = json.Unmarshal([]byte(route.Route), &r) // a route without team or owner escalates to the unnamed team
		out = OutboxAlert{
			Kind: AlertKindSLA, ConversationID: conv.ID, DecisionID: conv.LastDecisionID, Channel: conv.Channel,
			Tier: conv.Tier, Score: conv.Score, Team: r.Team, Owner: r.Owner, CreatedAt: at,
		}
		if err := raiseAlert(tx, &out); err != nil {
			return err
		}
		raised = true
		return nil
	})
	if err != nil {
		return OutboxAlert{}, false, fmt.Errorf("feedback: escalate sla of conversation %q: %w", conversationID, err)
	}
	return out, raised, nil
}
