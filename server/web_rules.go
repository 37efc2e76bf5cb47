package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
	"github.com/hotlane/hotlane/templates"
)

// The rules pages: the live ruleset and its history, drafts with an
// editor that shows compile errors at the rule and column, a backtest of
// any version against the labelled history, publish and roll back.

type ruleLineView struct {
	Name, Expression, Points, Floor, Channels, Description string
}

type rulesetRowView struct {
	Version                   int
	Status, Author, Note, Ago string
	CreatedAt                 time.Time
	Live, Draft, CanRollback  bool
	Rules                     int
}

type rulesPage struct {
	pageBase
	Verdict, Flash string
	LiveVersion    int
	Live           []ruleLineView
	Rows           []rulesetRowView
	// Warned are the rules and signals recent decisions could not use.
	Warned     []warnedView
	WarnedNote string
}

type warnedView struct {
	Kind, Name, Message, ConversationID, ConversationURL, Ago string
	At                                                        time.Time
	Decisions                                                 string
}

// warnedWindow and warnedLimit bound the rules page's list of warnings:
// the decisions of the last week, the newest ones only.
const (
	warnedWindow = 7 * 24 * time.Hour
	warnedLimit  = 1000
)

func ruleLines(doc model.PolicyDoc) []ruleLineView {
	out := make([]ruleLineView, 0, len(doc.Rules))
	for _, r := range doc.Rules {
		out = append(out, ruleLineView{Name: r.Name, Expression: r.Expression, Points: templates.Signed(r.Points),
			Floor: r.TierFloor, Channels: strings.Join(r.Channels, ", "), Description: r.Description})
	}
	return out
}

func (s *Server) handleRulesPage(c *gin.Context) {
	list, err := s.policies.ListPolicies(c.Request.Context())
	if err != nil {
		s.pageError(c, err)
		return
	}
	p := rulesPage{pageBase: s.base(c, "Rules", "rules")}
	switch c.Query("done") {
	case "published":
		p.Flash = fmt.Sprintf("Version %s is published and live.", c.Query("v"))
	case "rolledback":
		p.Flash = fmt.Sprintf("Rolled back: version %s is live.", c.Query("v"))
	case "deleted":
		p.Flash = fmt.Sprintf("Draft %s deleted.", c.Query("v"))
	}
	now := s.now()
	drafts := 0
	var live *feedback.PolicyVersion
	for i, pv := range list {
		row := rulesetRowView{Version: pv.Version, Status: pv.Status, Author: pv.Author, Note: pv.Note, CreatedAt: pv.CreatedAt,
			Ago: templates.Ago(now, pv.CreatedAt), Live: pv.Live, Draft: pv.Status == feedback.PolicyDraft}
		if doc, err := model.ParsePolicy(pv.Document); err == nil {
			row.Rules = len(doc.Rules)
		}
		row.CanRollback = !row.Live && !row.Draft
		if row.Draft {
			drafts++
		}
		if pv.Live {
			live = &list[i]
		}
		p.Rows = append(p.Rows, row)
	}
	switch {
	case live == nil && len(list) == 0:
		p.Verdict = "No ruleset yet: start a draft, or publish one with hotlane rules apply FILE."
	case live == nil:
		p.Verdict = "No ruleset is live: publish a draft to start scoring."
	default:
		p.LiveVersion = live.Version
		doc, err := model.ParsePolicy(live.Document)
		if err != nil {
			s.pageError(c, fmt.Errorf("live ruleset %d: %w", live.Version, err))
			return
		}
		p.Live = ruleLines(doc)
		since := "since " + templates.Ago(now, live.CreatedAt)
		if live.ActivatedAt != nil {
			since = "since " + templates.Ago(now, *live.ActivatedAt)
		}
		p.Verdict = fmt.Sprintf("Version %d is live %s with %s.", live.Version, since, plural(len(doc.Rules), "rule", "rules"))
		if drafts > 0 {
			p.Verdict += fmt.Sprintf(" %s waiting to be backtested and published.", plural(drafts, "draft is", "drafts are"))
		}
	}
	warned, err := s.web.WarnedDecisions(c.Request.Context(), now.Add(-warnedWindow), warnedLimit)
	if err != nil {
		s.pageError(c, err)
		return
	}
	for _, w := range feedback.SummarizeWarnings(warned) {
		v := warnedView{Kind: "rule", Name: w.Rule, Message: w.Message, ConversationID: w.ConversationID,
			ConversationURL: "/conversations/" + url.PathEscape(w.ConversationID), At: w.At, Ago: templates.Ago(now, w.At),
			Decisions: strconv.Itoa(w.Decisions)}
		if w.Rule == "" {
			v.Kind, v.Name = "signal", w.Signal
		}
		if len(warned) == warnedLimit {
			v.Decisions += "+"
		}
		p.Warned = append(p.Warned, v)
	}
	if len(p.Warned) > 0 {
		p.Verdict += fmt.Sprintf(" %s could not be used in some decisions of the last 7 days: see Warnings below.",
			plural(len(p.Warned), "rule or signal", "rules or signals"))
		if len(warned) == warnedLimit {
			p.WarnedNote = fmt.Sprintf("Counted over the newest %d decisions with warnings; there are more.", warnedLimit)
		}
	}
	s.render(c, http.StatusOK, "rules", p)
}

