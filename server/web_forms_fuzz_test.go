package server

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// pageForm is one form of the UI, as the fuzz target posts it.
type pageForm struct {
	name, path string
	// seeds are bodies as the page's form sends them, and the usual
	// mistakes.
	seeds []url.Values
}

// pageForms are the forms whose handlers parse what they are sent: the
// rules draft editor, the scoring settings, a new destination, a new
// user, an alert's label and a conversation's review.
var pageForms = []pageForm{
	{"draft", "/rules/2", []url.Values{
		{"source": {fuzzLivePolicy}, "note": {"lower the bar for big deals"}},
		{"source": {strings.ReplaceAll(fuzzLivePolicy, "\n", "\r\n")}},
		{"source": {"rules:\n  - {name: r, expression: \"deal_size >=\\n 10 and\", points: 1}\nthresholds: {default: {urgent: 0.9, high: 0.7, medium: 0.4}}\n"}},
		{"source": {"rules: [{name: Bad, expression: 'x', points: .nan}]\nthresholds: {default: {urgent: 0.4, high: 0.7, medium: 0.9}}\nroutes: [{rule: nope, team: ''}]\n"}},
		{"source": {"rules: [\n"}, "note": {"half"}},
		{"source": {""}},
		{"source": {fuzzLivePolicy}, "note": {"a\x00b"}},
		{"source": {fuzzLivePolicy}, "note": {"\xff"}},
	}},
	{"scoring", "/settings/scoring", []url.Values{
		{"version": {"1"}, "th.default.urgent": {"0.9"}, "th.default.high": {"0.7"}, "th.default.medium": {"0.4"},
			"th.whatsapp.urgent": {"0.85"}, "th.whatsapp.high": {"0.65"}, "th.whatsapp.medium": {"0.35"},
			"sla.urgent": {"60s"}, "sla.high": {"3m"}, "sla.medium": {"30m"}, "team": {"default", "sales"}, "budget.default": {"30"}, "budget.sales": {"12"},
			"new_channel": {"sms"}, "new_urgent": {"0.8"}, "new_high": {"0.6"}, "new_medium": {"0.3"}, "new_team": {"retention"}, "new_budget": {"5"}},
		{"version": {"1"}, "th.default.urgent": {"0.9"}, "th.default.high": {"0.7"}, "th.default.medium": {"0.4"},
			"th.whatsapp.remove": {"1"}, "sla.urgent": {"60s"}, "sla.high": {"3m0s"}, "team": {"default"}, "budget.default": {"30"}},
		{"version": {"0"}},
		{"version": {"1"}, "th.default.urgent": {"NaN"}, "th.default.high": {"Inf"}, "th.default.medium": {"x"},
			"new_channel": {"Web Chat"}, "sla.low": {"soon"}, "team": {"sales"}, "budget.sales": {"-1"}, "new_team": {"x"}, "new_budget": {"many"}},
		{"version": {"1"}, "th.default.urgent": {"0.9"}, "th.default.high": {"0.7"}, "th.default.medium": {"0.4"},
			"th.whatsapp.urgent": {"0.9"}, "th.whatsapp.high": {"0.7"}, "th.whatsapp.medium": {"0.4"},
			"new_channel": {"whatsapp"}, "sla.urgent": {"1m"}, "new_team": {"a\x00b"}, "new_budget": {"3"}},
		{"version": {"1"}},
	}},
	{"destination", "/settings/destinations", []url.Values{
		{"team": {"sales"}, "kind": {"slack"}, "url": {"https://hooks.slack.com/services/T0/B0/secret"}, "tiers": {"urgent", "high"}, "lead": {"1"}},
		{"team": {"retention"}, "kind": {"webhook"}, "url": {"https://alerts.example.com/hotlane"}},
		{"team": {"sales"}, "kind": {"feed"}},
		{"team": {"sales"}, "kind": {"webhook"}, "url": {"http://169.254.169.254/latest"}},
		{"team": {"sales"}, "kind": {"webhook"}, "url": {"http://0x7f.1/"}},
		{"team": {"sales"}, "kind": {"feed"}, "url": {"https://example.com"}},
		{"team": {" "}, "kind": {"pager"}, "tiers": {"hot"}},
		{"team": {"a\x00b"}, "kind": {"slack"}, "url": {"https://example.com/\x7f"}},
	}},
	{"user", "/settings/users", []url.Values{
		{"email": {"New.Agent@Example.com "}, "role": {"agent"}, "team": {"sales"}, "password": {"correct horse battery"}},
		{"email": {"admin@example.com"}, "role": {"lead"}, "password": {"correct horse battery"}},
		{"email": {"lead@example.com"}, "role": {"boss"}, "team": {"sales"}, "password": {"short"}},
		{"email": {"not an email"}, "role": {"agent"}, "password": {"correct horse battery"}},
		{"email": {"x@example.com"}, "role": {"agent"}, "team": {"a\x00b"}, "password": {"correct horse battery"}},
	}},
	{"label", "/alerts/a1/label", []url.Values{
		{"label": {"useful"}, "note": {"asked for a quote"}, "return": {"/alerts?tier=high"}},
		{"label": {"noise"}, "return": {"//evil.example/alerts"}},
		{"label": {"meh"}},
		{"label": {"useful"}, "note": {"a\x00b"}},
		{"label": {"useful"}, "note": {strings.Repeat("n", 2001)}},
	}},
	{"review", "/conversations/c1/review", []url.Values{
		{"action": {"confirm"}, "tier": {"high"}},
		{"action": {"correct"}, "correct": {"urgent"}, "tier": {"low"}},
		{"action": {"correct"}, "correct": {""}},
		{"tier": {"hot"}},
	}},
}

