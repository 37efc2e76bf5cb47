package jobs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// rowsStore serves a fixed window to gather; the tuning job asks it for
// nothing else in these tests.
type rowsStore struct {
	TuneStore
	rows func(fn func(feedback.TrainingRow) error) error
}

func (s rowsStore) TrainingRows(_ context.Context, _, _ time.Time, fn func(feedback.TrainingRow) error) error {
	return s.rows(fn)
}

// TestLabelSampleIsUniform draws many samples of 20 others among 5
// mandatory rows, the mandatory ones arriving after the sample is full so
// that each evicts a sampled row: every other must be kept equally often
// (5 of 20), and every mandatory one always.
func TestLabelSampleIsUniform(t *testing.T) {
	// o is an other (a lost conversation), m a mandatory one.
	order := "oooooooooo m ooooo mm ooooo mm"
	const trials = 20_000
	kept := map[int]int{}
	for trial := range trials {
		s := labelSample{max: 10, rng: rand.New(rand.NewPCG(uint64(trial), 8))}
		id := 0
		for _, c := range order {
			switch c {
			case 'o':
				s.add(model.TuningRow{Source: feedback.SourceLost, SampleRate: float64(id)})
				id++
			case 'm':
				s.add(model.TuningRow{Source: feedback.SourceAgent})
			}
		}
		var mand, others int
		for _, r := range s.rows {
			if r.Source == feedback.SourceAgent {
				mand++
				continue
			}
			others++
			kept[int(r.SampleRate)]++
		}
		if mand != 5 || others != 5 || s.mandatory != 5 || len(s.others) != 5 || s.seen != 20 {
			t.Fatalf("trial %d: kept %d mandatory and %d of %d others, want 5 and 5 of 20", trial, mand, others, s.seen)
		}
	}
	// Each other is kept with probability 1/4: the share over 20000
	// trials has a standard deviation of 0.003.
	for id := range 20 {
		if got := float64(kept[id]) / trials; got < 0.235 || got > 0.265 {
			t.Errorf("other %d kept in %.3f of the trials, want 0.25", id, got)
		}
	}
}

