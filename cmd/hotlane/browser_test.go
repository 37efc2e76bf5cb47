package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium. Without it the browser tests skip on
// a laptop and fail in CI (CI=true or HOTLANE_REQUIRE_BROWSER=1), where
// .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" || os.Getenv("HOTLANE_REQUIRE_BROWSER") == "1" {
		t.Fatal("Chromium is required for the browser tests (CI=true or HOTLANE_REQUIRE_BROWSER=1): apt-get install chromium")
	}
	t.Skip("browser tests skipped: Chromium not found (apt-get install chromium to run them)")
	return ""
}

// browser starts a headless Chromium and returns a tab's context.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(width, height), chromedp.Flag("force-device-scale-factor", "1"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// screenshot saves the page under HOTLANE_SCREENSHOTS (the README's
// pictures come from there: HOTLANE_SCREENSHOTS=docs/screenshots), else
// in the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	savePNG(t, name, png)
}

// savePNG writes a screenshot where screenshot says.
func savePNG(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("HOTLANE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // relative to the repository
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// demoPassword finds a demo user's password in serve's output.
func demoPassword(t *testing.T, out, role string) (email, password string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + role + `\s+(\S+@\S+)\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s user in the demo's output:\n%s", role, out)
	}
	return m[1], m[2]
}

// signIn opens url, which sends an anonymous visitor to the login page,
// signs in and waits for the page to show ready.
func signIn[S chromedp.Selectable](t *testing.T, ctx context.Context, url, email, password string, ready S) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(ready),
	)
	if err != nil {
		t.Fatalf("sign in as %s: %v", email, err)
	}
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// An agent's shift, in a real browser on the demo: sign in, watch a chat
// scored by the platform appear in the open queue without a reload, label
// an alert with the keyboard and see the count drop, confirm a tier.
func TestBrowserAgent(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	base := "http://" + srv.addr
	email, password := demoPassword(t, srv.out, "agent")

	// An anonymous visit goes to the login page, and back after it.
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/alerts?status=unlabelled"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if msg := textOf(t, ctx, ".error"); msg != "The email or the password is wrong." {
		t.Errorf("login error = %q", msg)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("feed")),
	)
	if err != nil {
		t.Fatal(err)
	}
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(url, "/alerts?status=unlabelled") {
		t.Errorf("after login at %s, want back at the alerts", url)
	}

	// Label the first alert with the keyboard: j, then u.
	before, err := strconv.Atoi(textOf(t, ctx, "#unlabelled-count"))
	if err != nil || before == 0 {
		t.Fatalf("unlabelled count %q: the demo should leave alerts to label", textOf(t, ctx, "#unlabelled-count"))
	}
	screenshot(t, ctx, "alerts.png")
	err = chromedp.Do(ctx,
		chromedp.KeyEvent("j"),
		chromedp.KeyEvent("u"),
		chromedp.WaitVisible(chromedp.CSS("#feed li.labelled")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if after := textOf(t, ctx, "#unlabelled-count"); after != strconv.Itoa(before-1) {
		t.Errorf("unlabelled count after a label = %s, want %d", after, before-1)
	}
	pressed, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#feed li.labelled button.useful"), "aria-pressed"))
	if err != nil || pressed.Value != "true" {
		t.Errorf("the useful button is not marked pressed: %q %v", pressed.Value, err)
	}

	// The open queue: a chat scored now appears without a reload.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("queue")),
		chromedp.WaitVisible(chromedp.CSS("#live:not(.down)")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.hotlaneMarker = "same page"`)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "queue.png")
	body := `{"conversation_id":"browser-live-1","channel":"whatsapp","message":"we want to cancel, this is urgent","signals":{"deal_size":80000,"lifecycle_stage":"customer"}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/score", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("score: %v %v", err, resp)
	}
	resp.Body.Close()
	scored := time.Now()
	appear, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = chromedp.Do(appear, chromedp.WaitVisible(chromedp.ID("c-browser-live-1")))
	cancel()
	if err != nil {
		t.Fatalf("the scored chat did not appear in the open queue within 2 s: %v", err)
	}
	t.Logf("the scored chat appeared %v after the score answered", time.Since(scored).Round(time.Millisecond))
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.hotlaneMarker || ""`)); err != nil || marker != "same page" {
		t.Errorf("the page was reloaded (marker %q)", marker)
	}

	// A conversation page: confirm its tier.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/conversations/browser-live-1"),
		chromedp.WaitVisible(chromedp.CSS(".review button.primary")),
		chromedp.Click(chromedp.CSS(".review button.primary")),
		chromedp.WaitVisible(chromedp.CSS(".events")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if ev := textOf(t, ctx, ".events"); !strings.Contains(ev, email+" says the tier should be") {
		t.Errorf("events after confirming = %q", ev)
	}
	screenshot(t, ctx, "conversation.png")
}

