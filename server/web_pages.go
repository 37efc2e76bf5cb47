package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
	"github.com/hotlane/hotlane/templates"
)

// tierNames are the tiers, most urgent first, for filters and forms.
var tierNames = []string{"urgent", "high", "medium", "low"}

// parseTierParam reads a tier filter; "" is every tier.
func parseTierParam(s string) (model.Tier, bool) {
	if s == "" {
		return model.TierNone, true
	}
	t, err := model.ParseTier(s)
	return t, err == nil && t != model.TierNone
}

// minReason is the smallest contribution a reason sentence names: below
// it a rule or a feature moved the score by less than a percent or so.
const minReason = 0.05

// reasonText turns stored reasons into a short sentence: first the rules
// that set a tier floor (they explain the tier whatever their weight), then
// the rest by the size of their effect: rules by their description (their
// name when they have none), signals by their name and value ("deal_size
// 50000", "plan pro", "deal_size missing"), each with its contribution to
// the logit. Contributions too small to matter are left out. Reasons
// stored before they were per signal name a feature ("plan=pro",
// "deal_size:missing") and read as that name.
func reasonText(reasons []model.Reason, describe map[string]string, max int) string {
	kept := make([]model.Reason, 0, len(reasons))
	for _, r := range reasons {
		if r.TierFloor != "" || math.Abs(r.Contribution) >= minReason {
			kept = append(kept, r)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool {
		if (kept[i].TierFloor != "") != (kept[j].TierFloor != "") {
			return kept[i].TierFloor != ""
		}
		return math.Abs(kept[i].Contribution) > math.Abs(kept[j].Contribution)
	})
	var parts []string
	for i, r := range kept {
		if i == max {
			parts = append(parts, fmt.Sprintf("%d more", len(kept)-max))
			break
		}
		what := r.Name
		switch {
		case r.Kind == "rule":
			if d := describe[r.Name]; d != "" {
				what = d
			}
		case strings.ContainsAny(r.Name, "=:"):
			// A feature's name from an older decision says it all.
		case r.Value == nil:
			what = r.Name + " missing"
		default:
			what = r.Name + " " + reasonValue(r.Value)
		}
		effect := templates.Signed(r.Contribution)
		if r.TierFloor != "" {
			effect = "at least " + r.TierFloor
			if math.Abs(r.Contribution) >= minReason {
				effect += ", " + templates.Signed(r.Contribution)
			}
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", what, effect))
	}
	if len(parts) == 0 {
		return "Nothing stands out; the score is close to the base rate."
	}
	return strings.Join(parts, ", ")
}

// reasonValue writes a signal's value in a reason: a number as sent
// (without an exponent), a string or a boolean as is.
func reasonValue(v any) string {
	if x, ok := v.(float64); ok {
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', 4, 64)
	}
	return fmt.Sprint(v)
}

func decodeReasons(raw []byte) []model.Reason {
	var out []model.Reason
	_ = json.Unmarshal(raw, &out)
	return out
}

// policyView is what pages read of the live policy: rule descriptions,
// the teams routes name, the channels with thresholds and the SLAs.
type policyView struct {
	describe map[string]string
	teams    []string
	channels []string
	sla      func(model.Tier) time.Duration
}

func (s *Server) policyView(extraTeam string) policyView {
	v := policyView{describe: map[string]string{}}
	seen := map[string]bool{}
	addTeam := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			v.teams = append(v.teams, t)
		}
	}
	addTeam(extraTeam)
	v.channels = []string{"web", "whatsapp"}
	if live := s.live.Current(); live != nil {
		doc := live.Scorer.Policy().Doc()
		for _, r := range doc.Rules {
			v.describe[r.Name] = strings.TrimSuffix(strings.TrimSpace(r.Description), ".")
		}
		for _, r := range doc.Routes {
			addTeam(r.Team)
		}
		for _, ch := range live.Scorer.Policy().Channels() {
			if !slices.Contains(v.channels, ch) {
				v.channels = append(v.channels, ch)
			}
		}
		v.sla = live.SLA
	}
	sort.Strings(v.teams)
	return v
}

