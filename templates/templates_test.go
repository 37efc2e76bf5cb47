package templates

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLoadParsesEveryPage(t *testing.T) {
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Pages {
		if _, ok := e.pages[p]; !ok {
			t.Errorf("page %s not parsed", p)
		}
	}
	var buf bytes.Buffer
	if err := e.Render(&buf, "nope", nil); err == nil {
		t.Error("rendering an unknown page succeeded")
	}
	// A page that fails half way writes nothing.
	buf.Reset()
	if err := e.Render(&buf, "queue", struct{ Title string }{"x"}); err == nil || buf.Len() != 0 {
		t.Errorf("a failed render wrote %d bytes (err %v)", buf.Len(), err)
	}
}

func TestStaticHasNoInlineHandlers(t *testing.T) {
	for _, name := range append(Pages, "layout") {
		b, err := files.ReadFile(name + ".html")
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{" onclick=", " onsubmit=", " onload=", "<script>", "style=\""} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s.html holds %q: the Content-Security-Policy forbids inline script and style", name, bad)
			}
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second: "45 s", 4 * time.Minute: "4 min", 125 * time.Minute: "2 h 5 min", 3 * time.Hour: "3 h",
		50 * time.Hour: "2 d", -90 * time.Second: "1 min",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	if Signed(2.5) != "+2.5" || Signed(-0.44) != "-0.4" || Signed(0.01) != "0.01" {
		t.Errorf("Signed: %q %q %q", Signed(2.5), Signed(-0.44), Signed(0.01))
	}
}