// The queue on a phone: one column, nothing cut off.
func TestBrowserQueueOnPhone(t *testing.T) {
	ctx := browser(t, 390, 844)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	email, password := demoPassword(t, srv.out, "agent")
	signIn(t, ctx, "http://"+srv.addr+"/login", email, password, chromedp.ID("queue"))
	scrollWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	clientWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if scrollWidth > clientWidth {
		t.Errorf("the queue is %d px wide on a %d px screen: it scrolls sideways", scrollWidth, clientWidth)
	}
	screenshot(t, ctx, "queue-phone.png")
}

// A lead on the demo: the latest report and the model registry.
func TestBrowserLead(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	email, password := demoPassword(t, srv.out, "lead")
	signIn(t, ctx, "http://"+srv.addr+"/reports/latest", email, password, chromedp.CSS("h1.verdict"))
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "PR-AUC") {
		t.Errorf("report verdict = %q", v)
	}
	// Its charts are drawn, with data points: both models' curves, the
	// calibration plot, the weeks' alerts and the four KPIs.
	for sel, least := range map[string]int{
		"#pr-chart svg circle.pt":                       20,
		"#pr-chart svg polyline":                        2,
		"#calibration-chart svg circle.pt":              4,
		"#alerts-chart svg rect.pt:not([height='0.0'])": 3,
		"figure.chart svg":                              7,
	} {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
		if err != nil || n < least {
			t.Errorf("%s: %d drawn, want at least %d (%v)", sel, n, least, err)
		}
	}
	screenshot(t, ctx, "report.png")
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+srv.addr+"/models"),
		chromedp.WaitVisible(chromedp.CSS("h1.verdict")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "Model 1 scores every conversation") {
		t.Errorf("models verdict = %q", v)
	}
	screenshot(t, ctx, "models.png")
	err = chromedp.Do(ctx,
		chromedp.Navigate("http://"+srv.addr+"/kpis"),
		chromedp.WaitVisible(chromedp.CSS("figure.chart svg")),
	)
	if err != nil {
		t.Fatal(err)
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg").length`))
	if err != nil || charts != 5 {
		t.Errorf("KPI charts drawn = %d, %v", charts, err)
	}
	// The demo promoted its first model at start: each chart has its
	// baseline, and every KPI has data.
	baselines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg line.baseline").length`))
	if err != nil || baselines != 5 {
		t.Errorf("baselines drawn = %d, %v", baselines, err)
	}
	if row := textOf(t, ctx, "tr.baseline-row"); strings.Contains(row, "–") {
		t.Errorf("the baseline lacks a KPI: %q", row)
	}
	screenshot(t, ctx, "kpis.png")
}

