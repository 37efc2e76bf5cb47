package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// DeliveryStore is what the Deliverer needs from the store.
type DeliveryStore interface {
	DispatchAlerts(ctx context.Context, at time.Time, limit int) (int, error)
	ClaimDeliveriesFor(ctx context.Context, c feedback.DeliveryClaim) ([]feedback.PendingDelivery, error)
	FinishDelivery(ctx context.Context, o feedback.DeliveryOutcome) error
}

// deliveryRetries is how alert deliveries are retried.
var deliveryRetries = feedback.RetrySchedule{
	Delays: []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour, 4 * time.Hour},
	Every:  12 * time.Hour, For: 24 * time.Hour,
}

// NextAttempt returns when to try a delivery queued at created again after
// its attempt-th attempt (1 for the first) failed at now: 30 s, 2 min,
// 10 min, 1 h, 4 h, then every 12 h, with one last attempt 24 h after
// created. It returns false when the delivery has run out of time.
func NextAttempt(attempt int, created, now time.Time) (time.Time, bool) {
	return deliveryRetries.Next(attempt, created, now)
}

// Deliverer sends alerts from the outbox: it queues fired alerts as one
// delivery per destination of their team, then sends the deliveries that
// are due, Slack messages and signed webhooks, recording every attempt and
// retrying failures on the NextAttempt schedule. Its state is in the
// database, so several processes may run one each and a restarted process
// goes on where the last one stopped; a receiver may see a delivery more
// than once (same Hotlane-Delivery id), never a different id for the same
// alert and destination.
//
// Destinations do not wait on each other: at most PerDestination requests
// are in flight to one destination, so a receiver that hangs holds only
// its own slots while the others' alerts go out, and one that keeps
// failing has its circuit opened (BreakAfter failures in a row) and is
// left alone for BreakFor before it is tried again. Requests connect only
// to addresses Addresses allows, checked after name resolution on every
// connection. The zero values of the optional fields are usable.
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
	// another may take it; 0 means 30 s, three times the default Timeout.
	// Keep it above Timeout. It is also how long the deliveries a killed
	// process had claimed wait before another process sends them.
	Lease time.Duration
	// Batch is how many alerts or deliveries one query takes; 0 means 50.
	Batch int
	// Concurrency is how many requests are in flight at once; 0 means 8.
	Concurrency int
	// PerDestination is how many requests are in flight to one
	// destination at once; 0 means 4.
	PerDestination int
	// BreakAfter is how many failed attempts in a row open a destination's
	// circuit; 0 means 5.
	BreakAfter int
	// BreakFor is how long an open circuit holds a destination's
	// deliveries back; 0 means 1 min.
	BreakFor time.Duration
	// Addresses says which addresses the default client may connect to;
	// the zero value allows public addresses only. Ignored when Client is
	// set.
	Addresses feedback.AddressPolicy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failures; secrets and URLs never reach it.
	Log *slog.Logger

	once     sync.Once
	client   *http.Client
	wake     chan struct{} // a request finished: there may be room to send more
	mu       sync.Mutex
	inflight map[string]int // destination id -> requests in flight
	total    int
	circuits map[string]*circuit
}

// circuit is one destination's run of failures.
type circuit struct {
	failures  int
	openUntil time.Time
}

func (d *Deliverer) init() {
	d.once.Do(func() {
		d.client = d.Client
		if d.client == nil {
			d.client = guardedClient(d.Addresses)
		}
		d.wake = make(chan struct{}, 1)
		d.inflight = map[string]int{}
		d.circuits = map[string]*circuit{}
	})
}

// ErrAddressNotAllowed is a delivery refused because its destination
// resolved to an address the policy does not allow.
var ErrAddressNotAllowed = errors.New("destination address not allowed")

// guardedClient is an HTTP client that connects only to addresses p
// allows, checked on the resolved address of every connection (so a name
// that resolves, or later rebinds, to an internal address is refused),
// uses no proxy and follows no redirects (a redirect is a failed attempt).
func guardedClient(p feedback.AddressPolicy) *http.Client {
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrAddressNotAllowed, address)
			}
			if !p.Allowed(ap.Addr()) {
				return fmt.Errorf("%w: %s is private, loopback, link-local or reserved (see --allow-destination-ranges)", ErrAddressNotAllowed, ap.Addr())
			}
			return nil
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run sends deliveries until ctx ends; then it waits for the requests in
// flight and returns nil. It looks for work every Interval and as soon as
// a request finishes, without waiting for slow requests to finish first.
// Requests cut off when ctx ends are not recorded and are sent again once
// their lease has passed.
func (d *Deliverer) Run(ctx context.Context) error {
	d.init()
	interval := d.Interval
	if interval <= 0 {
		interval = time.Second
	}
	log := orDiscard(d.Log)
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := safely(ctx, func(ctx context.Context) error {
			_, err := d.pass(ctx, &wg, nil)
			return err
		})
		if err != nil && ctx.Err() == nil {
			log.Error("job pass failed", slog.String("job", "deliver"), slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-d.wake:
		}
	}
}

