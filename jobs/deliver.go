package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// DeliveryStore is what the Deliverer needs from the store.
type DeliveryStore interface {
	DispatchAlerts(ctx context.Context, at time.Time, limit int) (int, error)
	ClaimDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]feedback.PendingDelivery, error)
	FinishDelivery(ctx context.Context, o feedback.DeliveryOutcome) error
}

// retryDelays is the wait after the first, second, ... failed attempt;
// after the last one the wait stays retryEvery until retryFor has passed
// since the delivery was queued.
var retryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour, 4 * time.Hour}

const (
	retryEvery = 12 * time.Hour
	retryFor   = 24 * time.Hour
)

// NextAttempt returns when to try a delivery queued at created again after
// its attempt-th attempt (1 for the first) failed at now: 30 s, 2 min,
// 10 min, 1 h, 4 h, then every 12 h, with one last attempt 24 h after
// created. It returns false when the delivery has run out of time.
func NextAttempt(attempt int, created, now time.Time) (time.Time, bool) {
	deadline := created.Add(retryFor)
	if !now.Before(deadline) {
		return time.Time{}, false
	}
	delay := retryEvery
	if attempt >= 1 && attempt <= len(retryDelays) {
		delay = retryDelays[attempt-1]
	}
	next := now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	return next, true
}

// Deliverer sends alerts from the outbox: it queues fired alerts as one
// delivery per destination of their team, then sends the deliveries that
// are due, Slack messages and signed webhooks, recording every attempt and
// retrying failures on the NextAttempt schedule. Its state is in the
// database, so several processes may run one each and a restarted process
// goes on where the last one stopped; a receiver may see a delivery more
// than once (same Hotlane-Delivery id), never a different id for the same
// alert and destination. The zero values of the optional fields are
// usable.
type Deliverer struct {
	Store DeliveryStore
	// Client sends the requests; nil means a client that does not follow
	// redirects (a redirect is a failed attempt).
	Client *http.Client
	// PublicURL is the UI's base URL, for links to conversations; "" leaves
	// links out.
	PublicURL string
	// Interval between passes of Run; 0 means 1 s.
	Interval time.Duration
	// Timeout bounds one request; 0 means 10 s.
	Timeout time.Duration
	// Lease is how long a claimed delivery is left to this worker before
	// another may take it; 0 means 2 min. Keep it above Timeout.
	Lease time.Duration
	// Batch is how many alerts or deliveries one query takes; 0 means 50.
	Batch int
	// Concurrency is how many requests are in flight at once; 0 means 8.
	Concurrency int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failures; secrets and URLs never reach it.
	Log *slog.Logger
}

var defaultClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Run repeats RunOnce every Interval until ctx ends; then it returns nil.
// Requests in flight when ctx ends are abandoned unrecorded and sent again
// once their lease has passed.
func (d *Deliverer) Run(ctx context.Context) error {
	interval := d.Interval
	if interval <= 0 {
		interval = time.Second
	}
	return every(ctx, interval, orDiscard(d.Log), "deliver", func(ctx context.Context) error {
		_, err := d.RunOnce(ctx)
		return err
	})
}

// RunOnce queues every fired alert not yet queued, then sends every
// delivery due now, and returns how many attempts it made.
func (d *Deliverer) RunOnce(ctx context.Context) (int, error) {
	now, batch := orNow(d.Now), d.Batch
	if batch <= 0 {
		batch = 50
	}
	lease := d.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	for {
		n, err := d.Store.DispatchAlerts(ctx, now(), batch)
		if err != nil {
			return 0, fmt.Errorf("deliver: %w", err)
		}
		if n < batch {
			break
		}
	}
	attempts := 0
	for {
		due, err := d.Store.ClaimDeliveries(ctx, now(), lease, batch)
		if err != nil {
			return attempts, fmt.Errorf("deliver: %w", err)
		}
		attempts += d.sendAll(ctx, due)
		if len(due) < batch || ctx.Err() != nil {
			return attempts, ctx.Err()
		}
	}
}

func (d *Deliverer) sendAll(ctx context.Context, due []feedback.PendingDelivery) int {
	workers := d.Concurrency
	if workers <= 0 {
		workers = 8
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for _, p := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if d.deliver(ctx, p) {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return n
}

// deliver makes one attempt and records it; it reports whether it did.
func (d *Deliverer) deliver(ctx context.Context, p feedback.PendingDelivery) (recorded bool) {
	log := orDiscard(d.Log)
	now := orNow(d.Now)
	defer func() {
		if r := recover(); r != nil {
			log.Error("delivery panicked", slog.String("delivery_id", p.ID), slog.Any("panic", r))
			recorded = false
		}
	}()
	start := now()
	status, sendErr := d.send(ctx, p, start)
	if ctx.Err() != nil {
		return false // shutting down: the lease expires and the delivery is sent again
	}
	end := now()
	o := feedback.DeliveryOutcome{
		DeliveryID: p.ID, Claim: p.Claim, Attempt: p.Attempts + 1, At: start, StatusCode: status,
		Duration: end.Sub(start), Delivered: sendErr == nil,
	}
	if sendErr != nil {
		o.Error = sendErr.Error()
		if next, ok := NextAttempt(p.Attempts+1, p.CreatedAt, end); ok {
			o.RetryAt = &next
		}
		attrs := []any{slog.String("delivery_id", p.ID), slog.String("alert_id", p.Alert.ID),
			slog.String("destination_id", p.Destination.ID), slog.Int("attempt", o.Attempt), slog.String("err", o.Error)}
		if o.RetryAt == nil {
			log.Error("delivery failed for good", attrs...)
		} else {
			log.Warn("delivery attempt failed", append(attrs, slog.Time("retry_at", *o.RetryAt))...)
		}
	}
	if err := d.Store.FinishDelivery(ctx, o); err != nil {
		log.Error("record delivery attempt", slog.String("delivery_id", p.ID), slog.Any("err", err))
		return false
	}
	return true
}

// send posts one delivery and returns the HTTP status (0 when none came
// back) and an error unless the receiver answered 2xx. Errors never carry
// the URL, which for Slack holds a token.
func (d *Deliverer) send(ctx context.Context, p feedback.PendingDelivery, at time.Time) (int, error) {
	var body []byte
	var err error
	switch p.Destination.Kind {
	case feedback.DestinationWebhook:
		body, err = webhookBody(p, d.PublicURL)
	case feedback.DestinationSlack:
		body, err = slackBody(p, d.PublicURL)
	default:
		return 0, fmt.Errorf("destination kind %q is not sent", p.Destination.Kind)
	}
	if err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Destination.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("invalid destination url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Hotlane-Delivery/1")
	if p.Destination.Kind == feedback.DestinationWebhook {
		req.Header.Set(DeliveryHeader, p.ID)
		req.Header.Set(SignatureHeader, SignatureValue(p.Secrets, at, body))
	}
	client := d.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
