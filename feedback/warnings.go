package feedback

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/hotlane/hotlane/model"
)

// WarningSummary is one rule or signal that recent decisions could not
// use, with how often and the latest example.
type WarningSummary struct {
	Rule, Signal string
	// Decisions is how many of the decisions read carried it.
	Decisions int
	// Message, ConversationID and At are those of the newest one.
	Message        string
	ConversationID string
	At             time.Time
}

// DecodeWarnings reads a decision's stored warnings; nil when it has none
// or they do not parse.
func DecodeWarnings(raw []byte) []model.Warning {
	if len(raw) == 0 {
		return nil
	}
	var ws []model.Warning
	if json.Unmarshal(raw, &ws) != nil {
		return nil
	}
	return ws
}

// SummarizeWarnings groups the warnings of decisions (newest first, as
// the store lists them) by rule or signal, the most frequent first (ties
// by name).
func SummarizeWarnings(decisions []Decision) []WarningSummary {
	type key struct{ rule, signal string }
	index := map[key]int{}
	var out []WarningSummary
	for _, d := range decisions {
		seen := map[key]bool{}
		for _, w := range DecodeWarnings(d.Warnings) {
			k := key{w.Rule, w.Signal}
			if seen[k] {
				continue
			}
			seen[k] = true
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				out = append(out, WarningSummary{Rule: w.Rule, Signal: w.Signal, Message: w.Message,
					ConversationID: d.ConversationID, At: d.CreatedAt})
			}
			out[i].Decisions++
		}
	}
	slices.SortStableFunc(out, func(a, b WarningSummary) int {
		if a.Decisions != b.Decisions {
			return b.Decisions - a.Decisions
		}
		return strings.Compare(a.Rule+"\x00"+a.Signal, b.Rule+"\x00"+b.Signal)
	})
	return out
}