type queueFilters struct {
	Tier, Team, Channel string
	Mine                bool
}

type queueRowView struct {
	ID, URL, Channel, Tier, Reasons, Route, Waiting, SLA string
	Score                                                float64
	Since                                                time.Time
	PastSLA                                              bool
}

type queuePage struct {
	pageBase
	Verdict, Empty, FilterQuery, NextURL string
	Filters                              queueFilters
	Filtered                             bool
	TierOptions, Teams, Channels         []string
	Rows                                 []queueRowView
	Total, PageSize                      int
}

const queuePageSize = 100

func (s *Server) handleQueuePage(c *gin.Context) {
	sess := sessionOf(c)
	f := queueFilters{Tier: c.Query("tier"), Team: c.Query("team"), Channel: c.Query("channel"), Mine: c.Query("mine") == "1"}
	tier, ok := parseTierParam(f.Tier)
	if !ok {
		f.Tier, tier = "", model.TierNone
	}
	offset, _ := strconv.Atoi(c.Query("offset"))
	pv := s.policyView(sess.User.Team)
	now := s.now()
	q := feedback.QueueQuery{Tier: tier, Channel: f.Channel, Team: f.Team, Mine: f.Mine, Owner: sess.User.Email,
		Now: now, SLA: pv.sla, Limit: queuePageSize, Offset: max(offset, 0)}
	if f.Mine {
		q.Team = sess.User.Team
	}
	page, err := s.web.OpenConversations(c.Request.Context(), q)
	if err != nil {
		s.pageError(c, err)
		return
	}
	p := queuePage{pageBase: s.base(c, "Queue", "queue"), Filters: f, TierOptions: tierNames, Teams: pv.teams,
		Channels: pv.channels, Total: page.Total, PageSize: queuePageSize}
	p.Filtered = f != (queueFilters{})
	vals := url.Values{}
	for k, v := range map[string]string{"tier": f.Tier, "team": f.Team, "channel": f.Channel} {
		if v != "" {
			vals.Set(k, v)
		}
	}
	if f.Mine {
		vals.Set("mine", "1")
	}
	p.FilterQuery = vals.Encode()
	if next := q.Offset + len(page.Items); next < page.Total {
		vals.Set("offset", strconv.Itoa(next))
		p.NextURL = "/?" + vals.Encode()
	}
	p.Verdict = queueVerdict(page)
	p.Empty = "No open conversations right now. Scores arrive from your chat platform: POST /v1/score, or Chatwoot's webhooks (see Connect Chatwoot in the README). A conversation stays here until it is closed or quiet for a day."
	if p.Filtered {
		p.Empty = "No open conversation matches these filters."
	}
	for _, it := range page.Items {
		row := queueRowView{ID: it.ID, URL: "/conversations/" + url.PathEscape(it.ID), Channel: it.Channel, Tier: it.Tier.String(),
			Score: it.Score, Reasons: reasonText(it.Reasons, pv.describe, 3), Route: routeText(it.Team, it.Owner), Since: it.FirstSeenAt,
			PastSLA: it.PastSLA()}
		switch {
		case it.FirstResponseAt != nil:
			row.Waiting = "answered"
		default:
			row.Waiting = templates.Duration(it.Waiting)
		}
		switch {
		case it.FirstResponseAt != nil:
			row.SLA = "met"
		case !it.HasSLA:
			row.SLA = "–"
		case it.SLALeft < 0:
			row.SLA = templates.Duration(it.SLALeft) + " over"
		default:
			row.SLA = templates.Duration(it.SLALeft) + " left"
		}
		p.Rows = append(p.Rows, row)
	}
	s.render(c, http.StatusOK, "queue", p)
}

