package feedback

import (
	"cmp"
	"slices"
	"time"

	"github.com/hotlane/hotlane/model"
)

// RetrySchedule is how an outbox retries a failed send: after its n-th
// failed attempt it waits Delays[n-1], then Every once the delays are used
// up, until For has passed since the send was queued, when it gives up
// after one last attempt at that deadline.
type RetrySchedule struct {
	Delays     []time.Duration
	Every, For time.Duration
}

// Next returns when to try a send queued at created again after its
// attempt-th attempt (1 for the first) failed at now, or false when it has
// run out of time.
func (r RetrySchedule) Next(attempt int, created, now time.Time) (time.Time, bool) {
	deadline := created.Add(r.For)
	if !now.Before(deadline) {
		return time.Time{}, false
	}
	delay := r.Every
	if attempt >= 1 && attempt <= len(r.Delays) {
		delay = r.Delays[attempt-1]
	}
	next := now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	return next, true
}

// ByContribution sorts reasons by contribution, largest first, keeping
// the order of equal ones: the order alerts and notes name them in.
func ByContribution(rs []model.Reason) {
	slices.SortStableFunc(rs, func(a, b model.Reason) int { return cmp.Compare(b.Contribution, a.Contribution) })
}

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

// DeliveryAttempt is one try at sending a delivery.
type DeliveryAttempt struct {
	DeliveryID string
	Attempt    int // 1 for the first
	At         time.Time
	StatusCode int // 0 when no HTTP answer came back
	Error      string
	Duration   time.Duration
}

// PendingDelivery is a delivery claimed for sending, with everything the
// sender needs. Secrets must never be logged.
type PendingDelivery struct {
	ID        string
	Claim     string // token that FinishDelivery must present
	Attempts  int    // attempts made before this one
	CreatedAt time.Time
	// Alert is the alert to send, its Reasons filled.
	Alert       Alert
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

// DeliveryClaim is what a sender asks the store for: deliveries due at At,
// leased for Lease, at most Limit of them (0 means 50), at most
// PerDestination of one destination (0: no bound) and none of the
// destinations in Skip.
type DeliveryClaim struct {
	At             time.Time
	Lease          time.Duration
	Limit          int
	PerDestination int
	Skip           []string
}

// WriteHealth is how the decision writer is doing: how long its batches
// have been failing (0 when the last one committed) and how long the batch
// being committed has taken so far (0 when none is).
type WriteHealth struct {
	FailingFor time.Duration
	StalledFor time.Duration
}
