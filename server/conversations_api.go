package server

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// queueItemJSON is one open conversation as GET /v1/conversations shows it.
type queueItemJSON struct {
	ID              string         `json:"id"`
	Channel         string         `json:"channel"`
	Tier            string         `json:"tier"`
	Score           float64        `json:"score"`
	Team            string         `json:"team"`
	Owner           string         `json:"owner,omitempty"`
	Reasons         []model.Reason `json:"reasons"`
	FirstSeenAt     time.Time      `json:"first_seen_at"`
	UpdatedAt       time.Time      `json:"updated_at"`
	FirstResponseAt *time.Time     `json:"first_response_at"`
	WaitingSeconds  float64        `json:"waiting_seconds"`
	SLALeftSeconds  *float64       `json:"sla_left_seconds"`
}

// handleListConversations is the live queue for other tools: open
// conversations, most urgent first, then longest waiting, then highest
// score. The cursor is an offset into a queue that moves.
func (s *Server) handleListConversations(c *gin.Context) {
	if st := c.DefaultQuery("status", "open"); st != "open" {
		writeError(c, s.log, unprocessable("status", "must be open (the only status listed)"))
		return
	}
	tier, ok := parseTierParam(c.Query("tier"))
	if !ok {
		writeError(c, s.log, unprocessable("tier", "must be urgent, high, medium or low"))
		return
	}
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	offset := 0
	if cur := c.Query("cursor"); cur != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		n, convErr := strconv.Atoi(string(raw))
		if err != nil || convErr != nil || n < 0 {
			writeError(c, s.log, unprocessable("cursor", "is not a cursor this endpoint returned"))
			return
		}
		offset = n
	}
	pv := s.policyView("")
	page, err := s.web.OpenConversations(c.Request.Context(), feedback.QueueQuery{Tier: tier, Team: c.Query("team"),
		Channel: c.Query("channel"), Now: s.now(), SLA: pv.sla, Limit: limit, Offset: offset})
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	out := make([]queueItemJSON, 0, len(page.Items))
	for _, it := range page.Items {
		j := queueItemJSON{ID: it.ID, Channel: it.Channel, Tier: it.Tier.String(), Score: it.Score, Team: it.Team, Owner: it.Owner,
			Reasons: it.Reasons, FirstSeenAt: it.FirstSeenAt, UpdatedAt: it.UpdatedAt, FirstResponseAt: it.FirstResponseAt,
			WaitingSeconds: it.Waiting.Seconds()}
		if j.Reasons == nil {
			j.Reasons = []model.Reason{}
		}
		if it.HasSLA {
			left := it.SLALeft.Seconds()
			j.SLALeftSeconds = &left
		}
		out = append(out, j)
	}
	byTier := map[string]int{}
	for t, n := range page.ByTier {
		byTier[t.String()] = n
	}
	next := ""
	if end := offset + len(page.Items); end < page.Total {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	c.JSON(http.StatusOK, gin.H{"conversations": out, "total": page.Total, "by_tier": byTier, "past_sla": page.PastSLA, "next_cursor": next})
}