// A lead changes the rules on the demo as Stripe Radar users do: draft,
// see a typo refused at its rule and column, backtest, publish, see new
// chats scored by the new version; then rolls a model back and promotes
// it again; the audit log shows each step with the lead's name.
func TestBrowserRules(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	base := "http://" + srv.addr
	email, password := demoPassword(t, srv.out, "lead")
	signIn(t, ctx, base+"/rules", email, password, chromedp.CSS("h1.verdict"))
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "Version 1 is live") {
		t.Errorf("rules verdict = %q", v)
	}
	// A draft with a typo in a new rule.
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/rules/drafts"] button`)),
		chromedp.WaitVisible(chromedp.ID("source")),
	)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("source"); s.value = `+js+`; return true })()`)); err != nil {
			t.Fatal(err)
		}
	}
	edit(`s.value.replace("rules:\n", "rules:\n  - name: hot-pricing\n    expression: 'pricing_page_views >= and returning'\n    points: 3\n")`)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form.editor button.primary`)),
		chromedp.WaitVisible(chromedp.ID("problems")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if p := textOf(t, ctx, "#problems"); !strings.Contains(p, "Rule hot-pricing, rules[0].expression, column") {
		t.Errorf("problems = %q", p)
	}
	screenshot(t, ctx, "rules-error.png")
	edit(`s.value.replace("pricing_page_views >= and returning", "pricing_page_views >= 2 and returning == true")`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form.editor button.primary`))); err != nil {
		t.Fatal(err)
	}
	waitFlash(t, ctx, "Draft saved. It compiles.")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form.filters button`)),
		chromedp.WaitVisible(chromedp.ID("backtest-rules")),
	)
	if err != nil {
		t.Fatal(err)
	}
	row := textOf(t, ctx, "#backtest-rules tr.change-new")
	if !strings.HasPrefix(row, "hot-pricing") || !regexp.MustCompile(`new\s+[1-9]`).MatchString(row) {
		t.Errorf("the new rule's backtest row = %q, want hits", row)
	}
	if v := textOf(t, ctx, "#backtest p.verdict"); !strings.Contains(v, "would have alerted on") {
		t.Errorf("backtest verdict = %q", v)
	}
	screenshot(t, ctx, "backtest.png")

	// Publish, then a chat scored now is scored by version 2.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action$="/publish"] button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFlash(t, ctx, "Version 2 is published and live.")
	body := `{"conversation_id":"browser-rules-1","channel":"web","signals":{"pricing_page_views":4,"returning":true}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/score", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("score: %v %v", err, resp)
	}
	resp.Body.Close()
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("c-browser-rules-1")),
		chromedp.Navigate(base+"/conversations/browser-rules-1"),
		chromedp.WaitVisible(chromedp.CSS("td.scored-by")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if by := textOf(t, ctx, "td.scored-by"); !strings.HasPrefix(by, "ruleset 2, model ") {
		t.Errorf("scored by %q, want ruleset 2", by)
	}
	if why := textOf(t, ctx, "p.why"); !strings.Contains(why, "hot-pricing") {
		t.Errorf("reasons %q do not name the new rule", why)
	}

	// Roll the model back, then promote it again.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/models"),
		chromedp.Click(chromedp.CSS(`form[action="/models/rollback"] button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFlash(t, ctx, "Rolled back.")
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "No model is active") {
		t.Errorf("after rollback: %q", v)
	}
	confirm, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const c = document.querySelector('form[action="/models/1/promote"] input[name=confirm]'); if (c) c.checked = true; return true })()`))
	if err != nil || !confirm {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/models/1/promote"] button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFlash(t, ctx, "The model is live.")
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "Model 1 scores every conversation") {
		t.Errorf("after promotion: %q", v)
	}

	// The audit log: each step, newest first, by the lead.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/audit"),
		chromedp.WaitVisible(chromedp.CSS("table.list")),
	)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.list tbody tr")].slice(0, 5).map(r => r.cells[1].innerText + " " + r.cells[2].innerText + " " + r.cells[3].innerText)`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"user:" + email + " model.promote model 1",
		"user:" + email + " model.rollback model",
		"user:" + email + " ruleset.publish ruleset 2",
		"user:" + email + " ruleset.draft_update ruleset 2",
		"user:" + email + " ruleset.draft_create ruleset 2",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit rows =\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// waitFlash waits for the page's flash message to read want: a click that
