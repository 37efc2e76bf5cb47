package feedback

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotlane/hotlane/model"
)

// Alert labels an agent may give.
const (
	LabelUseful = "useful"
	LabelNoise  = "noise"
)

// Limits on the text of a label.
const (
	MaxAgentLen = 128
	MaxNoteLen  = 2000
)

// Alert feed filters accepted by AlertQuery.Status.
const (
	// FeedUnlabelled lists fired alerts no agent has labelled yet.
	FeedUnlabelled = "unlabelled"
	// FeedLabelled lists alerts at least one agent has labelled.
	FeedLabelled = "labelled"
	// FeedSuppressed lists alerts held back by cooldown, budget or dedup.
	FeedSuppressed = "suppressed"
)

// AlertLabel is one agent's verdict on an alert.
type AlertLabel struct {
	AlertID        string
	ConversationID string
	Agent          string
	Label          string // LabelUseful or LabelNoise
	Note           string
	CreatedAt      time.Time
	UpdatedAt      time.Time // when the agent last changed it
}

// AlertQuery selects a page of the alert feed. The zero value lists every
// alert, newest first.
type AlertQuery struct {
	// Status is "" (every alert), FeedUnlabelled, FeedLabelled or
	// FeedSuppressed.
	Status string
	// Team keeps the alerts routed to one team when set.
	Team string
	// Tier, Channel and ConversationID keep the alerts of one tier,
	// channel or conversation when set.
	Tier           model.Tier
	Channel        string
	ConversationID string
	// Since keeps alerts created at or after it when set.
	Since time.Time
	// Limit caps the page; <= 0 means 50, and it is capped at 500.
	Limit int
	// Cursor continues after the page that returned it; "" starts at the
	// newest alert.
	Cursor string
}

// AlertPage is one page of the alert feed, each alert with its labels.
// NextCursor is "" on the last page.
type AlertPage struct {
	Alerts     []Alert
	NextCursor string
}

// ValidateLabel checks a label request: label useful or noise, agent of 1 to
// MaxAgentLen characters without control characters, note of at most
// MaxNoteLen characters; both valid UTF-8. Its errors wrap ErrInvalid and name the field first.
func ValidateLabel(agent, label, note string) error {
	if label != LabelUseful && label != LabelNoise {
		return fmt.Errorf("%w: label: must be useful or noise", ErrInvalid)
	}
	if err := validAgent(agent, true); err != nil {
		return err
	}
	if utf8.RuneCountInString(note) > MaxNoteLen {
		return fmt.Errorf("%w: note: longer than %d characters", ErrInvalid, MaxNoteLen)
	}
	if strings.ContainsRune(note, 0) {
		return fmt.Errorf("%w: note: contains a NUL character", ErrInvalid)
	}
	if !utf8.ValidString(note) {
		return fmt.Errorf("%w: note: not valid UTF-8", ErrInvalid)
	}
	return nil
}

func validAgent(agent string, required bool) error {
	switch {
	case agent == "" && required:
		return fmt.Errorf("%w: agent: required, 1 to %d characters", ErrInvalid, MaxAgentLen)
	case utf8.RuneCountInString(agent) > MaxAgentLen:
		return fmt.Errorf("%w: agent: longer than %d characters", ErrInvalid, MaxAgentLen)
	case strings.TrimSpace(agent) != agent && agent != "":
		return fmt.Errorf("%w: agent: has leading or trailing spaces", ErrInvalid)
	case !utf8.ValidString(agent):
		return fmt.Errorf("%w: agent: not valid UTF-8", ErrInvalid)
	}
	for _, r := range agent {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: agent: contains control characters", ErrInvalid)
		}
	}
	return nil
}

// EncodeFeedCursor makes the cursor that continues the feed after the
// alert created at `at` with id: its creation time (Unix microseconds) and
// id, base64url-encoded so that clients treat it as opaque.
func EncodeFeedCursor(at time.Time, id string) string {
	raw := strconv.FormatInt(at.UTC().UnixMicro(), 10) + "|" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeFeedCursor reads a cursor made by EncodeFeedCursor; anything else
// is ErrInvalid.
func DecodeFeedCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: cursor: malformed", ErrInvalid)
	}
	us, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", fmt.Errorf("%w: cursor: malformed", ErrInvalid)
	}
	return time.UnixMicro(n).UTC(), id, nil
}
