package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/templates"
)

// The web UI: server-rendered pages for the people who work the queue.
// Pages read the store through webStore, as the API does, and never call
// the API over HTTP. A page answers only a signed-in user with the role it
// needs; every state-changing request must come from the UI's own origin.

// sessionCookie is the cookie that carries a session token.
const sessionCookie = "hotlane_session"

// webStore is what the pages need from the store.
type webStore interface {
	UserByEmail(ctx context.Context, email string) (feedback.User, string, error)
	CreateSession(ctx context.Context, userID int64, tokenHash string, at time.Time) (feedback.Session, error)
	Session(ctx context.Context, tokenHash string, at time.Time) (feedback.Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	OpenConversations(ctx context.Context, q feedback.QueueQuery) (feedback.QueuePage, error)
	CountAlerts(ctx context.Context, q feedback.AlertQuery) (int, error)
	Alerts(ctx context.Context, q feedback.AlertQuery) (feedback.AlertPage, error)
	Alert(ctx context.Context, id string) (feedback.Alert, error)
	LabelAlert(ctx context.Context, alertID, agent, label, note string) (feedback.AlertLabel, error)
	Conversation(ctx context.Context, id string) (feedback.Conversation, error)
	ConversationDecisions(ctx context.Context, conversationID string, limit int) ([]feedback.Decision, error)
	ConversationEvents(ctx context.Context, conversationID string) ([]feedback.Event, error)
	AlertDeliveries(ctx context.Context, alertID string) ([]feedback.Delivery, error)
	AddEvent(ctx context.Context, e feedback.Event, idem feedback.Idempotency) (feedback.Event, bool, error)
	Decisions(ctx context.Context, ids []string) (map[string]feedback.Decision, error)
	WarnedDecisions(ctx context.Context, since time.Time, limit int) ([]feedback.Decision, error)
	// Settings.
	Users(ctx context.Context) ([]feedback.User, error)
	CreateUser(ctx context.Context, u feedback.NewUser) (feedback.User, error)
	DisableUser(ctx context.Context, email string) error
	ListAPIKeys(ctx context.Context) ([]feedback.APIKey, error)
	CreateAPIKey(ctx context.Context, name string, scopes []string) (feedback.APIKey, string, error)
	RevokeAPIKey(ctx context.Context, id int64) error
}

// pageRoute is one page or action of the UI and the least role it needs.
type pageRoute struct {
	method, path string
	role         feedback.Role // "" for pages open to anyone (login)
	handler      gin.HandlerFunc
}

// pageRoutes lists every page and action. Tests walk it: a route missing
// from it has no role and fails them.
func (s *Server) pageRoutes() []pageRoute {
	return []pageRoute{
		{http.MethodGet, "/login", "", s.handleLoginPage},
		{http.MethodGet, apiRefPath, "", s.handleAPIRefPage},
		{http.MethodPost, "/login", "", s.handleLogin},
		{http.MethodPost, "/logout", feedback.RoleAgent, s.handleLogout},
		{http.MethodGet, "/", feedback.RoleAgent, s.handleQueuePage},
		{http.MethodGet, "/events", feedback.RoleAgent, s.handlePageEvents},
		{http.MethodGet, "/alerts", feedback.RoleAgent, s.handleAlertsPage},
		{http.MethodPost, "/alerts/:id/label", feedback.RoleAgent, s.handleLabelForm},
		{http.MethodGet, "/conversations/:id", feedback.RoleAgent, s.handleConversationPage},
		{http.MethodPost, "/conversations/:id/review", feedback.RoleAgent, s.handleReviewForm},
		{http.MethodGet, "/reports", feedback.RoleLead, s.handleReportsPage},
		{http.MethodGet, "/reports/:id", feedback.RoleLead, s.handleReportPage},
		{http.MethodPost, "/reports/:id/apply", feedback.RoleLead, s.handleApplyReportForm},
		{http.MethodGet, "/models", feedback.RoleLead, s.handleModelsPage},
		{http.MethodPost, "/models/:version/promote", feedback.RoleLead, s.handlePromoteModelForm},
		{http.MethodPost, "/models/rollback", feedback.RoleLead, s.handleRollbackModelForm},
		{http.MethodGet, "/rules", feedback.RoleLead, s.handleRulesPage},
		{http.MethodPost, "/rules/drafts", feedback.RoleLead, s.handleNewDraftForm},
		{http.MethodGet, "/rules/:version", feedback.RoleLead, s.handleRulesetPage},
		{http.MethodPost, "/rules/:version", feedback.RoleLead, s.handleSaveDraftForm},
		{http.MethodPost, "/rules/:version/publish", feedback.RoleLead, s.handlePublishDraftForm},
		{http.MethodPost, "/rules/:version/backtest", feedback.RoleLead, s.handleBacktestForm},
		{http.MethodPost, "/rules/:version/rollback", feedback.RoleLead, s.handleRollbackRulesetForm},
		{http.MethodPost, "/rules/:version/delete", feedback.RoleLead, s.handleDeleteDraftForm},
		{http.MethodGet, "/audit", feedback.RoleLead, s.handleAuditPage},
		{http.MethodGet, "/settings", feedback.RoleAdmin, s.handleSettingsPage},
		{http.MethodGet, "/settings/scoring", feedback.RoleAdmin, s.handleScoringSettingsPage},
		{http.MethodPost, "/settings/scoring", feedback.RoleAdmin, s.handleScoringSettingsForm},
		{http.MethodGet, "/settings/destinations", feedback.RoleAdmin, s.handleDestinationSettingsPage},
		{http.MethodPost, "/settings/destinations", feedback.RoleAdmin, s.handleCreateDestinationForm},
		{http.MethodPost, "/settings/destinations/:id/delete", feedback.RoleAdmin, s.handleDeleteDestinationForm},
		{http.MethodPost, "/settings/destinations/:id/rotate", feedback.RoleAdmin, s.handleRotateDestinationForm},
		{http.MethodGet, "/settings/keys", feedback.RoleAdmin, s.handleKeySettingsPage},
		{http.MethodPost, "/settings/keys", feedback.RoleAdmin, s.handleCreateKeyForm},
		{http.MethodPost, "/settings/keys/:id/revoke", feedback.RoleAdmin, s.handleRevokeKeyForm},
		{http.MethodGet, "/settings/users", feedback.RoleAdmin, s.handleUserSettingsPage},
		{http.MethodPost, "/settings/users", feedback.RoleAdmin, s.handleCreateUserForm},
		{http.MethodPost, "/settings/users/disable", feedback.RoleAdmin, s.handleDisableUserForm},
		{http.MethodGet, "/kpis", feedback.RoleLead, s.handleKPIsPage},
	}
}

// webRoutes registers the pages, their static files and their middleware.
func (s *Server) webRoutes(r *gin.Engine) {
	static := http.FileServerFS(templates.Static())
	r.GET("/static/*path", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Header("X-Content-Type-Options", "nosniff")
		c.Request.URL.Path = c.Param("path")
		static.ServeHTTP(c.Writer, c.Request)
	})
	pages := r.Group("/", withPageHeaders(), withSameOrigin(s.log))
	for _, p := range s.pageRoutes() {
		handlers := []gin.HandlerFunc{p.handler}
		if p.role != "" {
			handlers = []gin.HandlerFunc{s.withSession(), requireRole(p.role), p.handler}
		}
		pages.Handle(p.method, p.path, handlers...)
	}
}

