package feedback

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotlane/hotlane/model"
)

// Destination kinds.
const (
	// DestinationFeed is the in-app feed: the UI reads alerts directly, so
	// a feed destination gets no deliveries.
	DestinationFeed = "feed"
	// DestinationSlack is a Slack incoming webhook.
	DestinationSlack = "slack"
	// DestinationWebhook is a generic JSON webhook signed with the
	// destination's secret.
	DestinationWebhook = "webhook"
)

// DestinationKinds lists every destination kind.
var DestinationKinds = []string{DestinationFeed, DestinationSlack, DestinationWebhook}

// Limits of a destination.
const (
	MaxTeamLen    = 128
	MaxDestURLLen = 2048
)

// Destination is where a team's alerts go. It carries no secret, so it
// can be shown and logged; signing secrets leave the store only once when
// made, and in PendingDelivery.Secrets for the sender.
type Destination struct {
	ID   string
	Team string
	Kind string
	URL  string
	Lead bool // receives the team's SLA escalations
	// Tiers, when set, are the only tiers whose alerts it takes; empty
	// takes every tier.
	Tiers []model.Tier
	// HasPreviousSecret is true while a rotated-out secret is still used to
	// sign, until PreviousSecretExpiresAt.
	HasPreviousSecret       bool
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
}

// NewDestination is a destination to create.
type NewDestination struct {
	Team string
	Kind string
	URL  string
	Lead bool
	// Tiers limits the tier alerts and SLA escalations it takes; empty
	// takes every tier. Review requests (for conversations that did not
	// alert) reach a webhook whatever its tiers, so sampling goes on.
	Tiers []model.Tier
}

// TakesTier reports whether a destination limited to tiers (none: every
// tier) takes an alert of tier t.
func TakesTier(tiers []model.Tier, t model.Tier) bool {
	return len(tiers) == 0 || slices.Contains(tiers, t)
}

// ValidateDestination checks a destination to create; it returns an error
// wrapping ErrInvalid that names the field.
func ValidateDestination(d NewDestination) error {
	team := strings.TrimSpace(d.Team)
	switch {
	case team == "" || team != d.Team:
		return fmt.Errorf("%w: team is required, without surrounding spaces", ErrInvalid)
	case utf8.RuneCountInString(team) > MaxTeamLen || !utf8.ValidString(team):
		return fmt.Errorf("%w: team must be valid UTF-8 of at most %d characters", ErrInvalid, MaxTeamLen)
	}
	for i, t := range d.Tiers {
		if t == model.TierNone || t > model.TierUrgent || slices.Contains(d.Tiers[:i], t) {
			return fmt.Errorf("%w: tiers: each must be urgent, high, medium or low, once", ErrInvalid)
		}
	}
	switch d.Kind {
	case DestinationFeed:
		if d.URL != "" {
			return fmt.Errorf("%w: url: a feed destination has no url", ErrInvalid)
		}
	case DestinationSlack, DestinationWebhook:
		if len(d.URL) > MaxDestURLLen {
			return fmt.Errorf("%w: url: at most %d bytes", ErrInvalid, MaxDestURLLen)
		}
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return fmt.Errorf("%w: url: must be an absolute http or https URL without credentials or fragment", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: kind must be one of %s", ErrInvalid, strings.Join(DestinationKinds, ", "))
	}
	return nil
}

// RoutesTo reports whether an alert of kind goes to a destination of
// destKind (lead: a team lead's). The feed reads alerts itself; SLA
// escalations go to lead destinations only, other alerts to the rest;
// review requests ask for a label in the UI and go to webhooks but not to
// Slack, where they would be noise.
func RoutesTo(kind, destKind string, lead bool) bool {
	switch {
	case destKind == DestinationFeed:
		return false
	case kind == AlertKindSLA:
		return lead
	case lead:
		return false
	case kind == AlertKindReview:
		return destKind == DestinationWebhook
	default:
		return true
	}
}
