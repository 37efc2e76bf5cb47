package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/feedbacktest"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/feedback/store/storetest"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

// request is one request a receiver saw.
type request struct {
	delivery  string
	signature string
	body      []byte
}

// receiver is an httptest server that records requests and answers
// status, which tests change to take it down and up.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []request
}

// loopbackOK lets the tests deliver to their receivers on 127.0.0.1.
var loopbackOK = func() feedback.AddressPolicy {
	p, err := feedback.ParseAddressPolicy([]string{"loopback"})
	if err != nil {
		panic(err)
	}
	return p
}()

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, request{delivery: req.Header.Get(jobs.DeliveryHeader), signature: req.Header.Get(jobs.SignatureHeader), body: body})
		status := r.status
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func forEachEngine(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, e := range storetest.Engines {
		t.Run(e, func(t *testing.T) { fn(t, storetest.DSN(t, e)) })
	}
}

// fire records a decision of conv and raises a tier alert for team.
func fire(t *testing.T, s *store.Store, conv, team string, at time.Time) feedback.Alert {
	t.Helper()
	ctx := context.Background()
	d := feedback.Decision{
		ID: uuid.Must(uuid.NewV7()).String(), ConversationID: conv, Channel: "whatsapp", Score: 0.97, Tier: model.TierUrgent,
		Reasons: []byte(`[{"kind":"rule","name":"pricing","contribution":1.5},{"kind":"rule","name":"big-deal","contribution":2.5},{"kind":"rule","name":"churned","contribution":-1}]`),
		Route:   []byte(`{"team":"` + team + `"}`), PolicyVersion: 1, CreatedAt: at,
	}
	if _, err := s.RecordDecision(ctx, d); err != nil {
		t.Fatal(err)
	}
	a, err := s.RaiseAlert(ctx, feedback.Alert{Kind: feedback.AlertKindTier, ConversationID: conv, DecisionID: d.ID,
		Channel: "whatsapp", Tier: model.TierUrgent, Score: 0.97, Team: team, Owner: "ana@example.com", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func runOnce(t *testing.T, d *jobs.Deliverer) int {
	t.Helper()
	n, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func TestDeliverSignedWebhookAndSlack(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		hook, slack, lead := newReceiver(t), newReceiver(t), newReceiver(t)
		_, secret, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: hook.URL + "/in"})
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range []feedback.NewDestination{
			{Team: "sales", Kind: feedback.DestinationSlack, URL: slack.URL + "/services/T/B/x"},
			{Team: "sales", Kind: feedback.DestinationSlack, URL: lead.URL, Lead: true},
			{Team: "sales", Kind: feedback.DestinationFeed},
		} {
			if _, _, err := s.CreateDestination(ctx, nd); err != nil {
				t.Fatal(err)
			}
		}
		a := fire(t, s, "chat-42", "sales", clk.Now())
		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Now: clk.Now, PublicURL: "https://hotlane.example.com/"}
		if n := runOnce(t, d); n != 2 {
			t.Fatalf("attempts = %d, want 2 (webhook and slack; no lead, no feed)", n)
		}
		if n := runOnce(t, d); n != 0 {
			t.Fatalf("second pass made %d attempts, want 0", n)
		}

		got := hook.requests()
		if len(got) != 1 {
			t.Fatalf("webhook got %d requests, want 1", len(got))
		}
		if err := jobs.VerifySignature(got[0].signature, got[0].body, secret, clk.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature %q does not verify: %v", got[0].signature, err)
		}
		if err := jobs.VerifySignature(got[0].signature, got[0].body, "whsec_wrong", clk.Now(), 5*time.Minute); err == nil {
			t.Error("signature verifies with a wrong secret")
		}
		var p jobs.WebhookPayload
		if err := json.Unmarshal(got[0].body, &p); err != nil {
			t.Fatal(err)
		}
		if p.DeliveryID != got[0].delivery || p.Type != "alert" || p.Alert.ID != a.ID || p.Alert.Tier != "urgent" ||
			p.Alert.URL != "https://hotlane.example.com/conversations/chat-42" || !strings.Contains(string(p.Alert.Reasons), "big-deal") {
			t.Errorf("payload = %+v", p)
		}

		sl := slack.requests()
		if len(sl) != 1 || sl[0].signature != "" {
			t.Fatalf("slack got %+v, want one unsigned request", sl)
		}
		var msg struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(sl[0].body, &msg); err != nil {
			t.Fatal(err)
		}
		body := string(sl[0].body)
		for _, want := range []string{"URGENT", "chat-42", "0.97", "big-deal (+2.50), pricing (+1.50)", "<https://hotlane.example.com/conversations/chat-42|"} {
			if !strings.Contains(body, want) {
				t.Errorf("slack message lacks %q: %s", want, body)
			}
		}
		if strings.Contains(body, "churned") || len(msg.Blocks) < 3 || msg.Text == "" {
			t.Errorf("slack message = %s", body)
		}
		if len(lead.requests()) != 0 {
			t.Error("the lead destination got a tier alert")
		}

		ds, err := s.AlertDeliveries(ctx, a.ID)
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries = %+v, %v", ds, err)
		}
		for _, x := range ds {
			atts, _ := s.DeliveryAttempts(ctx, x.ID)
			if x.Status != feedback.DeliveryDelivered || x.Attempts != 1 || len(atts) != 1 || atts[0].StatusCode != 200 {
				t.Errorf("delivery = %+v with attempts %+v, want delivered once", x, atts)
			}
		}
	})
}

