package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"
)

// The API reference page (/api): the OpenAPI document served at
// /openapi.yaml, rendered on the server as a readable page with our own
// CSS, so that it needs no script from elsewhere and no network. The
// document is read with yaml.v3's nodes rather than into maps so that
// paths, methods and properties keep the order they are written in, the
// order that explains them best; its $refs are resolved here, once, and an
// unresolved one is an error (the tests parse the document).

// apiRefPath is where the page is served.
const apiRefPath = "/api"

// apiReference parses the embedded document once per process: it is a
// constant of the binary, so every Server shares the result.
var apiReference = sync.OnceValues(func() (*apiRef, error) { return newAPIRef(openAPISpec) })

func (s *Server) handleAPIRefPage(c *gin.Context) {
	ref, err := apiReference()
	if err != nil {
		s.pageError(c, fmt.Errorf("api reference: %w", err))
		return
	}
	s.render(c, http.StatusOK, "apiref", apiRefPage{pageBase: s.base(c, "API reference", "api"), API: ref})
}

// apiRefPage is the page's data.
type apiRefPage struct {
	pageBase
	API *apiRef
}

// apiRef is the document as the page shows it.
type apiRef struct {
	Title, Version, OpenAPI string
	Intro                   []apiPara
	Servers                 []string
	Schemes                 []apiScheme
	// Public lists the operations that need no API key.
	Public    []*apiOp
	Groups    []*apiGroup
	Responses []apiSharedResponse
	Schemas   []apiSchema
	NumOps    int
}

// apiInline is a run of text, in code type when Code.
type apiInline struct {
	Text string
	Code bool
}

// apiPara is a paragraph.
type apiPara []apiInline

// apiTypePart is a piece of a type's name, a link when Href is set:
// "array of " then "Ruleset" linking to its schema.
type apiTypePart struct{ Text, Href string }

type apiScheme struct {
	Name, Kind, Usage string
	Description       []apiPara
}

type apiGroup struct {
	ID, Name string
	Ops      []*apiOp
}

type apiOp struct {
	ID, Method, Path, Summary string
	PathParts                 []apiPathPart
	Description               []apiPara
	// Public operations need no API key; Scope is the key's scope when
	// the document states it.
	Public    bool
	Scheme    string
	Scope     string
	Params    []apiField
	Body      *apiBody
	Responses []apiResponse
}

// apiPathPart is a piece of a path: literal, or a {parameter}.
type apiPathPart struct {
	Text  string
	Param bool
}

// Segments are the part cut before each slash, where a narrow column may
// break the path.
func (p apiPathPart) Segments() []string {
	var segs []string
	for s := p.Text; s != ""; {
		i := strings.IndexByte(s[1:], '/') + 1
		if i == 0 {
			i = len(s)
		}
		segs = append(segs, s[:i])
		s = s[i:]
	}
	return segs
}

// apiField is a parameter, a header or a property of a schema. Prefix is
// the path of the object holding a nested property ("rules[]."), In where
// a parameter goes.
type apiField struct {
	Prefix, Name, In string
	Required         bool
	Type             []apiTypePart
	Description      apiPara
	Notes            apiPara
}

type apiBody struct {
	Media       []string
	Required    bool
	Description apiPara
	Type        []apiTypePart
	Fields      []apiField
	Example     string
}

type apiResponse struct {
	Status, Class string
	// Shared names the common response it refers to, SharedID its anchor.
	Shared, SharedID string
	Description      apiPara
	Media            []string
	Type             []apiTypePart
	Headers          []apiField
	Fields           []apiField
	Example          string
}

type apiSharedResponse struct {
	ID, Name    string
	Description apiPara
	Media       []string
	Type        []apiTypePart
	Headers     []apiField
}

type apiSchema struct {
	ID, Name    string
	Description []apiPara
	Type        []apiTypePart
	Notes       apiPara
	Fields      []apiField
}

// The document, as far as the page reads it.

// oaMap is a YAML mapping with its keys in document order.
type oaMap[T any] []oaEntry[T]

