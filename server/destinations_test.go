package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestDestinationsAPI(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			h := newHarness(t, engine, Config{})
			var hook destinationJSON
			rec := h.do(http.MethodPost, "/v1/destinations", "application/json",
				`{"team": "sales", "kind": "webhook", "url": "https://crm.example.com/in"}`, h.key, &hook)
			if rec.Code != http.StatusCreated || !strings.HasPrefix(hook.Secret, "whsec_") || hook.ID == "" {
				t.Fatalf("create webhook = %d %s", rec.Code, rec.Body.String())
			}
			var slack destinationJSON
			rec = h.do(http.MethodPost, "/v1/destinations", "application/json",
				`{"team": "sales", "kind": "slack", "url": "https://hooks.slack.com/services/T1/B2/token", "lead": true}`, h.key, &slack)
			if rec.Code != http.StatusCreated || slack.Secret != "" || !slack.Lead {
				t.Fatalf("create slack = %d %s", rec.Code, rec.Body.String())
			}

			tests := []struct {
				name, body string
				status     int
				field      string
			}{
				{"missing team", `{"kind": "feed"}`, http.StatusBadRequest, "team"},
				{"missing kind", `{"team": "sales"}`, http.StatusBadRequest, "kind"},
				{"unknown kind", `{"team": "sales", "kind": "email"}`, http.StatusUnprocessableEntity, "kind"},
				{"bad url", `{"team": "sales", "kind": "webhook", "url": "ftp://x"}`, http.StatusUnprocessableEntity, "url"},
				{"feed with url", `{"team": "sales", "kind": "feed", "url": "https://x"}`, http.StatusUnprocessableEntity, "url"},
				{"unknown field", `{"team": "sales", "kind": "feed", "secret": "x"}`, http.StatusBadRequest, ""},
			}
			for _, tt := range tests {
				rec := h.do(http.MethodPost, "/v1/destinations", "application/json", tt.body, h.key, nil)
				if rec.Code != tt.status {
					t.Errorf("%s: status %d, want %d: %s", tt.name, rec.Code, tt.status, rec.Body.String())
					continue
				}
				if e := decodeError(t, rec); e.Error.Field != tt.field {
					t.Errorf("%s: field %q, want %q", tt.name, e.Error.Field, tt.field)
				}
			}

			var list struct {
				Destinations []destinationJSON `json:"destinations"`
			}
			rec = h.do(http.MethodGet, "/v1/destinations?team=sales", "", "", h.key, &list)
			if rec.Code != http.StatusOK || len(list.Destinations) != 2 {
				t.Fatalf("list = %d %s", rec.Code, rec.Body.String())
			}
			if body := rec.Body.String(); strings.Contains(body, hook.Secret) || strings.Contains(body, "token") || strings.Contains(body, `"secret"`) {
				t.Errorf("list shows a secret: %s", body)
			}

			var rotated destinationJSON
			rec = h.do(http.MethodPost, "/v1/destinations/"+hook.ID+"/rotate-secret", "application/json", `{"grace": "1h"}`, h.key, &rotated)
			if rec.Code != http.StatusOK || rotated.Secret == "" || rotated.Secret == hook.Secret || rotated.PreviousSecretExpiresAt == nil {
				t.Fatalf("rotate = %d %s", rec.Code, rec.Body.String())
			}
			rec = h.do(http.MethodPost, "/v1/destinations/"+hook.ID+"/rotate-secret", "", "", h.key, &rotated)
			if rec.Code != http.StatusOK {
				t.Errorf("rotate without a body = %d %s", rec.Code, rec.Body.String())
			}
			for _, c := range []struct {
				path, body string
				status     int
			}{
				{"/v1/destinations/" + slack.ID + "/rotate-secret", `{}`, http.StatusUnprocessableEntity},
				{"/v1/destinations/" + hook.ID + "/rotate-secret", `{"grace": "-1h"}`, http.StatusUnprocessableEntity},
				{"/v1/destinations/nope/rotate-secret", `{}`, http.StatusNotFound},
			} {
				if rec := h.do(http.MethodPost, c.path, "application/json", c.body, h.key, nil); rec.Code != c.status {
					t.Errorf("POST %s %s = %d, want %d", c.path, c.body, rec.Code, c.status)
				}
			}

			if rec := h.do(http.MethodDelete, "/v1/destinations/"+hook.ID, "", "", h.key, nil); rec.Code != http.StatusNoContent {
				t.Errorf("delete = %d", rec.Code)
			}
			if rec := h.do(http.MethodDelete, "/v1/destinations/"+hook.ID, "", "", h.key, nil); rec.Code != http.StatusNotFound {
				t.Errorf("second delete = %d, want 404", rec.Code)
			}
			rec = h.do(http.MethodGet, "/v1/destinations", "", "", h.key, nil)
			var after struct {
				Destinations []json.RawMessage `json:"destinations"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &after)
			if len(after.Destinations) != 1 {
				t.Errorf("after delete %d destinations, want 1", len(after.Destinations))
			}

			_, scoreKey, err := h.store.CreateAPIKey(t.Context(), "scorer", []string{"score"})
			if err != nil {
				t.Fatal(err)
			}
			if rec := h.do(http.MethodGet, "/v1/destinations", "", "", scoreKey, nil); rec.Code != http.StatusForbidden {
				t.Errorf("list with a score key = %d, want 403", rec.Code)
			}
		})
	}
}

func TestDestinationTiers(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	var d destinationJSON
	rec := h.do(http.MethodPost, "/v1/destinations", "application/json", `{"team":"sales","kind":"feed","tiers":["medium","low"]}`, h.key, &d)
	if rec.Code != http.StatusCreated || fmt.Sprint(d.Tiers) != "[medium low]" {
		t.Fatalf("create with tiers: %d %+v", rec.Code, d)
	}
	h.do(http.MethodPost, "/v1/destinations", "application/json", `{"team":"sales","kind":"feed"}`, h.key, &d)
	if d.Tiers == nil || len(d.Tiers) != 0 {
		t.Errorf("without tiers: %#v, want [] (every tier)", d.Tiers)
	}
	for _, body := range []string{
		`{"team":"sales","kind":"feed","tiers":["urgent","bogus"]}`,
		`{"team":"sales","kind":"feed","tiers":["high","high"]}`,
		`{"team":"sales","kind":"feed","tiers":[""]}`,
	} {
		rec := h.do(http.MethodPost, "/v1/destinations", "application/json", body, h.key, nil)
		if e := decodeError(t, rec); rec.Code != http.StatusUnprocessableEntity || e.Error.Field != "tiers" {
			t.Errorf("%s: %d %+v, want 422 on tiers", body, rec.Code, e.Error)
		}
	}
}
