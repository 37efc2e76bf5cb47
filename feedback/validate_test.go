package feedback

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

func TestValidateEvent(t *testing.T) {
	v, neg, nan := 1200.0, -1.0, math.NaN()
	tests := []struct {
		name  string
		e     Event
		field string // "" when valid
	}{
		{"first response", Event{Type: EventFirstResponse, Agent: "ana"}, ""},
		{"converted with value", Event{Type: EventConverted, Value: &v}, ""},
		{"tier feedback", Event{Type: EventTierFeedback, Tier: model.TierHigh, Agent: "ana"}, ""},
		{"unknown type", Event{Type: "won"}, "type"},
		{"tier feedback without tier", Event{Type: EventTierFeedback}, "tier"},
		{"tier feedback with an unknown tier name", Event{Type: EventTierFeedback, Tier: ParseEventTier("hot")}, "tier"},
		{"tier on another type", Event{Type: EventLost, Tier: model.TierHigh}, "tier"},
		{"unknown tier name on another type", Event{Type: EventLost, Tier: ParseEventTier("hot")}, "tier"},
		{"value on lost", Event{Type: EventLost, Value: &v}, "value"},
		{"negative value", Event{Type: EventConverted, Value: &neg}, "value"},
		{"NaN value", Event{Type: EventConverted, Value: &nan}, "value"},
		{"agent with spaces around", Event{Type: EventClosed, Agent: " ana"}, "agent"},
		{"agent with a control character", Event{Type: EventClosed, Agent: "a\x01"}, "agent"},
		{"agent too long", Event{Type: EventClosed, Agent: strings.Repeat("a", MaxAgentLen+1)}, "agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkInvalid(t, ValidateEvent(tt.e), tt.field)
		})
	}
}

// checkInvalid checks that err is nil when field is "", else ErrInvalid
// naming field first.
func checkInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "), field) {
		t.Errorf("err = %v, want ErrInvalid naming %s first", err, field)
	}
}

func TestParseEventTier(t *testing.T) {
	if ParseEventTier("") != model.TierNone || ParseEventTier("urgent") != model.TierUrgent {
		t.Error("ParseEventTier does not read the tier names")
	}
	if bad := ParseEventTier("hot"); bad >= model.TierNone && bad <= model.TierUrgent {
		t.Errorf("an unknown name gives tier %d, a real one", bad)
	}
}

func TestEventFingerprint(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	e := Event{ConversationID: "c", Type: EventTierFeedback, Tier: model.TierHigh, Agent: "ana", At: at}
	same := e
	same.At = at.In(time.FixedZone("x", 3600)).Add(100 * time.Nanosecond) // same microsecond, another zone
	other := e
	other.Tier = model.TierUrgent
	if EventFingerprint(e) != EventFingerprint(same) {
		t.Error("the same event in another zone has another fingerprint")
	}
	if EventFingerprint(e) == EventFingerprint(other) {
		t.Error("events of different tiers share a fingerprint")
	}
}

func TestValidateLabel(t *testing.T) {
	tests := []struct {
		agent, label, note string
		field              string
	}{
		{"ana", LabelUseful, "", ""},
		{"ana", LabelNoise, "wrong team", ""},
		{"ana", "meh", "", "label"},
		{"", LabelUseful, "", "agent"},
		{"ana", LabelUseful, strings.Repeat("x", MaxNoteLen+1), "note"},
		{"ana", LabelUseful, "bad \x8b byte", "note"},
		{"an\xffa", LabelUseful, "", "agent"},
	}
	for _, tt := range tests {
		t.Run(tt.agent+"/"+tt.label, func(t *testing.T) {
			checkInvalid(t, ValidateLabel(tt.agent, tt.label, tt.note), tt.field)
		})
	}
}

func TestValidateDestination(t *testing.T) {
	tests := []struct {
		name string
		d    NewDestination
		ok   bool
	}{
		{"webhook", NewDestination{Team: "sales", Kind: DestinationWebhook, URL: "https://crm.example.com/h"}, true},
		{"feed", NewDestination{Team: "sales", Kind: DestinationFeed}, true},
		{"feed with a url", NewDestination{Team: "sales", Kind: DestinationFeed, URL: "https://x"}, false},
		{"no team", NewDestination{Kind: DestinationFeed}, false},
		{"team with spaces", NewDestination{Team: " sales", Kind: DestinationFeed}, false},
		{"ftp", NewDestination{Team: "sales", Kind: DestinationWebhook, URL: "ftp://x/y"}, false},
		{"credentials", NewDestination{Team: "sales", Kind: DestinationSlack, URL: "https://u:p@x/y"}, false},
		{"unknown kind", NewDestination{Team: "sales", Kind: "pager"}, false},
	}
	for _, tt := range tests {
		err := ValidateDestination(tt.d)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: ValidateDestination = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestRoutesTo(t *testing.T) {
	tests := []struct {
		kind, dest string
		lead, want bool
	}{
		{AlertKindTier, DestinationWebhook, false, true},
		{AlertKindTier, DestinationSlack, false, true},
		{AlertKindTier, DestinationSlack, true, false},
		{AlertKindTier, DestinationFeed, false, false},
		{AlertKindReview, DestinationWebhook, false, true},
		{AlertKindReview, DestinationSlack, false, false},
		{AlertKindSLA, DestinationSlack, true, true},
		{AlertKindSLA, DestinationWebhook, false, false},
	}
	for _, tt := range tests {
		if got := RoutesTo(tt.kind, tt.dest, tt.lead); got != tt.want {
			t.Errorf("RoutesTo(%s, %s, lead %v) = %v, want %v", tt.kind, tt.dest, tt.lead, got, tt.want)
		}
	}
}

func TestValidateScopes(t *testing.T) {
	for scopes, ok := range map[string]bool{"score": true, "score,admin": true, "": false, "score,score": false, "root": false} {
		var list []string
		if scopes != "" {
			list = strings.Split(scopes, ",")
		}
		if err := ValidateScopes(list); (err == nil) != ok {
			t.Errorf("ValidateScopes(%q) = %v, want ok %v", scopes, err, ok)
		}
	}
}

func TestFeedCursor(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	gotAt, gotID, err := DecodeFeedCursor(EncodeFeedCursor(at, "a-1"))
	if err != nil || !gotAt.Equal(at) || gotID != "a-1" {
		t.Errorf("round trip = %v %q %v", gotAt, gotID, err)
	}
	for _, bad := range []string{"!!", "bm9waXBl", ""} {
		if _, _, err := DecodeFeedCursor(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeFeedCursor(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for _, e := range []error{ErrNothingToApply, ErrApplied, ErrStaleReport, ErrNotPromoted} {
		if !errors.Is(e, ErrConflict) || errors.Is(e, ErrNotFound) {
			t.Errorf("%v is not a conflict only", e)
		}
	}
	if !errors.Is(ErrTuneRunning, ErrLocked) || errors.Is(ErrTuneRunning, ErrConflict) {
		t.Error("ErrTuneRunning is not ErrLocked only")
	}
	if !errors.Is(ErrIdempotencyConflict, ErrConflict) {
		t.Error("ErrIdempotencyConflict is not a conflict")
	}
}