type oaEntry[T any] struct {
	Key   string
	Value T
}

func (m *oaMap[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var v T
		if err := n.Content[i+1].Decode(&v); err != nil {
			return err
		}
		*m = append(*m, oaEntry[T]{n.Content[i].Value, v})
	}
	return nil
}

func (m oaMap[T]) get(key string) (T, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	var zero T
	return zero, false
}

// oaValue is a value as written (an example, a default), kept as its
// node so that a map keeps its order.
type oaValue struct{ *yaml.Node }

func (v *oaValue) UnmarshalYAML(n *yaml.Node) error {
	v.Node = n
	return nil
}

type oaDoc struct {
	OpenAPI string `yaml:"openapi"`
	Info    struct {
		Title, Version, Description string
	}
	Servers []struct {
		URL         string `yaml:"url"`
		Description string
	}
	Security []map[string][]string
	Tags     []struct{ Name string }
	Paths    oaMap[oaPathItem]
	// Components.
	Components struct {
		SecuritySchemes oaMap[*oaSecurityScheme] `yaml:"securitySchemes"`
		Parameters      oaMap[*oaParameter]
		RequestBodies   oaMap[*oaRequestBody] `yaml:"requestBodies"`
		Responses       oaMap[*oaResponse]
		Schemas         oaMap[*oaSchema]
	}
}

// oaPathItem is a path's operations in document order, and the
// parameters they share.
type oaPathItem struct {
	Ops    oaMap[*oaOperation]
	Params []*oaParameter
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func (p *oaPathItem) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a path wants a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		switch {
		case key == "parameters":
			if err := val.Decode(&p.Params); err != nil {
				return err
			}
		case slices.Contains(oaMethods, key):
			var op oaOperation
			if err := val.Decode(&op); err != nil {
				return err
			}
			p.Ops = append(p.Ops, oaEntry[*oaOperation]{key, &op})
		}
	}
	return nil
}

type oaOperation struct {
	Tags        []string
	Summary     string
	Description string
	OperationID string `yaml:"operationId"`
	Parameters  []*oaParameter
	RequestBody *oaRequestBody `yaml:"requestBody"`
	Responses   oaMap[*oaResponse]
	// Security is nil when the operation does not override the document's.
	Security *[]map[string][]string
}

type oaSecurityScheme struct {
	Type, Scheme, Name, In, Description string
	BearerFormat                        string `yaml:"bearerFormat"`
}

type oaParameter struct {
	Ref         string `yaml:"$ref"`
	Name, In    string
	Description string
	Required    bool
	Schema      *oaSchema
	Example     *oaValue
}

type oaRequestBody struct {
	Ref         string `yaml:"$ref"`
	Description string
	Required    bool
	Content     oaMap[*oaMediaType]
}

type oaMediaType struct {
	Schema  *oaSchema
	Example *oaValue
}

type oaResponse struct {
	Ref         string `yaml:"$ref"`
	Description string
	Headers     oaMap[*oaParameter]
	Content     oaMap[*oaMediaType]
}

type oaSchema struct {
	Ref           string `yaml:"$ref"`
	Type          string
	Format        string
	Description   string
	Nullable      bool
	Enum          []*oaValue
	Default       *oaValue
	Example       *oaValue
	Pattern       string
	Minimum       *float64
	Maximum       *float64
	MinLength     *int `yaml:"minLength"`
	MaxLength     *int `yaml:"maxLength"`
	MinItems      *int `yaml:"minItems"`
	MaxItems      *int `yaml:"maxItems"`
	MaxProperties *int `yaml:"maxProperties"`
	Items         *oaSchema
	Properties    oaMap[*oaSchema]
	Required      []string
	// AdditionalProperties is a schema, or true or false.
	AdditionalProperties *oaAdditional `yaml:"additionalProperties"`
	OneOf                []*oaSchema   `yaml:"oneOf"`
	AnyOf                []*oaSchema   `yaml:"anyOf"`
	AllOf                []*oaSchema   `yaml:"allOf"`
}

