package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// ApplyStore is what ApplyReport needs from the store.
type ApplyStore interface {
	Report(ctx context.Context, id string) (feedback.StoredReport, error)
	Policy(ctx context.Context, version int) (feedback.PolicyVersion, error)
	PublishPolicy(ctx context.Context, document []byte, source, author, note string) (feedback.PolicyVersion, error)
	MarkReportApplied(ctx context.Context, id string, policyVersion int) error
	LiveVersions(ctx context.Context) (policy, model int, err error)
}

// ApplyReport publishes a new policy version from the ruleset a report was
// made with: each rule's points become its tuned weight and the
// thresholds the proposed ones (per channel, "default" for all), so the
// rules-only scorer and the thresholds follow the tuning. The rules and
// everything else stay as they were. It refuses a report applied before,
// one made with a ruleset that is no longer live (applying it would undo
// the newer one), and one whose candidate is not the active model (the
// thresholds were tuned on its scores).
//
// Its refusals are feedback.ErrNothingToApply, ErrApplied, ErrStaleReport
// and ErrNotPromoted, each also feedback.ErrConflict.
func ApplyReport(ctx context.Context, store ApplyStore, id, author string) (feedback.PolicyVersion, error) {
	sr, err := store.Report(ctx, id)
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	var rep feedback.Report
	if err := json.Unmarshal(sr.Body, &rep); err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("report %s: %w", id, err)
	}
	if rep.CandidateModelVersion == 0 {
		return feedback.PolicyVersion{}, feedback.ErrNothingToApply
	}
	if sr.AppliedPolicy > 0 {
		return feedback.PolicyVersion{}, fmt.Errorf("%w as ruleset version %d", feedback.ErrApplied, sr.AppliedPolicy)
	}
	livePolicy, liveModel, err := store.LiveVersions(ctx)
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	if livePolicy != rep.PolicyVersion {
		return feedback.PolicyVersion{}, fmt.Errorf("%w (report made with version %d, live is %d)", feedback.ErrStaleReport, rep.PolicyVersion, livePolicy)
	}
	if liveModel != rep.CandidateModelVersion {
		return feedback.PolicyVersion{}, fmt.Errorf("%w (model %d)", feedback.ErrNotPromoted, rep.CandidateModelVersion)
	}
	pv, err := store.Policy(ctx, rep.PolicyVersion)
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("ruleset %d: %w", rep.PolicyVersion, err)
	}
	doc, err := model.ParsePolicy(pv.Document)
	if err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("ruleset %d: %w", rep.PolicyVersion, err)
	}
	tuned := map[string]float64{}
	for _, r := range rep.Rules {
		if r.TunedWeight != nil {
			tuned[r.Name] = *r.TunedWeight
		}
	}
	for i := range doc.Rules {
		if w, ok := tuned[doc.Rules[i].Name]; ok {
			doc.Rules[i].Points = round4(w)
		}
	}
	if doc.Thresholds == nil {
		doc.Thresholds = map[string]model.Thresholds{}
	}
	for _, t := range rep.Thresholds {
		th := t.Proposal.Thresholds
		doc.Thresholds[t.Channel] = model.Thresholds{Urgent: round4(th.Urgent), High: round4(th.High), Medium: round4(th.Medium)}
	}
	if _, err := model.CompilePolicy(doc); err != nil {
		return feedback.PolicyVersion{}, fmt.Errorf("the proposal does not make a valid ruleset: %w", err)
	}
	canonical, err := doc.Canonical()
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	published, err := store.PublishPolicy(ctx, canonical, string(canonical), author,
		fmt.Sprintf("tuned weights and thresholds of report %s", id))
	if err != nil {
		return feedback.PolicyVersion{}, err
	}
	if err := store.MarkReportApplied(ctx, id, published.Version); err != nil {
		return published, err
	}
	return published, nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