// queueVerdict is the queue's first sentence: what needs a human now.
func queueVerdict(p feedback.QueuePage) string {
	if p.Total == 0 {
		return "Nothing is waiting."
	}
	urgent, high := p.ByTier[model.TierUrgent], p.ByTier[model.TierHigh]
	var parts []string
	if urgent > 0 {
		parts = append(parts, plural(urgent, "urgent chat", "urgent chats"))
	}
	if high > 0 {
		parts = append(parts, plural(high, "high chat", "high chats"))
	}
	s := plural(p.Total, "open conversation", "open conversations")
	if len(parts) > 0 {
		s = strings.Join(parts, " and ") + " waiting, of " + s
	}
	if p.PastSLA > 0 {
		s += "; " + plural(p.PastSLA, "is", "are") + " past the SLA"
		if p.PastSLA == 1 {
			s = strings.Replace(s, "1 is past", "1 past", 1)
		} else {
			s = strings.Replace(s, fmt.Sprintf("%d are past", p.PastSLA), fmt.Sprintf("%d past", p.PastSLA), 1)
		}
	}
	return s + "."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func routeText(team, owner string) string {
	switch {
	case owner != "" && team != "":
		return owner + " (" + team + ")"
	case owner != "":
		return owner
	case team != "":
		return team
	}
	return "unrouted"
}

type alertFilters struct {
	Status, Tier, Team, Channel string
}

type alertRowView struct {
	ID, ConversationID, ConversationURL, Channel, Tier, Team, Ago, Reasons, Held, MyLabel, MyNote, OtherLabels string
	Score                                                                                                      float64
	CreatedAt                                                                                                  time.Time
	Review, Labelled, SLA                                                                                      bool
}

type alertsPage struct {
	pageBase
	Verdict, Empty, NextURL, ReturnURL          string
	Filters                                     alertFilters
	Filtered                                    bool
	StatusOptions, TierOptions, Teams, Channels []string
	Rows                                        []alertRowView
}

func (s *Server) handleAlertsPage(c *gin.Context) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	f := alertFilters{Status: c.Query("status"), Tier: c.Query("tier"), Team: c.Query("team"), Channel: c.Query("channel")}
	if !slices.Contains([]string{"", feedback.FeedUnlabelled, feedback.FeedLabelled, feedback.FeedSuppressed}, f.Status) {
		f.Status = ""
	}
	tier, ok := parseTierParam(f.Tier)
	if !ok {
		f.Tier, tier = "", model.TierNone
	}
	q := feedback.AlertQuery{Status: f.Status, Tier: tier, Team: f.Team, Channel: f.Channel, Limit: 50, Cursor: c.Query("cursor")}
	page, err := s.web.Alerts(ctx, q)
	if errors.Is(err, feedback.ErrInvalid) { // a stale or edited cursor: start again
		q.Cursor = ""
		page, err = s.web.Alerts(ctx, q)
	}
	if err != nil {
		s.pageError(c, err)
		return
	}
	pv := s.policyView(sess.User.Team)
	p := alertsPage{pageBase: s.base(c, "Alerts", "alerts"), Filters: f, Filtered: f != (alertFilters{}),
		StatusOptions: []string{feedback.FeedUnlabelled, feedback.FeedLabelled, feedback.FeedSuppressed},
		TierOptions:   tierNames, Teams: pv.teams, Channels: pv.channels, ReturnURL: c.Request.URL.RequestURI()}
	vals := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "tier": f.Tier, "team": f.Team, "channel": f.Channel} {
		if v != "" {
			vals.Set(k, v)
		}
	}
	if page.NextCursor != "" {
		vals.Set("cursor", page.NextCursor)
		p.NextURL = "/alerts?" + vals.Encode()
	}
	switch {
	case f.Status == feedback.FeedUnlabelled && p.Unlabelled == 0:
		p.Verdict = "Every alert is labelled. Thank you."
	case p.Unlabelled > 0:
		p.Verdict = plural(p.Unlabelled, "alert of the last 7 days waits", "alerts of the last 7 days wait") + " for your label: useful or noise."
	default:
		p.Verdict = "Every alert is labelled."
	}
	p.Empty = "No alerts yet. Alerts fire when a scored conversation reaches an alerting tier; scores arrive from your chat platform (see Connect Chatwoot in the README)."
	if p.Filtered {
		p.Empty = "No alert matches these filters."
	}
	ids := make([]string, len(page.Alerts))
	for i, a := range page.Alerts {
		ids[i] = a.DecisionID
	}
	decisions, err := s.web.Decisions(ctx, ids)
	if err != nil {
		s.pageError(c, err)
		return
	}
	now := s.now()
	for _, a := range page.Alerts {
		row := alertRowView{ID: a.ID, ConversationID: a.ConversationID, ConversationURL: "/conversations/" + url.PathEscape(a.ConversationID),
			Channel: a.Channel, Tier: a.Tier.String(), Team: routeText(a.Team, a.Owner), Score: a.Score, CreatedAt: a.CreatedAt,
			Ago: templates.Ago(now, a.CreatedAt), Review: a.Kind == feedback.AlertKindReview, Labelled: len(a.Labels) > 0}
		if d, ok := decisions[a.DecisionID]; ok {
			row.Reasons = reasonText(decodeReasons(d.Reasons), pv.describe, 4)
		}
		if a.Kind == feedback.AlertKindSLA {
			row.SLA = true
			row.Reasons = "No first response within the SLA. " + row.Reasons
		}
		if a.Status != feedback.AlertStatusFired {
			row.Held = "held back: " + a.Reason
		}
		var others []string
		for _, l := range a.Labels {
			if l.Agent == sess.User.Email {
				row.MyLabel, row.MyNote = l.Label, l.Note
			} else {
				others = append(others, l.Agent+": "+l.Label)
			}
		}
		if len(others) > 0 {
			row.OtherLabels = "Also labelled by " + strings.Join(others, ", ")
		}
		p.Rows = append(p.Rows, row)
	}
	s.render(c, http.StatusOK, "alerts", p)
}