// oaAdditional is additionalProperties: a schema, or a boolean.
type oaAdditional struct {
	Schema  *oaSchema
	Allowed bool
}

func (a *oaAdditional) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&a.Allowed)
	}
	a.Allowed = true
	return n.Decode(&a.Schema)
}

// newAPIRef reads spec into the page's view.
func newAPIRef(spec []byte) (*apiRef, error) {
	var d oaDoc
	if err := yaml.Unmarshal(spec, &d); err != nil {
		return nil, fmt.Errorf("read openapi.yaml: %w", err)
	}
	b := &refBuilder{doc: &d}
	ref := &apiRef{Title: d.Info.Title, Version: d.Info.Version, OpenAPI: d.OpenAPI, Intro: paragraphs(d.Info.Description)}
	for _, s := range d.Servers {
		ref.Servers = append(ref.Servers, s.URL)
	}
	for _, e := range d.Components.SecuritySchemes {
		ref.Schemes = append(ref.Schemes, schemeOf(e.Key, e.Value))
	}
	ref.Groups = b.groups()
	for _, g := range ref.Groups {
		ref.NumOps += len(g.Ops)
		for _, op := range g.Ops {
			if op.Public {
				ref.Public = append(ref.Public, op)
			}
		}
	}
	for _, e := range d.Components.Responses {
		r := e.Value
		shared := apiSharedResponse{ID: "response-" + e.Key, Name: e.Key, Description: inline(r.Description), Headers: b.headers(r.Headers)}
		shared.Media, shared.Type, _, _ = b.content(r.Content)
		ref.Responses = append(ref.Responses, shared)
	}
	for _, e := range d.Components.Schemas {
		s := e.Value
		sch := apiSchema{ID: "schema-" + e.Key, Name: e.Key, Description: paragraphs(s.Description), Type: b.typeOf(s), Notes: b.notes(s)}
		sch.Fields = b.fields(s, "", 0)
		ref.Schemas = append(ref.Schemas, sch)
	}
	if len(b.errs) > 0 {
		return nil, fmt.Errorf("openapi.yaml: %w", errors.Join(b.errs...))
	}
	return ref, nil
}

// refBuilder turns the document's parts into the page's, collecting the
// references it cannot resolve.
type refBuilder struct {
	doc  *oaDoc
	errs []error
}

// scopeSentence is how an operation's description states the API key
// scope it needs.
var scopeSentence = regexp.MustCompile("Requires the `([a-z_]+)` scope")

// groups are the operations by their first tag: the declared tags in their
// order, a tag used but not declared after the tag of the operation before
// its first use, operations without a tag last.
func (b *refBuilder) groups() []*apiGroup {
	var order []string
	for _, t := range b.doc.Tags {
		order = append(order, t.Name)
	}
	byTag := map[string]*apiGroup{}
	prev := ""
	for _, p := range b.doc.Paths {
		for _, m := range p.Value.Ops {
			op := b.operation(p.Key, m.Key, p.Value.Params, m.Value)
			tag := "other"
			if len(m.Value.Tags) > 0 {
				tag = m.Value.Tags[0]
			}
			if !slices.Contains(order, tag) {
				at := len(order)
				if i := slices.Index(order, prev); i >= 0 && tag != "other" {
					at = i + 1
				}
				order = slices.Insert(order, at, tag)
			}
			prev = tag
			g := byTag[tag]
			if g == nil {
				g = &apiGroup{ID: "tag-" + tag, Name: capitalize(tag)}
				byTag[tag] = g
			}
			g.Ops = append(g.Ops, op)
		}
	}
	var groups []*apiGroup
	for _, tag := range order {
		if g := byTag[tag]; g != nil {
			groups = append(groups, g)
		}
	}
	return groups
}