// handleNewDraftForm starts a draft from the live ruleset (or from the
// version in the form) and opens its editor.
func (s *Server) handleNewDraftForm(c *gin.Context) {
	ctx := c.Request.Context()
	var pv feedback.PolicyVersion
	var err error
	if from := c.PostForm("from"); from != "" {
		v, perr := strconv.Atoi(from)
		if perr != nil || v < 1 {
			s.pageError(c, feedback.ErrNotFound)
			return
		}
		pv, err = s.policies.Policy(ctx, v)
	} else {
		pv, err = s.policies.LivePolicy(ctx)
	}
	source := starterPolicy
	switch {
	case errors.Is(err, feedback.ErrNotFound) && c.PostForm("from") == "":
	case err != nil:
		s.pageError(c, err)
		return
	default:
		if source, err = editableSource(pv); err != nil {
			s.pageError(c, err)
			return
		}
	}
	doc, err := model.ParsePolicy([]byte(source))
	if err != nil {
		s.pageError(c, err)
		return
	}
	canonical, err := doc.Canonical()
	if err != nil {
		s.pageError(c, err)
		return
	}
	draft, err := s.policies.CreateDraft(ctx, canonical, source, sessionOf(c).User.Email, "")
	if err != nil {
		s.pageError(c, err)
		return
	}
	s.audit(c, feedback.AuditDraftCreate, fmt.Sprintf("ruleset %d", draft.Version), nil, map[string]any{"status": draft.Status, "from": pv.Version})
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules/%d", draft.Version))
}

// starterPolicy is the first draft when no ruleset exists.
const starterPolicy = `base: -3
rules:
  - name: big-deal
    expression: deal_size >= 10000
    points: 2.5
    tier_floor: high
thresholds:
  default: {urgent: 0.9, high: 0.7, medium: 0.4}
`

// editableSource is a version's document as its author wrote it, or as
// YAML when it was stored without its source (or as JSON by a program).
func editableSource(pv feedback.PolicyVersion) (string, error) {
	if src := strings.TrimSpace(pv.Source); src != "" && !strings.HasPrefix(src, "{") {
		return pv.Source, nil
	}
	doc, err := model.ParsePolicy(pv.Document)
	if err != nil {
		return "", err
	}
	y, err := doc.YAML()
	return string(y), err
}

type problemView struct {
	Where, Message string
	// Excerpt is the rule's expression line the error is on and Caret a
	// marker under its column; both empty without a column.
	Excerpt, Caret string
}

type btSideView struct {
	Name                                 string
	Alerted, Useful, Noise               int
	Precision, Recall, PerWeek, UrgentWk string
}

type btRuleView struct {
	Name, Change, Hits, Useful, Noise, Precision, Recall, LiveHits, LivePrecision string
}

type btWeekView struct {
	Week                                         string
	DraftUrgent, DraftHigh, LiveUrgent, LiveHigh int
}

type backtestView struct {
	Verdict, Data string
	Weeks         int
	Sides         []btSideView
	Rules         []btRuleView
	ByWeek        []btWeekView
	Notes         []string
}

type rulesetPage struct {
	pageBase
	Version                   int
	Status, Author, Note, Ago string
	Verdict, Flash, Source    string
	Draft, Live, CanRollback  bool
	LiveVersion               int
	Rules                     []ruleLineView
	Problems                  []problemView
	Backtest                  *backtestView
	BacktestError             string
	Weeks                     int
	WeekOptions               []int
}