// TestRetriesSurviveRestart takes the receiver down for a while: the
// worker retries on the schedule, is stopped and replaced by a new one on a
// new connection mid-retry, and the alert arrives once the receiver is
// back, always with the same delivery id.
func TestRetriesSurviveRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		recv := newReceiver(t)
		recv.setStatus(http.StatusServiceUnavailable)
		if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: recv.URL}); err != nil {
			t.Fatal(err)
		}
		a := fire(t, s, "chat-1", "sales", clk.Now())
		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Now: clk.Now}
		start := clk.Now()

		// Attempts at 0, 30 s, 2.5 min, 12.5 min fail; each waits for the
		// next step of the schedule and not a second less.
		for i, wait := range []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute} {
			if n := runOnce(t, d); n != 1 {
				t.Fatalf("step %d: attempts = %d, want 1", i, n)
			}
			clk.Add(wait - time.Second)
			if n := runOnce(t, d); n != 0 {
				t.Fatalf("step %d: %d attempts before the retry is due", i, n)
			}
			clk.Add(time.Second)
		}
		if n := runOnce(t, d); n != 1 {
			t.Fatalf("fourth attempt: %d", n)
		}

		// Restart: a new store connection and a new worker. The receiver
		// comes back; the next retry is due an hour after the fourth.
		s2 := openStore(t, dsn)
		d = &jobs.Deliverer{Store: s2, Addresses: loopbackOK, Now: clk.Now}
		recv.setStatus(http.StatusOK)
		clk.Add(59 * time.Minute)
		if n := runOnce(t, d); n != 0 {
			t.Fatalf("restarted worker sent %d before the retry was due", n)
		}
		clk.Add(time.Minute)
		if n := runOnce(t, d); n != 1 {
			t.Fatalf("restarted worker: attempts = %d, want 1", n)
		}
		if got := clk.Now().Sub(start); got != 72*time.Minute+30*time.Second {
			t.Errorf("delivered %v after the alert, want 1h12m30s", got)
		}

		got := recv.requests()
		if len(got) != 5 {
			t.Fatalf("receiver saw %d requests, want 5", len(got))
		}
		for _, r := range got {
			if r.delivery == "" || r.delivery != got[0].delivery {
				t.Errorf("delivery ids differ across retries: %q vs %q", r.delivery, got[0].delivery)
			}
		}
		ds, _ := s2.AlertDeliveries(ctx, a.ID)
		atts, _ := s2.DeliveryAttempts(ctx, ds[0].ID)
		if len(ds) != 1 || ds[0].Status != feedback.DeliveryDelivered || ds[0].Attempts != 5 || len(atts) != 5 {
			t.Fatalf("delivery = %+v, %d attempts recorded; want delivered after 5", ds, len(atts))
		}
		for i, at := range atts[:4] {
			if at.StatusCode != 503 || at.Attempt != i+1 {
				t.Errorf("attempt %d = %+v, want a 503", i+1, at)
			}
		}
	})
}

func TestGivesUpAfterADay(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		recv := newReceiver(t)
		recv.setStatus(http.StatusInternalServerError)
		if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: recv.URL}); err != nil {
			t.Fatal(err)
		}
		a := fire(t, s, "chat-1", "sales", clk.Now())
		start := clk.Now()
		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Now: clk.Now}
		var at []time.Duration
		for range 100 {
			if runOnce(t, d) == 1 {
				at = append(at, clk.Now().Sub(start))
			}
			ds, _ := s.AlertDeliveries(ctx, a.ID)
			if ds[0].Status != feedback.DeliveryPending {
				break
			}
			clk.Set(ds[0].NextAttemptAt)
		}
		want := []time.Duration{0, 30 * time.Second, 150 * time.Second, 750 * time.Second, 4350 * time.Second,
			18750 * time.Second, 61950 * time.Second, 24 * time.Hour}
		if len(at) != len(want) {
			t.Fatalf("attempts at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("attempt %d at %v, want %v", i+1, at[i], want[i])
			}
		}
		ds, _ := s.AlertDeliveries(ctx, a.ID)
		if ds[0].Status != feedback.DeliveryFailed {
			t.Errorf("status = %s, want failed", ds[0].Status)
		}
	})
}

