package server

import (
	"errors"
	"fmt"
	"net/http"
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

// The admins' settings: scoring (thresholds per channel, SLAs per tier,
// teams and their hourly alert budgets), alert destinations per team and
// tier, API keys and users. Thresholds, SLAs and budgets live in the
// policy document, so saving them publishes a new ruleset version.

type settingsThresholdRow struct {
	Channel              string
	Urgent, High, Medium string
	Default              bool
}

type settingsTeamRow struct {
	Team, Budget, Routes string
	Destinations, Users  int
}

type settingsDestinationRow struct {
	ID, Team, Kind, URL, Tiers, Ago string
	Lead, Webhook, Rotated          bool
	CreatedAt                       time.Time
}

type settingsKeyRow struct {
	ID                        int64
	Name, Prefix, Scopes, Ago string
	Revoked                   bool
	CreatedAt                 time.Time
}

type settingsUserRow struct {
	Email, Role, Team, Ago string
	Disabled, Self         bool
	CreatedAt              time.Time
}

type settingsPage struct {
	pageBase
	Section, Verdict, Flash, Secret, SecretLabel string
	Problems                                     []problemView
	// Scoring.
	LiveVersion              int
	Thresholds               []settingsThresholdRow
	SLA                      map[string]string
	Teams                    []settingsTeamRow
	TierNames, Kinds, Scopes []string
	Roles                    []string
	Destinations             []settingsDestinationRow
	Keys                     []settingsKeyRow
	Users                    []settingsUserRow
	KnownTeams               []string
}

func (s *Server) settingsBase(c *gin.Context, section, title string) settingsPage {
	roles := make([]string, 0, len(feedback.Roles))
	for _, r := range feedback.Roles {
		roles = append(roles, string(r))
	}
	return settingsPage{pageBase: s.base(c, title, "settings"), Section: section, TierNames: tierNames,
		Kinds: feedback.DestinationKinds, Scopes: []string{feedback.ScopeScore, feedback.ScopeFeedback, feedback.ScopeAdmin}, Roles: roles}
}

func (s *Server) handleSettingsPage(c *gin.Context) {
	c.Redirect(http.StatusSeeOther, "/settings/scoring")
}

// liveDoc reads the live policy document.
func (s *Server) liveDoc(c *gin.Context) (feedback.PolicyVersion, model.PolicyDoc, error) {
	pv, err := s.policies.LivePolicy(c.Request.Context())
	if err != nil {
		return pv, model.PolicyDoc{}, err
	}
	doc, err := model.ParsePolicy(pv.Document)
	return pv, doc, err
}

// knownTeams lists every team the settings know of: in routes, budgets,
// destinations and users.
func knownTeams(doc model.PolicyDoc, dests []feedback.Destination, users []feedback.User) []string {
	set := map[string]bool{}
	for _, r := range doc.Routes {
		set[r.Team] = true
	}
	if doc.Alerts != nil {
		for t := range doc.Alerts.HourlyBudget {
			if t != "default" {
				set[t] = true
			}
		}
	}
	for _, d := range dests {
		set[d.Team] = true
	}
	for _, u := range users {
		if u.Team != "" {
			set[u.Team] = true
		}
	}
	delete(set, "")
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (s *Server) fillScoring(c *gin.Context, p *settingsPage, doc model.PolicyDoc, version int) error {
	ctx := c.Request.Context()
	dests, err := s.destinations.ListDestinations(ctx, "")
	if err != nil {
		return err
	}
	users, err := s.web.Users(ctx)
	if err != nil {
		return err
	}
	p.LiveVersion = version
	channels := make([]string, 0, len(doc.Thresholds))
	for ch := range doc.Thresholds {
		if ch != "default" {
			channels = append(channels, ch)
		}
	}
	sort.Strings(channels)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, ch := range append([]string{"default"}, channels...) {
		th := doc.Thresholds[ch]
		p.Thresholds = append(p.Thresholds, settingsThresholdRow{Channel: ch, Urgent: f(th.Urgent), High: f(th.High), Medium: f(th.Medium), Default: ch == "default"})
	}
	p.SLA = map[string]string{}
	if doc.Alerts != nil && doc.Alerts.SLA != nil {
		for k, v := range doc.Alerts.SLA {
			p.SLA[k] = v
		}
	} else {
		p.SLA["urgent"], p.SLA["high"] = model.DefaultSLAUrgent.String(), model.DefaultSLAHigh.String()
	}
	budget := func(team string) string {
		if doc.Alerts != nil {
			if n, ok := doc.Alerts.HourlyBudget[team]; ok {
				return strconv.Itoa(n)
			}
		}
		return ""
	}
	def := budget("default")
	if def == "" {
		def = strconv.Itoa(model.DefaultHourlyBudget)
	}
	p.Teams = append(p.Teams, settingsTeamRow{Team: "default", Budget: def, Routes: "every team without its own budget"})
	for _, team := range knownTeams(doc, dests, users) {
		row := settingsTeamRow{Team: team, Budget: budget(team)}
		var routes []string
		for _, r := range doc.Routes {
			if r.Team != team {
				continue
			}
			var when []string
			if r.Tier != "" {
				when = append(when, r.Tier)
			}
			if r.Channel != "" {
				when = append(when, "on "+r.Channel)
			}
			if r.Rule != "" {
				when = append(when, "rule "+r.Rule)
			}
			if len(when) == 0 {
				when = append(when, "everything else")
			}
			routes = append(routes, strings.Join(when, " "))
		}
		row.Routes = strings.Join(routes, "; ")
		for _, d := range dests {
			if d.Team == team {
				row.Destinations++
			}
		}
		for _, u := range users {
			if u.Team == team && !u.Disabled() {
				row.Users++
			}
		}
		p.Teams = append(p.Teams, row)
	}
	return nil
}

func (s *Server) handleScoringSettingsPage(c *gin.Context) {
	p := s.settingsBase(c, "scoring", "Settings: scoring")
	pv, doc, err := s.liveDoc(c)
	switch {
	case errors.Is(err, feedback.ErrNotFound):
		p.Verdict = "No ruleset is live yet: publish one on the rules page first; thresholds, SLAs and budgets are part of it."
		s.render(c, http.StatusOK, "settings", p)
		return
	case err != nil:
		s.pageError(c, err)
		return
	}
	if err := s.fillScoring(c, &p, doc, pv.Version); err != nil {
		s.pageError(c, err)
		return
	}
	p.Verdict = fmt.Sprintf("Thresholds, SLAs and alert budgets of ruleset %d, live.", pv.Version)
	if c.Query("done") == "saved" {
		p.Flash = fmt.Sprintf("Published as ruleset version %s; every process uses it within seconds.", c.Query("v"))
	}
	s.render(c, http.StatusOK, "settings", p)
}

// handleScoringSettingsForm publishes the live ruleset with the form's
// thresholds, SLAs and budgets as a new version.
func (s *Server) handleScoringSettingsForm(c *gin.Context) {
	pv, doc, err := s.liveDoc(c)
	if err != nil {
		s.pageError(c, err)
		return
	}
	if v := c.PostForm("version"); v != strconv.Itoa(pv.Version) {
		s.render(c, http.StatusConflict, "error", errorPage{pageBase: s.base(c, "Not saved", "settings"), Heading: "Not saved",
			Message: fmt.Sprintf("The live ruleset changed since the page was opened (it is now version %d): open the settings again and redo the change.", pv.Version)})
		return
	}
	before, _ := doc.Canonical()
	hadAlerts := doc.Alerts != nil
	hadSLA := hadAlerts && doc.Alerts.SLA != nil
	hadDefaultBudget := false
	if hadAlerts {
		_, hadDefaultBudget = doc.Alerts.HourlyBudget["default"]
	}
	var problems []problemView
	bad := func(where, msg string) { problems = append(problems, problemView{Where: where, Message: msg}) }
	num := func(field, raw string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			bad(field, "must be a number from 0 to 1")
		}
		return v
	}
	th := map[string]model.Thresholds{}
	for ch := range doc.Thresholds {
		if ch != "default" && c.PostForm("th."+ch+".remove") == "1" {
			continue
		}
		th[ch] = model.Thresholds{Urgent: num("thresholds."+ch+".urgent", c.PostForm("th."+ch+".urgent")),
			High: num("thresholds."+ch+".high", c.PostForm("th."+ch+".high")), Medium: num("thresholds."+ch+".medium", c.PostForm("th."+ch+".medium"))}
	}
	if ch := strings.TrimSpace(c.PostForm("new_channel")); ch != "" {
		if _, dup := th[ch]; dup {
			bad("thresholds."+ch, "the channel already has thresholds")
		} else {
			th[ch] = model.Thresholds{Urgent: num("thresholds."+ch+".urgent", c.PostForm("new_urgent")),
				High: num("thresholds."+ch+".high", c.PostForm("new_high")), Medium: num("thresholds."+ch+".medium", c.PostForm("new_medium"))}
		}
	}
	doc.Thresholds = th
	if doc.Alerts == nil {
		doc.Alerts = &model.AlertsSpec{}
	}
	sla := map[string]string{}
	for _, t := range tierNames {
		if v := strings.TrimSpace(c.PostForm("sla." + t)); v != "" {
			sla[t] = v
		}
	}
	if len(sla) == 0 {
		bad("sla", "give at least one tier an SLA: with none listed, urgent and high take the defaults (60 s and 180 s)")
	}
	// Values the page showed as defaults stay defaults when left as shown.
	if !hadSLA && len(sla) == 2 && sla["urgent"] == model.DefaultSLAUrgent.String() && sla["high"] == model.DefaultSLAHigh.String() {
		sla = nil
	}
	doc.Alerts.SLA = sla
	budgets := map[string]int{}
	readBudget := func(team, raw string) {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			bad("hourly_budget."+team, "must be a whole number of alerts an hour")
			return
		}
		budgets[team] = n
	}
	for _, team := range c.PostFormArray("team") {
		readBudget(team, c.PostForm("budget."+team))
	}
	if team := strings.TrimSpace(c.PostForm("new_team")); team != "" {
		readBudget(team, c.PostForm("new_budget"))
	}
	if n, ok := budgets["default"]; ok && !hadDefaultBudget && n == model.DefaultHourlyBudget {
		delete(budgets, "default")
	}
	if len(budgets) == 0 {
		budgets = nil
	}
	doc.Alerts.HourlyBudget = budgets
	if !hadAlerts && doc.Alerts.SLA == nil && doc.Alerts.HourlyBudget == nil {
		doc.Alerts = nil
	}
	if len(problems) == 0 {
		if _, err := model.CompilePolicy(doc); err != nil {
			problems = problemViews(err, doc)
		}
	}
	if len(problems) > 0 {
		p := s.settingsBase(c, "scoring", "Settings: scoring")
		if err := s.fillScoring(c, &p, doc, pv.Version); err != nil {
			s.pageError(c, err)
			return
		}
		p.Problems = problems
		p.Verdict = "Not saved: fix what is marked below."
		s.render(c, http.StatusUnprocessableEntity, "settings", p)
		return
	}
	canonical, err := doc.Canonical()
	if err != nil {
		s.pageError(c, err)
		return
	}
	if string(canonical) == string(before) {
		c.Redirect(http.StatusSeeOther, "/settings/scoring")
		return
	}
	source, err := doc.YAML()
	if err != nil {
		s.pageError(c, err)
		return
	}
	published, err := s.policies.PublishPolicy(c.Request.Context(), canonical, string(source), sessionOf(c).User.Email,
		fmt.Sprintf("settings: thresholds, SLAs and budgets (from version %d)", pv.Version))
	if err != nil {
		s.pageError(c, err)
		return
	}
	s.changed(c, feedback.AuditRulesetPublish, fmt.Sprintf("ruleset %d", published.Version),
		map[string]any{"from": "settings", "thresholds": doc.Thresholds, "sla": doc.Alerts.SLA, "hourly_budget": doc.Alerts.HourlyBudget})
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/settings/scoring?done=saved&v=%d", published.Version))
}

