package server

import (
	"net/http"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

// A destination naming an internal address, in any spelling, is refused
// with 422 when it is created (before, it was stored and delivered to);
// an installation that allows a range can name it.
func TestDestinationInternalAddressRefused(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			for _, u := range []string{"http://127.0.0.1:9000/in", "http://169.254.169.254/latest", "http://10.0.0.1/",
				"http://[::1]/", "http://0.0.0.0/", "http://2130706433/", "http://localhost/"} {
				for _, kind := range []string{"webhook", "slack"} {
					var e errorBody
					rec := h.do(http.MethodPost, "/v1/destinations", "application/json",
						`{"team": "sales", "kind": "`+kind+`", "url": "`+u+`"}`, h.key, &e)
					if rec.Code != http.StatusUnprocessableEntity || e.Error.Field != "url" {
						t.Errorf("%s %s = %d %+v, want 422 on url", kind, u, rec.Code, e.Error)
					}
				}
			}
			var list struct {
				Destinations []destinationJSON `json:"destinations"`
			}
			h.do(http.MethodGet, "/v1/destinations", "", "", h.key, &list)
			if len(list.Destinations) != 0 {
				t.Errorf("refused destinations were stored: %+v", list.Destinations)
			}

			allow, err := feedback.ParseAddressPolicy([]string{"loopback"})
			if err != nil {
				t.Fatal(err)
			}
			h = newHarness(t, engine, Config{Addresses: allow})
			if rec := h.do(http.MethodPost, "/v1/destinations", "application/json",
				`{"team": "sales", "kind": "webhook", "url": "http://127.0.0.1:9000/in"}`, h.key, nil); rec.Code != http.StatusCreated {
				t.Errorf("loopback allowed: %d %s", rec.Code, rec.Body.String())
			}
			if rec := h.do(http.MethodPost, "/v1/destinations", "application/json",
				`{"team": "sales", "kind": "webhook", "url": "http://10.0.0.1/in"}`, h.key, nil); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("private with only loopback allowed: %d", rec.Code)
			}
		})
	}
}
