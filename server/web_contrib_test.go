package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// Feature reasons are per signal: a signal reads as its name and value,
// a missing one says so, and a feature name from an older decision reads
// as it was stored.
func TestReasonTextPerSignal(t *testing.T) {
	tests := []struct {
		name   string
		reason model.Reason
		want   string
	}{
		{"number", model.Reason{Kind: "feature", Name: "deal_size", Contribution: 1.4, Value: 50000.0}, "deal_size 50000 (+1.4)"},
		{"large number", model.Reason{Kind: "feature", Name: "mrr", Contribution: 0.5, Value: 2.5e6}, "mrr 2500000 (+0.5)"},
		{"fraction", model.Reason{Kind: "feature", Name: "churn_risk", Contribution: -0.5, Value: 0.123456}, "churn_risk 0.1235 (-0.5)"},
		{"category", model.Reason{Kind: "feature", Name: "plan", Contribution: 0.8, Value: "pro"}, "plan pro (+0.8)"},
		{"boolean", model.Reason{Kind: "feature", Name: "returning", Contribution: 0.3, Value: true}, "returning true (+0.3)"},
		{"missing", model.Reason{Kind: "feature", Name: "deal_size", Contribution: -0.7}, "deal_size missing (-0.7)"},
		{"older category", model.Reason{Kind: "feature", Name: "plan=pro", Contribution: 0.8, Value: "pro"}, "plan=pro (+0.8)"},
		{"older missing", model.Reason{Kind: "feature", Name: "deal_size:missing", Contribution: -0.7}, "deal_size:missing (-0.7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reasonText([]model.Reason{tt.reason}, nil, 3); got != tt.want {
				t.Errorf("reasonText = %q, want %q", got, tt.want)
			}
		})
	}
}

// A number's chart is a line over its values with a point for missing;
// a category's is one bar per value; both have labelled axes.
func TestContribChart(t *testing.T) {
	share := 0.25
	number := model.ContribCurve{Signal: "deal_size", Kind: model.ContribNumber, LogScale: true,
		Grid:    []model.ContribPoint{{Value: 0, Contribution: -0.4}, {Value: 100, Contribution: 0.2}, {Value: 10000, Contribution: 1.2}},
		Missing: &model.ContribBar{Contribution: -0.7, Share: &share}}
	svg := string(contribChart(number))
	for _, want := range []string{"<polyline", "deal_size (log scale)", "contribution (log-odds)", ">missing<", "deal_size 10,000: +1.20", ">10,000<", ">+1<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("number chart lacks %q", want)
		}
	}
	category := model.ContribCurve{Signal: "plan", Kind: model.ContribCategory,
		Bars: []model.ContribBar{{Category: "pro", Contribution: 0.9}, {Category: "free", Contribution: -0.6}, {Other: true, Contribution: 0.3}}}
	svg = string(contribChart(category))
	if n := strings.Count(svg, `<rect class="pt"`); n != 3 {
		t.Errorf("category chart has %d bars, want 3", n)
	}
	for _, want := range []string{">pro<", ">any other value<", "plan free: -0.60", "raises the score"} {
		if !strings.Contains(svg, want) {
			t.Errorf("category chart lacks %q", want)
		}
	}
}

func TestFmtNum(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{{0, "0"}, {1234567.8, "1,234,568"}, {-5000, "-5,000"}, {250, "250"}, {12.34, "12.3"}, {1.5, "1.5"}, {0.0123, "0.012"}} {
		if got := fmtNum(tt.v); got != tt.want {
			t.Errorf("fmtNum(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// The report page draws the candidate's contribution per signal, each
// chart with its numbers in a details element.
func TestReportPageShowsContributions(t *testing.T) {
	h, report := tunedHarness(t, 5, true)
	if len(report.Contributions) == 0 {
		t.Fatal("the API's report has no contribution curves")
	}
	h.addUser("lead@example.com", feedback.RoleLead, "")
	body := h.page(http.MethodGet, "/reports/"+report.ID, nil, h.login("lead@example.com"), nil).Body.String()
	if !strings.Contains(body, "What the candidate learned from signals") || !strings.Contains(body, "The candidate&#39;s scores move most with") {
		t.Error("report page lacks the signals section and its sentence")
	}
	for i, c := range report.Contributions {
		id := fmt.Sprintf(`id="contrib-%d"`, i+1)
		k := strings.Index(body, id)
		if k < 0 {
			t.Errorf("report page lacks the chart of %s", c.Signal)
			continue
		}
		fig := body[k : k+strings.Index(body[k:], "</figure>")]
		for _, want := range []string{"<svg", "<code>" + c.Signal + "</code>", "contribution", "<details>", "Contribution (log-odds)", "on average across the holdout"} {
			if !strings.Contains(fig, want) {
				t.Errorf("chart of %s lacks %q", c.Signal, want)
			}
		}
	}
}