var (
	// problemsRe finds the list of problems of a refused form on the
	// ruleset and settings pages, errorPageRe the error page's message.
	problemsRe  = regexp.MustCompile(`(?s)id="problems">(.*?)</div>`)
	problemRe   = regexp.MustCompile(`(?s)<li>(.*?)</li>`)
	whereRe     = regexp.MustCompile(`(?s)^<strong[^>]*>.*?</strong>:`)
	errorPageRe = regexp.MustCompile(`(?s)<section class="narrow">\s*<h1>(.*?)</h1>\s*<p>(.*?)</p>`)
	tagRe       = regexp.MustCompile(`<[^>]*>`)
)

// userMessage returns what a refused form's page tells the user: its
// problems, or the error page's message; "" when it tells nothing, or a
// problem of its list says nothing.
func userMessage(page string) string {
	text := func(s string) string { return strings.TrimSpace(html.UnescapeString(tagRe.ReplaceAllString(s, ""))) }
	if m := problemsRe.FindStringSubmatch(page); m != nil {
		var msgs []string
		for _, li := range problemRe.FindAllStringSubmatch(m[1], -1) {
			msg := text(whereRe.ReplaceAllString(li[1], ""))
			if msg == "" {
				return ""
			}
			msgs = append(msgs, msg)
		}
		return strings.Join(msgs, "; ")
	}
	if m := errorPageRe.FindStringSubmatch(page); m != nil && text(m[1]) != "" {
		return text(m[2])
	}
	return ""
}

// localRedirect reports whether a redirect's Location stays on this site.
func localRedirect(loc string) bool {
	return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\") &&
		!strings.ContainsAny(loc, "\r\n")
}

// The bound on what one form post may allocate, page included. Measured:
// 10 KiB for a form that redirects, 160 to 270 KiB for one whose page is
// rendered (the settings page with its tables, the ruleset page with the
// editor's text), plus up to 230 bytes per body byte when the body is a
// policy document with a problem per rule (each compiled, then shown with
// its excerpt) and some 20 otherwise. The bound is four times the largest
// page and nine times the worst per byte; a page that renders the body
// once per problem, or a handler that parses it again per field, goes
// past it.
const (
	formAllocBase    = 1 << 20
	formAllocPerByte = 2 << 10
)

// FuzzPageForms: no body posted to a form makes its handler panic,
// answer a 5xx or allocate past the bound. The signed-in admin's form is
// accepted (a redirect, or the page showing the result) or refused with
// a 4xx page that tells them what is wrong in words of the form, not of
// the store or the database; a redirect stays on the site.
func FuzzPageForms(f *testing.F) {
	for i, form := range pageForms {
		for _, v := range form.seeds {
			f.Add(uint8(i), v.Encode())
		}
	}
	s, logs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		logs.Reset()
		form := pageForms[int(which)%len(pageForms)]
		var rec *httptest.ResponseRecorder
		// One run only: the user form hashes a valid password with
		// bcrypt (some 70 ms), and the bound is far above the noise of
		// other goroutines.
		n := allocatedOnce(func() {
			req := httptest.NewRequest(http.MethodPost, "http://hotlane.test"+form.path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", "http://hotlane.test")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "fuzz"})
			rec = serveFuzz(s, req)
		})
		what := fmt.Sprintf("%s form %q", form.name, body)
		if bound := uint64(formAllocBase + formAllocPerByte*len(body)); n > bound {
			t.Fatalf("%s: allocated %d bytes; the bound is %d", what, n, bound)
		}
		switch {
		case rec.Code == http.StatusSeeOther:
			if loc := rec.Header().Get("Location"); !localRedirect(loc) {
				t.Fatalf("%s: redirected to %q", what, loc)
			}
		case rec.Code == http.StatusOK || rec.Code == http.StatusCreated:
		case rec.Code >= 400 && rec.Code <= 499:
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("%s: status %d as %q, want a page: %s", what, rec.Code, ct, rec.Body.String())
			}
			msg := userMessage(rec.Body.String())
			if msg == "" {
				t.Fatalf("%s: status %d with a page that does not say what is wrong:\n%s", what, rec.Code, rec.Body.String())
			}
			// The store's own words mean nothing to the user.
			if strings.Contains(msg, "store:") || strings.Contains(msg, "SQLSTATE") {
				t.Fatalf("%s: status %d says %q", what, rec.Code, msg)
			}
		default:
			t.Fatalf("%s: status %d: %s\nlog:\n%s", what, rec.Code, rec.Body.String(), logs)
		}
	})
}