func (s *Server) rulesetPageFor(c *gin.Context, pv feedback.PolicyVersion) rulesetPage {
	p := rulesetPage{pageBase: s.base(c, fmt.Sprintf("Ruleset %d", pv.Version), "rules"), Version: pv.Version, Status: pv.Status,
		Author: pv.Author, Note: pv.Note, Ago: templates.Ago(s.now(), pv.CreatedAt), Draft: pv.Status == feedback.PolicyDraft,
		Live: pv.Live, Weeks: defaultBacktestWeeks, WeekOptions: []int{1, 2, 4, 8, 12, 26}}
	p.CanRollback = !p.Live && !p.Draft
	if cur := s.live.Current(); cur != nil {
		p.LiveVersion = cur.PolicyVersion
	}
	p.Source, _ = editableSource(pv)
	if doc, err := model.ParsePolicy(pv.Document); err == nil {
		p.Rules = ruleLines(doc)
	}
	switch {
	case p.Draft:
		p.Verdict = fmt.Sprintf("Draft %d: it serves nothing until you publish it. Backtest it first to see what it would have caught.", pv.Version)
	case p.Live:
		p.Verdict = fmt.Sprintf("Version %d is live: every conversation is scored by it.", pv.Version)
	default:
		p.Verdict = fmt.Sprintf("Version %d is an earlier published version; rolling back makes it live again.", pv.Version)
	}
	return p
}

// pathVersion reads the ruleset version the path names, or answers the
// page with 404 (or the store's error) and reports false.
func (s *Server) pathVersion(c *gin.Context) (feedback.PolicyVersion, bool) {
	v, err := versionParam(c)
	if err != nil {
		s.pageError(c, feedback.ErrNotFound)
		return feedback.PolicyVersion{}, false
	}
	pv, err := s.policies.Policy(c.Request.Context(), v)
	if err != nil {
		s.pageError(c, err)
		return feedback.PolicyVersion{}, false
	}
	return pv, true
}

func (s *Server) handleRulesetPage(c *gin.Context) {
	pv, ok := s.pathVersion(c)
	if !ok {
		return
	}
	p := s.rulesetPageFor(c, pv)
	if c.Query("done") == "saved" {
		p.Flash = "Draft saved. It compiles."
	}
	s.render(c, http.StatusOK, "ruleset", p)
}

// handleBacktestForm runs a backtest of a version and shows it on the
// version's page. It is a POST: a backtest is expensive, and a page on
// another site must not be able to start one in a lead's name.
func (s *Server) handleBacktestForm(c *gin.Context) {
	pv, ok := s.pathVersion(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	p := s.rulesetPageFor(c, pv)
	weeks, err := backtestWeeks(c.PostForm("weeks"))
	if err != nil {
		p.BacktestError = "Choose a number of weeks from 1 to 52."
		s.render(c, http.StatusBadRequest, "ruleset", p)
		return
	}
	p.Weeks = weeks
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(backtestWriteTime))
	rep, err := s.backtest(ctx, pv, weeks)
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status < 500:
		p.BacktestError = apiErr.Message
		s.render(c, apiErr.Status, "ruleset", p)
		return
	case err != nil:
		s.pageError(c, err)
		return
	}
	p.Backtest = backtestViewOf(rep)
	s.render(c, http.StatusOK, "ruleset", p)
}

