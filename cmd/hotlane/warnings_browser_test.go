package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A lead sees the signals a chat platform sends with the wrong type: on
// the rules page, and on the conversation's page with the rule and the
// value that could not be used.
func TestBrowserWarnings(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	base := "http://" + srv.addr
	for _, body := range []string{
		`{"conversation_id":"typo-1","channel":"web","signals":{"deal_size":"25000","lifecycle_stage":"customer","wait_seconds":"2 min"}}`,
		`{"conversation_id":"typo-2","channel":"web","signals":{"deal_size":"60000","lifecycle_stage":"customer"}}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/score", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("score: %d", resp.StatusCode)
		}
	}
	email, password := demoPassword(t, srv.out, "lead")
	signIn(t, ctx, base+"/rules", email, password, chromedp.ID("warnings"))
	if v := textOf(t, ctx, "h1.verdict"); !strings.Contains(v, "could not be used in some decisions of the last 7 days") {
		t.Errorf("rules verdict = %q", v)
	}
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.ID("warnings"))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "rules-warnings.png")
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/conversations/typo-1"),
		chromedp.WaitVisible(chromedp.CSS(".warnings")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if w := textOf(t, ctx, ".warnings"); !strings.Contains(w, `deal_size is the string "25000"`) || !strings.Contains(w, "Signal wait_seconds") {
		t.Errorf("conversation warnings = %q", w)
	}
	screenshot(t, ctx, "conversation-warnings.png")
}