func (b *refBuilder) operation(path, method string, shared []*oaParameter, o *oaOperation) *apiOp {
	op := &apiOp{
		ID: "op-" + o.OperationID, Method: strings.ToUpper(method), Path: path, Summary: o.Summary,
		PathParts: pathParts(path), Description: paragraphs(o.Description),
	}
	if o.OperationID == "" {
		op.ID = "op-" + method + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(path)
	}
	security := b.doc.Security
	if o.Security != nil {
		security = *o.Security
	}
	op.Public = len(security) == 0
	if !op.Public {
		var names []string
		for name := range security[0] {
			names = append(names, name)
		}
		slices.Sort(names)
		op.Scheme = strings.Join(names, " and ")
		if m := scopeSentence.FindStringSubmatch(o.Description); m != nil {
			op.Scope = m[1]
		}
	}
	// The operation's parameters override the path's of the same name
	// and place.
	params := slices.Clone(o.Parameters)
	for _, p := range shared {
		sp := b.parameter(p)
		if !slices.ContainsFunc(params, func(q *oaParameter) bool { q = b.parameter(q); return q.Name == sp.Name && q.In == sp.In }) {
			params = append(params, p)
		}
	}
	for _, p := range params {
		p = b.parameter(p)
		f := apiField{Name: p.Name, In: p.In, Required: p.Required || p.In == "path", Type: b.typeOf(p.Schema),
			Description: inline(p.Description), Notes: b.notes(p.Schema)}
		if p.Example != nil {
			f.Notes = appendNote(f.Notes, apiInline{Text: "example "}, apiInline{Text: scalarText(p.Example), Code: true})
		}
		op.Params = append(op.Params, f)
	}
	if rb := o.RequestBody; rb != nil {
		rb = b.requestBody(rb)
		body := &apiBody{Required: rb.Required, Description: inline(rb.Description)}
		var schema *oaSchema
		var mt *oaMediaType
		body.Media, body.Type, schema, mt = b.content(rb.Content)
		body.Fields = b.fields(b.resolve(schema), "", 0)
		if mt != nil && mt.Example != nil {
			body.Example = exampleText(mt.Example.Node)
		}
		op.Body = body
	}
	for _, e := range o.Responses {
		op.Responses = append(op.Responses, b.response(e.Key, e.Value))
	}
	slices.SortStableFunc(op.Responses, func(a, b apiResponse) int { return strings.Compare(a.Status, b.Status) })
	return op
}

func (b *refBuilder) response(status string, r *oaResponse) apiResponse {
	res := apiResponse{Status: status, Class: "status-" + status[:1] + "xx"}
	if status == "default" {
		res.Class = "status-default"
	}
	if r.Ref != "" {
		name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
		shared, found := b.doc.Components.Responses.get(name)
		if !ok || !found {
			b.errs = append(b.errs, fmt.Errorf("unresolved response %s", r.Ref))
			return res
		}
		res.Shared, res.SharedID = name, "response-"+name
		r = shared
	}
	res.Description = inline(r.Description)
	res.Headers = b.headers(r.Headers)
	var schema *oaSchema
	var mt *oaMediaType
	res.Media, res.Type, schema, mt = b.content(r.Content)
	// A body defined here is described here; a named schema has its own
	// section.
	if res.Shared == "" && schema != nil && schema.Ref == "" {
		res.Fields = b.fields(schema, "", 0)
	}
	if mt != nil && mt.Example != nil {
		res.Example = exampleText(mt.Example.Node)
	}
	return res
}

// content summarises a body's media types: their names, the type of the
// first one's schema (JSON's when there is JSON), that schema and the
// media type.
func (b *refBuilder) content(c oaMap[*oaMediaType]) ([]string, []apiTypePart, *oaSchema, *oaMediaType) {
	if len(c) == 0 {
		return nil, nil, nil, nil
	}
	var media []string
	first := c[0].Value
	for _, e := range c {
		media = append(media, e.Key)
	}
	if j, ok := c.get("application/json"); ok {
		first = j
	}
	if first.Schema == nil {
		return media, nil, nil, first
	}
	return media, b.typeOf(first.Schema), first.Schema, first
}

