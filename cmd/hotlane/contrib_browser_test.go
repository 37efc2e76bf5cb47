package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A lead reads what the candidate learned from each signal on the demo's
// report: small charts with labelled axes, a sentence under each, and the
// numbers one click away; the section still reads on a phone.
func TestBrowserReportSignals(t *testing.T) {
	ctx := browser(t, 1280, 900)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--log-level", "error")
	defer srv.stop(t)
	email, password := demoPassword(t, srv.out, "lead")
	signIn(t, ctx, "http://"+srv.addr+"/reports/latest", email, password, chromedp.CSS("h1.verdict"))

	if s := textOf(t, ctx, "#signals + p"); !strings.HasPrefix(s, "The candidate's scores move most with ") {
		t.Errorf("signals sentence = %q", s)
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure[id^=contrib-]").length`))
	if err != nil || charts < 3 || charts > 6 {
		t.Fatalf("contribution charts = %d (%v), want 3 to 6", charts, err)
	}
	for i := 1; i <= charts; i++ {
		fig := "#contrib-" + strconv.Itoa(i)
		// A line with its points, or bars.
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("`+fig+` svg .pt").length`))
		if err != nil || n < 2 {
			t.Errorf("%s: %d points or bars drawn (%v)", fig, n, err)
		}
		if cap := textOf(t, ctx, fig+" figcaption"); !strings.Contains(cap, "on average across") {
			t.Errorf("%s caption = %q", fig, cap)
		}
	}
	// The numbers are one click away.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#contrib-1 details summary")),
		chromedp.WaitVisible(chromedp.CSS("#contrib-1 details table")),
	)
	if err != nil {
		t.Fatalf("open the numbers: %v", err)
	}
	if rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#contrib-1 details tbody tr").length`)); err != nil || rows < 2 {
		t.Errorf("numbers table rows = %d (%v)", rows, err)
	}
	sectionScreenshot(t, ctx, "report-signals.png")

	err = chromedp.Do(ctx, chromedp.EmulateViewport(360, 800), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#contrib-1 svg")))
	if err != nil {
		t.Fatal(err)
	}
	if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("figure[id^=contrib-]")].some(f => f.getBoundingClientRect().right > 361)`)); err != nil || wide {
		t.Errorf("a chart overflows a 360 px screen (%v)", err)
	}
	sectionScreenshot(t, ctx, "report-signals-phone.png")
}

// sectionScreenshot saves the report's signals section, from its heading
// to the last chart, where screenshot saves them.
func sectionScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// Wrap the section so one element holds it.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		if (document.getElementById("signals-shot")) return true;
		const h = document.getElementById("signals"), div = document.createElement("div");
		const parts = [h];
		for (let e = h.nextElementSibling; e && e.tagName !== "H2"; e = e.nextElementSibling) parts.push(e);
		div.id = "signals-shot";
		h.before(div);
		div.append(...parts);
		return true;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID("signals-shot")))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	savePNG(t, name, png)
}
