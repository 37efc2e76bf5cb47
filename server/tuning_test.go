package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

const tuningPolicy = `
base: -2
rules:
  - {name: big-deal, expression: "deal_size >= 5000", points: 1}
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`

// TestTuningEndpoints drives the tuning job and the registry through the
// API: errors first, then a run, its report, applying it and rolling the
// model back.
func TestTuningEndpoints(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})

	// Without a ruleset there is nothing to tune.
	rec := h.do(http.MethodPost, "/v1/jobs/tune", "", "", h.key, nil)
	if rec.Code != http.StatusConflict || decodeError(t, rec).Error.Code != "no_ruleset" {
		t.Fatalf("tune without ruleset: %d %s", rec.Code, rec.Body.String())
	}
	h.publish(tuningPolicy)

	for _, bad := range []struct {
		body, contentType string
		status            int
	}{
		{`{"as_of": "yesterday"}`, "application/json", http.StatusUnprocessableEntity},
		{`{"as_of": 5}`, "application/json", http.StatusUnprocessableEntity},
		{`{"since": "2026-01-01T00:00:00Z"}`, "application/json", http.StatusBadRequest},
		{`as_of: now`, "text/plain", http.StatusUnsupportedMediaType},
	} {
		if rec := h.do(http.MethodPost, "/v1/jobs/tune", bad.contentType, bad.body, h.key, nil); rec.Code != bad.status {
			t.Errorf("tune %s: %d, want %d: %s", bad.body, rec.Code, bad.status, rec.Body.String())
		}
	}
	if rec := h.do(http.MethodGet, "/v1/reports/latest", "", "", h.key, nil); rec.Code != http.StatusNotFound {
		t.Errorf("latest report before any: %d", rec.Code)
	}

	// Labelled traffic: big deals convert.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		deal := 1000 + rng.IntN(9000)
		at := fmt.Sprintf("2026-11-%02dT%02d:00:00Z", 10+i/24, i%24)
		id := fmt.Sprintf("c%d", i)
		if _, rec := h.score(fmt.Sprintf(`{"conversation_id":%q,"channel":"web","occurred_at":%q,"signals":{"deal_size":%d}}`, id, at, deal)); rec.Code != http.StatusOK {
			t.Fatalf("score: %d %s", rec.Code, rec.Body.String())
		}
		typ := "lost"
		if (deal >= 5000) != (rng.IntN(10) == 0) {
			typ = "converted"
		}
		if rec := h.do(http.MethodPost, "/v1/conversations/"+id+"/events", "application/json", fmt.Sprintf(`{"type":%q,"at":%q}`, typ, at), h.key, nil); rec.Code != http.StatusCreated {
			t.Fatalf("event: %d %s", rec.Code, rec.Body.String())
		}
	}

	var tuned struct {
		Run    jobRunJSON `json:"run"`
		Report struct {
			ID                    string `json:"id"`
			CandidateModelVersion int    `json:"candidate_model_version"`
			Promotion             struct {
				Promoted bool `json:"promoted"`
			} `json:"promotion"`
		} `json:"report"`
	}
	rec = h.do(http.MethodPost, "/v1/jobs/tune", "application/json", `{"as_of":"2026-11-20T00:00:00Z"}`, h.key, &tuned)
	if rec.Code != http.StatusOK || tuned.Run.Status != "succeeded" || tuned.Run.Trigger != "api" || tuned.Report.CandidateModelVersion != 1 {
		t.Fatalf("tune: %d %s", rec.Code, rec.Body.String())
	}
	if !tuned.Report.Promotion.Promoted {
		t.Fatalf("candidate not promoted: %s", rec.Body.String())
	}
	if cur := h.srv.Live().Current(); cur == nil || cur.ModelVersion != 1 {
		t.Fatalf("this server does not serve model 1 right after promoting it")
	}

	// The run without a ruleset is recorded too, as failed.
	var runs struct {
		Runs []jobRunJSON `json:"runs"`
	}
	if rec := h.do(http.MethodGet, "/v1/jobs/runs?job=tune", "", "", h.key, &runs); rec.Code != http.StatusOK || len(runs.Runs) != 2 || runs.Runs[0].ID != tuned.Run.ID || runs.Runs[1].Status != "failed" {
		t.Fatalf("runs: %d %s", rec.Code, rec.Body.String())
	}
	if rec := h.do(http.MethodGet, "/v1/jobs/runs?limit=0", "", "", h.key, nil); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("limit=0: %d", rec.Code)
	}
	var list struct {
		Reports []reportSummaryJSON `json:"reports"`
	}
	if rec := h.do(http.MethodGet, "/v1/reports", "", "", h.key, &list); rec.Code != http.StatusOK || len(list.Reports) != 1 || list.Reports[0].ID != tuned.Report.ID {
		t.Fatalf("reports: %d %s", rec.Code, rec.Body.String())
	}
	var full map[string]any
	if rec := h.do(http.MethodGet, "/v1/reports/"+tuned.Report.ID, "", "", h.key, &full); rec.Code != http.StatusOK {
		t.Fatalf("report: %d", rec.Code)
	}
	for _, k := range []string{"live", "candidate", "rules", "thresholds", "kpis", "recall", "promotion", "window"} {
		if _, ok := full[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	if rec := h.do(http.MethodGet, "/v1/reports/nope", "", "", h.key, nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown report: %d", rec.Code)
	}

	// Applying publishes ruleset version 2 with the tuned weights.
	var applied rulesetJSON
	if rec := h.do(http.MethodPost, "/v1/reports/"+tuned.Report.ID+"/apply", "", "", h.key, &applied); rec.Code != http.StatusCreated || applied.Version != 2 {
		t.Fatalf("apply: %d %s", rec.Code, rec.Body.String())
	}
	if cur := h.srv.Live().Current(); cur.PolicyVersion != 2 {
		t.Errorf("live ruleset %d after apply", cur.PolicyVersion)
	}

	// Rolling back with no earlier model returns scoring to the rules.
	if rec := h.do(http.MethodPost, "/v1/models/rollback", "", "", h.key, nil); rec.Code != http.StatusOK {
		t.Fatalf("rollback: %d %s", rec.Code, rec.Body.String())
	}
	if cur := h.srv.Live().Current(); cur.ModelVersion != 0 {
		t.Errorf("model %d after rollback", cur.ModelVersion)
	}
	if rec := h.do(http.MethodPost, "/v1/models/rollback", "", "", h.key, nil); rec.Code != http.StatusConflict {
		t.Errorf("second rollback: %d", rec.Code)
	}
	if rec := h.do(http.MethodPost, "/v1/models/1/promote", "", "", h.key, nil); rec.Code != http.StatusOK || h.srv.Live().Current().ModelVersion != 1 {
		t.Errorf("promote: %d", rec.Code)
	}

	// Tuning is an admin's call.
	_, scoreKey, _ := h.store.CreateAPIKey(context.Background(), "scorer", []string{"score"})
	if rec := h.do(http.MethodPost, "/v1/jobs/tune", "", "", scoreKey, nil); rec.Code != http.StatusForbidden {
		t.Errorf("tune with a score key: %d", rec.Code)
	}
}

// TestReportWithTooLittleData tunes on 40 conversations: the report's
// JSON says "too little data" with the counts and the minimums and holds
// no metrics or thresholds, and the lead's report page says so plainly
// instead of showing numbers.
func TestReportWithTooLittleData(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(tuningPolicy)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		deal := 1000 + rng.IntN(9000)
		at := fmt.Sprintf("2026-11-%02dT%02d:00:00Z", 10+i/4, 6*(i%4))
		id := fmt.Sprintf("c%d", i)
		if _, rec := h.score(fmt.Sprintf(`{"conversation_id":%q,"channel":"web","occurred_at":%q,"signals":{"deal_size":%d}}`, id, at, deal)); rec.Code != http.StatusOK {
			t.Fatalf("score: %d %s", rec.Code, rec.Body.String())
		}
		typ := map[bool]string{true: "converted", false: "lost"}[deal >= 5000]
		if rec := h.do(http.MethodPost, "/v1/conversations/"+id+"/events", "application/json", fmt.Sprintf(`{"type":%q,"at":%q}`, typ, at), h.key, nil); rec.Code != http.StatusCreated {
			t.Fatalf("event: %d %s", rec.Code, rec.Body.String())
		}
	}
	var tuned struct {
		Report struct {
			ID       string `json:"id"`
			Evidence *struct {
				Judged           bool   `json:"judged"`
				Reason           string `json:"reason"`
				HoldoutPositives int    `json:"holdout_positives"`
				HoldoutNegatives int    `json:"holdout_negatives"`
				Needed           struct {
					HoldoutPositives int `json:"holdout_positives"`
					HoldoutNegatives int `json:"holdout_negatives"`
				} `json:"needed"`
			} `json:"evidence"`
			Live       *struct{} `json:"live"`
			Candidate  *struct{} `json:"candidate"`
			Thresholds []any     `json:"thresholds"`
			Promotion  struct {
				Promoted bool   `json:"promoted"`
				Reason   string `json:"reason"`
			} `json:"promotion"`
		} `json:"report"`
	}
	rec := h.do(http.MethodPost, "/v1/jobs/tune", "application/json", `{"as_of":"2026-11-20T00:00:00Z"}`, h.key, &tuned)
	if rec.Code != http.StatusOK {
		t.Fatalf("tune: %d %s", rec.Code, rec.Body.String())
	}
	r := tuned.Report
	if r.Evidence == nil || r.Evidence.Judged || !strings.HasPrefix(r.Evidence.Reason, "too little data: ") ||
		r.Evidence.Needed.HoldoutPositives != 20 || r.Evidence.Needed.HoldoutNegatives != 20 {
		t.Fatalf("evidence = %+v", r.Evidence)
	}
	if r.Live != nil || r.Candidate != nil || len(r.Thresholds) != 0 || r.Promotion.Promoted {
		t.Errorf("judged anyway: %s", rec.Body.String())
	}

	h.addUser("lead@example.com", feedback.RoleLead, "")
	body := h.page(http.MethodGet, "/reports/"+r.ID, nil, h.login("lead@example.com"), nil).Body.String()
	for _, want := range []string{"Too little data", fmt.Sprintf("(%d positive, %d negative), at least 20 positive and 20 negative needed", r.Evidence.HoldoutPositives, r.Evidence.HoldoutNegatives),
		"Not measured: too little data.", "No thresholds were proposed: too little data to support any."} {
		if !strings.Contains(body, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	for _, unwanted := range []string{"ROC-AUC", "Apply the proposal"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("report page shows %q", unwanted)
		}
	}
}

func TestTuneWhileAnotherRunHoldsTheLock(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(tuningPolicy)
	release, ok, err := h.store.TryJobLock(context.Background(), "tune")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer release()
	rec := h.do(http.MethodPost, "/v1/jobs/tune", "", "", h.key, nil)
	if rec.Code != http.StatusConflict || decodeError(t, rec).Error.Code != "tune_running" {
		t.Fatalf("tune while locked: %d %s", rec.Code, rec.Body.String())
	}
}

// TestTuneOutlivesItsCaller: a client that gives up does not abort the
// run; it is recorded as succeeded.
func TestTuneOutlivesItsCaller(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	h.publish(tuningPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodPost, "/v1/jobs/tune", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+h.key)
	h.srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	runs, err := h.store.JobRuns(context.Background(), "tune", 5)
	if err != nil || len(runs) != 1 || runs[0].Status != "succeeded" {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
}
