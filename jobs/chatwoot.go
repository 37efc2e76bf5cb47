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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotlane/hotlane/feedback"
)

// ChatwootStore is what the ChatwootWriter needs from the store.
type ChatwootStore interface {
	ClaimChatwootWrites(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]feedback.PendingChatwootWrite, error)
	FinishChatwootWrite(ctx context.Context, o feedback.ChatwootOutcome) error
	PurgeChatwootReceipts(ctx context.Context, before time.Time) error
}

// ChatwootWriter sends the write-back the Chatwoot receiver queued:
// priorities, assignments, private notes and custom attributes, each one
// call to Chatwoot's API with the api_access_token header. Failures are
// retried on feedback.ChatwootRetry's schedule; answers that say the call
// can never work (400, 404, 422) fail it at once. The queue is in the
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
	purgedAt time.Time
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

// Run sends writes until ctx ends.
func (w *ChatwootWriter) Run(ctx context.Context) error {
	w.init()
	interval := w.Interval
	if interval <= 0 {
		interval = time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := safely(ctx, func(ctx context.Context) error {
			_, err := w.RunOnce(ctx)
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
// conversation per round keeps each conversation's order), and returns
// how many attempts it made.
func (w *ChatwootWriter) RunOnce(ctx context.Context) (int, error) {
	w.init()
	now := orNow(w.Now)
	if t := now(); t.Sub(w.purgedAt) > time.Minute {
		if err := w.Store.PurgeChatwootReceipts(ctx, t.Add(-feedback.ChatwootReceiptTTL)); err != nil {
			orDiscard(w.Log).Warn("purge chatwoot receipts", slog.Any("err", err))
		} else {
			w.purgedAt = t
		}
	}
	lease := w.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	workers := w.Concurrency
	if workers <= 0 {
		workers = 4
	}
	attempts := 0
	for ctx.Err() == nil {
		due, err := w.Store.ClaimChatwootWrites(ctx, now(), lease, 50)
		if err != nil {
			return attempts, fmt.Errorf("chatwoot: %w", err)
		}
		if len(due) == 0 {
			return attempts, nil
		}
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range due {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if w.attempt(ctx, p) {
					mu.Lock()
					attempts++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return attempts, ctx.Err()
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
// conversation is gone or the body is refused. Others (401 and 403 after
// a token change, 429, 5xx, no answer) are retried.
func final(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusUnprocessableEntity
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(w.BaseURL, "/")+path, bytes.NewReader(p.Body))
	if err != nil {
		return 0, errors.New("invalid chatwoot url")
	}
	req.Header.Set("Content-Type", "application/json")
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
		return 0, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("chatwoot answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// noRedirectClient follows no redirects: a redirect is a failed attempt
// (the token must not follow it elsewhere).
var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
