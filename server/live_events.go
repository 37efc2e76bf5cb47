package server

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// liveEvent is one change the live views show: a decision, an alert, a
// label or an outcome event. It names what changed, not the data: a view
// that cares reads the data again, so an event never shows more than its
// reader may see.
type liveEvent struct {
	Type           string    `json:"type"` // decision, alert, label or event
	ConversationID string    `json:"conversation_id"`
	Tier           string    `json:"tier,omitempty"`
	Channel        string    `json:"channel,omitempty"`
	Team           string    `json:"team,omitempty"`
	AlertID        string    `json:"alert_id,omitempty"`
	At             time.Time `json:"at"`
}

// broker fans live events out to the streams open in this process. A
// stream that does not keep up loses events rather than slow the score
// path: publish never blocks.
type broker struct {
	mu   sync.Mutex
	subs map[chan liveEvent]struct{}
	n    atomic.Int32 // len(subs), read without the lock on the score path
}

// listening reports whether any stream is open, so the score path builds
// no event when nobody reads it.
func (b *broker) listening() bool { return b.n.Load() > 0 }

func newBroker() *broker { return &broker{subs: map[chan liveEvent]struct{}{}} }

// publish sends ev to every stream; a full stream skips it.
func (b *broker) publish(ev liveEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// subscribe opens a stream; cancel closes it.
func (b *broker) subscribe() (events <-chan liveEvent, cancel func()) {
	ch := make(chan liveEvent, 256)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.n.Store(int32(len(b.subs)))
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.n.Store(int32(len(b.subs)))
		b.mu.Unlock()
	}
}

// streams counts the open streams.
func (b *broker) streams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// sseHeartbeat keeps idle streams open through proxies and lets the
// server notice a client that left.
const sseHeartbeat = 15 * time.Second

// stream writes live events as Server-Sent Events until the client leaves
// or the server shuts down.
func (s *Server) stream(c *gin.Context) {
	w := c.Writer
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	events, cancel := s.events.subscribe()
	defer cancel()
	c.Status(http.StatusOK)
	if _, err := w.WriteString("retry: 2000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopStreams:
			return
		case <-tick.C:
			if _, err := w.WriteString(": ping\n\n"); err != nil {
				return
			}
		case ev := <-events:
			data, _ := json.Marshal(ev)
			if _, err := w.WriteString("event: " + ev.Type + "\ndata: " + string(data) + "\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// handlePageEvents is the queue page's stream, on the session.
func (s *Server) handlePageEvents(c *gin.Context) { s.stream(c) }

// handleStream is GET /v1/stream, the same events for other tools, on an
// API key with the feedback scope.
func (s *Server) handleStream(c *gin.Context) { s.stream(c) }

// CloseStreams ends every open event stream, so a graceful shutdown does
// not wait on them.
func (s *Server) CloseStreams() { s.closeStreams.Do(func() { close(s.stopStreams) }) }