// loads a new page is done when the new page's message is there, not when
// the old page's is still visible. Evaluations that fail while the page
// changes are retried.
func waitFlash(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(".flash") || {}).innerText || ""`))
		if err == nil {
			got = strings.TrimSpace(s)
			if got == want {
				return
			}
		}
	}
	t.Fatalf("flash = %q, want %q", got, want)
}

// An admin's settings on the demo: scoring and destinations.
func TestBrowserSettings(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	email, password := demoPassword(t, srv.out, "admin")
	signIn(t, ctx, "http://"+srv.addr+"/settings", email, password, chromedp.CSS("form.settings"))
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "Thresholds, SLAs and alert budgets of ruleset 1") {
		t.Errorf("settings verdict = %q", v)
	}
	screenshot(t, ctx, "settings.png")
	// Add a Slack destination for urgent chats only.
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+srv.addr+"/settings/destinations"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/settings/destinations"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[action="/settings/destinations"] input[name=team]`), "sales"),
		chromedp.SetValue(chromedp.CSS(`form[action="/settings/destinations"] select[name=kind]`), "slack"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/settings/destinations"] input[name=url]`), "https://hooks.slack.com/services/T000/B000/XXXX"),
		chromedp.Click(chromedp.CSS(`form[action="/settings/destinations"] input[value=urgent]`)),
		chromedp.Click(chromedp.CSS(`form[action="/settings/destinations"] button.primary`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFlash(t, ctx, "Destination added for team sales.")
	if row := textOf(t, ctx, "table.list tbody tr"); !strings.Contains(row, "slack") || !strings.Contains(row, "urgent") || strings.Contains(row, "XXXX") {
		t.Errorf("destination row = %q (the Slack token must not show)", row)
	}
	screenshot(t, ctx, "settings-destinations.png")
}

// An agent opens a Chatwoot conversation in Hotlane: the page links back
// to Chatwoot and shows what was written back to it.
func TestBrowserChatwoot(t *testing.T) {
	ctx := browser(t, 1280, 1100)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer api.Close()
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--demo-history=false", "--log-level", "error",
		"--delivery-interval", "100ms", "--chatwoot-account-id", "1", "--chatwoot-url", api.URL, "--chatwoot-api-token", "t",
		"--chatwoot-teams", "enterprise-sales=2", "--chatwoot-agents", "ana@example.com=7")
	defer srv.stop(t)
	base := "http://" + srv.addr
	now := time.Now().Unix()
	webhook := fmt.Sprintf(`{"event":"conversation_created","id":123,"inbox_id":3,"channel":"Channel::WebWidget","status":"open",
	  "labels":["vip"],"custom_attributes":{"deal_size":60000,"lifecycle_stage":"opportunity","owner":"ana@example.com"},
	  "additional_attributes":{"browser":{"browser_name":"Chrome","platform_name":"macOS"},"referer":"https://www.example.com/pricing"},
	  "meta":{"sender":{"id":42,"name":"Jane Visitor","custom_attributes":{"plan":"pro"}},"assignee":null,"team":null},
	  "messages":[{"id":9876,"content":"Can we get a quote for 50 seats?","message_type":0,"created_at":%d,"private":false}],
	  "waiting_since":%d,"created_at":%d,"account":{"id":1,"name":"Acme Support"}}`, now, now-240, now)
	resp, err := http.Post(base+"/v1/integrations/chatwoot", "application/json", strings.NewReader(webhook))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	email, password := demoPassword(t, srv.out, "agent")
	signIn(t, ctx, base+"/conversations/chatwoot-1-123", email, password, chromedp.CSS(`a[href$="/app/accounts/1/conversations/123"]`))
	// The writer sends within a pass or two; reload until all went out.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(textOf(t, ctx, "section"), "attributes hotlane_tier urgent") || strings.Contains(textOf(t, ctx, "section"), "queued") {
		if time.Now().After(deadline) {
			t.Fatalf("the write-back never showed as delivered:\n%s", textOf(t, ctx, "section"))
		}
		time.Sleep(200 * time.Millisecond)
		if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatal(err)
		}
	}
	text := textOf(t, ctx, "section")
	for _, want := range []string{"Open conversation 123 in Chatwoot", "priority urgent", "assign team 2", "assign agent 7",
		"private note: Hotlane: URGENT priority", "label_vip", "wait_seconds"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	screenshot(t, ctx, "chatwoot.png")
}