func (s *Server) handleDestinationSettingsPage(c *gin.Context) {
	s.renderDestinations(c, http.StatusOK, s.settingsBase(c, "destinations", "Settings: destinations"))
}

func (s *Server) renderDestinations(c *gin.Context, status int, p settingsPage) {
	ctx := c.Request.Context()
	dests, err := s.destinations.ListDestinations(ctx, "")
	if err != nil {
		s.pageError(c, err)
		return
	}
	users, err := s.web.Users(ctx)
	if err != nil {
		s.pageError(c, err)
		return
	}
	var doc model.PolicyDoc
	if _, d, err := s.liveDoc(c); err == nil {
		doc = d
	}
	p.KnownTeams = knownTeams(doc, dests, users)
	now := s.now()
	for _, d := range dests {
		row := settingsDestinationRow{ID: d.ID, Team: d.Team, Kind: d.Kind, URL: d.URL, Lead: d.Lead, CreatedAt: d.CreatedAt,
			Ago: templates.Ago(now, d.CreatedAt), Webhook: d.Kind == feedback.DestinationWebhook, Rotated: d.HasPreviousSecret, Tiers: "every tier"}
		if d.Kind == feedback.DestinationSlack {
			row.URL = redactURL(d.URL)
		}
		if len(d.Tiers) > 0 {
			var names []string
			for _, t := range d.Tiers {
				names = append(names, t.String())
			}
			row.Tiers = strings.Join(names, ", ")
		}
		p.Destinations = append(p.Destinations, row)
	}
	switch {
	case len(dests) == 0:
		p.Verdict = "No alert destinations: alerts show in the in-app feed only. Add Slack or a webhook for a team below."
	default:
		p.Verdict = fmt.Sprintf("%s for %s.", plural(len(dests), "destination", "destinations"), plural(len(p.KnownTeams), "team", "teams"))
	}
	if p.Flash == "" {
		switch c.Query("done") {
		case "deleted":
			p.Flash = "Destination deleted; its pending deliveries are canceled."
		}
	}
	s.render(c, status, "settings", p)
}