func (b *refBuilder) headers(h oaMap[*oaParameter]) []apiField {
	var out []apiField
	for _, e := range h {
		p := b.parameter(e.Value)
		out = append(out, apiField{Name: e.Key, Type: b.typeOf(p.Schema), Description: inline(p.Description), Notes: b.notes(p.Schema)})
	}
	return out
}

func (b *refBuilder) parameter(p *oaParameter) *oaParameter {
	if p.Ref == "" {
		return p
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	if q, found := b.doc.Components.Parameters.get(name); ok && found {
		return q
	}
	b.errs = append(b.errs, fmt.Errorf("unresolved parameter %s", p.Ref))
	return &oaParameter{Name: p.Ref}
}

func (b *refBuilder) requestBody(r *oaRequestBody) *oaRequestBody {
	if r.Ref == "" {
		return r
	}
	name, ok := strings.CutPrefix(r.Ref, "#/components/requestBodies/")
	if q, found := b.doc.Components.RequestBodies.get(name); ok && found {
		return q
	}
	b.errs = append(b.errs, fmt.Errorf("unresolved request body %s", r.Ref))
	return &oaRequestBody{}
}

// schemaName is the component a schema $ref names, or "" (recorded as an
// error) when it names none.
func (b *refBuilder) schemaName(ref string) string {
	name, ok := strings.CutPrefix(ref, "#/components/schemas/")
	if _, found := b.doc.Components.Schemas.get(name); ok && found {
		return name
	}
	b.errs = append(b.errs, fmt.Errorf("unresolved schema %s", ref))
	return ""
}

// resolve follows a schema's $ref, and an allOf of one schema.
func (b *refBuilder) resolve(s *oaSchema) *oaSchema {
	for range 8 {
		switch {
		case s == nil:
			return nil
		case s.Ref != "":
			name := b.schemaName(s.Ref)
			t, _ := b.doc.Components.Schemas.get(name)
			if t == nil {
				return nil
			}
			s = t
		case len(s.AllOf) == 1 && len(s.Properties) == 0:
			s = s.AllOf[0]
		default:
			return s
		}
	}
	return s
}

// typeOf names a schema's type, linking named schemas.
func (b *refBuilder) typeOf(s *oaSchema) []apiTypePart {
	if s == nil {
		return []apiTypePart{{Text: "any"}}
	}
	var t []apiTypePart
	switch {
	case s.Ref != "":
		name := b.schemaName(s.Ref)
		t = []apiTypePart{{Text: name, Href: "#schema-" + name}}
	case len(s.AllOf) == 1:
		t = b.typeOf(s.AllOf[0])
	case len(s.OneOf) > 0 || len(s.AnyOf) > 0:
		for i, alt := range append(slices.Clone(s.OneOf), s.AnyOf...) {
			if i > 0 {
				t = append(t, apiTypePart{Text: " or "})
			}
			t = append(t, b.typeOf(alt)...)
		}
	case s.Type == "array":
		if s.Items != nil && s.Items.Ref == "" && len(s.Items.Properties) > 0 {
			t = []apiTypePart{{Text: "array of objects"}}
		} else {
			t = append([]apiTypePart{{Text: "array of "}}, b.typeOf(s.Items)...)
		}
	case s.Type == "object" || s.Type == "" && (len(s.Properties) > 0 || s.AdditionalProperties != nil):
		if ap := s.AdditionalProperties; ap != nil && ap.Schema != nil && len(s.Properties) == 0 {
			t = append([]apiTypePart{{Text: "map of "}}, b.typeOf(ap.Schema)...)
		} else {
			t = []apiTypePart{{Text: "object"}}
		}
	case s.Type == "":
		t = []apiTypePart{{Text: "any"}}
	default:
		t = []apiTypePart{{Text: s.Type}}
		if s.Format != "" {
			t[0].Text += " (" + s.Format + ")"
		}
	}
	if s.Nullable && (len(t) != 1 || t[0].Text != "any") {
		t = append(t, apiTypePart{Text: " or null"})
	}
	return t
}

// notes are a schema's constraints: allowed values, bounds, default and
// example.
func (b *refBuilder) notes(s *oaSchema) apiPara {
	if s == nil {
		return nil
	}
	var n apiPara
	if len(s.Enum) > 0 {
		n = appendNote(n, apiInline{Text: "one of "})
		for i, v := range s.Enum {
			if i > 0 {
				n = append(n, apiInline{Text: ", "})
			}
			n = append(n, apiInline{Text: scalarText(v), Code: true})
		}
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	switch {
	case s.Minimum != nil && s.Maximum != nil:
		n = appendNote(n, apiInline{Text: "from " + num(*s.Minimum) + " to " + num(*s.Maximum)})
	case s.Minimum != nil:
		n = appendNote(n, apiInline{Text: "at least " + num(*s.Minimum)})
	case s.Maximum != nil:
		n = appendNote(n, apiInline{Text: "at most " + num(*s.Maximum)})
	}
	bounds := func(lo, hi *int, unit string) {
		switch {
		case lo != nil && hi != nil:
			n = appendNote(n, apiInline{Text: fmt.Sprintf("%d to %d %s", *lo, *hi, unit)})
		case lo != nil:
			n = appendNote(n, apiInline{Text: fmt.Sprintf("at least %d %s", *lo, unit)})
		case hi != nil:
			n = appendNote(n, apiInline{Text: fmt.Sprintf("at most %d %s", *hi, unit)})
		}
	}
	bounds(s.MinLength, s.MaxLength, "characters")
	bounds(s.MinItems, s.MaxItems, "items")
	bounds(nil, s.MaxProperties, "entries")
	if s.Pattern != "" {
		n = appendNote(n, apiInline{Text: "matches "}, apiInline{Text: s.Pattern, Code: true})
	}
	if s.Default != nil {
		n = appendNote(n, apiInline{Text: "default "}, apiInline{Text: scalarText(s.Default), Code: true})
	}
	if s.Example != nil {
		n = appendNote(n, apiInline{Text: "example "}, apiInline{Text: scalarText(s.Example), Code: true})
	}
	return n
}

// appendNote adds a note to n, after a separator when n has one already.
func appendNote(n apiPara, parts ...apiInline) apiPara {
	if len(n) > 0 {
		n = append(n, apiInline{Text: "; "})
	}
	return append(n, parts...)
}

// maxFieldDepth bounds how deep the fields of inline objects are listed.
const maxFieldDepth = 4

// fields lists an object schema's properties, with those of the inline
// objects inside it under their path ("rules[].name"); a named schema is
// a link to its own section instead.
func (b *refBuilder) fields(s *oaSchema, prefix string, depth int) []apiField {
	if s == nil || depth > maxFieldDepth {
		return nil
	}
	var out []apiField
	for _, e := range s.Properties {
		p := e.Value
		f := apiField{Prefix: prefix, Name: e.Key, Required: slices.Contains(s.Required, e.Key), Type: b.typeOf(p), Notes: b.notes(p)}
		desc := p.Description
		if desc == "" && len(p.AllOf) == 1 {
			desc = p.AllOf[0].Description
		}
		f.Description = inline(desc)
		out = append(out, f)
		if p.Ref != "" {
			continue
		}
		switch {
		case len(p.Properties) > 0:
			out = append(out, b.fields(p, prefix+e.Key+".", depth+1)...)
		case p.Items != nil && p.Items.Ref == "" && len(p.Items.Properties) > 0:
			out = append(out, b.fields(p.Items, prefix+e.Key+"[].", depth+1)...)
		}
	}
	return out
}

func schemeOf(name string, s *oaSecurityScheme) apiScheme {
	sc := apiScheme{Name: name, Description: paragraphs(s.Description)}
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		sc.Kind, sc.Usage = "HTTP bearer token", "Authorization: Bearer <key>"
	case s.Type == "http" && strings.EqualFold(s.Scheme, "basic"):
		sc.Kind, sc.Usage = "HTTP basic", "Authorization: Basic <credentials>"
	case s.Type == "apiKey":
		sc.Kind = "API key in the " + s.In
		if s.In == "header" {
			sc.Usage = s.Name + ": <key>"
		} else {
			sc.Usage = s.Name + "=<key>"
		}
	default:
		sc.Kind = s.Type
	}
	return sc
}

// pathParts splits a path into its literal parts and {parameters}.
func pathParts(path string) []apiPathPart {
	var parts []apiPathPart
	for path != "" {
		i := strings.IndexByte(path, '{')
		j := strings.IndexByte(path, '}')
		if i < 0 || j < i {
			parts = append(parts, apiPathPart{Text: path})
			break
		}
		if i > 0 {
			parts = append(parts, apiPathPart{Text: path[:i]})
		}
		parts = append(parts, apiPathPart{Text: path[i : j+1], Param: true})
		path = path[j+1:]
	}
	return parts
}

// paragraphs splits a description into paragraphs at blank lines, joins
// each paragraph's lines and marks `code` spans: the Markdown the
// document uses, and no more.
func paragraphs(s string) []apiPara {
	var out []apiPara
	for _, p := range strings.Split(strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")), "\n\n") {
		if p = strings.Join(strings.Fields(p), " "); p != "" {
			out = append(out, codeSpans(p))
		}
	}
	return out
}

// inline is a description as one run of text, for a table's cell.
func inline(s string) apiPara {
	var out apiPara
	for i, p := range paragraphs(s) {
		if i > 0 {
			out = append(out, apiInline{Text: " "})
		}
		out = append(out, p...)
	}
	return out
}

func codeSpans(p string) apiPara {
	var out apiPara
	for i, part := range strings.Split(p, "`") {
		if part != "" {
			out = append(out, apiInline{Text: part, Code: i%2 == 1})
		}
	}
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// scalarText is a value as a note shows it: a scalar as written, null
// as null, anything else as JSON on one line.
func scalarText(v *oaValue) string {
	if v == nil || v.Node == nil {
		return "null" // YAML's null decodes to no value at all
	}
	n := v.Node
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return n.Value
	}
	var buf bytes.Buffer
	writeJSON(&buf, n, "", false)
	return buf.String()
}

// exampleText is an example as JSON laid out over lines, in the order it
// is written; a string example (an event stream, say) as it is.
func exampleText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return n.Value
	}
	var buf bytes.Buffer
	writeJSON(&buf, n, "", true)
	return buf.String()
}

