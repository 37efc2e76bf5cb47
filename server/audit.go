package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/templates"
)

// auditLog is what recording and reading the audit log needs.
type auditLog interface {
	Audit(ctx context.Context, e feedback.AuditEntry) error
	AuditLog(ctx context.Context, q feedback.AuditQuery) ([]feedback.AuditEntry, error)
}

// actor names who made a request: the signed-in user of a page, else the
// API key.
func actor(c *gin.Context) string {
	if u := sessionOf(c).User; u.ID != 0 {
		return feedback.UserActor(u.Email)
	}
	if k := apiKeyName(c); k != "" {
		return k
	}
	return "unknown"
}

// audit records a change right after it is made. The request's end does
// not cancel it; a failure is logged, since the change itself stands.
func (s *Server) audit(c *gin.Context, action, subject string, before, after any) {
	e := feedback.AuditEntry{At: s.now(), Actor: actor(c), Action: action, Subject: subject,
		Before: feedback.AuditJSON(before), After: feedback.AuditJSON(after)}
	if err := s.auditLog.Audit(context.WithoutCancel(c.Request.Context()), e); err != nil {
		s.log.Error("audit entry lost", slog.String("request_id", requestID(c)), slog.String("action", action), slog.Any("err", err))
	}
}

// livePair is the live ruleset and model versions, for the audit log.
func (s *Server) livePair() map[string]int {
	cur := s.live.Current()
	if cur == nil {
		return map[string]int{"ruleset": 0, "model": 0}
	}
	return map[string]int{"ruleset": cur.PolicyVersion, "model": cur.ModelVersion}
}

// changed follows a change of what scores: it reloads the live ruleset and
// model and records the change with the live pair before and after.
func (s *Server) changed(c *gin.Context, action, subject string, detail map[string]any) {
	before := s.livePair()
	s.refreshAfterChange(context.WithoutCancel(c.Request.Context()))
	after := map[string]any{}
	for k, v := range s.livePair() {
		after[k] = v
	}
	for k, v := range detail {
		after[k] = v
	}
	s.audit(c, action, subject, before, after)
}

type auditJSON struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Before  any       `json:"before"`
	After   any       `json:"after"`
}

func rawOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return rawJSON(b)
}

// rawJSON is stored JSON passed through as it is.
type rawJSON []byte

// MarshalJSON implements json.Marshaler.
func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// handleAudit is GET /v1/audit: the audit log, newest first; ?before=ID
// continues after a page.
func (s *Server) handleAudit(c *gin.Context) {
	limit, err := limitParam(c, 100, 500)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	q := feedback.AuditQuery{Limit: limit}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(c, s.log, unprocessable("before", "must be an entry id"))
			return
		}
		q.Before = n
	}
	list, err := s.auditLog.AuditLog(c.Request.Context(), q)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	out := make([]auditJSON, len(list))
	for i, e := range list {
		out[i] = auditJSON{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject, Before: rawOrNil(e.Before), After: rawOrNil(e.After)}
	}
	next := ""
	if len(list) == limit && len(list) > 0 {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	c.JSON(http.StatusOK, gin.H{"entries": out, "next_before": next})
}

type auditRowView struct {
	At                                         time.Time
	Ago, Actor, Action, Subject, Before, After string
}

type auditPage struct {
	pageBase
	Verdict, NextURL string
	Rows             []auditRowView
}

func (s *Server) handleAuditPage(c *gin.Context) {
	q := feedback.AuditQuery{Limit: 100}
	if n, err := strconv.ParseInt(c.Query("before"), 10, 64); err == nil && n > 0 {
		q.Before = n
	}
	list, err := s.auditLog.AuditLog(c.Request.Context(), q)
	if err != nil {
		s.pageError(c, err)
		return
	}
	p := auditPage{pageBase: s.base(c, "Audit log", "audit")}
	now := s.now()
	for _, e := range list {
		p.Rows = append(p.Rows, auditRowView{At: e.At, Ago: templates.Ago(now, e.At), Actor: e.Actor, Action: e.Action,
			Subject: e.Subject, Before: string(e.Before), After: string(e.After)})
	}
	switch {
	case len(list) == 0:
		p.Verdict = "No change recorded yet."
	default:
		p.Verdict = fmt.Sprintf("The last change: %s %s by %s, %s.", list[0].Action, list[0].Subject, list[0].Actor, templates.Ago(now, list[0].At))
	}
	if len(list) == q.Limit {
		p.NextURL = "/audit?before=" + strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	s.render(c, http.StatusOK, "audit", p)
}
