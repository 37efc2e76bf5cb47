package feedback

import (
	"fmt"
	"testing"
	"time"
)

func TestDeriveTrainingLabel(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	label := func(agent, l string, min int) AlertLabel {
		return AlertLabel{AlertID: "a1", Agent: agent, Label: l, CreatedAt: at(min), UpdatedAt: at(min)}
	}
	feedback := func(agent, tier string, min int) Event {
		return Event{Type: EventTierFeedback, Agent: agent, Tier: ParseEventTier(tier), At: at(min)}
	}
	event := func(typ string, min int) Event { return Event{Type: typ, At: at(min)} }

	// Agents' opinions, each with the verdict they lead to.
	opinions := []struct {
		name    string
		labels  []AlertLabel
		events  []Event
		verdict string // positive, negative, "" (none) or "tie"
	}{
		{"no opinion", nil, nil, ""},
		{"useful", []AlertLabel{label("ana", LabelUseful, 1)}, nil, TrainingPositive},
		{"noise", []AlertLabel{label("ana", LabelNoise, 1)}, nil, TrainingNegative},
		{"tier confirmed high", nil, []Event{feedback("ana", "high", 1)}, TrainingPositive},
		{"tier corrected to low", nil, []Event{feedback("ana", "low", 1)}, TrainingNegative},
		{"two agents disagree", []AlertLabel{label("ana", LabelUseful, 1), label("bo", LabelNoise, 2)}, nil, "tie"},
		{"two of three useful", []AlertLabel{label("ana", LabelUseful, 1), label("bo", LabelNoise, 2), label("cy", LabelUseful, 3)}, nil, TrainingPositive},
		{"agent's later tier feedback overrides their label", []AlertLabel{label("ana", LabelUseful, 1)}, []Event{feedback("ana", "medium", 2)}, TrainingNegative},
		{"agent's later label overrides their tier feedback", []AlertLabel{label("ana", LabelUseful, 3)}, []Event{feedback("ana", "low", 2)}, TrainingPositive},
		{"tier feedback wins a tie in time", []AlertLabel{label("ana", LabelNoise, 2)}, []Event{feedback("ana", "urgent", 2)}, TrainingPositive},
		{"label and feedback of different agents disagree", []AlertLabel{label("ana", LabelUseful, 1)}, []Event{feedback("bo", "low", 1)}, "tie"},
		{"anonymous tier feedback is one voice", nil, []Event{feedback("", "high", 1), feedback("", "low", 2)}, TrainingNegative},
	}
	outcomes := []struct {
		name   string
		events []Event
		label  string
		source string
	}{
		{"no outcome", nil, "", ""},
		{"converted", []Event{event(EventConverted, 5)}, TrainingPositive, SourceConverted},
		{"lost", []Event{event(EventLost, 5)}, TrainingNegative, SourceLost},
		{"lost then converted", []Event{event(EventLost, 5), event(EventConverted, 6)}, TrainingPositive, SourceConverted},
		{"converted then lost", []Event{event(EventConverted, 5), event(EventLost, 6)}, TrainingNegative, SourceLost},
		{"converted and lost at once", []Event{event(EventLost, 5), event(EventConverted, 5)}, TrainingPositive, SourceConverted},
		{"only first_response and closed", []Event{event(EventFirstResponse, 5), event(EventClosed, 6)}, "", ""},
	}
	samples := []struct {
		rate   float64
		weight float64
	}{{0, 1}, {0.02, 50}, {0.5, 2}}

	for _, op := range opinions {
		for _, oc := range outcomes {
			for _, sm := range samples {
				name := fmt.Sprintf("%s/%s/sample %g", op.name, oc.name, sm.rate)
				t.Run(name, func(t *testing.T) {
					in := TrainingInput{Labels: op.labels, SampleRate: sm.rate}
					in.Events = append(append([]Event{}, op.events...), oc.events...)
					want := TrainingLabel{}
					switch op.verdict {
					case TrainingPositive, TrainingNegative:
						want.Label, want.Source = op.verdict, SourceAgent
					case "tie":
						want.Conflict = true
						want.Label, want.Source = oc.label, oc.source
					default:
						want.Label, want.Source = oc.label, oc.source
					}
					if want.Label != "" {
						want.Weight = 1
						if want.Source == SourceAgent {
							want.Weight = sm.weight
						}
					}
					got := DeriveTrainingLabel(in)
					if got != want {
						t.Errorf("got %+v, want %+v", got, want)
					}
					// Order of the input does not matter.
					rev := TrainingInput{SampleRate: in.SampleRate}
					for i := len(in.Labels) - 1; i >= 0; i-- {
						rev.Labels = append(rev.Labels, in.Labels[i])
					}
					for i := len(in.Events) - 1; i >= 0; i-- {
						rev.Events = append(rev.Events, in.Events[i])
					}
					if got := DeriveTrainingLabel(rev); got != want {
						t.Errorf("reversed input: got %+v, want %+v", got, want)
					}
				})
			}
		}
	}
}
