package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// ChatwootStore is what the ChatwootWriter needs from the store.
type ChatwootStore interface {
	ClaimChatwootWrites(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]feedback.PendingChatwootWrite, error)
	FinishChatwootWrite(ctx context.Context, o feedback.ChatwootOutcome) error
}

// ChatwootWriter sends the write-back the Chatwoot receiver queued:
// priorities, assignments, private notes and custom attributes, each one
// call to Chatwoot's API with the api_access_token header. Failures are
// retried on feedback.ChatwootRetry's schedule; answers that say the call
// can never work (400, 403, 404, 422) fail it at once. Custom attributes
// are merged into the conversation's current set, read just before (some
// versions of Chatwoot replace the whole set). The queue is in the
// database, so several processes may run one each and a restarted process
// goes on where it stopped; a write whose answer was lost is sent again,
// which Chatwoot takes as the same change (notes excepted: one may show
// twice).
//
// Chatwoot is the operator's own server, named by configuration, so its
// address is not limited as alert destinations' are.
type ChatwootWriter struct {
	Store ChatwootStore
	// BaseURL is Chatwoot's address, for example https://chat.example.com.
	BaseURL string
	// Token is the api_access_token of the Chatwoot user or agent bot
	// Hotlane writes as. It never reaches a log.
	Token string
	// Client sends the requests; nil means a client that follows no
	// redirects.
	Client *http.Client
	// Interval between passes of Run; 0 means 1 s.
	Interval time.Duration
	// Timeout bounds one request; 0 means 10 s.
	Timeout time.Duration
	// Lease is how long a claimed write is left to this worker; 0 means
	// 1 min. Keep it above Timeout.
	Lease time.Duration
	// Concurrency is how many requests are in flight at once; 0 means 4.
	Concurrency int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Observe, when set, counts each attempt by kind and outcome
	// (delivered, retry, failed).
	Observe func(kind, outcome string)
	// Log receives failures.
	Log *slog.Logger

	once     sync.Once
	wake     chan struct{}
	inflight atomic.Int64
}

func (w *ChatwootWriter) init() {
	w.once.Do(func() { w.wake = make(chan struct{}, 1) })
}

