package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// liveShare is what sharing live events between processes needs from the
// store: PostgreSQL's LISTEN/NOTIFY, or nothing on SQLite.
type liveShare interface {
	SharesLiveEvents() bool
	Notify(ctx context.Context, payload []byte) error
	ListenLive(ctx context.Context, fn func(payload []byte)) error
}

// Limits of the relay: events travel in batches every relayEvery, at most
// relayPerNotify to a notification (PostgreSQL caps one at 8000 bytes) and
// relayPerFlush to a batch; past that a "resync" event tells streams that
// events were skipped, and a view reads its data again.
const (
	relayEvery     = 100 * time.Millisecond
	relayPerNotify = 30
	relayPerFlush  = 300
)

// relay sends this process's live events to the other processes on the
// database and hands theirs to the local broker.
type relay struct {
	store  liveShare
	origin string
	mu     sync.Mutex
	queue  []liveEvent
	over   bool
}

type relayEnvelope struct {
	Origin string      `json:"o"`
	Events []liveEvent `json:"e"`
}

func newRelay(st liveShare) *relay {
	if st == nil || !st.SharesLiveEvents() {
		return nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &relay{store: st, origin: hex.EncodeToString(b[:])}
}

// add queues ev for the other processes; it never blocks on the database.
func (r *relay) add(ev liveEvent) {
	r.mu.Lock()
	if len(r.queue) < relayPerFlush {
		r.queue = append(r.queue, ev)
	} else {
		r.over = true
	}
	r.mu.Unlock()
}

func (r *relay) take() ([]liveEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q, over := r.queue, r.over
	r.queue, r.over = make([]liveEvent, 0, len(q)), false
	return q, over
}

func (r *relay) flush(ctx context.Context, log *slog.Logger) {
	q, over := r.take()
	if over {
		q = append(q, liveEvent{Type: "resync", At: time.Now().UTC()})
	}
	for len(q) > 0 {
		n := min(len(q), relayPerNotify)
		payload, _ := json.Marshal(relayEnvelope{Origin: r.origin, Events: q[:n]})
		q = q[n:]
		if err := r.store.Notify(ctx, payload); err != nil && ctx.Err() == nil {
			log.Warn("live events: notify failed; other processes miss these events", slog.Any("err", err))
			return
		}
	}
}

// emit hands ev to this process's streams and, on a shared database, to
// the other processes'.
func (s *Server) emit(ev liveEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	if s.events.listening() {
		s.events.publish(ev)
	}
	if s.relay != nil {
		s.relay.add(ev)
	}
}

// emitting reports whether an event would reach anyone, so the score path
// builds none in vain.
func (s *Server) emitting() bool { return s.relay != nil || s.events.listening() }

// RunLiveEvents shares live events with the other processes on a
// PostgreSQL database until ctx ends; on SQLite, where one process is all
// there is, it only waits for ctx. The owner of the process runs it beside
// the server.
func (s *Server) RunLiveEvents(ctx context.Context) error {
	if s.relay == nil {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		_ = s.relay.store.ListenLive(ctx, func(payload []byte) {
			var env relayEnvelope
			if json.Unmarshal(payload, &env) != nil || env.Origin == s.relay.origin {
				return
			}
			for _, ev := range env.Events {
				s.events.publish(ev)
			}
		})
	})
	t := time.NewTicker(relayEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.relay.flush(context.WithoutCancel(ctx), s.log)
			return nil
		case <-t.C:
			s.relay.flush(ctx, s.log)
		}
	}
}