// withPageHeaders sets the security headers of every page: scripts and
// styles only from this server (no inline script), no framing, no
// referrer to other sites, no caching of pages that hold customer data.
func withPageHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		c.Next()
	}
}

// withSameOrigin refuses state-changing requests that a browser marks as
// coming from another site (Sec-Fetch-Site, or an Origin that is not this
// host): the cross-site request forgery defence of Go's
// http.CrossOriginProtection. Requests without either header do not come
// from a browser page and carry no ambient session by accident.
func withSameOrigin(log *slog.Logger) gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			log.Warn("cross-origin request refused", slog.String("request_id", requestID(c)), slog.String("path", c.FullPath()))
			c.Abort()
			c.Data(http.StatusForbidden, "text/plain; charset=utf-8", []byte("Cross-site request refused.\n"))
			return
		}
		c.Next()
	}
}

const ctxSession = "hotlane.session"

func sessionOf(c *gin.Context) feedback.Session {
	v, _ := c.Get(ctxSession)
	sess, _ := v.(feedback.Session)
	return sess
}

// withSession loads the signed-in user's session from the cookie. Without
// one, a page leads to the login page and back; a script's request gets
// 401.
func (s *Server) withSession() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, err := c.Cookie(sessionCookie)
		var sess feedback.Session
		if err == nil && token != "" {
			if s.anonSpent(c) {
				return
			}
			sess, err = s.web.Session(c.Request.Context(), feedback.HashSessionToken(token), s.now())
		} else {
			err = feedback.ErrNotFound
		}
		switch {
		case err == nil:
			c.Set(ctxSession, sess)
			c.Next()
		case errors.Is(err, feedback.ErrNotFound):
			if s.anonFailed(c) {
				return
			}
			s.clearSessionCookie(c)
			if wantsJSON(c) || c.Request.Method != http.MethodGet {
				c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": &APIError{Code: "unauthorized", Message: "sign in again"}})
				return
			}
			c.Abort()
			c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		default:
			s.pageError(c, err)
		}
	}
}

