package server

import (
	"html"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hotlane/hotlane/templates"
)

var (
	apiRefArticle  = regexp.MustCompile(`(?s)<article class="op".*?</article>`)
	apiRefHeading  = regexp.MustCompile(`(?s)<h3[^>]*>(.*?)</h3>`)
	apiRefParams   = regexp.MustCompile(`(?s)<h4>Parameters</h4>.*?</table>`)
	apiRefParamRow = regexp.MustCompile(`(?s)<td class="name"><code>([^<]+)</code>.*?<td class="in">([a-z]+)</td>`)
	apiRefStatus   = regexp.MustCompile(`<span class="st [^"]*">([^<]+)</span>`)
	htmlTag        = regexp.MustCompile(`<[^>]*>`)
	// externalRef is an attribute that would make the browser fetch or
	// follow another host (or a protocol-relative one).
	externalRef = regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster|data|formaction)\s*=\s*["']?\s*(https?:)?//`)
	localHref   = regexp.MustCompile(`href="#([^"]+)"`)
	anchorID    = regexp.MustCompile(`\sid="([^"]+)"`)
)

// pageText is HTML as the reader sees it: tags dropped, entities decoded,
// spaces collapsed.
func pageText(h string) string {
	return strings.Join(strings.Fields(html.UnescapeString(htmlTag.ReplaceAllString(h, " "))), " ")
}

// The API reference shows every operation of the served document, read
// here by another parser (kin-openapi), each under its method and path with
// its parameters and response statuses; it links nowhere outside the
// server and every anchor it links to is on the page.
func TestAPIRefPage(t *testing.T) {
	h := newHarness(t, "sqlite", Config{})
	rec := h.page(http.MethodGet, "/api", nil, nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api = %d: %s", rec.Code, rec.Body.String())
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want the pages' policy", csp)
	}
	page := rec.Body.String()

	// The operations on the page, by the text of their headings; their
	// parameters as "name in", their response statuses.
	ops := map[string]string{}
	params := map[string][]string{}
	statuses := map[string][]string{}
	for _, a := range apiRefArticle.FindAllString(page, -1) {
		m := apiRefHeading.FindStringSubmatch(a)
		if m == nil {
			t.Fatalf("an operation without a heading: %.200s", a)
		}
		// The path's {parameters} are marked up inside it: drop tags
		// without a space.
		heading := strings.Join(strings.Fields(html.UnescapeString(htmlTag.ReplaceAllString(m[1], ""))), " ")
		if _, dup := ops[heading]; dup {
			t.Errorf("operation %q is on the page twice", heading)
		}
		ops[heading] = pageText(a)
		if t := apiRefParams.FindString(a); t != "" {
			for _, row := range apiRefParamRow.FindAllStringSubmatch(t, -1) {
				params[heading] = append(params[heading], row[1]+" "+row[2])
			}
		}
		for _, st := range apiRefStatus.FindAllStringSubmatch(a, -1) {
			statuses[heading] = append(statuses[heading], st[1])
		}
	}

	doc, err := openapi3.NewLoader().LoadFromData(OpenAPISpec())
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want++
			heading := method + " " + path
			text, ok := ops[heading]
			if !ok {
				t.Errorf("%s is not on the page", heading)
				continue
			}
			if op.Summary != "" && !strings.Contains(text, op.Summary) {
				t.Errorf("%s: summary %q missing", heading, op.Summary)
			}
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if !slices.Contains(params[heading], p.Value.Name+" "+p.Value.In) {
					t.Errorf("%s: parameter %s in %s missing", heading, p.Value.Name, p.Value.In)
				}
			}
			for status := range op.Responses.Map() {
				if !slices.Contains(statuses[heading], status) {
					t.Errorf("%s: response %s missing", heading, status)
				}
			}
		}
	}
	if len(ops) != want || want < 40 {
		t.Errorf("the page shows %d operations, the document has %d", len(ops), want)
	}

	// What each operation says of its key agrees with the authorization
	// matrix, the hand-written record of what the server enforces.
	who := map[string]authzAccess{}
	for _, r := range authzTable() {
		who[r.method+" "+r.path] = r.who
	}
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	auth := regexp.MustCompile(`(?s)<p class="op-auth">(.*?)</p>`)
	for _, a := range apiRefArticle.FindAllString(page, -1) {
		heading := strings.Join(strings.Fields(html.UnescapeString(htmlTag.ReplaceAllString(apiRefHeading.FindStringSubmatch(a)[1], ""))), " ")
		m := auth.FindStringSubmatch(a)
		if m == nil {
			t.Errorf("%s: no authentication line", heading)
			continue
		}
		said := pageText(m[1])
		access, ok := who[param.ReplaceAllString(heading, ":$1")]
		if !ok {
			t.Errorf("%s is not in the authorization matrix", heading)
			continue
		}
		switch {
		case access.kind == authzScope && said != "API key with scope "+access.scope:
			t.Errorf("%s: the page says %q, the server wants a key with scope %s", heading, said, access.scope)
		case access.kind != authzScope && said != "No API key":
			t.Errorf("%s: the page says %q, the server takes no key (%s)", heading, said, access)
		}
	}

	if m := externalRef.FindAllString(page, -1); m != nil {
		t.Errorf("the page refers to other hosts: %q", m)
	}
	ids := map[string]bool{}
	for _, m := range anchorID.FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	for _, m := range localHref.FindAllStringSubmatch(page, -1) {
		if !ids[m[1]] {
			t.Errorf("link to #%s, which is not on the page", m[1])
		}
	}
	for _, s := range []string{`href="/openapi.yaml"`, `id="schema-ScoreRequest"`, `id="authentication"`, `aria-current="page">API reference`} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %s", s)
		}
	}
	// The score call's body is described field by field, in the order
	// the document gives, with its example.
	score := ops["POST /v1/score"]
	if i, j := strings.Index(score, "conversation_id required"), strings.Index(score, "occurred_at"); i < 0 || j < i {
		t.Errorf("POST /v1/score: the body's fields are not listed in order (conversation_id at %d, occurred_at at %d)", i, j)
	}
	if !strings.Contains(score, `"conversation_id": "chatwoot-4711"`) {
		t.Errorf("POST /v1/score: the request example is missing")
	}
}

