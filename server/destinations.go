package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// defaultRotationGrace is how long a rotated-out webhook secret keeps
// signing, so receivers can switch to the new one without losing alerts.
const defaultRotationGrace = 24 * time.Hour

// maxRotationGrace bounds the grace period a rotation may ask for.
const maxRotationGrace = 30 * 24 * time.Hour

// destinationAdmin is what the destination endpoints need from the store.
type destinationAdmin interface {
	CreateDestination(ctx context.Context, d feedback.NewDestination) (feedback.Destination, string, error)
	ListDestinations(ctx context.Context, team string) ([]feedback.Destination, error)
	DeleteDestination(ctx context.Context, id string) error
	RotateDestinationSecret(ctx context.Context, id string, grace time.Duration) (feedback.Destination, string, error)
}

// destinationJSON is a destination as the API shows it. Secret is set only
// in the answers to create and rotate-secret; Slack URLs, which hold a
// token, are shown with their path hidden except in the answer to create.
type destinationJSON struct {
	ID                      string     `json:"id"`
	Team                    string     `json:"team"`
	Kind                    string     `json:"kind"`
	URL                     string     `json:"url,omitempty"`
	Lead                    bool       `json:"lead"`
	Tiers                   []string   `json:"tiers"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	Secret                  string     `json:"secret,omitempty"`
}

func toDestinationJSON(d feedback.Destination, secret string, fullURL bool) destinationJSON {
	out := destinationJSON{ID: d.ID, Team: d.Team, Kind: d.Kind, URL: d.URL, Lead: d.Lead, Tiers: []string{},
		PreviousSecretExpiresAt: d.PreviousSecretExpiresAt, CreatedAt: d.CreatedAt, Secret: secret}
	for _, t := range d.Tiers {
		out.Tiers = append(out.Tiers, t.String())
	}
	if d.Kind == feedback.DestinationSlack && !fullURL {
		out.URL = redactURL(d.URL)
	}
	return out
}

// redactURL keeps the scheme and host of a URL and hides the rest.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(hidden)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// destinationRoutes registers the destination endpoints under the admin
// scope.
func (s *Server) destinationRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	v1.GET("/destinations", admin, s.handleListDestinations)
	v1.POST("/destinations", admin, s.handleCreateDestination)
	v1.DELETE("/destinations/:id", admin, s.handleDeleteDestination)
	v1.POST("/destinations/:id/rotate-secret", admin, s.handleRotateSecret)
}

type createDestinationRequest struct {
	Team  *string  `json:"team"`
	Kind  *string  `json:"kind"`
	URL   string   `json:"url"`
	Lead  bool     `json:"lead"`
	Tiers []string `json:"tiers"`
}

// parseTierList reads a destination's tiers: known tier names, each once.
func parseTierList(names []string) ([]model.Tier, error) {
	var out []model.Tier
	for _, n := range names {
		t, err := model.ParseTier(n)
		if err != nil || t == model.TierNone {
			return nil, unprocessable("tiers", fmt.Sprintf("%q is not a tier: use urgent, high, medium or low", n))
		}
		if slices.Contains(out, t) {
			return nil, unprocessable("tiers", fmt.Sprintf("%s is listed twice", n))
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *Server) handleCreateDestination(c *gin.Context) {
	body, err := readJSONBody(c)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	var req createDestinationRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(c, s.log, &APIError{Status: http.StatusBadRequest, Code: "invalid_json",
			Message: "the body must be a JSON object with team, kind, url, lead and tiers"})
		return
	}
	if req.Team == nil {
		writeError(c, s.log, invalidField("team", "is required"))
		return
	}
	if req.Kind == nil {
		writeError(c, s.log, invalidField("kind", "is required"))
		return
	}
	tiers, err := parseTierList(req.Tiers)
	if err != nil {
		writeError(c, s.log, err)
		return
	}
	nd := feedback.NewDestination{Team: *req.Team, Kind: *req.Kind, URL: req.URL, Lead: req.Lead, Tiers: tiers}
	for field, v := range map[string]string{"team": nd.Team, "kind": nd.Kind, "url": nd.URL} {
		if !model.PlainText(v) {
			writeError(c, s.log, unprocessable(field, "must be valid UTF-8 without control characters"))
			return
		}
	}
	if err := feedback.ValidateDestination(nd); err != nil {
		writeError(c, s.log, destinationFieldError(nd, err))
		return
	}
	if nd.Kind != feedback.DestinationFeed {
		if err := s.cfg.Addresses.CheckURL(nd.URL); err != nil {
			writeError(c, s.log, destinationFieldError(nd, err))
			return
		}
	}
	d, secret, err := s.destinations.CreateDestination(c.Request.Context(), nd)
	if err != nil {
		writeError(c, s.log, fmt.Errorf("create destination: %w", err))
		return
	}
	s.audit(c, feedback.AuditDestinationCreate, "destination "+d.ID, nil, toDestinationJSON(d, "", false))
	c.JSON(http.StatusCreated, toDestinationJSON(d, secret, true))
}

// destinationFieldError turns a validation error into a 422 naming the
// field.
func destinationFieldError(nd feedback.NewDestination, err error) *APIError {
	msg := strings.TrimPrefix(err.Error(), feedback.ErrInvalid.Error()+": ")
	field := "team"
	switch {
	case !slices.Contains(feedback.DestinationKinds, nd.Kind):
		field = "kind"
	case strings.HasPrefix(msg, "url"):
		field = "url"
	}
	return &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_field", Message: msg, Field: field}
}

func (s *Server) handleListDestinations(c *gin.Context) {
	list, err := s.destinations.ListDestinations(c.Request.Context(), c.Query("team"))
	if err != nil {
		writeError(c, s.log, fmt.Errorf("list destinations: %w", err))
		return
	}
	out := make([]destinationJSON, 0, len(list))
	for _, d := range list {
		out = append(out, toDestinationJSON(d, "", false))
	}
	c.JSON(http.StatusOK, gin.H{"destinations": out})
}

func (s *Server) handleDeleteDestination(c *gin.Context) {
	id := c.Param("id")
	if err := s.destinations.DeleteDestination(c.Request.Context(), id); err != nil {
		writeError(c, s.log, fmt.Errorf("delete destination: %w", err))
		return
	}
	s.audit(c, feedback.AuditDestinationDelete, "destination "+id, nil, nil)
	c.Status(http.StatusNoContent)
}

type rotateSecretRequest struct {
	// Grace is how long the previous secret keeps signing, as a Go
	// duration ("24h", "0s"); empty means 24h.
	Grace string `json:"grace"`
}

func (s *Server) handleRotateSecret(c *gin.Context) {
	grace := defaultRotationGrace
	if c.Request.ContentLength != 0 {
		body, err := readJSONBody(c)
		if err != nil {
			writeError(c, s.log, err)
			return
		}
		var req rotateSecretRequest
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := decodeStrict(body, &req); err != nil {
				writeError(c, s.log, err)
				return
			}
		}
		if req.Grace != "" {
			g, err := time.ParseDuration(req.Grace)
			if err != nil || g < 0 || g > maxRotationGrace {
				writeError(c, s.log, &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_field",
					Message: "must be a duration between 0s and 720h, such as 24h", Field: "grace"})
				return
			}
			grace = g
		}
	}
	d, secret, err := s.destinations.RotateDestinationSecret(c.Request.Context(), c.Param("id"), grace)
	if err != nil {
		if errors.Is(err, feedback.ErrInvalid) && !errors.Is(err, feedback.ErrNotFound) {
			writeError(c, s.log, &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid",
				Message: "only webhook destinations have a signing secret"})
			return
		}
		writeError(c, s.log, fmt.Errorf("rotate secret: %w", err))
		return
	}
	s.audit(c, feedback.AuditDestinationRotate, "destination "+d.ID, nil, map[string]any{"grace": grace.String()})
	c.JSON(http.StatusOK, toDestinationJSON(d, secret, false))
}
