package feedback

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

func TestChatwootChannel(t *testing.T) {
	cases := map[string]string{
		"Channel::WebWidget":                    "web",
		"Channel::Whatsapp":                     "whatsapp",
		"Channel::FacebookPage":                 "messenger",
		"Channel::TwilioSms":                    "sms",
		"Channel::TwitterProfile":               "twitter",
		"Channel::Email":                        "email",
		"Channel::Api":                          "api",
		"Channel::Telegram":                     "telegram",
		"Channel::Instagram":                    "instagram",
		"Channel::Line":                         "line",
		"Channel::Sms":                          "sms",
		"Channel::TikTok":                       "tik_tok",
		"Channel::Voice2Call":                   "voice2_call",
		"":                                      "chatwoot",
		"Channel::":                             "chatwoot",
		"Channel::" + strings.Repeat("Abc", 20): strings.TrimRight(("abc" + strings.Repeat("_abc", 19))[:32], "_"),
	}
	for in, want := range cases {
		if got := ChatwootChannel(in); got != want {
			t.Errorf("ChatwootChannel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlanChatwootWrites(t *testing.T) {
	on := ChatwootWriteBack{Priority: true, Assign: true, Note: true, Attributes: true,
		Teams: map[string]int64{"sales": 2}, Agents: map[string]int64{"sam": 7}}
	high := ChatwootScored{Tier: model.TierHigh, Score: 0.8123, Route: model.Route{Team: "sales", Owner: "sam"},
		Reasons: []model.Reason{{Kind: "rule", Name: "big-deal", Contribution: 2.5, TierFloor: "high"}}}
	kinds := func(ws []ChatwootWrite) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.Kind)
		}
		return out
	}
	cases := []struct {
		name  string
		st    ChatwootState
		view  ChatwootView
		d     ChatwootScored
		on    ChatwootWriteBack
		kinds []string
	}{
		{"first high", ChatwootState{}, ChatwootView{}, high, on, []string{"priority", "team", "assignee", "note", "attributes"}},
		{"nothing on", ChatwootState{}, ChatwootView{}, high, ChatwootWriteBack{}, nil},
		{"same again", ChatwootState{Priority: "high", TeamID: 2, AssigneeID: 7, NotedTier: model.TierHigh, AttrTier: "high", AttrScore: "0.81"},
			ChatwootView{Priority: "high", TeamID: 2, AssigneeID: 7}, high, on, nil},
		{"score moved", ChatwootState{Priority: "high", TeamID: 2, AssigneeID: 7, NotedTier: model.TierHigh, AttrTier: "high", AttrScore: "0.70"},
			ChatwootView{Priority: "high", TeamID: 2, AssigneeID: 7}, high, on, []string{"attributes"}},
		{"agent's priority and assignee kept", ChatwootState{}, ChatwootView{Priority: "low", TeamID: 5, AssigneeID: 9}, high, on,
			[]string{"note", "attributes"}},
		{"what was asked is not asked again; a new tier is", ChatwootState{Priority: "high", TeamID: 2, AssigneeID: 7, NotedTier: model.TierHigh},
			ChatwootView{}, ChatwootScored{Tier: model.TierUrgent, Score: 0.95, Route: high.Route}, on, []string{"priority", "note", "attributes"}},
		{"ours moves on", ChatwootState{Priority: "medium", NotedTier: model.TierMedium, Written: map[string][]string{ChatwootPriority: {"low", "medium"}}},
			ChatwootView{Priority: "low"}, high, on,
			[]string{"priority", "team", "assignee", "note", "attributes"}},
		{"low notes nothing", ChatwootState{}, ChatwootView{}, ChatwootScored{Tier: model.TierLow, Score: 0.1}, on, []string{"priority", "attributes"}},
		{"unmapped route", ChatwootState{}, ChatwootView{}, ChatwootScored{Tier: model.TierMedium, Score: 0.5, Route: model.Route{Team: "support", Owner: "kim"}}, on,
			[]string{"priority", "note", "attributes"}},
	}
	for _, tc := range cases {
		ws, next := PlanChatwootWrites(tc.st, tc.view, tc.d, tc.on)
		if got := kinds(ws); !slices.Equal(got, tc.kinds) {
			t.Errorf("%s: writes %v, want %v", tc.name, got, tc.kinds)
		}
		// Planning again from the state it returns, with Chatwoot showing
		// the writes, writes nothing: no loop.
		view := tc.view
		for _, w := range ws {
			var b map[string]any
			if err := json.Unmarshal(w.Body, &b); err != nil {
				t.Fatalf("%s: %s body %q: %v", tc.name, w.Kind, w.Body, err)
			}
			switch w.Kind {
			case ChatwootPriority:
				view.Priority = b["priority"].(string)
			case ChatwootTeam:
				view.TeamID = int64(b["team_id"].(float64))
			case ChatwootAssignee:
				view.AssigneeID = int64(b["assignee_id"].(float64))
			}
		}
		if again, _ := PlanChatwootWrites(next, view, tc.d, tc.on); len(again) != 0 {
			t.Errorf("%s: planning again writes %v", tc.name, kinds(again))
		}
	}
	ws, _ := PlanChatwootWrites(ChatwootState{}, ChatwootView{}, high, on)
	if got := string(ws[4].Body); got != `{"custom_attributes":{"hotlane_score":0.81,"hotlane_tier":"high"}}` {
		t.Errorf("attributes body %s", got)
	}
}