func (s *Server) handleCreateDestinationForm(c *gin.Context) {
	var tiers []model.Tier
	for _, name := range c.PostFormArray("tiers") {
		if t, err := model.ParseTier(name); err == nil && t != model.TierNone && !slices.Contains(tiers, t) {
			tiers = append(tiers, t)
		}
	}
	nd := feedback.NewDestination{Team: strings.TrimSpace(c.PostForm("team")), Kind: c.PostForm("kind"),
		URL: strings.TrimSpace(c.PostForm("url")), Lead: c.PostForm("lead") == "1", Tiers: tiers}
	p := s.settingsBase(c, "destinations", "Settings: destinations")
	err := feedback.ValidateDestination(nd)
	if err == nil && (!model.PlainText(nd.Team) || !model.PlainText(nd.URL)) {
		err = fmt.Errorf("%w: team and url must be valid UTF-8 without control characters", feedback.ErrInvalid)
	}
	if err == nil && nd.Kind != feedback.DestinationFeed {
		err = s.cfg.Addresses.CheckURL(nd.URL)
	}
	if err == nil {
		var d feedback.Destination
		var secret string
		d, secret, err = s.destinations.CreateDestination(c.Request.Context(), nd)
		if err == nil {
			s.audit(c, feedback.AuditDestinationCreate, "destination "+d.ID, nil, toDestinationJSON(d, "", false))
			p.Flash = fmt.Sprintf("Destination added for team %s.", d.Team)
			if secret != "" {
				p.Secret, p.SecretLabel = secret, "The webhook's signing secret, shown once: copy it to the receiver now."
			}
			s.renderDestinations(c, http.StatusCreated, p)
			return
		}
	}
	if !errors.Is(err, feedback.ErrInvalid) {
		s.pageError(c, err)
		return
	}
	p.Problems = []problemView{{Message: strings.TrimPrefix(err.Error(), feedback.ErrInvalid.Error()+": ")}}
	s.renderDestinations(c, http.StatusUnprocessableEntity, p)
}