// The page and its stylesheet load nothing from elsewhere.
func TestAPIRefStylesLocal(t *testing.T) {
	for _, name := range []string{"hotlane.css", "hotlane.js"} {
		b, err := fs.ReadFile(templates.Static(), name)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindAllString(string(b), -1); m != nil {
			t.Errorf("%s names other hosts: %q", name, m)
		}
	}
}

// A $ref the document cannot resolve is an error when the page is built,
// not a broken link on it.
func TestAPIRefUnresolvedRef(t *testing.T) {
	for name, spec := range map[string]string{
		"schema": `
openapi: 3.0.3
info: {title: T, version: "1"}
paths:
  /x:
    get:
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Nope'}}}}
`,
		"response": `
openapi: 3.0.3
info: {title: T, version: "1"}
paths:
  /x:
    get:
      responses:
        "404": {$ref: '#/components/responses/Nope'}
`,
		"parameter": `
openapi: 3.0.3
info: {title: T, version: "1"}
paths:
  /x/{v}:
    get:
      parameters: [{$ref: '#/components/parameters/Nope'}]
      responses:
        "200": {description: ok}
`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := newAPIRef([]byte(spec)); err == nil || !strings.Contains(err.Error(), "Nope") {
				t.Errorf("newAPIRef = %v, want an unresolved-reference error", err)
			}
		})
	}
	if _, err := newAPIRef(OpenAPISpec()); err != nil {
		t.Errorf("the served document: %v", err)
	}
}