// TestChatwootOverrides: once someone changes a value Hotlane set, Hotlane
// leaves that field alone; a decision without the visitor's message does
// not lower what Hotlane wrote.
func TestChatwootOverrides(t *testing.T) {
	on := ChatwootWriteBack{Priority: true, Assign: true, Attributes: true,
		Teams: map[string]int64{"sales": 2}, Agents: map[string]int64{"sam": 7}}
	written := map[string][]string{ChatwootPriority: {"high"}, ChatwootTeam: {"2"}, ChatwootAssignee: {"7"}}
	st := ChatwootState{Priority: "high", TeamID: 2, AssigneeID: 7, AttrTier: "high", AttrScore: "0.80", Written: written}
	cases := []struct {
		name                 string
		prio, team, assignee *ChatwootChange
		marked               bool
		want                 ChatwootState
	}{
		{"own writes", &ChatwootChange{Previous: "", Current: "high"}, &ChatwootChange{CurrentID: 2}, &ChatwootChange{CurrentID: 7}, false, st},
		{"priority cleared", &ChatwootChange{Previous: "high", Current: ""}, nil, nil, true,
			ChatwootState{Priority: ChatwootLeftAlone, TeamID: 2, AssigneeID: 7, AttrTier: "high", AttrScore: "0.80", Written: written}},
		{"agent reassigned", nil, nil, &ChatwootChange{PreviousID: 7, CurrentID: 9}, true,
			ChatwootState{Priority: "high", TeamID: 2, AssigneeID: ChatwootLeftAloneID, AttrTier: "high", AttrScore: "0.80", Written: written}},
		{"team unassigned", nil, &ChatwootChange{PreviousID: 2, CurrentID: 0}, nil, true,
			ChatwootState{Priority: "high", TeamID: ChatwootLeftAloneID, AssigneeID: 7, AttrTier: "high", AttrScore: "0.80", Written: written}},
		{"Chatwoot clears the agent on Hotlane's team change", nil, &ChatwootChange{PreviousID: 0, CurrentID: 2},
			&ChatwootChange{PreviousID: 7, CurrentID: 0}, false, st},
		{"someone else's change of someone else's value", &ChatwootChange{Previous: "low", Current: "medium"}, nil, nil, false, st},
	}
	for _, tc := range cases {
		got := st
		if marked := MarkChatwootOverrides(&got, tc.prio, tc.team, tc.assignee); marked != tc.marked || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: marked %v, state %+v; want %v, %+v", tc.name, marked, got, tc.marked, tc.want)
		}
	}
	left := ChatwootState{Priority: ChatwootLeftAlone, TeamID: ChatwootLeftAloneID, AssigneeID: ChatwootLeftAloneID}
	urgent := ChatwootScored{Tier: model.TierUrgent, Score: 0.95, Route: model.Route{Team: "sales", Owner: "sam"}}
	if ws, _ := PlanChatwootWrites(left, ChatwootView{}, urgent, on); len(ws) != 1 || ws[0].Kind != ChatwootAttributes {
		t.Errorf("left alone: writes %v, want the attributes only", ws)
	}
	low := ChatwootScored{Tier: model.TierLow, Score: 0.1, Partial: true}
	if ws, _ := PlanChatwootWrites(st, ChatwootView{Priority: "high"}, low, on); len(ws) != 0 {
		t.Errorf("a partial decision lowered what Hotlane wrote: %v", ws)
	}
	moved := ChatwootScored{Tier: model.TierHigh, Score: 0.8, Partial: true, Route: model.Route{Team: "support", Owner: "kim"}}
	on.Teams["support"], on.Agents["kim"] = 3, 8
	if ws, _ := PlanChatwootWrites(st, ChatwootView{Priority: "high", TeamID: 2, AssigneeID: 7}, moved, on); len(ws) != 0 {
		t.Errorf("a partial decision re-routed: %v", ws)
	}
	if ws, _ := PlanChatwootWrites(ChatwootState{}, ChatwootView{}, moved, on); len(ws) != 4 {
		t.Errorf("a partial decision did not fill the empty fields: %v", ws)
	}
	low.Partial = false
	if ws, _ := PlanChatwootWrites(st, ChatwootView{Priority: "high"}, low, on); len(ws) != 2 {
		t.Errorf("a full decision did not lower the priority and attributes: %v", ws)
	}
}

