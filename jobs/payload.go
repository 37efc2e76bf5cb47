package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// topReasons is how many reasons a message shows.
const topReasons = 3

// WebhookPayload is the JSON body of a generic webhook delivery.
type WebhookPayload struct {
	// DeliveryID equals the Hotlane-Delivery header.
	DeliveryID string       `json:"delivery_id"`
	Type       string       `json:"type"` // "alert"
	Alert      WebhookAlert `json:"alert"`
}

// WebhookAlert is the alert inside a WebhookPayload.
type WebhookAlert struct {
	ID             string          `json:"id"`
	Kind           string          `json:"kind"` // tier, review or sla
	ConversationID string          `json:"conversation_id"`
	DecisionID     string          `json:"decision_id"`
	Channel        string          `json:"channel"`
	Tier           string          `json:"tier"`
	Score          float64         `json:"score"`
	Team           string          `json:"team,omitempty"`
	Owner          string          `json:"owner,omitempty"`
	SampleRate     *float64        `json:"sample_rate,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	Reasons        json.RawMessage `json:"reasons"`
	URL            string          `json:"url,omitempty"` // the conversation in the UI
}

func webhookBody(p feedback.PendingDelivery, publicURL string) ([]byte, error) {
	a := p.Alert
	reasons := json.RawMessage(a.Reasons)
	if !json.Valid(reasons) {
		reasons = json.RawMessage("[]")
	}
	return json.Marshal(WebhookPayload{
		DeliveryID: p.ID, Type: "alert",
		Alert: WebhookAlert{
			ID: a.ID, Kind: a.Kind, ConversationID: a.ConversationID, DecisionID: a.DecisionID, Channel: a.Channel,
			Tier: a.Tier.String(), Score: a.Score, Team: a.Team, Owner: a.Owner, SampleRate: sampleRate(a.SampleRate),
			CreatedAt: a.CreatedAt, Reasons: reasons, URL: conversationURL(publicURL, a.ConversationID),
		},
	})
}

// sampleRate is a review alert's sampling probability for the payload,
// nil (left out) for other alerts.
func sampleRate(r float64) *float64 {
	if r <= 0 {
		return nil
	}
	return &r
}

func conversationURL(publicURL, conversationID string) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/conversations/" + url.PathEscape(conversationID)
}

// strongest returns the names of the n reasons that pushed the score up the
// most, strongest first.
func strongest(raw []byte, n int) []model.Reason {
	var rs []model.Reason
	if json.Unmarshal(raw, &rs) != nil {
		return nil
	}
	rs = slices.DeleteFunc(rs, func(r model.Reason) bool { return r.Contribution <= 0 })
	feedback.ByContribution(rs)
	return rs[:min(n, len(rs))]
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBody builds a Slack incoming-webhook message: a plain text
// fallback for notifications and blocks with the tier, score, top reasons
// and a link to the conversation.
func slackBody(p feedback.PendingDelivery, publicURL string) ([]byte, error) {
	a := p.Alert
	tier := strings.ToUpper(a.Tier.String())
	conv := slackEscape(a.ConversationID)
	var headline string
	switch a.Kind {
	case feedback.AlertKindSLA:
		headline = fmt.Sprintf("SLA breached: %s conversation %s has had no first response", tier, conv)
	case feedback.AlertKindReview:
		headline = fmt.Sprintf("Review requested: conversation %s (%s), please label it", conv, a.Tier)
	default:
		headline = fmt.Sprintf("%s conversation %s needs attention", tier, conv)
	}
	link := conversationURL(publicURL, a.ConversationID)
	text := headline
	if link != "" {
		text += ": " + link
	}
	main := "*" + headline + "*"
	if link != "" {
		main += "\n<" + link + "|Open the conversation>"
	}
	fields := []slackText{
		{Type: "mrkdwn", Text: "*Tier*\n" + slackEscape(a.Tier.String())},
		{Type: "mrkdwn", Text: fmt.Sprintf("*Score*\n%.2f", a.Score)},
		{Type: "mrkdwn", Text: "*Channel*\n" + slackEscape(a.Channel)},
	}
	if a.Team != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Team*\n" + slackEscape(a.Team)})
	}
	if a.Owner != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Owner*\n" + slackEscape(a.Owner)})
	}
	blocks := []slackBlock{
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: main}},
		{Type: "section", Fields: fields},
	}
	if rs := strongest(a.Reasons, topReasons); len(rs) > 0 {
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = fmt.Sprintf("%s (+%.2f)", slackEscape(r.Name), r.Contribution)
		}
		blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{
			{Type: "mrkdwn", Text: "Top reasons: " + strings.Join(parts, ", ")},
		}})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep Slack's <url|label> links readable
	if err := enc.Encode(slackMessage{Text: text, Blocks: blocks}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
