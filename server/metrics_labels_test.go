package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Requests with made-up methods and paths, without a key, must not add
// label values: before, each random method became a new series and
// /metrics grew without bound.
func TestMetricsLabelsClosedSet(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	for i := range 200 {
		h.do(fmt.Sprintf("M%dX", i), fmt.Sprintf("/v1/score/%d", i), "", "", "", nil)
		h.do(http.MethodGet, fmt.Sprintf("/no/such/path/%d", i), "", "", "", nil)
		h.do(fmt.Sprintf("Q%d", i), "/v1/score", "", "", "", nil)
	}
	metrics := h.do(http.MethodGet, "/metrics", "", "", "", nil).Body.String()
	var series []string
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "hotlane_http_requests_total{") {
			series = append(series, line)
		}
	}
	for _, want := range []string{
		`hotlane_http_requests_total{method="other",route="unmatched",status="404"} 200`,
		`hotlane_http_requests_total{method="GET",route="unmatched",status="404"} 200`,
		`hotlane_http_requests_total{method="other",route="unmatched",status="405"} 200`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s; series:\n%s", want, strings.Join(series, "\n"))
		}
	}
	if len(series) > 3 {
		t.Errorf("%d request series after 600 stray requests, want 3:\n%s", len(series), strings.Join(series, "\n"))
	}
	if strings.Contains(metrics, `method="M1X"`) || strings.Contains(metrics, "/no/such/path") {
		t.Error("a request-made value became a label")
	}
}