func TestChatwootNoteText(t *testing.T) {
	d := ChatwootScored{Tier: model.TierUrgent, Score: 0.934, Route: model.Route{Team: "enterprise-sales"}, Reasons: []model.Reason{
		{Kind: "feature", Name: "wait_seconds", Contribution: 0.3, Value: 240.0},
		{Kind: "rule", Name: "big-deal", Contribution: 2.5, TierFloor: "high"},
		{Kind: "feature", Name: "plan=enterprise", Contribution: 1.1, Value: "enterprise"},
		{Kind: "feature", Name: "message_count", Contribution: -0.4, Value: 1.0},
		{Kind: "feature", Name: "deal_size", Contribution: 0.2, Value: 50000.0},
	}}
	want := "Hotlane: URGENT priority (score 0.93, team enterprise-sales) because of rule big-deal (+2.50, at least high), plan=enterprise (+1.10) and wait_seconds 240 (+0.30)."
	if got := ChatwootNoteText(d); got != want {
		t.Errorf("note\n got %q\nwant %q", got, want)
	}
	d.Why = "An open deal of at least 10k (at least high, +2.5), deal_size 50000 (+0.2)"
	want = "Hotlane: URGENT priority (score 0.93, team enterprise-sales). Why: An open deal of at least 10k (at least high, +2.5), deal_size 50000 (+0.2)."
	if got := ChatwootNoteText(d); got != want {
		t.Errorf("note with words\n got %q\nwant %q", got, want)
	}
	if got := ChatwootNoteText(ChatwootScored{Tier: model.TierMedium, Score: 0.5}); got != "Hotlane: MEDIUM priority (score 0.50)." {
		t.Errorf("note without reasons: %q", got)
	}
}

func TestChatwootRetry(t *testing.T) {
	created := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	next, ok := ChatwootRetry(1, created, created)
	if !ok || next.Sub(created) != 10*time.Second {
		t.Errorf("first retry at +%v, want +10s", next.Sub(created))
	}
	next, ok = ChatwootRetry(9, created, created.Add(23*time.Hour))
	if !ok || !next.Equal(created.Add(24*time.Hour)) {
		t.Errorf("late retry at %v, want the deadline", next)
	}
	if _, ok := ChatwootRetry(10, created, created.Add(24*time.Hour)); ok {
		t.Error("a write a day old is still retried")
	}
}
