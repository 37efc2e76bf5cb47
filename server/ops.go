package server

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

//go:embed openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI 3 document served at /openapi.yaml.
func OpenAPISpec() []byte { return openAPISpec }

// readStore is what the read endpoints need from the store.
type readStore interface {
	Decision(ctx context.Context, id string) (feedback.Decision, error)
	Conversation(ctx context.Context, id string) (feedback.Conversation, error)
}

func (s *Server) handleHealth(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok", "version": s.cfg.Version})
}

// handleReady answers 200 only when the database answers and decision
// writes have not been failing or stalled for more than
// writesUnhealthyAfter, so a load balancer sends no traffic to a process
// that could not commit a decision.
// Rules that failed on their last model.FailingStreak evaluations in a row
// are named under checks.rules and make the status "degraded": scoring goes
// on without them, which is better than taking every process out of
// service for one bad rule, but it is not silent.
// writesUnhealthyAfter is how long decision writes may fail or stall
// before /readyz says the process is not ready.
const writesUnhealthyAfter = 3 * time.Second

func (s *Server) handleReady(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ready, status := true, "ready"
	if err := s.pinger.Ping(ctx); err != nil {
		checks["database"] = "unreachable"
		ready = false
	} else {
		checks["database"] = "ok"
	}
	switch h := s.pinger.WriteHealth(); {
	case h.FailingFor > writesUnhealthyAfter:
		checks["writes"] = fmt.Sprintf("failing for %s", h.FailingFor.Round(time.Second))
		ready = false
	case h.StalledFor > writesUnhealthyAfter:
		checks["writes"] = fmt.Sprintf("stalled: a batch has been committing for %s", h.StalledFor.Round(time.Second))
		ready = false
	default:
		checks["writes"] = "ok"
	}
	if live := s.live.Current(); live == nil {
		checks["ruleset"] = "none published"
	} else {
		checks["ruleset"] = live.PolicyVersion
		checks["model"] = live.ModelVersion
		if failing := live.Scorer.FailingRules(); len(failing) > 0 {
			checks["rules"] = fmt.Sprintf("failing: %s (each failed on its last %d evaluations and counts as not fired)",
				strings.Join(failing, ", "), model.FailingStreak)
			status = "degraded"
		} else {
			checks["rules"] = "ok"
		}
	}
	if !ready {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": status, "checks": checks})
}

func (s *Server) handleOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", openAPISpec)
}

// decisionJSON is a stored decision as the API shows it.
type decisionJSON struct {
	ID             string    `json:"decision_id"`
	ConversationID string    `json:"conversation_id"`
	Channel        string    `json:"channel"`
	Score          float64   `json:"score"`
	Tier           string    `json:"tier"`
	Signals        jsonRaw   `json:"signals"`
	Message        *string   `json:"message,omitempty"`
	Reasons        jsonRaw   `json:"reasons"`
	Route          jsonRaw   `json:"route"`
	Warnings       jsonRaw   `json:"warnings"`
	ModelVersion   *int      `json:"model_version"`
	RulesetVersion int       `json:"ruleset_version"`
	LatencyMicros  int64     `json:"latency_us"`
	OccurredAt     time.Time `json:"occurred_at"`
	CreatedAt      time.Time `json:"created_at"`
}

func (s *Server) handleGetDecision(c *gin.Context) {
	d, err := s.reads.Decision(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	out := decisionJSON{ID: d.ID, ConversationID: d.ConversationID, Channel: d.Channel, Score: d.Score, Tier: d.Tier.String(),
		Signals: jsonRaw(d.Signals), Message: d.Message, Reasons: jsonRaw(d.Reasons), Route: jsonRaw(d.Route),
		Warnings:       jsonRaw(d.Warnings),
		RulesetVersion: d.PolicyVersion, LatencyMicros: d.LatencyMicros, OccurredAt: d.OccurredAt, CreatedAt: d.CreatedAt}
	if out.Warnings == nil {
		out.Warnings = jsonRaw("[]")
	}
	if d.ModelVersion != 0 {
		mv := d.ModelVersion
		out.ModelVersion = &mv
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) handleGetConversation(c *gin.Context) {
	conv, err := s.reads.Conversation(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"conversation_id": conv.ID, "channel": conv.Channel, "tier": conv.Tier, "score": conv.Score,
		"last_decision_id": conv.LastDecisionID, "decisions": conv.Decisions,
		"first_seen_at": conv.FirstSeenAt, "updated_at": conv.UpdatedAt,
	})
}

// jsonRaw embeds stored JSON as is, and null when nothing is stored.
type jsonRaw []byte

// MarshalJSON implements json.Marshaler.
func (j jsonRaw) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// UnmarshalJSON implements json.Unmarshaler, so API clients written in Go
// (and our tests) can read the type back.
func (j *jsonRaw) UnmarshalJSON(b []byte) error {
	*j = append((*j)[:0], b...)
	return nil
}