// TestLeaseAfterCrash: a worker that claimed a delivery and died before
// recording anything leaves it to the next worker once the lease ends.
func TestLeaseAfterCrash(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		recv := newReceiver(t)
		if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: recv.URL}); err != nil {
			t.Fatal(err)
		}
		a := fire(t, s, "chat-1", "sales", clk.Now())
		if _, err := s.DispatchAlerts(ctx, clk.Now(), 10); err != nil {
			t.Fatal(err)
		}
		dead, err := s.ClaimDeliveries(ctx, clk.Now(), 2*time.Minute, 10)
		if err != nil || len(dead) != 1 {
			t.Fatalf("claim = %d, %v", len(dead), err)
		}
		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Now: clk.Now, Lease: 2 * time.Minute}
		if n := runOnce(t, d); n != 0 {
			t.Fatalf("sent %d leased deliveries", n)
		}
		clk.Add(2 * time.Minute)
		if n := runOnce(t, d); n != 1 {
			t.Fatalf("after the lease: %d attempts, want 1", n)
		}
		got := recv.requests()
		ds, _ := s.AlertDeliveries(ctx, a.ID)
		if len(got) != 1 || got[0].delivery != dead[0].ID || ds[0].Status != feedback.DeliveryDelivered {
			t.Errorf("requests %+v, delivery %+v; want one with id %s", got, ds, dead[0].ID)
		}
	})
}

func TestRotationSendsBothSignatures(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		recv := newReceiver(t)
		dest, oldSecret, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: recv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, newSecret, err := s.RotateDestinationSecret(ctx, dest.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Now: clk.Now}
		fire(t, s, "chat-1", "sales", clk.Now())
		runOnce(t, d)
		clk.Add(time.Hour + time.Minute) // the grace period is over
		fire(t, s, "chat-2", "sales", clk.Now())
		runOnce(t, d)

		got := recv.requests()
		if len(got) != 2 {
			t.Fatalf("got %d requests, want 2", len(got))
		}
		if n := strings.Count(got[0].signature, "v1="); n != 2 {
			t.Errorf("during the grace period: %d signatures in %q, want 2", n, got[0].signature)
		}
		for _, secret := range []string{oldSecret, newSecret} {
			if err := jobs.VerifySignature(got[0].signature, got[0].body, secret, clk.Now(), 2*time.Hour); err != nil {
				t.Errorf("during the grace period a secret does not verify: %v", err)
			}
		}
		if n := strings.Count(got[1].signature, "v1="); n != 1 {
			t.Errorf("after the grace period: %d signatures, want 1", n)
		}
		if err := jobs.VerifySignature(got[1].signature, got[1].body, newSecret, clk.Now(), time.Minute); err != nil {
			t.Errorf("new secret: %v", err)
		}
		if err := jobs.VerifySignature(got[1].signature, got[1].body, oldSecret, clk.Now(), time.Minute); err == nil {
			t.Error("the old secret still verifies after the grace period")
		}
	})
}

// TestConcurrentWorkers runs several workers on one database at once:
// every alert reaches the receiver exactly once.
func TestConcurrentWorkers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		recv := newReceiver(t)
		if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: recv.URL}); err != nil {
			t.Fatal(err)
		}
		const alerts = 40
		for i := range alerts {
			fire(t, s, "chat-"+uuid.NewString(), "sales", clk.Now().Add(time.Duration(i)*time.Millisecond))
		}
		var wg sync.WaitGroup
		for range 4 {
			other := openStore(t, dsn)
			d := &jobs.Deliverer{Store: other, Addresses: loopbackOK, Now: clk.Now, Batch: 5, Concurrency: 2}
			wg.Go(func() {
				if _, err := d.RunOnce(ctx); err != nil {
					t.Errorf("RunOnce: %v", err)
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for _, r := range recv.requests() {
			seen[r.delivery]++
		}
		if len(seen) != alerts {
			t.Errorf("%d distinct deliveries arrived, want %d", len(seen), alerts)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s arrived %d times", id, n)
			}
		}
	})
}
