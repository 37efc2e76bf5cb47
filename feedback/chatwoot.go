package feedback

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotlane/hotlane/model"
)

// Chatwoot write kinds: each is one call to Chatwoot's API.
const (
	// ChatwootPriority sets the conversation's priority (toggle_priority).
	ChatwootPriority = "priority"
	// ChatwootTeam assigns the conversation to a team (assignments).
	ChatwootTeam = "team"
	// ChatwootAssignee assigns the conversation to an agent (assignments).
	ChatwootAssignee = "assignee"
	// ChatwootNote posts a private note for the agents (messages).
	ChatwootNote = "note"
	// ChatwootAttributes sets hotlane_tier and hotlane_score among the
	// conversation's custom attributes (custom_attributes).
	ChatwootAttributes = "attributes"
)

// ChatwootLane is the lane of a write kind: the writes of one lane of a
// conversation go out one at a time in the order they were queued, so a
// team is assigned before an agent of that team, while a note waiting
// for its retry does not hold the priority back.
func ChatwootLane(kind string) string {
	if kind == ChatwootTeam || kind == ChatwootAssignee {
		return "assignment"
	}
	return kind
}

// ChatwootWriteKinds lists every write kind.
var ChatwootWriteKinds = []string{ChatwootPriority, ChatwootTeam, ChatwootAssignee, ChatwootNote, ChatwootAttributes}

// Chatwoot write statuses, beside DeliveryPending, DeliveryDelivered and
// DeliveryFailed.
const (
	// ChatwootSuperseded is a pending write replaced by a newer one of the
	// same kind to the same conversation before it was sent.
	ChatwootSuperseded = "superseded"
)

// Chatwoot's conversation labels that label the conversation's latest
// alert, and the prefix of labels and custom attributes that are Hotlane's
// own and never become signals.
const (
	ChatwootLabelUseful = "hotlane-useful"
	ChatwootLabelNoise  = "hotlane-noise"
	ChatwootOwnPrefix   = "hotlane"
	// ChatwootTierAttr and ChatwootScoreAttr are the custom attributes
	// Hotlane writes.
	ChatwootTierAttr  = "hotlane_tier"
	ChatwootScoreAttr = "hotlane_score"
)

// ChatwootReceiptTTL is how long a webhook delivery id is remembered, so
// that a repeated delivery is ignored.
const ChatwootReceiptTTL = 24 * time.Hour

// ChatwootConversationID is Hotlane's id of a Chatwoot conversation: the
// account and the display id (the id in Chatwoot's URLs and webhooks).
func ChatwootConversationID(accountID, displayID int64) string {
	return "chatwoot-" + strconv.FormatInt(accountID, 10) + "-" + strconv.FormatInt(displayID, 10)
}

// chatwootChannels names the inbox types whose channel is not their
// snake_case name.
var chatwootChannels = map[string]string{
	"WebWidget":      "web",
	"FacebookPage":   "messenger",
	"TwilioSms":      "sms",
	"TwitterProfile": "twitter",
}

// ChatwootChannel maps an inbox type (Channel::WebWidget) to a Hotlane
// channel: WebWidget is web, FacebookPage messenger, TwilioSms sms,
// TwitterProfile twitter; any other type is its name after "Channel::" in
// snake_case (Whatsapp whatsapp, Email email, Api api, Telegram telegram,
// Line line, Sms sms, Instagram instagram), cut to 32 characters. An
// empty or unreadable type is "chatwoot".
func ChatwootChannel(inboxType string) string {
	name := strings.TrimPrefix(strings.TrimSpace(inboxType), "Channel::")
	if ch, ok := chatwootChannels[name]; ok {
		return ch
	}
	var b strings.Builder
	for i, r := range name {
		switch {
		case r >= 'A' && r <= 'Z':
			if i > 0 && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r + ('a' - 'A'))
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteByte('_')
		}
	}
	ch := strings.Trim(b.String(), "_")
	if len(ch) > 32 {
		ch = strings.TrimRight(ch[:32], "_")
	}
	if ch == "" {
		return "chatwoot"
	}
	return ch
}

