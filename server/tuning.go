package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
)

// tuningStore is what the report, model and job endpoints read and change
// themselves; running a tuning and applying a report go through Tuning.
type tuningStore interface {
	Report(ctx context.Context, id string) (feedback.StoredReport, error)
	JobRuns(ctx context.Context, job string, limit int) ([]feedback.JobRun, error)
	ListReports(ctx context.Context, limit int) ([]feedback.StoredReport, error)
	LatestReport(ctx context.Context) (feedback.StoredReport, error)
	RollbackModel(ctx context.Context) (feedback.ModelVersion, error)
}

// errNoTuning answers the tuning endpoints of a server built without the
// tuning job.
var errNoTuning = &APIError{Status: http.StatusServiceUnavailable, Code: "tuning_unavailable",
	Message: "this process does not run the tuning job"}

// maxTuneBody bounds the tune request's body.
const maxTuneBody = 4 << 10

// jobRunJSON is a job run as the API shows it.
type jobRunJSON struct {
	ID         string          `json:"id"`
	Job        string          `json:"job"`
	Trigger    string          `json:"trigger"`
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	Error      string          `json:"error"`
	Detail     json.RawMessage `json:"detail"`
}

func toJobRunJSON(r feedback.JobRun) jobRunJSON {
	detail := json.RawMessage(r.Detail)
	if len(detail) == 0 {
		detail = json.RawMessage("{}")
	}
	return jobRunJSON{ID: r.ID, Job: r.Job, Trigger: r.Trigger, Status: r.Status, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt, Error: r.Error, Detail: detail}
}

// handleTune runs the tuning job now and answers with its run and report.
// Body (optional): {"as_of": RFC 3339}, the end of the training window.
func (s *Server) handleTune(c *gin.Context) {
	var req struct {
		AsOf *string `json:"as_of"`
	}
	if c.Request.ContentLength != 0 {
		if _, err := readJSONContentType(c); err != nil {
			writeError(c, s.log, err)
			return
		}
		body, err := readBody(c, maxTuneBody)
		if err != nil {
			writeError(c, s.log, err)
			return
		}
		if len(body) > 0 {
			if err := decodeStrict(body, &req); err != nil {
				writeError(c, s.log, err)
				return
			}
		}
	}
	if s.tuner == nil {
		writeError(c, s.log, errNoTuning)
		return
	}
	tr := feedback.TuneRequest{Trigger: feedback.TriggerAPI}
	if req.AsOf != nil {
		t, err := parseEventTime("as_of", *req.AsOf, s.now(), http.StatusUnprocessableEntity)
		if err != nil {
			writeError(c, s.log, err)
			return
		}
		tr.AsOf = t
	}
	// A run over a long window can take longer than the server's write
	// timeout, and a client that gives up must not abort it half-way: the
	// run is detached from the request and its answer from the deadline.
	// A client that left finds the run in GET /v1/jobs/runs.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	ctx := context.WithoutCancel(c.Request.Context())
	res, err := s.tuner.RunNow(ctx, tr)
	switch {
	case errors.Is(err, feedback.ErrLocked):
		writeError(c, s.log, &APIError{Status: http.StatusConflict, Code: "tune_running", Message: err.Error()})
		return
	case errors.Is(err, feedback.ErrNotFound) && res.Report == nil:
		writeError(c, s.log, &APIError{Status: http.StatusConflict, Code: "no_ruleset",
			Message: "no live ruleset to tune: publish one first (PUT /v1/rules)"})
		return
	case err != nil && res.Run.ID == "":
		writeError(c, s.log, fmt.Errorf("tune: %w", err))
		return
	}
	if res.Report != nil && res.Report.Promotion.Promoted {
		s.changed(c, feedback.AuditModelPromote, fmt.Sprintf("model %d", res.Report.CandidateModelVersion),
			map[string]any{"by": "tuning run " + res.Run.ID, "reason": res.Report.Promotion.Reason})
	}
	status := http.StatusOK
	if err != nil {
		// The run is recorded as failed; the answer says so with the run.
		s.log.Error("tuning run failed", "run", res.Run.ID, "err", err)
		status = http.StatusInternalServerError
	}
	c.JSON(status, gin.H{"run": toJobRunJSON(res.Run), "report": res.Report})
}

