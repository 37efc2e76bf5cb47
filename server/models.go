package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// maxModelBytes bounds an uploaded model; a model with thousands of
// features is far below it.
const maxModelBytes = 4 << 20

// modelAdmin is what the model registry endpoints need from the store.
type modelAdmin interface {
	CreateModel(ctx context.Context, body []byte, note string) (feedback.ModelVersion, error)
	ActivateModel(ctx context.Context, version int) (feedback.ModelVersion, error)
	ListModels(ctx context.Context) ([]feedback.ModelVersion, error)
	Model(ctx context.Context, version int) (feedback.ModelVersion, error)
}

// modelJSON is a model version as the API shows it.
type modelJSON struct {
	Version     int             `json:"version"`
	Status      string          `json:"status"`
	Note        string          `json:"note,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ActivatedAt *time.Time      `json:"activated_at,omitempty"`
	Trainer     string          `json:"trainer,omitempty"`
	WindowStart *time.Time      `json:"window_start,omitempty"`
	WindowEnd   *time.Time      `json:"window_end,omitempty"`
	Metrics     json.RawMessage `json:"metrics,omitempty"`
	ReportID    string          `json:"report_id,omitempty"`
	Model       json.RawMessage `json:"model,omitempty"`
}

func toModelJSON(m feedback.ModelVersion, full bool) modelJSON {
	out := modelJSON{Version: m.Version, Status: m.Status, Note: m.Note, CreatedAt: m.CreatedAt, ActivatedAt: m.ActivatedAt,
		Trainer: m.Trainer, WindowStart: m.WindowStart, WindowEnd: m.WindowEnd, ReportID: m.ReportID}
	if len(m.Metrics) > 0 && string(m.Metrics) != "{}" {
		out.Metrics = json.RawMessage(m.Metrics)
	}
	if full {
		out.Model = json.RawMessage(m.Body)
	}
	return out
}

// handleCreateModel stores a model as a candidate. Trained models arrive
// from the tuning job; this endpoint takes hand-built or externally
// trained ones in the same format.
func (s *Server) handleCreateModel(c *gin.Context) {
	if _, err := readJSONContentType(c); err != nil {
		writeError(c, s.log, err)
		return
	}
	body, err := readBody(c, maxModelBytes)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	m, err := model.ParseModel(body)
	if err != nil {
		writeError(c, s.log, &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_model", Message: err.Error()})
		return
	}
	canonical, err := m.Marshal()
	if err != nil {
		writeError(c, s.log, fmt.Errorf("encode model: %w", err))
		return
	}
	mv, err := s.models.CreateModel(c.Request.Context(), canonical, c.Query("note"))
	if err != nil {
		writeError(c, s.log, fmt.Errorf("create model: %w", err))
		return
	}
	s.audit(c, feedback.AuditModelCreate, fmt.Sprintf("model %d", mv.Version), nil, map[string]any{"note": mv.Note, "status": mv.Status})
	c.JSON(http.StatusCreated, toModelJSON(mv, false))
}

func (s *Server) handleListModels(c *gin.Context) {
	list, err := s.models.ListModels(c.Request.Context())
	if err != nil {
		writeError(c, s.log, fmt.Errorf("list models: %w", err))
		return
	}
	out := make([]modelJSON, 0, len(list))
	for _, m := range list {
		out = append(out, toModelJSON(m, false))
	}
	c.JSON(http.StatusOK, gin.H{"models": out})
}

func (s *Server) handleGetModel(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	m, err := s.models.Model(c.Request.Context(), v)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("model %d: %w", v, err))
		return
	}
	c.JSON(http.StatusOK, toModelJSON(m, true))
}

func (s *Server) handleActivateModel(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	m, err := s.models.ActivateModel(ctx, v)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("activate model %d: %w", v, err))
		return
	}
	s.changed(c, feedback.AuditModelPromote, fmt.Sprintf("model %d", m.Version), nil)
	c.JSON(http.StatusOK, toModelJSON(m, false))
}