// Wake makes Run look for writes now rather than at its next interval.
func (w *ChatwootWriter) Wake() {
	w.init()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends writes until ctx ends, then waits for the requests in flight.
// It looks for writes every Interval, when woken, and as soon as a
// request finishes, so a slow request holds only its own slot.
func (w *ChatwootWriter) Run(ctx context.Context) error {
	w.init()
	interval := w.Interval
	if interval <= 0 {
		interval = time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		err := safely(ctx, func(ctx context.Context) error {
			_, err := w.pass(ctx, &wg, nil)
			return err
		})
		if err != nil && ctx.Err() == nil {
			orDiscard(w.Log).Error("job pass failed", slog.String("job", "chatwoot"), slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-w.wake:
		}
	}
}

// RunOnce sends every write due now, round after round (one write per
// lane of a conversation in each), waiting for each round's requests,
// and returns how many attempts it made.
func (w *ChatwootWriter) RunOnce(ctx context.Context) (int, error) {
	w.init()
	var attempts atomic.Int64
	for {
		var wg sync.WaitGroup
		n, err := w.pass(ctx, &wg, &attempts)
		wg.Wait()
		if err != nil || n == 0 || ctx.Err() != nil {
			return int(attempts.Load()), err
		}
	}
}

// pass claims as many due writes as there are free slots (Concurrency in
// all) and starts a request for each; it does not wait for them. A write
// is claimed only when a slot is free for it, so it is sent well inside
// its lease.
func (w *ChatwootWriter) pass(ctx context.Context, wg *sync.WaitGroup, attempts *atomic.Int64) (int, error) {
	workers := int64(w.Concurrency)
	if workers <= 0 {
		workers = 4
	}
	lease := w.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	free := workers - w.inflight.Load()
	if free <= 0 {
		return 0, nil
	}
	due, err := w.Store.ClaimChatwootWrites(ctx, orNow(w.Now)(), lease, int(free))
	if err != nil {
		return 0, fmt.Errorf("chatwoot: %w", err)
	}
	for _, p := range due {
		w.inflight.Add(1)
		wg.Go(func() {
			defer func() {
				w.inflight.Add(-1)
				w.Wake() // a slot is free
			}()
			if w.attempt(ctx, p) && attempts != nil {
				attempts.Add(1)
			}
		})
	}
	return len(due), nil
}

// attempt makes one attempt at a write and records it; it reports
// whether the attempt was recorded.
func (w *ChatwootWriter) attempt(ctx context.Context, p feedback.PendingChatwootWrite) (recorded bool) {
	log := orDiscard(w.Log)
	now := orNow(w.Now)
	defer func() {
		if r := recover(); r != nil {
			log.Error("chatwoot write panicked", slog.String("write_id", p.ID), slog.Any("panic", r))
			recorded = false
		}
	}()
	start := now()
	status, err := w.send(ctx, p)
	if ctx.Err() != nil {
		return false // shutting down: the lease ends and the write is sent again
	}
	o := feedback.ChatwootOutcome{ID: p.ID, Claim: p.Claim, At: start, StatusCode: status, Delivered: err == nil}
	outcome := "delivered"
	if err != nil {
		o.Error = err.Error()
		outcome = "failed"
		if !final(status) {
			if next, ok := feedback.ChatwootRetry(p.Attempts+1, p.CreatedAt, now()); ok {
				o.RetryAt, outcome = &next, "retry"
			}
		}
		attrs := []any{slog.String("write_id", p.ID), slog.String("kind", p.Kind), slog.String("conversation_id", p.ConversationID),
			slog.Int("attempt", p.Attempts+1), slog.String("err", o.Error)}
		if o.RetryAt == nil {
			log.Error("chatwoot write failed for good", attrs...)
		} else {
			log.Warn("chatwoot write failed; will retry", append(attrs, slog.Time("retry_at", *o.RetryAt))...)
		}
	}
	if w.Observe != nil {
		w.Observe(p.Kind, outcome)
	}
	if err := w.Store.FinishChatwootWrite(ctx, o); err != nil {
		log.Error("record chatwoot write", slog.String("write_id", p.ID), slog.Any("err", err))
		return false
	}
	return true
}

// final reports whether an answer says the call can never work: the
// conversation is gone, the body is refused, or the token may not do it.
// Others (401 until the token is fixed, 429, 5xx, no answer) are retried.
func final(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// ChatwootPath is the API path of a write of kind to a conversation.
func ChatwootPath(kind string, accountID, displayID int64) (string, error) {
	var action string
	switch kind {
	case feedback.ChatwootPriority:
		action = "toggle_priority"
	case feedback.ChatwootTeam, feedback.ChatwootAssignee:
		action = "assignments"
	case feedback.ChatwootNote:
		action = "messages"
	case feedback.ChatwootAttributes:
		action = "custom_attributes"
	default:
		return "", fmt.Errorf("unknown chatwoot write kind %q", kind)
	}
	return "/api/v1/accounts/" + strconv.FormatInt(accountID, 10) + "/conversations/" +
		strconv.FormatInt(displayID, 10) + "/" + action, nil
}

// send posts one write and returns the HTTP status (0 when none came
// back) and an error unless Chatwoot answered 2xx. Errors never carry the
// token.
func (w *ChatwootWriter) send(ctx context.Context, p feedback.PendingChatwootWrite) (int, error) {
	path, err := ChatwootPath(p.Kind, p.AccountID, p.DisplayID)
	if err != nil {
		return http.StatusBadRequest, err
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body := p.Body
	if p.Kind == feedback.ChatwootAttributes {
		if body, err = w.mergeAttributes(ctx, p); err != nil {
			var se *statusError
			if errors.As(err, &se) {
				return se.status, err
			}
			return 0, err
		}
	}
	status, _, err := w.call(ctx, http.MethodPost, path, body)
	return status, err
}

// statusError is an answer other than 2xx.
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("chatwoot answered %d", e.status) }

// mergeAttributes reads the conversation's custom attributes and returns
// the body that sets Hotlane's among them, keeping the others.
func (w *ChatwootWriter) mergeAttributes(ctx context.Context, p feedback.PendingChatwootWrite) ([]byte, error) {
	var ours struct {
		CustomAttributes map[string]any `json:"custom_attributes"`
	}
	if err := json.Unmarshal(p.Body, &ours); err != nil {
		return nil, fmt.Errorf("queued attributes: %w", err)
	}
	_, got, err := w.call(ctx, http.MethodGet, "/api/v1/accounts/"+strconv.FormatInt(p.AccountID, 10)+
		"/conversations/"+strconv.FormatInt(p.DisplayID, 10), nil)
	if err != nil {
		return nil, fmt.Errorf("read the conversation: %w", err)
	}
	var conv struct {
		CustomAttributes map[string]any `json:"custom_attributes"`
	}
	if err := json.Unmarshal(got, &conv); err != nil {
		return nil, fmt.Errorf("read the conversation: %w", err)
	}
	attrs := conv.CustomAttributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	for k, v := range ours.CustomAttributes {
		attrs[k] = v
	}
	return json.Marshal(map[string]any{"custom_attributes": attrs, "merge": true})
}

// call makes one request to Chatwoot's API and returns the status and up
// to 1 MiB of the answer; an answer other than 2xx is a *statusError.
func (w *ChatwootWriter) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(w.BaseURL, "/")+path, rd)
	if err != nil {
		return 0, nil, errors.New("invalid chatwoot url")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("api_access_token", w.Token)
	req.Header.Set("User-Agent", "Hotlane-Chatwoot/1")
	client := w.Client
	if client == nil {
		client = noRedirectClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, got, &statusError{status: resp.StatusCode}
	}
	return resp.StatusCode, got, nil
}

// noRedirectClient follows no redirects: a redirect is a failed attempt
// (the token must not follow it elsewhere).
var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