// writeJSON writes a YAML node as JSON, keeping the order of its keys;
// pretty lays objects out over lines, each level indented by two spaces.
func writeJSON(buf *bytes.Buffer, n *yaml.Node, indent string, pretty bool) {
	sep, inner, end := ", ", "", ""
	if pretty {
		sep, inner, end = ",\n"+indent+"  ", "\n"+indent+"  ", "\n"+indent
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			writeJSON(buf, n.Content[0], indent, pretty)
		}
	case yaml.AliasNode:
		writeJSON(buf, n.Alias, indent, pretty)
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			buf.WriteString("{}")
			return
		}
		buf.WriteString("{" + inner)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteString(sep)
			}
			key, _ := json.Marshal(n.Content[i].Value)
			buf.Write(key)
			buf.WriteString(": ")
			writeJSON(buf, n.Content[i+1], indent+"  ", pretty)
		}
		buf.WriteString(end + "}")
	case yaml.SequenceNode:
		// A list of scalars stays on one line.
		if !slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return c.Kind != yaml.ScalarNode }) {
			sep, inner, end = ", ", "", ""
		}
		buf.WriteString("[" + inner)
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteString(sep)
			}
			writeJSON(buf, c, indent+"  ", pretty)
		}
		buf.WriteString(end + "]")
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			v = n.Value
		}
		out, err := json.Marshal(v)
		if err != nil {
			out, _ = json.Marshal(n.Value)
		}
		buf.Write(out)
	}
}