func (s *Server) handleJobRuns(c *gin.Context) {
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	runs, err := s.tuning.JobRuns(c.Request.Context(), c.Query("job"), limit)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("job runs: %w", err))
		return
	}
	out := make([]jobRunJSON, 0, len(runs))
	for _, r := range runs {
		out = append(out, toJobRunJSON(r))
	}
	c.JSON(http.StatusOK, gin.H{"runs": out})
}

// reportSummaryJSON is a report in the list.
type reportSummaryJSON struct {
	ID                    string    `json:"id"`
	RunID                 string    `json:"run_id"`
	AsOf                  time.Time `json:"as_of"`
	CandidateModelVersion int       `json:"candidate_model_version"`
	Promoted              bool      `json:"promoted"`
	AppliedPolicyVersion  int       `json:"applied_policy_version"`
	CreatedAt             time.Time `json:"created_at"`
}

func (s *Server) handleListReports(c *gin.Context) {
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	list, err := s.tuning.ListReports(c.Request.Context(), limit)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("list reports: %w", err))
		return
	}
	out := make([]reportSummaryJSON, 0, len(list))
	for _, r := range list {
		out = append(out, reportSummaryJSON{ID: r.ID, RunID: r.RunID, AsOf: r.AsOf, CandidateModelVersion: r.CandidateModel,
			Promoted: r.Promoted, AppliedPolicyVersion: r.AppliedPolicy, CreatedAt: r.CreatedAt})
	}
	c.JSON(http.StatusOK, gin.H{"reports": out})
}

// handleGetReport serves one stored report (id "latest" for the newest),
// with the policy version its proposal was applied as.
func (s *Server) handleGetReport(c *gin.Context) {
	id := c.Param("id")
	if id != "latest" {
		if _, err := idParam(c); err != nil {
			writeError(c, s.log, err)
			return
		}
	}
	sr, err := s.storedReport(c.Request.Context(), id)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("report %s: %w", id, err))
		return
	}
	var body map[string]any
	if err := json.Unmarshal(sr.Body, &body); err != nil {
		writeError(c, s.log, fmt.Errorf("report %s: %w", sr.ID, err))
		return
	}
	body["applied_policy_version"] = sr.AppliedPolicy
	c.JSON(http.StatusOK, body)
}

// handleApplyReport publishes the report's tuned weights and proposed
// thresholds as a new ruleset version.
func (s *Server) handleApplyReport(c *gin.Context) {
	id, err := idParam(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	if s.tuner == nil {
		writeError(c, s.log, errNoTuning)
		return
	}
	ctx := c.Request.Context()
	pv, err := s.tuner.ApplyReport(ctx, id, apiKeyName(c))
	switch {
	case errors.Is(err, feedback.ErrNothingToApply):
		writeError(c, s.log, &APIError{Status: http.StatusConflict, Code: "nothing_to_apply", Message: err.Error()})
		return
	case errors.Is(err, feedback.ErrApplied), errors.Is(err, feedback.ErrStaleReport), errors.Is(err, feedback.ErrNotPromoted):
		writeError(c, s.log, &APIError{Status: http.StatusConflict, Code: "cannot_apply", Message: err.Error()})
		return
	case err != nil:
		writeError(c, s.log, fmt.Errorf("apply report %s: %w", id, err))
		return
	}
	s.changed(c, feedback.AuditReportApply, "report "+id, map[string]any{"applied_as_ruleset": pv.Version})
	c.JSON(http.StatusCreated, toRulesetJSON(pv, false))
}

// handleRollbackModel makes the previously active model active again, or
// returns scoring to the rules when there is none.
func (s *Server) handleRollbackModel(c *gin.Context) {
	ctx := c.Request.Context()
	m, err := s.tuning.RollbackModel(ctx)
	if err != nil {
		if errors.Is(err, feedback.ErrNotFound) {
			err = &APIError{Status: http.StatusConflict, Code: "no_active_model", Message: "no model is active: scoring already uses the rules only"}
		}
		writeError(c, s.log, fmt.Errorf("roll back model: %w", err))
		return
	}
	s.changed(c, feedback.AuditModelRollback, "model", nil)
	if m.Version == 0 {
		c.JSON(http.StatusOK, gin.H{"active": nil, "message": "no earlier model: scoring uses the rules only"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"active": toModelJSON(m, false)})
}

// storedReport reads the report with id, or the newest for "latest".
func (s *Server) storedReport(ctx context.Context, id string) (feedback.StoredReport, error) {
	if id == "latest" {
		return s.tuning.LatestReport(ctx)
	}
	return s.tuning.Report(ctx, id)
}