// handleLabelForm records the signed-in user's label of an alert. A
// script gets JSON with the new unlabelled count; a plain form goes back
// to the feed.
func (s *Server) handleLabelForm(c *gin.Context) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	id := c.Param("id")
	label, note := c.PostForm("label"), strings.TrimSpace(c.PostForm("note"))
	l, err := s.web.LabelAlert(ctx, id, sess.User.Email, label, note)
	if err != nil {
		if wantsJSON(c) {
			writeError(c, s.log, err)
			return
		}
		if errors.Is(err, feedback.ErrInvalid) {
			s.render(c, http.StatusUnprocessableEntity, "error", errorPage{pageBase: s.base(c, "Label refused", "alerts"),
				Heading: "The label was refused", Message: strings.TrimPrefix(err.Error(), "store: label alert "+strconv.Quote(id)+": invalid input: ")})
			return
		}
		s.pageError(c, err)
		return
	}
	s.emit(liveEvent{Type: "label", ConversationID: l.ConversationID, AlertID: l.AlertID})
	if wantsJSON(c) {
		n, err := s.web.CountAlerts(ctx, unlabelledQuery(s.now()))
		if err != nil {
			writeError(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"alert_id": l.AlertID, "label": l.Label, "note": l.Note, "unlabelled": n})
		return
	}
	back := localPath(c.PostForm("return"))
	if !strings.HasPrefix(back, "/alerts") {
		back = "/alerts"
	}
	c.Redirect(http.StatusSeeOther, back+"#a-"+url.PathEscape(id))
}

type decisionView struct {
	At                  time.Time
	Ago, Tier, ScoredBy string
	Score               float64
	Reasons             string
	Warnings            []string
}

// signalText shows a signal value as the sender wrote it in JSON, so a
// number sent as a string ("25000") can be told from a number (25000).
func signalText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// warningLines are a decision's warnings as the pages show them: the rule
// or signal, then what went wrong.
func warningLines(raw []byte) []string {
	var out []string
	for _, w := range feedback.DecodeWarnings(raw) {
		switch {
		case w.Rule != "":
			out = append(out, "Rule "+w.Rule+": "+w.Message)
		case w.Signal != "":
			out = append(out, "Signal "+w.Signal+": "+w.Message)
		default:
			out = append(out, w.Message)
		}
	}
	return out
}

