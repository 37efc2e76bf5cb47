package server

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

// A lead drafts from the live ruleset, types a broken rule and sees the
// error at that rule and column, fixes it, backtests, publishes, rolls
// back and deletes a draft; the audit log names the lead at each step.
func TestRulesPages(t *testing.T) {
	for _, engine := range engines(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWebHarness(t, engine)
			lead := w.cookies[feedback.RoleLead]

			rec := w.page(http.MethodGet, "/rules", nil, lead, nil)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, "Version 1 is live") || !strings.Contains(body, "deal_size &gt;= 10000") {
				t.Fatalf("/rules = %d\n%s", rec.Code, body)
			}

			rec = w.page(http.MethodPost, "/rules/drafts", url.Values{}, lead, nil)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/rules/2" {
				t.Fatalf("new draft = %d to %q", rec.Code, rec.Header().Get("Location"))
			}
			rec = w.page(http.MethodGet, "/rules/2", nil, lead, nil)
			body = html.UnescapeString(rec.Body.String())
			if rec.Code != http.StatusOK || !strings.Contains(body, "Draft 2: it serves nothing") || !strings.Contains(body, `expression: "deal_size >= 10000"`) {
				t.Fatalf("draft page = %d\n%s", rec.Code, body)
			}

			// A broken rule: the page names the rule and the column, with
			// a caret under it, and keeps what was typed.
			broken := strings.Replace(testPolicy, `"pricing_page_views >= 3"`, `"pricing_page_views >= "`, 1)
			rec = w.page(http.MethodPost, "/rules/2", url.Values{"source": {broken}, "note": {"try"}}, lead, nil)
			body = html.UnescapeString(rec.Body.String())
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("broken draft = %d", rec.Code)
			}
			for _, want := range []string{"Rule pricing, rules[2].expression, column", "pricing_page_views >= \n", `"pricing_page_views >= "`} {
				if !strings.Contains(body, want) {
					t.Errorf("broken draft page lacks %q", want)
				}
			}
			var col int
			if m := regexp.MustCompile(`Rule pricing, rules\[2\]\.expression, column (\d+)`).FindStringSubmatch(body); m != nil {
				col, _ = strconv.Atoi(m[1])
			}
			if col < 1 || !strings.Contains(body, "pricing_page_views >= \n"+strings.Repeat(" ", col-1)+"^</code>") {
				t.Errorf("no caret under column %d:\n%s", col, body)
			}
			var pv feedback.PolicyVersion
			if pv, _ = w.store.Policy(context.Background(), 2); !strings.Contains(pv.Source, `"pricing_page_views >= 3"`) {
				t.Errorf("the refused text was stored: %q", pv.Source)
			}

			// Fixed: every conversation becomes urgent.
			rec = w.page(http.MethodPost, "/rules/2", url.Values{"source": {everyoneUrgent}, "note": {"all urgent"}}, lead, nil)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/rules/2?done=saved" {
				t.Fatalf("save = %d %s", rec.Code, rec.Body.String())
			}

			// The backtest: chat-1 was scored once; the draft makes it
			// urgent, the live ruleset high.
			rec = w.page(http.MethodPost, "/rules/2/backtest", url.Values{"weeks": {"4"}}, lead, nil)
			body = html.UnescapeString(rec.Body.String())
			if rec.Code != http.StatusOK {
				t.Fatalf("backtest page = %d\n%s", rec.Code, body)
			}
			for _, want := range []string{
				"this draft would have alerted on 1 conversation (live: 1)",
				"1 conversation and 1 decision replayed",
				`<code>pricing</code></th><td>changed</td><td class="num">0</td>`,
				`<code>big-deal</code></th><td>removed</td>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("backtest page lacks %q", want)
				}
			}
			if rec := w.page(http.MethodPost, "/rules/2/backtest", url.Values{"weeks": {"99"}}, lead, nil); rec.Code != http.StatusBadRequest {
				t.Errorf("weeks=99 = %d, want 400", rec.Code)
			}

			// everyoneUrgent drops the routes: only an admin may publish it.
			rec = w.page(http.MethodPost, "/rules/2/publish", url.Values{}, lead, nil)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "changes the routes of the live ruleset") {
				t.Fatalf("a lead publishing new routes = %d %s", rec.Code, rec.Body.String())
			}
			rec = w.page(http.MethodPost, "/rules/2/publish", url.Values{}, w.cookies[feedback.RoleAdmin], nil)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("publish = %d %s", rec.Code, rec.Body.String())
			}
			if got, _ := w.score(`{"conversation_id":"after","channel":"web","signals":{}}`); got.RulesetVersion != 2 || got.Tier != "urgent" {
				t.Errorf("after publish: version %d tier %s", got.RulesetVersion, got.Tier)
			}
			rec = w.page(http.MethodGet, "/conversations/after", nil, lead, nil)
			if !strings.Contains(rec.Body.String(), "ruleset 2, rules only") {
				t.Errorf("the conversation page does not say which ruleset scored it")
			}
			rec = w.page(http.MethodPost, "/rules/2", url.Values{"source": {testPolicy}}, lead, nil)
			if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "published and cannot change") {
				t.Errorf("editing a published version = %d", rec.Code)
			}

			rec = w.page(http.MethodPost, "/rules/1/rollback", url.Values{}, lead, nil)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("rollback = %d", rec.Code)
			}
			if rec = w.page(http.MethodGet, "/rules?done=rolledback&v=1", nil, lead, nil); !strings.Contains(rec.Body.String(), "Version 1 is live") {
				t.Errorf("after rollback:\n%s", rec.Body.String())
			}

			w.page(http.MethodPost, "/rules/drafts", url.Values{"from": {"2"}}, lead, nil)
			rec = w.page(http.MethodGet, "/rules/3", nil, lead, nil)
			if !strings.Contains(html.UnescapeString(rec.Body.String()), "base: 5") {
				t.Errorf("draft from version 2 does not hold its text")
			}
			if rec := w.page(http.MethodPost, "/rules/3/delete", url.Values{}, lead, nil); rec.Code != http.StatusSeeOther {
				t.Errorf("delete draft = %d", rec.Code)
			}
			if rec := w.page(http.MethodGet, "/rules/3", nil, lead, nil); rec.Code != http.StatusNotFound {
				t.Errorf("deleted draft = %d, want 404", rec.Code)
			}

			entries, err := w.store.AuditLog(context.Background(), feedback.AuditQuery{Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := len(entries) - 1; i >= 0; i-- {
				if e := entries[i]; strings.HasPrefix(e.Action, "ruleset.") && e.Actor == "user:lead@example.com" {
					got = append(got, e.Action+" "+e.Subject)
				}
			}
			want := "[ruleset.draft_create ruleset 2 ruleset.draft_update ruleset 2 ruleset.rollback ruleset 1 ruleset.draft_create ruleset 3 ruleset.draft_delete ruleset 3]"
			if fmt.Sprint(got) != want {
				t.Errorf("audit = %v\nwant    %s", got, want)
			}
		})
	}
}