// RunOnce queues every fired alert not yet queued, then sends every
// delivery due now, waiting for each round of requests, and returns how
// many attempts it made.
func (d *Deliverer) RunOnce(ctx context.Context) (int, error) {
	d.init()
	var attempts atomic.Int64
	for {
		var wg sync.WaitGroup
		n, err := d.pass(ctx, &wg, &attempts)
		wg.Wait()
		if err != nil {
			return int(attempts.Load()), err
		}
		if n == 0 || ctx.Err() != nil {
			return int(attempts.Load()), ctx.Err()
		}
	}
}

// pass queues fired alerts and starts a request for every delivery due
// that fits: Concurrency in all, PerDestination per destination, none to
// a destination whose circuit is open. It does not wait for the requests;
// each adds itself to wg and, when recorded, to attempts. It returns how
// many it started.
func (d *Deliverer) pass(ctx context.Context, wg *sync.WaitGroup, attempts *atomic.Int64) (int, error) {
	now, batch := orNow(d.Now), d.Batch
	if batch <= 0 {
		batch = 50
	}
	lease := d.Lease
	if lease <= 0 {
		lease = 30 * time.Second
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
	started := 0
	for ctx.Err() == nil {
		free, skip := d.room(now())
		if free == 0 {
			break
		}
		limit := min(batch, free)
		due, err := d.Store.ClaimDeliveriesFor(ctx, feedback.DeliveryClaim{
			At: now(), Lease: lease, Limit: limit, PerDestination: d.perDestination(), Skip: skip})
		if err != nil {
			return started, fmt.Errorf("deliver: %w", err)
		}
		for _, p := range due {
			d.mu.Lock()
			d.inflight[p.Destination.ID]++
			d.total++
			d.mu.Unlock()
			started++
			wg.Go(func() {
				delivered, recorded := d.deliver(ctx, p)
				if recorded && attempts != nil {
					attempts.Add(1)
				}
				d.done(p.Destination.ID, recorded, delivered)
			})
		}
		if len(due) < limit {
			break
		}
	}
	return started, ctx.Err()
}

func (d *Deliverer) perDestination() int {
	if d.PerDestination <= 0 {
		return 4
	}
	return d.PerDestination
}

// room returns how many more requests may start and the destinations not
// to claim for now: those with requests in flight (so one destination
// never has more than PerDestination) and those whose circuit is open.
func (d *Deliverer) room(now time.Time) (int, []string) {
	workers := d.Concurrency
	if workers <= 0 {
		workers = 8
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var skip []string
	for id, n := range d.inflight {
		if n > 0 {
			skip = append(skip, id)
		}
	}
	for id, c := range d.circuits {
		if now.Before(c.openUntil) && d.inflight[id] == 0 {
			skip = append(skip, id)
		}
	}
	return max(workers-d.total, 0), skip
}

// done ends a request to destination: it frees its slot, moves the
// destination's circuit and wakes Run.
func (d *Deliverer) done(destination string, recorded, delivered bool) {
	breakAfter, breakFor := d.BreakAfter, d.BreakFor
	if breakAfter <= 0 {
		breakAfter = 5
	}
	if breakFor <= 0 {
		breakFor = time.Minute
	}
	d.mu.Lock()
	d.total--
	if d.inflight[destination]--; d.inflight[destination] <= 0 {
		delete(d.inflight, destination)
	}
	opened := false
	if recorded {
		c := d.circuits[destination]
		switch {
		case delivered:
			delete(d.circuits, destination)
		case c == nil:
			c = &circuit{failures: 1}
			d.circuits[destination] = c
		default:
			c.failures++
		}
		if c != nil && !delivered && c.failures >= breakAfter {
			c.openUntil = orNow(d.Now)().Add(breakFor)
			opened = c.failures == breakAfter
		}
	}
	d.mu.Unlock()
	if opened {
		orDiscard(d.Log).Warn("destination keeps failing; holding its deliveries back",
			slog.String("destination_id", destination), slog.Int("failures_in_a_row", breakAfter), slog.Int64("for_ms", breakFor.Milliseconds()))
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// deliver makes one attempt and records it; it reports whether the
// receiver took it and whether the attempt was recorded.
func (d *Deliverer) deliver(ctx context.Context, p feedback.PendingDelivery) (delivered, recorded bool) {
	log := orDiscard(d.Log)
	now := orNow(d.Now)
	defer func() {
		if r := recover(); r != nil {
			log.Error("delivery panicked", slog.String("delivery_id", p.ID), slog.Any("panic", r))
			delivered, recorded = false, false
		}
	}()
	start := now()
	status, sendErr := d.send(ctx, p, start)
	if ctx.Err() != nil {
		return false, false // shutting down: the lease expires and the delivery is sent again
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
		return false, false
	}
	return o.Delivered, true
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
	resp, err := d.client.Do(req)
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