func (s *Server) handleDeleteDestinationForm(c *gin.Context) {
	id := c.Param("id")
	if err := s.destinations.DeleteDestination(c.Request.Context(), id); err != nil {
		s.pageError(c, err)
		return
	}
	s.audit(c, feedback.AuditDestinationDelete, "destination "+id, map[string]any{"id": id}, nil)
	c.Redirect(http.StatusSeeOther, "/settings/destinations?done=deleted")
}

func (s *Server) handleRotateDestinationForm(c *gin.Context) {
	id := c.Param("id")
	d, secret, err := s.destinations.RotateDestinationSecret(c.Request.Context(), id, defaultRotationGrace)
	if err != nil {
		s.pageError(c, err)
		return
	}
	s.audit(c, feedback.AuditDestinationRotate, "destination "+id, nil, map[string]any{"previous_secret_expires_at": d.PreviousSecretExpiresAt})
	p := s.settingsBase(c, "destinations", "Settings: destinations")
	p.Flash = "Secret rotated: the old one keeps signing for 24 hours beside the new one, so the receiver can switch."
	p.Secret, p.SecretLabel = secret, "The new signing secret, shown once: copy it to the receiver now."
	s.renderDestinations(c, http.StatusOK, p)
}

func (s *Server) handleKeySettingsPage(c *gin.Context) {
	s.renderKeys(c, http.StatusOK, s.settingsBase(c, "keys", "Settings: API keys"))
}