// handleSaveDraftForm saves the editor's text into the draft, or shows the
// editor again with each problem at its rule and column.
func (s *Server) handleSaveDraftForm(c *gin.Context) {
	pv, ok := s.pathVersion(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if pv.Status != feedback.PolicyDraft {
		s.conflictPage(c, feedback.ErrPublishedImmutable, "Not saved")
		return
	}
	source := strings.ReplaceAll(c.PostForm("source"), "\r\n", "\n")
	note := strings.TrimSpace(c.PostForm("note"))
	p := s.rulesetPageFor(c, pv)
	p.Source, p.Note = source, note
	if len(source) > maxPolicyBytes {
		p.Problems = []problemView{{Message: fmt.Sprintf("the document is %d bytes, at most %d are allowed", len(source), maxPolicyBytes)}}
		s.render(c, http.StatusRequestEntityTooLarge, "ruleset", p)
		return
	}
	// The API takes a note as a query value, which withSaneParams checks;
	// the form's is checked here, before PostgreSQL refuses a NUL or
	// invalid UTF-8 with an error the page would show as a 500.
	if !model.PlainText(note) {
		p.Problems = []problemView{{Where: "Note", Message: "must be valid UTF-8 text without control characters"}}
		s.render(c, http.StatusUnprocessableEntity, "ruleset", p)
		return
	}
	doc, err := model.ParsePolicy([]byte(source))
	if err == nil {
		_, err = model.CompilePolicy(doc)
	}
	var canonical []byte
	if err == nil {
		canonical, err = doc.Canonical()
	}
	if err != nil {
		p.Problems = problemViews(err, doc)
		s.render(c, http.StatusUnprocessableEntity, "ruleset", p)
		return
	}
	v := pv.Version
	if _, err := s.policies.UpdateDraft(ctx, v, canonical, source, sessionOf(c).User.Email, note); err != nil {
		if errors.Is(err, feedback.ErrConflict) {
			p.Problems = []problemView{{Message: feedback.Reason(err)}}
			s.render(c, http.StatusConflict, "ruleset", p)
			return
		}
		s.pageError(c, err)
		return
	}
	s.audit(c, feedback.AuditDraftUpdate, fmt.Sprintf("ruleset %d", v), nil, map[string]any{"note": note})
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules/%d?done=saved", v))
}

var ruleFieldRe = regexp.MustCompile(`^rules\[(\d+)\]`)

// problemViews turns a policy's problems into lines an author can act on:
// the rule, the line and column inside its expression with the
// expression's line and a caret under the column, or the document line of
// a syntax error.
func problemViews(err error, doc model.PolicyDoc) []problemView {
	var pe *model.PolicyError
	if !errors.As(err, &pe) {
		return []problemView{{Message: err.Error()}}
	}
	out := make([]problemView, 0, len(pe.Problems))
	for _, pr := range pe.Problems {
		v := problemView{Message: pr.Message}
		var expr string
		if m := ruleFieldRe.FindStringSubmatch(pr.Field); m != nil {
			if i, _ := strconv.Atoi(m[1]); i < len(doc.Rules) {
				expr = doc.Rules[i].Expression
			}
		}
		switch {
		case pr.Rule != "" && pr.Line > 0 && expr != "":
			v.Where = fmt.Sprintf("Rule %s, %s, column %d", pr.Rule, pr.Field, pr.Column)
			lines := strings.Split(expr, "\n")
			if pr.Line <= len(lines) {
				v.Excerpt = lines[pr.Line-1]
				if pr.Column > 0 {
					v.Caret = strings.Repeat(" ", min(pr.Column-1, len(v.Excerpt))) + "^"
				}
			}
		case pr.Rule != "":
			v.Where = fmt.Sprintf("Rule %s, %s", pr.Rule, pr.Field)
		case pr.Field != "":
			v.Where = pr.Field
		case pr.Line > 0:
			v.Where = fmt.Sprintf("Line %d of the document", pr.Line)
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) handlePublishDraftForm(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		s.pageError(c, feedback.ErrNotFound)
		return
	}
	ctx := c.Request.Context()
	if !sessionOf(c).User.Role.AtLeast(feedback.RoleAdmin) {
		// Routes and alert settings (tiers, budgets, SLAs) are an admin's:
		// a lead publishes rules and thresholds.
		draft, err := s.policies.Policy(ctx, v)
		if err != nil {
			s.pageError(c, err)
			return
		}
		if changes, err := s.adminChanges(c, draft); err != nil {
			s.pageError(c, err)
			return
		} else if changes != "" {
			s.render(c, http.StatusForbidden, "error", errorPage{pageBase: s.base(c, "Not published", "rules"), Heading: "Not published",
				Message: "This draft changes the " + changes + " of the live ruleset, which only an admin may change: ask an admin to publish it, or keep them as they are live."})
			return
		}
	}
	if _, err := s.policies.PublishDraft(ctx, v); err != nil {
		s.conflictPage(c, err, "Not published")
		return
	}
	s.changed(c, feedback.AuditRulesetPublish, fmt.Sprintf("ruleset %d", v), map[string]any{"from": "draft"})
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules?done=published&v=%d", v))
}

func (s *Server) handleRollbackRulesetForm(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		s.pageError(c, feedback.ErrNotFound)
		return
	}
	if _, err := s.policies.ActivatePolicy(c.Request.Context(), v); err != nil {
		s.conflictPage(c, err, "Not rolled back")
		return
	}
	s.changed(c, feedback.AuditRulesetRollback, fmt.Sprintf("ruleset %d", v), nil)
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules?done=rolledback&v=%d", v))
}

func (s *Server) handleDeleteDraftForm(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		s.pageError(c, feedback.ErrNotFound)
		return
	}
	if err := s.policies.DeleteDraft(c.Request.Context(), v); err != nil {
		s.conflictPage(c, err, "Not deleted")
		return
	}
	s.audit(c, feedback.AuditDraftDelete, fmt.Sprintf("ruleset %d", v), map[string]any{"status": feedback.PolicyDraft}, nil)
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules?done=deleted&v=%d", v))
}

