package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hotlane/hotlane/server"
)

// A developer reads the API reference without signing in: every operation
// of the document is there, the contents lead to one, nothing is loaded
// from another host, and on a phone nothing is cut off.
func TestBrowserAPIRef(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--log-level", "error")
	defer srv.stop(t)
	base := "http://" + srv.addr

	doc, err := openapi3.NewLoader().LoadFromData(server.OpenAPISpec())
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, item := range doc.Paths.Map() {
		want += len(item.Operations())
	}

	// From the login page's footer, where someone without an account
	// looks.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.Click(chromedp.CSS(`footer a[href="/api"]`)),
		chromedp.WaitVisible(chromedp.ID("op-score")),
	)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("article.op").length`))
	if err != nil || ops != want {
		t.Errorf("operations on the page = %d, want the document's %d (%v)", ops, want, err)
	}
	foreign, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType("resource").map(e => e.name).filter(n => !n.startsWith(location.origin + "/"))`))
	if err != nil || len(foreign) > 0 {
		t.Errorf("resources from elsewhere: %q (%v)", foreign, err)
	}
	styled, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".api-toc")).position`))
	if err != nil || styled != "sticky" {
		t.Errorf("the contents are %q, want sticky beside the operations: is the stylesheet loaded? (%v)", styled, err)
	}
	viewportShot(t, ctx, "api.png")

	// The contents lead to an operation, its body described field by
	// field.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.api-toc a[href="#op-score"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#op-score table.api-fields`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	top, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("op-score").getBoundingClientRect().top`))
	if err != nil || top < 0 || top > 100 {
		t.Errorf("after following the contents, POST /v1/score is %v px from the top (%v)", top, err)
	}
	if fields := textOf(t, ctx, "#op-score table.api-fields"); !strings.Contains(fields, "conversation_id") || !strings.Contains(fields, "required") {
		t.Errorf("the score body's fields = %q", fields)
	}
	viewportShot(t, ctx, "api-operation.png")

	// Headless Chromium's window is at least 500 px wide: a phone's
	// width is emulated.
	phone := browser(t, 390, 844)
	if err := chromedp.Do(phone, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/api"), chromedp.WaitVisible(chromedp.ID("op-score"))); err != nil {
		t.Fatal(err)
	}
	wide, err := chromedp.Run(phone, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest("pre")).slice(0, 5).map(e => e.tagName + "." + e.className + ": " + e.textContent.slice(0, 40))`))
	if err != nil || len(wide) > 0 {
		t.Errorf("on a phone these stick out past the screen: %q (%v)", wide, err)
	}
	viewportShot(t, phone, "api-phone.png")
	if _, err := chromedp.Run(phone, chromedp.Evaluate[bool](`(() => { document.getElementById("op-score").scrollIntoView(); return true })()`)); err != nil {
		t.Fatal(err)
	}
	viewportShot(t, phone, "api-phone-operation.png")
}

// viewportShot is screenshot for what the window shows, not the whole
// page: the reference is many screens long.
func viewportShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	savePNG(t, name, png)
}