// ChatwootState is what Hotlane remembers of a Chatwoot conversation.
type ChatwootState struct {
	ConversationID string
	AccountID      int64
	DisplayID      int64
	ContactID      int64
	// Returning is true when the contact was seen before this
	// conversation.
	Returning bool
	// Messages counts the visitor's messages seen so far, the latest
	// LastMessageID; LastMessage is its text when messages are stored.
	Messages      int
	LastMessageID int64
	LastMessage   *string
	// ScoredMessageID is the newest visitor message a decision scored.
	ScoredMessageID int64
	// What Hotlane last asked Chatwoot to show: the priority, the team and
	// agent it assigned (0: none; ChatwootLeftAlone and
	// ChatwootLeftAloneID once someone else changed them), the highest
	// tier it wrote a note for, and the custom attributes it set.
	Priority   string
	TeamID     int64
	AssigneeID int64
	NotedTier  model.Tier
	AttrTier   string
	AttrScore  string
	// Written holds, by kind (priority, team, assignee), the values
	// Hotlane has asked for and not given up on (queued or delivered):
	// a webhook showing one of them shows Hotlane's own doing. The store
	// fills it for planning; it is not kept.
	Written map[string][]string
}

// ChatwootObservation is what one webhook tells about a conversation
// before it is scored: who the contact is, whether they came back, and the
// visitor's message it carries (MessageID 0: none).
type ChatwootObservation struct {
	ConversationID string
	AccountID      int64
	DisplayID      int64
	ContactID      int64
	Returning      bool
	MessageID      int64
	Message        *string // stored only when messages are stored
	At             time.Time
}

// ChatwootView is the conversation as Chatwoot shows it in the webhook
// being handled: what someone else may have set.
type ChatwootView struct {
	Priority   string // "" when none
	TeamID     int64
	AssigneeID int64
}

// ChatwootWriteBack says which writes are on and how Hotlane's teams and
// owners map to Chatwoot's team and agent ids.
type ChatwootWriteBack struct {
	Priority, Assign, Note, Attributes bool
	// Teams maps a Hotlane team name to a Chatwoot team id.
	Teams map[string]int64
	// Agents maps a Hotlane owner (the owner signal) to a Chatwoot agent id.
	Agents map[string]int64
}