type signalView struct{ Name, Value string }

type alertView struct {
	At                                          time.Time
	Ago, Kind, Tier, Status, Deliveries, Labels string
}

type eventView struct {
	At        time.Time
	Ago, Text string
}

type conversationPage struct {
	pageBase
	ID, Verdict, Channel, Tier, Route, Waiting, Reasons, Reviewed string
	Warnings                                                      []string
	Score                                                         float64
	TierOptions                                                   []string
	Chart                                                         template.HTML
	Decisions                                                     []decisionView
	Signals                                                       []signalView
	Alerts                                                        []alertView
	Events                                                        []eventView
	Chatwoot                                                      *chatwootPanel
}

// chatwootPanel is a Chatwoot conversation's link and write-back.
type chatwootPanel struct {
	DisplayID int64
	Link      string
	Writes    []chatwootWriteView
}

type chatwootWriteView struct {
	At                 time.Time
	Ago, What, Outcome string
}

// chatwootPanel shows what Hotlane wrote back to a Chatwoot
// conversation; nil for conversations of other platforms.
func (s *Server) chatwootPanel(ctx context.Context, id string, now time.Time) (*chatwootPanel, error) {
	cw := s.cfg.Chatwoot
	if cw == nil || !strings.HasPrefix(id, "chatwoot-") {
		return nil, nil
	}
	st, err := s.chatwoot.ChatwootConversation(ctx, id)
	if errors.Is(err, feedback.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := &chatwootPanel{DisplayID: st.DisplayID}
	if cw.URL != "" {
		p.Link = fmt.Sprintf("%s/app/accounts/%d/conversations/%d", strings.TrimRight(cw.URL, "/"), st.AccountID, st.DisplayID)
	}
	ws, err := s.chatwoot.ChatwootWrites(ctx, id)
	if err != nil {
		return nil, err
	}
	for i := len(ws) - 1; i >= 0; i-- {
		w := ws[i]
		p.Writes = append(p.Writes, chatwootWriteView{At: w.CreatedAt, Ago: templates.Ago(now, w.CreatedAt),
			What: describeChatwootWrite(w), Outcome: chatwootOutcome(w)})
	}
	return p, nil
}

// describeChatwootWrite says what a write asks of Chatwoot.
func describeChatwootWrite(w feedback.ChatwootWrite) string {
	var b struct {
		Priority   string         `json:"priority"`
		TeamID     int64          `json:"team_id"`
		AssigneeID int64          `json:"assignee_id"`
		Content    string         `json:"content"`
		Attrs      map[string]any `json:"custom_attributes"`
	}
	_ = json.Unmarshal(w.Body, &b)
	switch w.Kind {
	case feedback.ChatwootPriority:
		return "priority " + b.Priority
	case feedback.ChatwootTeam:
		return fmt.Sprintf("assign team %d", b.TeamID)
	case feedback.ChatwootAssignee:
		return fmt.Sprintf("assign agent %d", b.AssigneeID)
	case feedback.ChatwootNote:
		return "private note: " + b.Content
	case feedback.ChatwootAttributes:
		return fmt.Sprintf("attributes hotlane_tier %v, hotlane_score %v", b.Attrs[feedback.ChatwootTierAttr], b.Attrs[feedback.ChatwootScoreAttr])
	}
	return w.Kind
}

// chatwootOutcome says how a write went.
func chatwootOutcome(w feedback.ChatwootWrite) string {
	switch w.Status {
	case feedback.DeliveryDelivered:
		if w.Attempts > 1 {
			return fmt.Sprintf("delivered after %d attempts", w.Attempts)
		}
		return "delivered"
	case feedback.ChatwootSuperseded:
		return "replaced by a newer write before it was sent"
	case feedback.DeliveryFailed:
		return "failed: " + w.LastError
	}
	if w.Attempts > 0 {
		return fmt.Sprintf("retrying after %d failed attempts (%s)", w.Attempts, w.LastError)
	}
	return "queued"
}

func (s *Server) handleConversationPage(c *gin.Context) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	id := c.Param("id")
	conv, err := s.web.Conversation(ctx, id)
	if err != nil {
		s.pageError(c, err)
		return
	}
	decisions, err := s.web.ConversationDecisions(ctx, id, 50)
	if err != nil {
		s.pageError(c, err)
		return
	}
	events, err := s.web.ConversationEvents(ctx, id)
	if err != nil {
		s.pageError(c, err)
		return
	}
	alerts, err := s.web.Alerts(ctx, feedback.AlertQuery{ConversationID: id, Limit: 100})
	if err != nil {
		s.pageError(c, err)
		return
	}
	pv := s.policyView("")
	now := s.now()
	p := conversationPage{pageBase: s.base(c, "Conversation "+id, "queue"), ID: id, Channel: conv.Channel, Tier: conv.Tier.String(),
		Score: conv.Score, TierOptions: tierNames}
	if len(decisions) > 0 {
		last := decisions[0]
		it := feedback.NewQueueItem(conv, last.Route, last.Reasons, now, pv.sla)
		p.Route = routeText(it.Team, it.Owner)
		p.Reasons = reasonText(it.Reasons, pv.describe, 20)
		p.Warnings = warningLines(last.Warnings)
		switch {
		case conv.FirstResponseAt != nil:
			p.Waiting = "First response " + templates.Duration(conv.FirstResponseAt.Sub(conv.FirstSeenAt)) + " after the chat started."
		case it.PastSLA():
			p.Waiting = "Waiting " + templates.Duration(it.Waiting) + ", " + templates.Duration(it.SLALeft) + " past the SLA."
		case it.HasSLA:
			p.Waiting = "Waiting " + templates.Duration(it.Waiting) + "; " + templates.Duration(it.SLALeft) + " left to the SLA."
		default:
			p.Waiting = "Waiting " + templates.Duration(it.Waiting) + "."
		}
		var signals map[string]any
		_ = json.Unmarshal(last.Signals, &signals)
		for k, v := range signals {
			p.Signals = append(p.Signals, signalView{Name: k, Value: signalText(v)})
		}
		sort.Slice(p.Signals, func(i, j int) bool { return p.Signals[i].Name < p.Signals[j].Name })
	}
	p.Verdict = fmt.Sprintf("%s: %s, score %.2f. %s", id, conv.Tier, conv.Score, p.Waiting)
	for _, d := range decisions {
		p.Decisions = append(p.Decisions, decisionView{At: d.CreatedAt, Ago: templates.Ago(now, d.CreatedAt), Tier: d.Tier.String(),
			Score: d.Score, Reasons: reasonText(decodeReasons(d.Reasons), pv.describe, 3), ScoredBy: scoredBy(d),
			Warnings: warningLines(d.Warnings)})
	}
	p.Chart = scoreChart(decisions)
	for _, a := range alerts.Alerts {
		av := alertView{At: a.CreatedAt, Ago: templates.Ago(now, a.CreatedAt), Kind: a.Kind, Tier: a.Tier.String(), Status: a.Status}
		if a.Reason != "" {
			av.Status += " (" + a.Reason + ")"
		}
		ds, err := s.web.AlertDeliveries(ctx, a.ID)
		if err != nil {
			s.pageError(c, err)
			return
		}
		var parts []string
		for _, d := range ds {
			part := d.Status
			if d.Attempts > 1 {
				part += fmt.Sprintf(" after %d attempts", d.Attempts)
			}
			if d.LastError != "" && d.Status != feedback.DeliveryDelivered {
				part += " (" + d.LastError + ")"
			}
			parts = append(parts, part)
		}
		av.Deliveries = strings.Join(parts, "; ")
		if av.Deliveries == "" {
			av.Deliveries = "none"
		}
		var labels []string
		for _, l := range a.Labels {
			labels = append(labels, l.Agent+": "+l.Label)
		}
		av.Labels = strings.Join(labels, ", ")
		p.Alerts = append(p.Alerts, av)
	}
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		text := strings.ReplaceAll(e.Type, "_", " ")
		switch {
		case e.Type == feedback.EventTierFeedback:
			text = fmt.Sprintf("%s says the tier should be %s", orSomeone(e.Agent), e.Tier)
			if e.Agent == sess.User.Email && p.Reviewed == "" {
				p.Reviewed = e.Tier.String()
			}
		case e.Value != nil:
			text += fmt.Sprintf(", value %.2f", *e.Value)
		}
		p.Events = append(p.Events, eventView{At: e.At, Ago: templates.Ago(now, e.At), Text: text})
	}
	if p.Chatwoot, err = s.chatwootPanel(ctx, id, now); err != nil {
		s.pageError(c, err)
		return
	}
	s.render(c, http.StatusOK, "conversation", p)
}

