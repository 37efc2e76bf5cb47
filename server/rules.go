package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// maxPolicyBytes bounds a policy document; hundreds of rules fit easily.
const maxPolicyBytes = 1 << 20

// policyAdmin is what the ruleset endpoints need from the store.
type policyAdmin interface {
	PublishPolicy(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error)
	LivePolicy(ctx context.Context) (feedback.PolicyVersion, error)
	Policy(ctx context.Context, version int) (feedback.PolicyVersion, error)
	ListPolicies(ctx context.Context) ([]feedback.PolicyVersion, error)
	ActivatePolicy(ctx context.Context, version int) (feedback.PolicyVersion, error)
	CreateDraft(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error)
	UpdateDraft(ctx context.Context, version int, document []byte, source, author, note string) (feedback.PolicyVersion, error)
	PublishDraft(ctx context.Context, version int) (feedback.PolicyVersion, error)
	DeleteDraft(ctx context.Context, version int) error
	feedback.BacktestSource
}

// rulesetJSON is a ruleset version as the API shows it.
type rulesetJSON struct {
	Version     int             `json:"version"`
	Live        bool            `json:"live"`
	Status      string          `json:"status"`
	Author      string          `json:"author,omitempty"`
	Note        string          `json:"note,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ActivatedAt *time.Time      `json:"activated_at,omitempty"`
	Rules       int             `json:"rules"`
	Policy      json.RawMessage `json:"policy,omitempty"`
	Source      string          `json:"source,omitempty"`
}

func toRulesetJSON(p feedback.PolicyVersion, full bool) rulesetJSON {
	out := rulesetJSON{Version: p.Version, Live: p.Live, Status: p.Status, Author: p.Author, Note: p.Note,
		CreatedAt: p.CreatedAt, ActivatedAt: p.ActivatedAt}
	if doc, err := model.ParsePolicy(p.Document); err == nil {
		out.Rules = len(doc.Rules)
	}
	if full {
		out.Policy = json.RawMessage(p.Document)
		out.Source = p.Source
	}
	return out
}

// readPolicyBody reads a policy document sent as YAML or JSON and compiles
// it, so that nothing that would not compile is ever stored.
func readPolicyBody(c *gin.Context) (*model.Policy, []byte, []byte, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch {
	case err != nil:
		return nil, nil, nil, &APIError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the policy as application/json or application/yaml"}
	case mt == "application/json", mt == "application/yaml", mt == "application/x-yaml", mt == "text/yaml", mt == "text/x-yaml":
	default:
		return nil, nil, nil, &APIError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the policy as application/json or application/yaml"}
	}
	body, err := readBody(c, maxPolicyBytes)
	if err != nil {
		return nil, nil, nil, err
	}
	doc, err := model.ParsePolicy(body)
	if err != nil {
		return nil, nil, nil, policyProblem(err)
	}
	compiled, err := model.CompilePolicy(doc)
	if err != nil {
		return nil, nil, nil, err
	}
	canonical, err := doc.Canonical()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("canonical policy: %w", err)
	}
	return compiled, canonical, body, nil
}

// policyProblem makes a parse error a 422 unless it already carries its
// problems.
func policyProblem(err error) error {
	if _, ok := err.(*model.PolicyError); ok {
		return err
	}
	return &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_policy", Message: err.Error()}
}

func (s *Server) handleValidateRules(c *gin.Context) {
	compiled, _, _, err := readPolicyBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"valid": true, "rules": len(compiled.Doc().Rules)})
}

func (s *Server) handlePutRules(c *gin.Context) {
	_, canonical, source, err := readPolicyBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	pv, err := s.policies.PublishPolicy(ctx, canonical, string(source), apiKeyName(c), c.Query("note"))
	if err != nil {
		writeError(c, s.log, fmt.Errorf("publish ruleset: %w", err))
		return
	}
	s.changed(c, feedback.AuditRulesetPublish, fmt.Sprintf("ruleset %d", pv.Version), map[string]any{"note": pv.Note})
	c.JSON(http.StatusCreated, toRulesetJSON(pv, true))
}

func (s *Server) handleGetRules(c *gin.Context) {
	pv, err := s.policies.LivePolicy(c.Request.Context())
	if err != nil {
		writeError(c, s.log, fmt.Errorf("live ruleset: %w", err))
		return
	}
	c.JSON(http.StatusOK, toRulesetJSON(pv, true))
}

func (s *Server) handleListRulesets(c *gin.Context) {
	list, err := s.policies.ListPolicies(c.Request.Context())
	if err != nil {
		writeError(c, s.log, fmt.Errorf("list rulesets: %w", err))
		return
	}
	out := make([]rulesetJSON, 0, len(list))
	for _, p := range list {
		out = append(out, toRulesetJSON(p, false))
	}
	c.JSON(http.StatusOK, gin.H{"rulesets": out})
}

func (s *Server) handleGetRuleset(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	pv, err := s.policies.Policy(c.Request.Context(), v)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("ruleset %d: %w", v, err))
		return
	}
	c.JSON(http.StatusOK, toRulesetJSON(pv, true))
}

func (s *Server) handleActivateRuleset(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	pv, err := s.policies.ActivatePolicy(ctx, v)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("activate ruleset %d: %w", v, err))
		return
	}
	s.changed(c, feedback.AuditRulesetRollback, fmt.Sprintf("ruleset %d", pv.Version), nil)
	c.JSON(http.StatusOK, toRulesetJSON(pv, false))
}

// refreshAfterChange loads a change made through this process at once;
// other processes pick it up at their next poll.
func (s *Server) refreshAfterChange(ctx context.Context) {
	if err := s.live.Refresh(ctx); err != nil {
		s.log.Warn("scorer refresh after change failed; the next poll retries", "err", err)
	}
}

func versionParam(c *gin.Context) (int, error) {
	v, err := strconv.Atoi(c.Param("version"))
	if err != nil && !errors.Is(err, strconv.ErrRange) || err == nil && v < 1 {
		return 0, invalidField("version", "must be a positive integer")
	}
	// Versions are stored as 32-bit integers on PostgreSQL; a larger
	// number names no version, on either engine.
	if err != nil || v > math.MaxInt32 {
		return 0, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "no such version: versions are below 2147483648"}
	}
	return v, nil
}
