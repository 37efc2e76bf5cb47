package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// Ruleset drafts and backtests: a draft is a stored version that serves
// nothing; it is edited, backtested against the labelled history, then
// published (PRODUCT.md §3, "draft, then published").

// Backtest windows, in weeks.
const (
	defaultBacktestWeeks = 4
	maxBacktestWeeks     = 52
	// backtestWriteTime is how long a backtest's answer may take to write,
	// beyond the server's write timeout: a year of history takes a while.
	backtestWriteTime = 5 * time.Minute
)

func (s *Server) draftRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	v1.POST("/rulesets", admin, s.handleCreateDraft)
	v1.PUT("/rulesets/:version", admin, s.handleUpdateDraft)
	v1.DELETE("/rulesets/:version", admin, s.handleDeleteDraft)
	v1.POST("/rulesets/:version/publish", admin, s.handlePublishDraft)
	v1.POST("/rulesets/:version/backtest", admin, s.handleBacktest)
}

func (s *Server) handleCreateDraft(c *gin.Context) {
	_, canonical, source, err := readPolicyBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	pv, err := s.policies.CreateDraft(c.Request.Context(), canonical, string(source), apiKeyName(c), c.Query("note"))
	if err != nil {
		writeError(c, s.log, fmt.Errorf("create draft: %w", err))
		return
	}
	s.audit(c, feedback.AuditDraftCreate, fmt.Sprintf("ruleset %d", pv.Version), nil, map[string]any{"status": pv.Status, "note": pv.Note})
	c.JSON(http.StatusCreated, toRulesetJSON(pv, true))
}

func (s *Server) handleUpdateDraft(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	_, canonical, source, err := readPolicyBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	pv, err := s.policies.UpdateDraft(c.Request.Context(), v, canonical, string(source), apiKeyName(c), c.Query("note"))
	if err != nil {
		writeError(c, s.log, fmt.Errorf("update draft %d: %w", v, err))
		return
	}
	s.audit(c, feedback.AuditDraftUpdate, fmt.Sprintf("ruleset %d", pv.Version), nil, map[string]any{"note": pv.Note})
	c.JSON(http.StatusOK, toRulesetJSON(pv, true))
}

func (s *Server) handleDeleteDraft(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	if err := s.policies.DeleteDraft(c.Request.Context(), v); err != nil {
		writeError(c, s.log, fmt.Errorf("delete draft %d: %w", v, err))
		return
	}
	s.audit(c, feedback.AuditDraftDelete, fmt.Sprintf("ruleset %d", v), map[string]any{"status": feedback.PolicyDraft}, nil)
	c.Status(http.StatusNoContent)
}

func (s *Server) handlePublishDraft(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	pv, err := s.policies.PublishDraft(c.Request.Context(), v)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("publish draft %d: %w", v, err))
		return
	}
	s.changed(c, feedback.AuditRulesetPublish, fmt.Sprintf("ruleset %d", pv.Version), map[string]any{"from": "draft"})
	c.JSON(http.StatusOK, toRulesetJSON(pv, false))
}

// backtestWeeks reads ?weeks=, the window of a backtest.
func backtestWeeks(raw string) (int, error) {
	if raw == "" {
		return defaultBacktestWeeks, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxBacktestWeeks {
		return 0, invalidField("weeks", fmt.Sprintf("must be a whole number of weeks from 1 to %d", maxBacktestWeeks))
	}
	return n, nil
}

func (s *Server) handleBacktest(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	weeks, err := backtestWeeks(c.Query("weeks"))
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	pv, err := s.policies.Policy(c.Request.Context(), v)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("ruleset %d: %w", v, err))
		return
	}
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(backtestWriteTime))
	rep, err := s.backtest(c.Request.Context(), pv, weeks)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

// backtest replays the last weeks of history through version pv and the
// live ruleset, both with the active model. One backtest runs at a time in
// a process; another asked for meanwhile is refused with 429.
func (s *Server) backtest(ctx context.Context, pv feedback.PolicyVersion, weeks int) (*feedback.BacktestReport, error) {
	cur := s.live.Current()
	if cur == nil {
		return nil, &APIError{Status: http.StatusConflict, Code: "no_live_ruleset",
			Message: "no ruleset is live yet to compare with: publish one first"}
	}
	doc, err := model.ParsePolicy(pv.Document)
	if err != nil {
		return nil, fmt.Errorf("ruleset %d: %w", pv.Version, err)
	}
	draft, err := model.CompilePolicy(doc)
	if err != nil {
		return nil, fmt.Errorf("ruleset %d: %w", pv.Version, err)
	}
	select {
	case s.backtests <- struct{}{}:
		defer func() { <-s.backtests }()
	default:
		return nil, &APIError{Status: http.StatusTooManyRequests, Code: "backtest_running",
			Message: "a backtest is already running on this server: try again when it has finished"}
	}
	// The window ends a second from now, so what was just scored counts.
	to := s.now().Add(time.Second)
	return feedback.Backtest(ctx, s.policies, feedback.BacktestRequest{
		Draft: draft, DraftVersion: pv.Version, Live: cur.Policy, LiveVersion: cur.PolicyVersion,
		Model: cur.Model, ModelVersion: cur.ModelVersion, From: to.AddDate(0, 0, -7*weeks), To: to})
}
