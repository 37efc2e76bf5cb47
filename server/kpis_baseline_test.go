package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

func TestKPIBaseline(t *testing.T) {
	w := newWebHarness(t, "sqlite")
	var out kpiReportJSON
	// No model was ever promoted: no baseline unless a date is given.
	if rec := w.do(http.MethodGet, "/v1/kpis", "", "", w.key, &out); rec.Code != http.StatusOK || out.Baseline != nil {
		t.Fatalf("default baseline without a promotion: %d %+v", rec.Code, out.Baseline)
	}
	out = kpiReportJSON{}
	if rec := w.do(http.MethodGet, "/v1/kpis?baseline=2026-11-26", "", "", w.key, &out); rec.Code != http.StatusOK || out.Baseline == nil {
		t.Fatalf("baseline by date: %d %+v", rec.Code, out)
	}
	// chat-1 reached high on 2026-11-25, inside the 4 weeks before.
	if b := out.Baseline; b.Week != "2026-10-29 to 2026-11-26" || b.Overall.Conversion.Conversations != 1 || b.Overall.TruePositive.Fired != 1 {
		t.Errorf("baseline = %+v", b)
	}
	if !strings.Contains(out.BaselineNote, "before 2026-11-26") {
		t.Errorf("baseline note = %q", out.BaselineNote)
	}
	if rec := w.do(http.MethodGet, "/v1/kpis?baseline=yesterday", "", "", w.key, nil); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("baseline=yesterday = %d, want 422", rec.Code)
	}
	out = kpiReportJSON{}
	if w.do(http.MethodGet, "/v1/kpis?baseline=none", "", "", w.key, &out); out.Baseline != nil {
		t.Errorf("baseline=none gave one")
	}

	// After a promotion, the default baseline is the weeks before it.
	m, err := w.store.CreateModel(context.Background(), []byte(`{"intercept":0,"encoder":{},"beta":[]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.ActivateModel(context.Background(), m.Version); err != nil {
		t.Fatal(err)
	}
	out = kpiReportJSON{}
	if w.do(http.MethodGet, "/v1/kpis", "", "", w.key, &out); out.Baseline == nil || !strings.Contains(out.BaselineNote, "before the first model was promoted") {
		t.Errorf("default baseline after a promotion: %+v %q", out.Baseline, out.BaselineNote)
	}

	lead := w.cookies[feedback.RoleLead]
	rec := w.page(http.MethodGet, "/kpis?baseline=2026-11-26", nil, lead, nil)
	body := rec.Body.String()
	for _, want := range []string{`class="baseline-row"`, "the 4 weeks before 2026-11-26", `class="baseline"`, "Priority conversion by deal value"} {
		if !strings.Contains(body, want) {
			t.Errorf("KPI page lacks %q", want)
		}
	}
	if rec := w.page(http.MethodGet, "/kpis?baseline=none", nil, lead, nil); strings.Contains(rec.Body.String(), `class="baseline-row"`) {
		t.Errorf("baseline=none still shows a baseline row")
	}
}