func (s *Server) renderKeys(c *gin.Context, status int, p settingsPage) {
	keys, err := s.web.ListAPIKeys(c.Request.Context())
	if err != nil {
		s.pageError(c, err)
		return
	}
	now, active := s.now(), 0
	for _, k := range keys {
		p.Keys = append(p.Keys, settingsKeyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: strings.Join(k.Scopes, ", "),
			Revoked: k.RevokedAt != nil, CreatedAt: k.CreatedAt, Ago: templates.Ago(now, k.CreatedAt)})
		if k.RevokedAt == nil {
			active++
		}
	}
	p.Verdict = fmt.Sprintf("%s in use.", plural(active, "API key", "API keys"))
	if p.Flash == "" && c.Query("done") == "revoked" {
		p.Flash = "Key revoked: requests with it are refused within seconds."
	}
	s.render(c, status, "settings", p)
}

func (s *Server) handleCreateKeyForm(c *gin.Context) {
	name, scopes := strings.TrimSpace(c.PostForm("name")), c.PostFormArray("scopes")
	p := s.settingsBase(c, "keys", "Settings: API keys")
	err := feedback.ValidateScopes(scopes)
	if err == nil && (name == "" || len(name) > 128 || !model.PlainText(name)) {
		err = fmt.Errorf("%w: name: 1 to 128 characters of plain text", feedback.ErrInvalid)
	}
	if err == nil {
		k, secret, cerr := s.web.CreateAPIKey(c.Request.Context(), name, scopes)
		if cerr == nil {
			s.audit(c, feedback.AuditAPIKeyCreate, fmt.Sprintf("apikey %d", k.ID), nil, map[string]any{"name": k.Name, "scopes": k.Scopes})
			p.Flash = fmt.Sprintf("Key %q created.", k.Name)
			p.Secret, p.SecretLabel = secret, "The key, shown once: copy it now. Send it as Authorization: Bearer <key>."
			s.renderKeys(c, http.StatusCreated, p)
			return
		}
		err = cerr
	}
	if !errors.Is(err, feedback.ErrInvalid) {
		s.pageError(c, err)
		return
	}
	p.Problems = []problemView{{Message: strings.TrimPrefix(err.Error(), feedback.ErrInvalid.Error()+": ")}}
	s.renderKeys(c, http.StatusUnprocessableEntity, p)
}