func orSomeone(agent string) string {
	if agent == "" {
		return "an agent"
	}
	return agent
}

// handleReviewForm records the signed-in agent's review of a
// conversation's tier: confirming it or naming the right one.
func (s *Server) handleReviewForm(c *gin.Context) {
	sess := sessionOf(c)
	id := c.Param("id")
	value := c.PostForm("tier")
	if c.PostForm("action") == "correct" {
		value = c.PostForm("correct")
	}
	tier, ok := parseTierParam(value)
	if !ok || tier == model.TierNone {
		s.render(c, http.StatusUnprocessableEntity, "error", errorPage{pageBase: s.base(c, "Review refused", "queue"),
			Heading: "The review was refused", Message: "Choose urgent, high, medium or low."})
		return
	}
	now := s.now()
	ev, _, err := s.web.AddEvent(c.Request.Context(), feedback.Event{ConversationID: id, Type: feedback.EventTierFeedback,
		At: now, Tier: tier, Agent: sess.User.Email}, feedback.Idempotency{})
	if err != nil {
		s.pageError(c, err)
		return
	}
	s.emit(liveEvent{Type: "event", ConversationID: ev.ConversationID})
	c.Redirect(http.StatusSeeOther, "/conversations/"+url.PathEscape(id)+"#review")
}