// conflictPage shows a refused change's reason, or the error page.
func (s *Server) conflictPage(c *gin.Context, err error, heading string) {
	if why := feedback.Reason(err); why != "" && errors.Is(err, feedback.ErrConflict) {
		s.render(c, http.StatusConflict, "error", errorPage{pageBase: s.base(c, heading, "rules"), Heading: heading, Message: why})
		return
	}
	s.pageError(c, err)
}

// rateOf renders a rate with its count: "0.76, 96 of 126".
func rateOf(num, den int) string {
	if den <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f, %d of %d", float64(num)/float64(den), num, den)
}

func backtestViewOf(r *feedback.BacktestReport) *backtestView {
	v := &backtestView{Weeks: int(r.Weeks + 0.5), Notes: r.Notes,
		Data: fmt.Sprintf("%s to %s: %s and %s replayed, %d labelled (%d positive), scored with %s, in %.1f s.",
			r.From.Format("2006-01-02"), r.To.Format("2006-01-02"), plural(r.Conversations, "conversation", "conversations"),
			plural(r.Decisions, "decision", "decisions"), r.Labelled, r.Positives,
			modelName(r.ModelVersion), r.Seconds)}
	name := "This draft"
	if r.DraftVersion == r.LiveVersion {
		name = "This version"
	}
	side := func(name string, s feedback.BacktestSide) btSideView {
		return btSideView{Name: name, Alerted: s.Alerted, Useful: s.Useful, Noise: s.Noise,
			Precision: rateOf(s.Useful, s.Useful+s.Noise), Recall: rateOf(s.Useful, r.Positives),
			PerWeek: fmt.Sprintf("%.1f", s.AlertsPerWeek["high"]), UrgentWk: fmt.Sprintf("%.1f", s.AlertsPerWeek["urgent"])}
	}
	v.Sides = []btSideView{side(fmt.Sprintf("%s (version %d)", name, r.DraftVersion), r.Draft), side(fmt.Sprintf("Live (version %d)", r.LiveVersion), r.Live)}
	v.Verdict = fmt.Sprintf("Over the last %s, %s would have alerted on %s (live: %d): %d useful and %d noise, and caught %d of %d positive conversations (live: %d).",
		plural(v.Weeks, "week", "weeks"), strings.ToLower(name), plural(r.Draft.Alerted, "conversation", "conversations"), r.Live.Alerted,
		r.Draft.Useful, r.Draft.Noise, r.Draft.Useful, r.Positives, r.Live.Useful)
	stat := func(st *feedback.RuleStats) (hits, useful, noise, prec, rec string) {
		if st == nil {
			return "–", "–", "–", "–", "–"
		}
		return strconv.Itoa(st.Hits), strconv.Itoa(st.Useful), strconv.Itoa(st.Noise), rateOf(st.Useful, st.Useful+st.Noise), rateOf(st.Useful, r.Positives)
	}
	for _, br := range r.Rules {
		rv := btRuleView{Name: br.Name, Change: br.Change}
		rv.Hits, rv.Useful, rv.Noise, rv.Precision, rv.Recall = stat(br.Draft)
		rv.LiveHits, _, _, rv.LivePrecision, _ = stat(br.Live)
		v.Rules = append(v.Rules, rv)
	}
	for _, w := range r.ByWeek {
		v.ByWeek = append(v.ByWeek, btWeekView{Week: w.Week, DraftUrgent: w.Draft["urgent"], DraftHigh: w.Draft["high"],
			LiveUrgent: w.Live["urgent"], LiveHigh: w.Live["high"]})
	}
	return v
}

func modelName(v int) string {
	if v == 0 {
		return "the rules alone"
	}
	return fmt.Sprintf("model %d", v)
}

// adminChanges names what a version changes that only an admin may
// change: "routes", "alert settings" or both; "" for nothing.
func (s *Server) adminChanges(c *gin.Context, pv feedback.PolicyVersion) (string, error) {
	_, live, err := s.liveDoc(c)
	if errors.Is(err, feedback.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	doc, err := model.ParsePolicy(pv.Document)
	if err != nil {
		return "", err
	}
	same := func(a, b any) bool {
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		return string(x) == string(y)
	}
	var out []string
	if !same(doc.Routes, live.Routes) {
		out = append(out, "routes")
	}
	if !same(doc.Alerts, live.Alerts) {
		out = append(out, "alert settings")
	}
	return strings.Join(out, " and "), nil
}