func (s *Server) handleRevokeKeyForm(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		s.pageError(c, feedback.ErrNotFound)
		return
	}
	if err := s.web.RevokeAPIKey(c.Request.Context(), id); err != nil {
		s.pageError(c, err)
		return
	}
	s.keys.forget(id)
	s.audit(c, feedback.AuditAPIKeyRevoke, fmt.Sprintf("apikey %d", id), map[string]any{"id": id}, map[string]any{"revoked": true})
	c.Redirect(http.StatusSeeOther, "/settings/keys?done=revoked")
}

func (s *Server) handleUserSettingsPage(c *gin.Context) {
	s.renderUsers(c, http.StatusOK, s.settingsBase(c, "users", "Settings: users"))
}

func (s *Server) renderUsers(c *gin.Context, status int, p settingsPage) {
	users, err := s.web.Users(c.Request.Context())
	if err != nil {
		s.pageError(c, err)
		return
	}
	me, now, active := sessionOf(c).User.Email, s.now(), 0
	for _, u := range users {
		p.Users = append(p.Users, settingsUserRow{Email: u.Email, Role: string(u.Role), Team: u.Team, Disabled: u.Disabled(),
			Self: u.Email == me, CreatedAt: u.CreatedAt, Ago: templates.Ago(now, u.CreatedAt)})
		if !u.Disabled() {
			active++
		}
	}
	p.Verdict = fmt.Sprintf("%s can sign in.", plural(active, "user", "users"))
	if p.Flash == "" && c.Query("done") == "disabled" {
		p.Flash = "User disabled: their sessions are ended and they can no longer sign in."
	}
	s.render(c, status, "settings", p)
}

func (s *Server) handleCreateUserForm(c *gin.Context) {
	p := s.settingsBase(c, "users", "Settings: users")
	nu := feedback.NewUser{Email: strings.ToLower(strings.TrimSpace(c.PostForm("email"))), Role: feedback.Role(c.PostForm("role")),
		Team: strings.TrimSpace(c.PostForm("team"))}
	hash, err := feedback.HashPassword(c.PostForm("password"), feedback.DefaultBcryptCost)
	if err == nil {
		nu.PasswordHash = hash
		err = feedback.ValidateUser(nu)
	}
	if err == nil {
		u, cerr := s.web.CreateUser(c.Request.Context(), nu)
		if cerr == nil {
			s.audit(c, feedback.AuditUserCreate, "user "+u.Email, nil, map[string]any{"email": u.Email, "role": u.Role, "team": u.Team})
			p.Flash = fmt.Sprintf("%s can now sign in as %s.", u.Email, u.Role)
			s.renderUsers(c, http.StatusCreated, p)
			return
		}
		err = cerr
	}
	switch {
	case errors.Is(err, feedback.ErrConflict):
		p.Problems = []problemView{{Message: "a user with this email already exists"}}
		s.renderUsers(c, http.StatusConflict, p)
	case errors.Is(err, feedback.ErrInvalid):
		p.Problems = []problemView{{Message: strings.TrimPrefix(err.Error(), feedback.ErrInvalid.Error()+": ")}}
		s.renderUsers(c, http.StatusUnprocessableEntity, p)
	default:
		s.pageError(c, err)
	}
}

func (s *Server) handleDisableUserForm(c *gin.Context) {
	refuse := func(status int, msg string) {
		p := s.settingsBase(c, "users", "Settings: users")
		p.Problems = []problemView{{Message: msg}}
		s.renderUsers(c, status, p)
	}
	email, err := feedback.NormalizeEmail(c.PostForm("email"))
	if err != nil {
		refuse(http.StatusUnprocessableEntity, "no such user")
		return
	}
	if email == sessionOf(c).User.Email {
		refuse(http.StatusConflict, "you cannot disable yourself: ask another admin")
		return
	}
	// Only an active admin gets here, and not for themselves, so an admin
	// remains.
	if err := s.web.DisableUser(c.Request.Context(), email); err != nil {
		s.pageError(c, err)
		return
	}
	s.audit(c, feedback.AuditUserDisable, "user "+email, map[string]any{"disabled": false}, map[string]any{"disabled": true})
	c.Redirect(http.StatusSeeOther, "/settings/users?done=disabled")
}