// scoreChart draws a conversation's scores, oldest to newest, as SVG with
// the value of each point in its title.
func scoreChart(decisions []feedback.Decision) template.HTML {
	if len(decisions) < 2 {
		return ""
	}
	const w, h, pad = 600.0, 160.0, 28.0
	n := len(decisions)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="Score of each decision over time, from %.2f to %.2f">`, w, h,
		decisions[n-1].Score, decisions[0].Score)
	for _, y := range []float64{0, 0.5, 1} {
		py := h - pad - y*(h-2*pad)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#d8dee4"/><text x="4" y="%.1f" font-size="11" fill="#57606a">%.1f</text>`,
			pad, py, w-pad/2, py, py+4, y)
	}
	var pts []string
	for i := range decisions {
		d := decisions[n-1-i]
		x := pad + float64(i)*(w-1.5*pad)/float64(n-1)
		y := h - pad - d.Score*(h-2*pad)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#0b5cad"><title>%s: %.2f (%s)</title></circle>`, x, y,
			template.HTMLEscapeString(d.CreatedAt.UTC().Format("15:04:05")), d.Score, d.Tier)
	}
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#0b5cad" stroke-width="2"/>`, strings.Join(pts, " "))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="#57606a">decisions, oldest to newest</text></svg>`, pad, h-6)
	return template.HTML(b.String()) // built above from numbers and escaped text
}

// scoredBy names the ruleset and model a decision was made with.
func scoredBy(d feedback.Decision) string {
	if d.ModelVersion == 0 {
		return fmt.Sprintf("ruleset %d, rules only", d.PolicyVersion)
	}
	return fmt.Sprintf("ruleset %d, model %d", d.PolicyVersion, d.ModelVersion)
}
