// Package templates holds the web UI's HTML templates and static files,
// embedded in the binary, and the engine that parses them once at start
// and renders a page into a buffer before a byte is written. Each page is
// its own template set: the shared layout plus the page's file, so pages
// cannot redefine each other's blocks. It imports nothing of Hotlane's:
// the server hands each page a typed struct.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"
)

//go:embed *.html static
var files embed.FS

// Pages lists the page templates; each is rendered inside layout.html.
var Pages = []string{"login", "queue", "alerts", "conversation", "error", "reports", "report", "models", "audit", "kpis", "rules", "ruleset", "settings", "apiref"}

// Engine renders the pages.
type Engine struct {
	pages map[string]*template.Template
}

// Load parses every page with the layout. A template that does not parse
// is an error here, at start, never at a request.
func Load() (*Engine, error) {
	e := &Engine{pages: map[string]*template.Template{}}
	for _, name := range Pages {
		t, err := template.New("layout.html").Funcs(Funcs).ParseFS(files, "layout.html", name+".html")
		if err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", name, err)
		}
		e.pages[name] = t
	}
	return e, nil
}

// Render executes page with data into a buffer and writes it to w only
// when the whole page rendered.
func (e *Engine) Render(w io.Writer, page string, data any) error {
	t, ok := e.pages[page]
	if !ok {
		return fmt.Errorf("templates: no page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("templates: render %s: %w", page, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Static is the CSS and script the pages load from /static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// Funcs are the helpers every template may call: formatting only.
var Funcs = template.FuncMap{
	"ago":      Ago,
	"duration": Duration,
	"score":    func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"signed":   Signed,
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"stamp":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"lower":    strings.ToLower,
}

// Duration is a short human duration: "45 s", "4 min", "2 h 5 min",
// "3 d"; negative durations are shown without their sign.
func Duration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 24*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	default:
		return fmt.Sprintf("%d d", int(d.Hours()/24))
	}
}

// Ago is how long before now t was, as Duration says it.
func Ago(now, t time.Time) string { return Duration(now.Sub(t)) + " ago" }

// Signed formats a contribution with its sign and one decimal: "+2.5",
// "-0.4".
func Signed(f float64) string {
	if math.Abs(f) < 0.05 {
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	if f > 0 {
		s = "+" + s
	}
	return s
}