// ChatwootWrite is one call to Chatwoot's API, as queued.
type ChatwootWrite struct {
	ID             string
	ConversationID string
	AccountID      int64
	DisplayID      int64
	Kind           string
	// Value is what a priority, team or assignee write asks for (the tier
	// name, the team or agent id), "" for the others.
	Value         string
	Body          []byte // the JSON body
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

// PendingChatwootWrite is a write claimed for sending.
type PendingChatwootWrite struct {
	ChatwootWrite
	Claim string
}

// ChatwootOutcome is the result of one attempt at a write.
type ChatwootOutcome struct {
	ID         string
	Claim      string
	At         time.Time
	StatusCode int
	Error      string
	Delivered  bool
	// RetryAt is when to try again; nil gives up (failed).
	RetryAt *time.Time
}

// ChatwootScored is the decision a Chatwoot webhook led to.
type ChatwootScored struct {
	Tier    model.Tier
	Score   float64
	Reasons []model.Reason
	Route   model.Route
	// Why is the reasons in words, as the UI shows them (rules by their
	// descriptions); empty lets the note name them itself.
	Why string
	// Partial is true when the decision was made without the visitor's
	// last message (not in the webhook, and not stored).
	Partial bool
}

// ChatwootLeftAlone marks, in ChatwootState.Priority, TeamID and
// AssigneeID, a value someone else changed after Hotlane set it: Hotlane
// leaves that field of the conversation alone from then on.
const (
	ChatwootLeftAlone   = "-"
	ChatwootLeftAloneID = -1
)

// MarkChatwootOverrides records in st that someone else changed a value
// Hotlane set: a change of priority, team_id or assignee_id from a value
// Hotlane asked for (st.Written) to one it did not. An agent change that
// comes with Hotlane's own team change is Chatwoot's doing (it clears an
// agent who is not in the new team) and is not marked. It reports
// whether it marked any.
func MarkChatwootOverrides(st *ChatwootState, priority, team, assignee *ChatwootChange) bool {
	ours := func(kind, v string) bool { return v != "" && slices.Contains(st.Written[kind], v) }
	marked := false
	if c := priority; c != nil && st.Priority != ChatwootLeftAlone && ours(ChatwootPriority, c.Previous) && !ours(ChatwootPriority, c.Current) {
		st.Priority, marked = ChatwootLeftAlone, true
	}
	ownTeam := team != nil && ours(ChatwootTeam, idValue(team.CurrentID))
	if c := team; c != nil && st.TeamID != ChatwootLeftAloneID && ours(ChatwootTeam, idValue(c.PreviousID)) && !ownTeam {
		st.TeamID, marked = ChatwootLeftAloneID, true
	}
	if c := assignee; c != nil && !ownTeam && st.AssigneeID != ChatwootLeftAloneID &&
		ours(ChatwootAssignee, idValue(c.PreviousID)) && !ours(ChatwootAssignee, idValue(c.CurrentID)) {
		st.AssigneeID, marked = ChatwootLeftAloneID, true
	}
	return marked
}

// idValue is a team or agent id as a write's Value; "" for none.
func idValue(id int64) string {
	if id <= 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// ChatwootChange is one changed attribute of a conversation_updated: a
// string value (priority) or an id (team_id, assignee_id; 0 for none).
type ChatwootChange struct {
	Previous, Current     string
	PreviousID, CurrentID int64
}

// PlanChatwootWrites decides what to write back after a decision:
//
//   - the priority when it is not the tier, the team and the agent of the
//     route when mapped: not again what Hotlane already asked for, only
//     while Chatwoot shows none or a value Hotlane asked for, and never
//     once someone else changed Hotlane's value (MarkChatwootOverrides), so
//     an agent's choice stands;
//   - a private note when the tier rises above every tier noted so far and
//     above low;
//   - the custom attributes hotlane_tier and hotlane_score when the tier or
//     the score (two decimals) changed.
//
// A decision made without the visitor's last message (d.Partial) may
// raise the priority and the attributes' tier, and fill an empty team or
// agent, but changes nothing else: rules on the message could not fire.
// It returns the writes (Kind, Value and Body set) and the state to keep,
// which records what was asked.
func PlanChatwootWrites(st ChatwootState, view ChatwootView, d ChatwootScored, on ChatwootWriteBack) ([]ChatwootWrite, ChatwootState) {
	var out []ChatwootWrite
	add := func(kind, value string, body any) {
		b, _ := json.Marshal(body)
		out = append(out, ChatwootWrite{ConversationID: st.ConversationID, AccountID: st.AccountID, DisplayID: st.DisplayID,
			Kind: kind, Value: value, Body: b})
	}
	// A webhook may show the conversation from before Hotlane's write
	// landed, or empty while it is still queued: both are Hotlane's.
	shownOurs := func(kind, v string) bool { return v == "" || slices.Contains(st.Written[kind], v) }
	above := func(asked string) bool {
		t, _ := model.ParseTier(asked) // "" and "-" are TierNone
		return d.Tier > t
	}
	tier := d.Tier.String()
	if on.Priority && tier != "" && st.Priority != ChatwootLeftAlone && st.Priority != tier && view.Priority != tier &&
		shownOurs(ChatwootPriority, view.Priority) && (!d.Partial || above(st.Priority)) {
		add(ChatwootPriority, tier, map[string]string{"priority": tier})
		st.Priority = tier
	}
	if on.Assign {
		if id, ok := on.Teams[d.Route.Team]; ok && d.Route.Team != "" && st.TeamID != ChatwootLeftAloneID && st.TeamID != id &&
			view.TeamID != id && shownOurs(ChatwootTeam, idValue(view.TeamID)) && (!d.Partial || st.TeamID == 0) {
			add(ChatwootTeam, idValue(id), map[string]int64{"team_id": id})
			st.TeamID = id
		}
		if id, ok := on.Agents[d.Route.Owner]; ok && d.Route.Owner != "" && st.AssigneeID != ChatwootLeftAloneID && st.AssigneeID != id &&
			view.AssigneeID != id && shownOurs(ChatwootAssignee, idValue(view.AssigneeID)) && (!d.Partial || st.AssigneeID == 0) {
			add(ChatwootAssignee, idValue(id), map[string]int64{"assignee_id": id})
			st.AssigneeID = id
		}
	}
	if on.Note && d.Tier > max(st.NotedTier, model.TierLow) {
		add(ChatwootNote, "", map[string]any{"content": ChatwootNoteText(d), "message_type": "outgoing", "private": true})
		st.NotedTier = d.Tier
	}
	score := strconv.FormatFloat(math.Round(d.Score*100)/100, 'f', 2, 64)
	if on.Attributes && tier != "" && (tier != st.AttrTier || score != st.AttrScore) && (!d.Partial || above(st.AttrTier)) {
		f, _ := strconv.ParseFloat(score, 64)
		// Only Hotlane's own attributes: the writer merges them into the
		// conversation's current set when it sends them.
		add(ChatwootAttributes, "", map[string]any{"custom_attributes": map[string]any{ChatwootTierAttr: tier, ChatwootScoreAttr: f}})
		st.AttrTier, st.AttrScore = tier, score
	}
	return out, st
}

// chatwootNoteReasons is how many reasons a note names.
const chatwootNoteReasons = 3

// ChatwootNoteText is the private note for the agent who picks the
// conversation up: the tier, the score and the strongest reasons in one
// sentence (d.Why when set).
func ChatwootNoteText(d ChatwootScored) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Hotlane: %s priority (score %.2f", strings.ToUpper(d.Tier.String()), d.Score)
	if d.Route.Team != "" {
		fmt.Fprintf(&b, ", team %s", d.Route.Team)
	}
	b.WriteString(")")
	if d.Why != "" {
		b.WriteString(". Why: ")
		b.WriteString(strings.TrimSuffix(d.Why, "."))
		b.WriteString(".")
		return b.String()
	}
	rs := slices.Clone(d.Reasons)
	rs = slices.DeleteFunc(rs, func(r model.Reason) bool { return r.Contribution <= 0 && r.TierFloor == "" })
	ByContribution(rs)
	if len(rs) > chatwootNoteReasons {
		rs = rs[:chatwootNoteReasons]
	}
	if len(rs) == 0 {
		b.WriteString(".")
		return b.String()
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = describeReason(r)
	}
	b.WriteString(" because of ")
	switch len(parts) {
	case 1:
		b.WriteString(parts[0])
	default:
		b.WriteString(strings.Join(parts[:len(parts)-1], ", "))
		b.WriteString(" and ")
		b.WriteString(parts[len(parts)-1])
	}
	b.WriteString(".")
	return b.String()
}

// describeReason reads one reason: "rule big-deal (+2.50, at least high)"
// or "deal_size 50000 (+1.40)".
func describeReason(r model.Reason) string {
	var s string
	if r.Kind == "rule" {
		s = "rule " + r.Name
	} else {
		s = r.Name
		if r.Value != nil && !strings.Contains(r.Name, "=") {
			s += " " + fmt.Sprint(r.Value)
		}
	}
	s += fmt.Sprintf(" (%+.2f", r.Contribution)
	if r.TierFloor != "" {
		s += ", at least " + r.TierFloor
	}
	return s + ")"
}

// ChatwootRetry is when to try a write queued at created again after its
// attempt-th attempt (1 for the first) failed at now: 10 s, 30 s, 2 min,
// 10 min, 1 h, then every 4 h until a day has passed. It returns false
// when the write has run out of time.
func ChatwootRetry(attempt int, created, now time.Time) (time.Time, bool) {
	return chatwootRetries.Next(attempt, created, now)
}

// chatwootRetries is sooner than alert deliveries': a priority is worth
// most in the first minutes of a chat.
var chatwootRetries = RetrySchedule{
	Delays: []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour},
	Every:  4 * time.Hour, For: 24 * time.Hour,
}