// sampleWindow is a window of 50 agent-labelled conversations (half of
// them review-sampled at rate 0.5), 100 converted and 5000 lost ones
// (every tenth of them review-sampled too), interleaved, over three weeks
// before asOf.
func sampleWindow(asOf time.Time) func(fn func(feedback.TrainingRow) error) error {
	return func(fn func(feedback.TrainingRow) error) error {
		const n = 5150
		for i := range n {
			r := feedback.TrainingRow{ConversationID: fmt.Sprintf("c-%05d", i), Channel: "web",
				At:      asOf.Add(-time.Duration(float64(21*24*time.Hour) * float64(n-i) / (n + 1))),
				Signals: fmt.Appendf(nil, `{"deal_size":%d,"plan":"pro"}`, 100+i%997*37)}
			switch {
			case i%103 == 0: // 50 agents' labels
				r.Label = feedback.TrainingLabel{Label: feedback.TrainingNegative, Weight: 1, Source: feedback.SourceAgent}
				if i%2 == 0 {
					r.Label.Label = feedback.TrainingPositive
				}
				if i%206 == 0 {
					r.SampleRate, r.Label.Weight = 0.5, 2
				}
			case i%103 == 1 || i%103 == 2: // 100 conversions
				r.Label = feedback.TrainingLabel{Label: feedback.TrainingPositive, Weight: 1, Source: feedback.SourceConverted}
			default: // 5000 losses
				r.Label = feedback.TrainingLabel{Label: feedback.TrainingNegative, Weight: 1, Source: feedback.SourceLost}
				if i%10 == 3 {
					r.SampleRate = 0.5
				}
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// tuneSampleWindow gathers sampleWindow under maxRows and computes a report
// from it as a run would.
func tuneSampleWindow(t *testing.T, maxRows int) (*gathered, *feedback.Report) {
	t.Helper()
	ctx := context.Background()
	asOf := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	// Sampled, the holdout keeps fewer negatives than the product's
	// minimum asks: the weights are what is measured here.
	tu := &Tuner{Store: rowsStore{rows: sampleWindow(asOf)}, MaxRows: maxRows, Minimums: model.Minimums{HoldoutNegatives: 10}}
	set, err := tu.settings()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := model.ParsePolicy([]byte(`{"base": -2, "rules": [{"name": "big-deal", "expression": "deal_size >= 5000", "points": 0.5}],
  "thresholds": {"default": {"urgent": 0.9, "high": 0.7, "medium": 0.4}}}`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := model.CompilePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	from, holdoutFrom := asOf.Add(-set.window), asOf.Add(-set.holdout)
	g, err := tu.gather(ctx, from, asOf, holdoutFrom, set.maxRows)
	if err != nil {
		t.Fatal(err)
	}
	rep := &feedback.Report{Window: feedback.ReportWindow{Start: from, End: asOf, HoldoutStart: holdoutFrom}}
	if _, err := compute(ctx, set, &feedback.Scoring{Policy: pol}, g, rep); err != nil {
		t.Fatal(err)
	}
	return g, rep
}

func TestTuneSamplesPastMaxRows(t *testing.T) {
	g, rep := tuneSampleWindow(t, 200)
	bySource := map[string]int{}
	var lostWeight float64
	for _, r := range g.labelled {
		bySource[r.Source]++
		switch {
		case r.Source == feedback.SourceLost:
			// A review-sampled loss counts once (ReweightReviewSample sets
			// it to 1 first), times the sampling factor all the same.
			if r.Weight != 100 {
				t.Errorf("sampled loss (review rate %v) weighs %v, want 5000/50 = 100", r.SampleRate, r.Weight)
			}
			lostWeight += r.Weight
		case r.Weight != 1:
			// Outcomes label most conversations, so the agents' review
			// sample counts once too, and nothing mandatory is scaled.
			t.Errorf("%s conversation weighs %v, want 1", r.Source, r.Weight)
		}
	}
	if bySource[feedback.SourceAgent] != 50 || bySource[feedback.SourceConverted] != 100 || len(g.labelled) != 200 {
		t.Errorf("kept %v (%d in all), want all 50 agents' labels and 100 conversions, 200 in all", bySource, len(g.labelled))
	}
	if lostWeight != 5000 {
		t.Errorf("the kept losses weigh %v in all, want the 5000 seen", lostWeight)
	}
	for i := 1; i < len(g.labelled); i++ {
		if g.labelled[i].At.Before(g.labelled[i-1].At) {
			t.Fatalf("labelled rows out of time order at %d", i)
		}
	}
	d := rep.Data
	if !d.Sampled || d.SampledFrom != 5150 || d.SampledKept != 200 || d.SampleWeight != 100 || d.Labelled != 200 {
		t.Errorf("report data %+v, want sampled 200 of 5150 at weight 100", d)
	}
	notes := strings.Join(rep.Notes, "\n")
	if !strings.Contains(notes, "--tune-max-rows 200") || !strings.Contains(notes, "sample of 50 of the other 5000") {
		t.Errorf("notes %q do not say the window was sampled", notes)
	}
	// The holdout metrics weigh the sampled rows up.
	if rep.Candidate == nil {
		t.Fatalf("no candidate: %s", rep.Promotion.Reason)
	}
	var holdout float64
	for _, r := range g.labelled {
		if !r.At.Before(rep.Window.HoldoutStart) {
			holdout += r.Weight
		}
	}
	if w := rep.Candidate.WeightTotal; w != holdout || w <= float64(d.Holdout) {
		t.Errorf("weighted holdout %v, want %v (%d rows kept)", w, holdout, d.Holdout)
	}
}

func TestTuneUnderMaxRowsKeepsAll(t *testing.T) {
	g, rep := tuneSampleWindow(t, 0) // the default, 1M
	if len(g.labelled) != 5150 {
		t.Errorf("kept %d labelled conversations, want all 5150", len(g.labelled))
	}
	for _, r := range g.labelled {
		if r.Weight != 1 {
			t.Fatalf("%s conversation weighs %v, want 1", r.Source, r.Weight)
		}
	}
	if d := rep.Data; d.Sampled || d.SampledFrom != 0 || d.SampleWeight != 0 || d.Labelled != 5150 {
		t.Errorf("report data %+v, want nothing sampled", d)
	}
	if notes := strings.Join(rep.Notes, "\n"); strings.Contains(notes, "--tune-max-rows") {
		t.Errorf("notes %q mention sampling", notes)
	}
}

// TestTuneKeepsMandatoryPastMaxRows: when agents' labels and positives
// alone are more than the cap, they are all kept, no loss is, and the
// report says so.
func TestTuneKeepsMandatoryPastMaxRows(t *testing.T) {
	g := &gathered{}
	s := labelSample{max: 3, rng: rand.New(rand.NewPCG(1, 8))}
	for _, src := range []string{feedback.SourceLost, feedback.SourceAgent, feedback.SourceLost, feedback.SourceConverted,
		feedback.SourceAgent, feedback.SourceLost, feedback.SourceConverted} {
		s.add(model.TuningRow{Source: src, Example: model.Example{Label: src == feedback.SourceConverted, Weight: 1}})
	}
	if len(s.rows) != 4 || s.mandatory != 4 || len(s.others) != 0 || s.seen != 3 {
		t.Fatalf("kept %d rows, %d mandatory and %d of %d others, want 4, 4 and 0 of 3", len(s.rows), s.mandatory, len(s.others), s.seen)
	}
	for _, r := range s.rows {
		if !mandatory(&r) {
			t.Errorf("kept a %s conversation", r.Source)
		}
	}
	g.maxRows, g.mandatory, g.otherSeen, g.labelledSeen = 3, 4, 3, 7
	var d feedback.ReportData
	note := sampleNote(g, g.weighSample(), &d)
	if !d.Sampled || d.SampledFrom != 7 || d.SampledKept != 4 || d.SampleWeight != 0 || !strings.Contains(note, "alone exceed --tune-max-rows 3") {
		t.Errorf("data %+v, note %q", d, note)
	}
}

// BenchmarkGatherKeptRow measures the memory a labelled conversation
// kept by gather costs: the TuningRow, its signals' JSON (four signals,
// as in TestTuneAtScale) and its hits, as the store hands them over.
func BenchmarkGatherKeptRow(b *testing.B) {
	const n = 200_000
	window := func(fn func(feedback.TrainingRow) error) error {
		at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		for i := range n {
			r := feedback.TrainingRow{Channel: string([]byte("web")), At: at.Add(time.Duration(i) * time.Second),
				Signals: fmt.Appendf(nil, `{"deal_size":%d.25,"plan":"team","returning":%v,"wait_seconds":%d}`, 100+i%99991, i%2 == 0, i%600),
				Label:   feedback.TrainingLabel{Label: feedback.TrainingNegative, Weight: 1, Source: feedback.SourceLost}}
			if i%3 == 0 {
				r.Hits = []string{string([]byte("big-deal"))}
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	tu := &Tuner{Store: rowsStore{rows: window}}
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		g, err := tu.gather(context.Background(), time.Time{}, time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), n)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(g.labelled)), "B/row")
		runtime.KeepAlive(g)
	}
}
