package server

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

func TestSettingsPages(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWebHarness(t, engine)
			admin := w.cookies[feedback.RoleAdmin]
			ctx := context.Background()
			get := func(path string) string {
				t.Helper()
				rec := w.page(http.MethodGet, path, nil, admin, nil)
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s = %d", path, rec.Code)
				}
				return html.UnescapeString(rec.Body.String())
			}
			if rec := w.page(http.MethodGet, "/settings", nil, admin, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/settings/scoring" {
				t.Errorf("/settings = %d to %q", rec.Code, rec.Header().Get("Location"))
			}

			// Scoring: the live thresholds, SLAs and budgets, saved as a
			// new ruleset version.
			body := get("/settings/scoring")
			for _, want := range []string{`name="th.whatsapp.high" value="0.65"`, `name="sla.urgent" value="1m0s"`, `name="budget.default" value="30"`, "retention"} {
				if !strings.Contains(body, want) {
					t.Errorf("scoring settings lack %q", want)
				}
			}
			// Saved as shown, nothing changes: no new version.
			shown := url.Values{"version": {"1"}, "th.default.urgent": {"0.9"}, "th.default.high": {"0.7"}, "th.default.medium": {"0.4"},
				"th.whatsapp.urgent": {"0.85"}, "th.whatsapp.high": {"0.65"}, "th.whatsapp.medium": {"0.35"},
				"sla.urgent": {"1m0s"}, "sla.high": {"3m0s"}, "team": {"default", "sales"}, "budget.default": {"30"}}
			if rec := w.page(http.MethodPost, "/settings/scoring", shown, admin, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/settings/scoring" {
				t.Errorf("unchanged save = %d to %q", rec.Code, rec.Header().Get("Location"))
			}
			if live, _ := w.store.LivePolicy(ctx); live.Version != 1 {
				t.Errorf("an unchanged save published version %d", live.Version)
			}
			form := url.Values{"version": {"1"},
				"th.default.urgent": {"0.9"}, "th.default.high": {"0.7"}, "th.default.medium": {"0.4"},
				"th.whatsapp.urgent": {"0.85"}, "th.whatsapp.high": {"0.6"}, "th.whatsapp.medium": {"0.35"},
				"new_channel": {"email"}, "new_urgent": {"0.95"}, "new_high": {"0.8"}, "new_medium": {"0.5"},
				"sla.urgent": {"45s"}, "sla.high": {"3m"},
				"team": {"default", "sales"}, "budget.default": {"30"}, "budget.sales": {"50"},
			}
			bad := url.Values{}
			for k, v := range form {
				bad[k] = v
			}
			bad.Set("th.whatsapp.high", "lots")
			rec := w.page(http.MethodPost, "/settings/scoring", bad, admin, nil)
			if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "thresholds.whatsapp.high") {
				t.Errorf("bad threshold = %d", rec.Code)
			}
			stale := url.Values{}
			for k, v := range form {
				stale[k] = v
			}
			stale.Set("version", "0")
			if rec := w.page(http.MethodPost, "/settings/scoring", stale, admin, nil); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "changed since the page was opened") {
				t.Errorf("a save from a stale page = %d", rec.Code)
			}
			rec = w.page(http.MethodPost, "/settings/scoring", form, admin, nil)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/settings/scoring?done=saved&v=2" {
				t.Fatalf("save = %d to %q: %s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
			}
			live, err := w.store.LivePolicy(ctx)
			if err != nil {
				t.Fatal(err)
			}
			doc, _ := model.ParsePolicy(live.Document)
			if live.Version != 2 || doc.Thresholds["whatsapp"].High != 0.6 || doc.Thresholds["email"].Urgent != 0.95 ||
				doc.Alerts.SLA["urgent"] != "45s" || doc.Alerts.HourlyBudget["sales"] != 50 || len(doc.Rules) != 3 || len(doc.Routes) != 3 {
				t.Errorf("published %d: %+v %+v", live.Version, doc.Thresholds, doc.Alerts)
			}
			if cur := w.srv.live.Current(); cur == nil || cur.PolicyVersion != 2 || cur.SLA(model.TierUrgent).String() != "45s" {
				t.Errorf("the server does not score with the new settings")
			}

			// Destinations per team and tier; a webhook's secret is shown once.
			rec = w.page(http.MethodPost, "/settings/destinations", url.Values{"team": {"sales"}, "kind": {"webhook"},
				"url": {"https://hooks.example.com/hotlane"}, "tiers": {"urgent", "high"}}, admin, nil)
			body = html.UnescapeString(rec.Body.String())
			if rec.Code != http.StatusCreated || !regexp.MustCompile(`<code id="secret">whsec_[0-9a-f]{64}</code>`).MatchString(body) ||
				!strings.Contains(body, "urgent, high") {
				t.Fatalf("add destination = %d\n%s", rec.Code, body)
			}
			dests, _ := w.store.ListDestinations(ctx, "sales")
			if len(dests) != 1 {
				t.Fatalf("destinations = %+v", dests)
			}
			if rec := w.page(http.MethodPost, "/settings/destinations", url.Values{"team": {"sales"}, "kind": {"slack"}, "url": {"ftp://x"}}, admin, nil); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("bad destination = %d", rec.Code)
			}
			rec = w.page(http.MethodPost, "/settings/destinations/"+dests[0].ID+"/rotate", url.Values{}, admin, nil)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<code id="secret">whsec_`) {
				t.Errorf("rotate = %d", rec.Code)
			}
			w.page(http.MethodPost, "/settings/destinations", url.Values{"team": {"sales"}, "kind": {"slack"}, "url": {"https://hooks.slack.com/services/T/B/X"}}, admin, nil)
			if all, _ := w.store.ListDestinations(ctx, "sales"); len(all) == 2 {
				if rec := w.page(http.MethodPost, "/settings/destinations/"+all[1].ID+"/rotate", url.Values{}, admin, nil); rec.Code != http.StatusUnprocessableEntity {
					t.Errorf("rotating a Slack destination's secret = %d, want 422", rec.Code)
				}
				w.page(http.MethodPost, "/settings/destinations/"+all[1].ID+"/delete", url.Values{}, admin, nil)
			}
			if rec := w.page(http.MethodPost, "/settings/destinations", url.Values{"team": {"sa\nles"}, "kind": {"feed"}}, admin, nil); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("a team with a newline = %d", rec.Code)
			}
			if rec := w.page(http.MethodPost, "/settings/destinations/"+dests[0].ID+"/delete", url.Values{}, admin, nil); rec.Code != http.StatusSeeOther {
				t.Errorf("delete = %d", rec.Code)
			}
			if dests, _ := w.store.ListDestinations(ctx, "sales"); len(dests) != 0 {
				t.Errorf("after delete: %+v", dests)
			}

			// API keys: the key is shown once and works; revoked, it does not.
			if rec := w.page(http.MethodPost, "/settings/keys", url.Values{"name": {"crm"}}, admin, nil); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("key without scopes = %d", rec.Code)
			}
			rec = w.page(http.MethodPost, "/settings/keys", url.Values{"name": {"crm"}, "scopes": {"feedback"}}, admin, nil)
			m := regexp.MustCompile(`<code id="secret">([^<]+)</code>`).FindStringSubmatch(rec.Body.String())
			if rec.Code != http.StatusCreated || m == nil {
				t.Fatalf("create key = %d", rec.Code)
			}
			if rec := w.do(http.MethodGet, "/v1/alerts", "", "", m[1], nil); rec.Code != http.StatusOK {
				t.Errorf("the new key = %d", rec.Code)
			}
			var id string
			if m := regexp.MustCompile(`action="/settings/keys/(\d+)/revoke" class="confirm"><p>Requests with this key are refused from now on.</p><button type="submit">Revoke crm<`).FindStringSubmatch(get("/settings/keys")); m != nil {
				id = m[1]
			}
			if id == "" {
				t.Fatal("no revoke form for the new key")
			}
			if rec := w.page(http.MethodPost, "/settings/keys/"+id+"/revoke", url.Values{}, admin, nil); rec.Code != http.StatusSeeOther {
				t.Errorf("revoke = %d", rec.Code)
			}
			if rec := w.do(http.MethodGet, "/v1/alerts", "", "", m[1], nil); rec.Code != http.StatusUnauthorized {
				t.Errorf("the revoked key = %d, want 401", rec.Code)
			}

			// Users.
			if rec := w.page(http.MethodPost, "/settings/users", url.Values{"email": {"new@example.com"}, "role": {"agent"}, "password": {"short"}}, admin, nil); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("short password = %d", rec.Code)
			}
			newUser := url.Values{"email": {"New@Example.com"}, "role": {"lead"}, "team": {"sales"}, "password": {testPassword}}
			if rec := w.page(http.MethodPost, "/settings/users", newUser, admin, nil); rec.Code != http.StatusCreated {
				t.Errorf("add user = %d %s", rec.Code, rec.Body.String())
			}
			if rec := w.page(http.MethodPost, "/settings/users", newUser, admin, nil); rec.Code != http.StatusConflict {
				t.Errorf("add the same user = %d", rec.Code)
			}
			w.login("new@example.com")
			for _, me := range []string{"admin@example.com", " Admin@Example.com"} {
				if rec := w.page(http.MethodPost, "/settings/users/disable", url.Values{"email": {me}}, admin, nil); rec.Code != http.StatusConflict {
					t.Errorf("disable yourself as %q = %d", me, rec.Code)
				}
			}
			if rec := w.page(http.MethodPost, "/settings/users/disable", url.Values{"email": {"bogus"}}, admin, nil); rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("disable bogus = %d", rec.Code)
			}
			if rec := w.page(http.MethodPost, "/settings/users/disable", url.Values{"email": {"new@example.com"}}, admin, nil); rec.Code != http.StatusSeeOther {
				t.Errorf("disable = %d", rec.Code)
			}
			if !strings.Contains(get("/settings/users"), `class="revoked"><th scope="row">new@example.com`) {
				t.Errorf("the disabled user is not marked")
			}

			entries, _ := w.store.AuditLog(ctx, feedback.AuditQuery{Limit: 50})
			var actions []string
			for i := len(entries) - 1; i >= 0; i-- {
				if entries[i].Actor == "user:admin@example.com" {
					actions = append(actions, entries[i].Action)
				}
			}
			want := "ruleset.publish destination.create destination.rotate_secret destination.create destination.delete destination.delete apikey.create apikey.revoke user.create user.disable"
			if strings.Join(actions, " ") != want {
				t.Errorf("audit = %v\nwant    %s", actions, want)
			}
		})
	}
}
