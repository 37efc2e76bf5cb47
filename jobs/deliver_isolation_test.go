package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/feedbacktest"
	"github.com/hotlane/hotlane/jobs"
)

// By default a delivery connects only to public addresses: a receiver on
// 127.0.0.1, given as an address or as a name that resolves to it, gets
// nothing and the attempt fails naming the reason. Before, both were
// delivered to.
func TestDeliveryRefusesInternalAddresses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		rcv := newReceiver(t)
		port := rcv.URL[strings.LastIndex(rcv.URL, ":")+1:]
		for _, u := range []string{rcv.URL + "/in", "http://localhost:" + port + "/in"} {
			if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: u}); err != nil {
				t.Fatal(err)
			}
		}
		a := fire(t, s, "chat-1", "sales", clk.Now())
		d := &jobs.Deliverer{Store: s, Now: clk.Now} // the default policy
		if n := runOnce(t, d); n != 2 {
			t.Fatalf("attempts = %d, want 2", n)
		}
		if got := rcv.requests(); len(got) != 0 {
			t.Fatalf("the internal receiver got %d requests", len(got))
		}
		ds, err := s.AlertDeliveries(ctx, a.ID)
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries = %+v, %v", ds, err)
		}
		for _, x := range ds {
			if x.Status != feedback.DeliveryPending || !strings.Contains(x.LastError, "not allowed") {
				t.Errorf("delivery %+v: want a failed attempt saying the address is not allowed", x)
			}
		}
		// Allowing loopback lets them through.
		clk.Add(time.Minute)
		d = &jobs.Deliverer{Store: s, Now: clk.Now, Addresses: loopbackOK}
		if n := runOnce(t, d); n != 2 || len(rcv.requests()) != 2 {
			t.Fatalf("with loopback allowed: attempts %d, requests %d; want 2 and 2", n, len(rcv.requests()))
		}
	})
}

// hangingReceiver holds every request until released, counting how many
// it holds at once.
type hangingReceiver struct {
	*httptest.Server
	release          chan struct{}
	releaseOnce      sync.Once
	inFlight, most   atomic.Int32
	arrived, handled atomic.Int32
}

func newHangingReceiver(t *testing.T) *hangingReceiver {
	h := &hangingReceiver{release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.arrived.Add(1)
		n := h.inFlight.Add(1)
		for {
			m := h.most.Load()
			if n <= m || h.most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		h.inFlight.Add(-1)
		h.handled.Add(1)
	}))
	t.Cleanup(func() {
		h.releaseAll()
		h.Close()
	})
	return h
}

// releaseAll answers the held requests and every later one at once.
func (h *hangingReceiver) releaseAll() { h.releaseOnce.Do(func() { close(h.release) }) }

// One receiver that hangs must not hold back another destination's alert:
// with 40 alerts queued for a hanging receiver, the healthy destination's
// alert is delivered while every request to the hanging one is still
// held (before, it waited for the hanging requests to time out, 47 s in the
// probe), and the hanging one never has more than PerDestination requests
// in flight.
func TestSlowDestinationDoesNotDelayOthers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		slow := newHangingReceiver(t)
		fast := newReceiver(t)
		for _, nd := range []feedback.NewDestination{
			{Team: "sales", Kind: feedback.DestinationWebhook, URL: slow.URL + "/in"},
			{Team: "support", Kind: feedback.DestinationWebhook, URL: fast.URL + "/in"},
		} {
			if _, _, err := s.CreateDestination(ctx, nd); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UTC()
		for i := range 40 {
			fire(t, s, fmt.Sprintf("sales-%d", i), "sales", now)
		}
		fire(t, s, "support-1", "support", now.Add(time.Millisecond))

		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Interval: 50 * time.Millisecond,
			Timeout: time.Minute, PerDestination: 2, Concurrency: 8}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = d.Run(runCtx); close(done) }()
		defer func() { stop(); <-done }()

		start := time.Now()
		deadline := time.After(30 * time.Second) // liveness only: the hanging requests time out after a minute
		for len(fast.requests()) == 0 {
			select {
			case <-deadline:
				t.Fatalf("the healthy destination got nothing in 30 s; the hanging one has %d in flight", slow.inFlight.Load())
			case <-time.After(10 * time.Millisecond):
			}
		}
		t.Logf("healthy destination's alert delivered after %v while the other hangs", time.Since(start))
		if handled := slow.handled.Load(); handled != 0 {
			t.Errorf("%d hanging requests finished before the healthy alert went out", handled)
		}
		if most := slow.most.Load(); most > 2 {
			t.Errorf("%d requests in flight to one destination, want at most PerDestination (2)", most)
		}
		// The hanging receiver's deliveries resume once it answers.
		slow.releaseAll()
		for slow.handled.Load() < 40 {
			select {
			case <-deadline:
				t.Fatalf("the released destination got %d of its 40 alerts", slow.handled.Load())
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
}

// A destination that keeps failing has its circuit opened after
// BreakAfter failures in a row: its deliveries are held back for BreakFor
// instead of being attempted, then tried again, and a success closes it.
func TestDeliveryCircuitBreaker(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openStore(t, dsn)
		clk := feedbacktest.NewClock(time.Now().UTC().Truncate(time.Second))
		rcv := newReceiver(t)
		rcv.setStatus(http.StatusInternalServerError)
		if _, _, err := s.CreateDestination(ctx, feedback.NewDestination{Team: "sales", Kind: feedback.DestinationWebhook, URL: rcv.URL}); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			fire(t, s, fmt.Sprintf("c%d", i), "sales", clk.Now())
		}
		d := &jobs.Deliverer{Store: s, Addresses: loopbackOK, Now: clk.Now, PerDestination: 1, BreakAfter: 3, BreakFor: time.Minute}
		if n := runOnce(t, d); n != 3 {
			t.Fatalf("attempts = %d, want 3 (then the circuit opens)", n)
		}
		clk.Add(59 * time.Second)
		if n := runOnce(t, d); n != 0 {
			t.Fatalf("attempts while the circuit is open = %d, want 0", n)
		}
		clk.Add(time.Second)
		if n := runOnce(t, d); n != 1 {
			t.Fatalf("attempts after BreakFor = %d, want 1 (it fails and opens the circuit again)", n)
		}
		rcv.setStatus(http.StatusOK)
		clk.Add(time.Minute)
		// Seven never tried, and the four tried are due again by now.
		if n := runOnce(t, d); n != 10 {
			t.Fatalf("attempts once the receiver is back = %d, want 10", n)
		}
		if got := len(rcv.requests()); got != 14 {
			t.Errorf("receiver saw %d requests, want 14", got)
		}
	})
}
