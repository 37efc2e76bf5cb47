package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
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
	Type           string    `json:"type"` // decision, alert, label, event or resync
	ConversationID string    `json:"conversation_id,omitempty"`
	Tier           string    `json:"tier,omitempty"`
	Channel        string    `json:"channel,omitempty"`
	Team           string    `json:"team,omitempty"`
	AlertID        string    `json:"alert_id,omitempty"`
	At             time.Time `json:"at"`
}

// brokerRing is how many recent events a stream can fall behind by before
// it is told to resync.
const brokerRing = 8192

// broker keeps the recent live events of this process for the open
// streams. Publishing costs the same however many streams are open: the
// event goes into a ring and one channel is closed to wake the streams,
// which read what they missed at their own pace. The score path never
// waits on a slow reader.
type broker struct {
	mu     sync.Mutex
	ring   [brokerRing]liveEvent
	frames [brokerRing][]byte // each event as an SSE frame, while /v1/stream is read
	seq    uint64             // events published so far
	wake   chan struct{}      // closed at the next publish
	n      atomic.Int32       // open streams
	framed atomic.Int32       // open streams that send each event
}

func newBroker() *broker { return &broker{wake: make(chan struct{})} }

// listening reports whether any stream is open, so the score path builds
// no event when nobody reads it.
func (b *broker) listening() bool { return b.n.Load() > 0 }

// streams counts the open streams.
func (b *broker) streams() int { return int(b.n.Load()) }

// publish records ev and wakes the streams.
func (b *broker) publish(ev liveEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	var frame []byte
	if b.framed.Load() > 0 {
		// Encoded once here rather than once per stream.
		data, _ := json.Marshal(ev)
		frame = make([]byte, 0, len(data)+len(ev.Type)+18)
		frame = append(append(append(append(frame, "event: "...), ev.Type...), "\ndata: "...), data...)
		frame = append(frame, "\n\n"...)
	}
	b.mu.Lock()
	b.ring[b.seq%brokerRing] = ev
	b.frames[b.seq%brokerRing] = frame
	b.seq++
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// position is where a new stream starts reading and the channel that wakes
// it at the next event.
func (b *broker) position() (uint64, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq, b.wake
}

// framesSince appends the SSE frames of the events after seq to buf, like
// since; an event published before the stream asked for frames is
// encoded here.
func (b *broker) framesSince(seq uint64, buf *bytes.Buffer) (next uint64, wake <-chan struct{}, lost bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seq-seq > brokerRing {
		seq, lost = b.seq-brokerRing, true
	}
	for ; seq < b.seq; seq++ {
		if f := b.frames[seq%brokerRing]; f != nil {
			buf.Write(f)
			continue
		}
		ev := b.ring[seq%brokerRing]
		data, _ := json.Marshal(ev)
		buf.WriteString("event: " + ev.Type + "\ndata: ")
		buf.Write(data)
		buf.WriteString("\n\n")
	}
	return seq, b.wake, lost
}

// count is the position after the last event, the wake channel for the
// next one, and how many were lost past the ring.
func (b *broker) count(seq uint64) (next uint64, wake <-chan struct{}, lost bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq, b.wake, b.seq-seq > brokerRing
}

// since appends the events after seq to out and returns them, the new
// position and the wake channel for the next event; lost is true when
// more than the ring holds came since, and some were dropped.
func (b *broker) since(seq uint64, out []liveEvent) (_ []liveEvent, next uint64, wake <-chan struct{}, lost bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seq-seq > brokerRing {
		seq, lost = b.seq-brokerRing, true
	}
	for ; seq < b.seq; seq++ {
		out = append(out, b.ring[seq%brokerRing])
	}
	return out, seq, b.wake, lost
}

// sseHeartbeat keeps idle streams open through proxies and lets the
// server notice a client that left.
const sseHeartbeat = 15 * time.Second

// Streams write at most once per streamEvery (events wait and go out
// together), and a page's stream sends one "changed" per pageEvery at
// most: the page reads the queue again anyway.
const (
	streamEvery = 100 * time.Millisecond
	pageEvery   = 500 * time.Millisecond
)

// stream writes live events as Server-Sent Events until the client leaves
// or the server shuts down. With coalesce it sends one "changed" event
// (data: the number of events) for whatever happened since the last one,
// at most every pageEvery: that is all a page needs to read its view
// again. Otherwise it sends each event, named by its type, and "resync"
// when it fell too far behind and missed some.
func (s *Server) stream(c *gin.Context, coalesce bool) {
	w := c.Writer
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s.events.n.Add(1)
	defer s.events.n.Add(-1)
	if !coalesce {
		s.events.framed.Add(1)
		defer s.events.framed.Add(-1)
	}
	seq, wake := s.events.position()
	c.Status(http.StatusOK)
	if _, err := w.WriteString("retry: 2000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	every := streamEvery
	if coalesce {
		every = pageEvery
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	ctx := c.Request.Context()
	var (
		buf  bytes.Buffer
		lost bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopStreams:
			return
		case <-heartbeat.C:
			buf.WriteString(": ping\n\n")
		case <-wake:
			// Let more events gather, then send them together.
			select {
			case <-ctx.Done():
				return
			case <-s.stopStreams:
				return
			case <-time.After(every):
			}
			if coalesce {
				next, w, _ := s.events.count(seq)
				buf.WriteString("event: changed\ndata: " + strconv.FormatUint(next-seq, 10) + "\n\n")
				seq, wake = next, w
				break
			}
			at := buf.Len()
			seq, wake, lost = s.events.framesSince(seq, &buf)
			if lost {
				// The resync goes first: what follows is after the gap.
				tail := append([]byte(nil), buf.Bytes()[at:]...)
				buf.Truncate(at)
				buf.WriteString("event: resync\ndata: {\"type\":\"resync\"}\n\n")
				buf.Write(tail)
			}
		}
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			buf.Reset()
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// handlePageEvents is the queue page's stream, on the session: one
// "changed" event whenever something happened.
func (s *Server) handlePageEvents(c *gin.Context) { s.stream(c, true) }

// handleStream is GET /v1/stream, each event for other tools, on an API
// key with the feedback scope.
func (s *Server) handleStream(c *gin.Context) { s.stream(c, false) }

// CloseStreams ends every open event stream, so a graceful shutdown does
// not wait on them.
func (s *Server) CloseStreams() { s.closeStreams.Do(func() { close(s.stopStreams) }) }