// requireRole refuses a signed-in user whose role is below min.
func requireRole(min feedback.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !sessionOf(c).User.Role.AtLeast(min) {
			c.Abort()
			c.Data(http.StatusForbidden, "text/html; charset=utf-8", []byte("<!doctype html><title>Forbidden</title><p>Your role cannot open this page. <a href=\"/\">Back to the queue</a></p>\n"))
			return
		}
		c.Next()
	}
}

func wantsJSON(c *gin.Context) bool {
	return strings.Contains(c.GetHeader("Accept"), "application/json")
}

func (s *Server) setSessionCookie(c *gin.Context, token string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", MaxAge: int(feedback.SessionMax.Seconds()),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (s *Server) clearSessionCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// pageBase is what the layout needs of every page.
type pageBase struct {
	Title      string
	Nav        string
	User       *feedback.User
	Unlabelled int
	Now        time.Time
	// Lead shows the leads' pages in the navigation, Admin the settings.
	Lead, Admin bool
}

func (s *Server) base(c *gin.Context, title, nav string) pageBase {
	sess := sessionOf(c)
	b := pageBase{Title: title, Nav: nav, Now: s.now()}
	if sess.User.ID != 0 {
		u := sess.User
		b.User = &u
		b.Lead = u.Role.AtLeast(feedback.RoleLead)
		b.Admin = u.Role.AtLeast(feedback.RoleAdmin)
		n, err := s.web.CountAlerts(c.Request.Context(), unlabelledQuery(b.Now))
		if err == nil {
			b.Unlabelled = n
		} else {
			s.log.Warn("count unlabelled alerts", slog.String("request_id", requestID(c)), slog.Any("err", err))
		}
	}
	return b
}

// unlabelledWindow is how far back the navigation counts unlabelled
// alerts: a week of work to catch up on, and a count that stays cheap on a
// database that has grown.
const unlabelledWindow = 7 * 24 * time.Hour

func unlabelledQuery(now time.Time) feedback.AlertQuery {
	return feedback.AlertQuery{Status: feedback.FeedUnlabelled, Since: now.Add(-unlabelledWindow)}
}

// render writes page with data, or an error page when it does not render.
func (s *Server) render(c *gin.Context, status int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages.Render(&buf, page, data); err != nil {
		s.log.Error("render page", slog.String("request_id", requestID(c)), slog.String("page", page), slog.Any("err", err))
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("The page could not be shown; the error is logged.\n"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

type errorPage struct {
	pageBase
	Heading, Message string
}

// pageError answers a failed page: not found as 404, a refused value as
// 422 and a conflict as 409 with what was wrong, a database problem as 503
// with Retry-After, anything else as a logged 500.
func (s *Server) pageError(c *gin.Context, err error) {
	status, heading, msg := http.StatusInternalServerError, "Something went wrong", "The error is logged. Try again in a moment."
	switch {
	case errors.Is(err, feedback.ErrNotFound):
		status, heading, msg = http.StatusNotFound, "Not found", "There is nothing at this address."
	case errors.Is(err, feedback.ErrConflict):
		status, heading, msg = http.StatusConflict, "Not done", "It conflicts with the current state: reload and try again."
		if why := feedback.Reason(err); why != "" {
			msg = why
		}
	case errors.Is(err, feedback.ErrInvalid) && !fromDatabase(err):
		status, heading, msg = http.StatusUnprocessableEntity, "Not done", err.Error()
		if i := strings.LastIndex(msg, feedback.ErrInvalid.Error()+": "); i >= 0 {
			msg = msg[i+len(feedback.ErrInvalid.Error())+2:]
		}
	case errors.Is(err, feedback.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		c.Header("Retry-After", "1")
		status, heading, msg = http.StatusServiceUnavailable, "The database is not answering", "Hotlane will be back as soon as it answers. Reload in a moment."
		s.log.Error("page failed", slog.String("request_id", requestID(c)), slog.String("path", c.FullPath()), slog.Any("err", err))
	default:
		s.log.Error("page failed", slog.String("request_id", requestID(c)), slog.String("path", c.FullPath()), slog.Any("err", err))
	}
	c.Abort()
	b := pageBase{Title: heading, Now: s.now()}
	if sess := sessionOf(c); sess.User.ID != 0 {
		b.User = &sess.User
	}
	s.render(c, status, "error", errorPage{pageBase: b, Heading: heading, Message: msg})
}

// localPath keeps a post-login destination on this site: a path, not a
// URL to another host.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

type loginPage struct {
	pageBase
	Email, Next, Error string
}

func (s *Server) handleLoginPage(c *gin.Context) {
	s.render(c, http.StatusOK, "login", loginPage{pageBase: pageBase{Title: "Sign in", Now: s.now()}, Next: localPath(c.Query("next"))})
}

// Login failures allowed per window before further attempts are refused:
// per account (whatever the email, so an unknown one is treated alike)
// and per client address.
const (
	loginWindow         = 15 * time.Minute
	loginFailsPerEmail  = 5
	loginFailsPerClient = 20
)

// loginLimiter counts failed logins per key over a sliding window.
type loginLimiter struct {
	mu    sync.Mutex
	fails map[string][]time.Time
}

func (l *loginLimiter) recent(key string, now time.Time) []time.Time {
	kept := l.fails[key][:0]
	for _, t := range l.fails[key] {
		if now.Sub(t) < loginWindow {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = kept
	return kept
}

// blocked reports whether any key has used up its failures.
func (l *loginLimiter) blocked(now time.Time, keys map[string]int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, limit := range keys {
		if len(l.recent(k, now)) >= limit {
			return true
		}
	}
	return false
}

func (l *loginLimiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 100_000 {
		// Bounded memory under a flood of distinct keys: forget the oldest
		// state wholesale rather than grow.
		l.fails = map[string][]time.Time{}
	}
	for _, k := range keys {
		l.fails[k] = append(l.recent(k, now), now)
	}
}

func (l *loginLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

func (s *Server) handleLogin(c *gin.Context) {
	email := strings.ToLower(strings.TrimSpace(c.PostForm("email")))
	password := c.PostForm("password")
	next := localPath(c.PostForm("next"))
	page := loginPage{pageBase: pageBase{Title: "Sign in", Now: s.now()}, Email: email, Next: next}
	now := s.now()
	emailKey, clientKey := "email:"+email, "client:"+c.ClientIP()
	if s.logins.blocked(now, map[string]int{emailKey: loginFailsPerEmail, clientKey: loginFailsPerClient}) {
		page.Error = "Too many failed attempts. Wait a few minutes and try again."
		c.Header("Retry-After", "300")
		s.render(c, http.StatusTooManyRequests, "login", page)
		return
	}
	user, hash, err := s.web.UserByEmail(c.Request.Context(), email)
	ok := false
	switch {
	case err == nil && !user.Disabled():
		ok = feedback.CheckPassword(hash, password)
	case err == nil || errors.Is(err, feedback.ErrNotFound):
		ok = feedback.CheckNoPassword(password) // the same time as a wrong password
	default:
		s.pageError(c, err)
		return
	}
	if !ok {
		s.logins.fail(now, emailKey, clientKey)
		s.log.Info("login failed", slog.String("request_id", requestID(c)))
		page.Error = "The email or the password is wrong."
		s.render(c, http.StatusUnauthorized, "login", page)
		return
	}
	s.logins.reset(emailKey)
	token, tokenHash := feedback.NewSessionToken()
	if _, err := s.web.CreateSession(c.Request.Context(), user.ID, tokenHash, now); err != nil {
		s.pageError(c, err)
		return
	}
	s.setSessionCookie(c, token)
	s.log.Info("login", slog.String("request_id", requestID(c)), slog.Int64("user_id", user.ID))
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) handleLogout(c *gin.Context) {
	if token, err := c.Cookie(sessionCookie); err == nil && token != "" {
		if err := s.web.DeleteSession(c.Request.Context(), feedback.HashSessionToken(token)); err != nil {
			s.pageError(c, err)
			return
		}
	}
	s.clearSessionCookie(c)
	c.Redirect(http.StatusSeeOther, "/login")
}
