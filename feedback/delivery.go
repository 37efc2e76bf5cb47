package feedback

import "time"

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
