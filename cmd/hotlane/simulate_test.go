package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

func TestSimulateWorldIsDeterministic(t *testing.T) {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	week := func(seed int64, k int) []simConv {
		t.Helper()
		w, err := newSimWorld(seed)
		if err != nil {
			t.Fatal(err)
		}
		return w.Week(k, 500, start)
	}
	a, b := week(7, 2), week(7, 2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed and week gave different conversations")
	}
	if reflect.DeepEqual(a, week(8, 2)) {
		t.Error("seeds 7 and 8 gave the same conversations")
	}
	if reflect.DeepEqual(a, week(7, 3)) {
		t.Error("weeks 2 and 3 of seed 7 are the same")
	}

	end := start.AddDate(0, 0, 7)
	for _, c := range a {
		if n := len(c.Calls); n < 1 || n > 2 {
			t.Fatalf("%s: %d calls, want 1 or 2", c.ID, n)
		}
		inWeek := func(at time.Time) bool { return !at.Before(start) && at.Before(end) }
		first, last := c.Calls[0].At, c.Calls[len(c.Calls)-1].At
		if !first.Equal(c.Start) || last.Before(first) || c.FirstResponseAt.Before(c.Start) ||
			!c.OutcomeAt.After(c.FirstResponseAt) || !inWeek(c.Start) || !inWeek(c.OutcomeAt) {
			t.Fatalf("%s: start %s, calls %s..%s, first response %s, outcome %s: want them in order inside [%s, %s)",
				c.ID, c.Start, first, last, c.FirstResponseAt, c.OutcomeAt, start, end)
		}
		if !(c.TrueProb > 0 && c.TrueProb < 1) {
			t.Fatalf("%s: true probability %v", c.ID, c.TrueProb)
		}
		if c.Positive != (c.Value > 0) {
			t.Fatalf("%s: positive %v with value %v", c.ID, c.Positive, c.Value)
		}
	}
}

// TestSimulateWorldRulesArePartlyRight checks the premise of the
// simulation: alerting on the true probability is clearly more precise
// than alerting on the hand-written rules, and the true probabilities
// separate the outcomes well but not perfectly.
func TestSimulateWorldRulesArePartlyRight(t *testing.T) {
	w, err := newSimWorld(1)
	if err != nil {
		t.Fatal(err)
	}
	convs := w.Week(1, 20000, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	var positives, rulesAlerts, rulesTP, truthAlerts, truthTP int
	truth, labels := make([]float64, len(convs)), make([]float64, len(convs))
	for i, c := range convs {
		truth[i] = c.TrueProb
		if c.Positive {
			labels[i] = 1
			positives++
		}
		final := c.Calls[len(c.Calls)-1]
		d := w.scorer.Score(model.Input{Channel: c.Channel, Message: final.Message, Signals: final.Signals})
		high := 0.7
		if c.Channel == "whatsapp" {
			high = 0.65
		}
		if d.Tier >= model.TierHigh {
			rulesAlerts++
			if c.Positive {
				rulesTP++
			}
		}
		if c.TrueProb >= high {
			truthAlerts++
			if c.Positive {
				truthTP++
			}
		}
	}
	rate := float64(positives) / float64(len(convs))
	rulesPrecision := float64(rulesTP) / float64(rulesAlerts)
	truthPrecision := float64(truthTP) / float64(truthAlerts)
	best := *simAUC(truth, labels)
	t.Logf("positives %.3f, best AUC %.3f, rules precision %.3f (%d alerts), truth precision %.3f (%d alerts)",
		rate, best, rulesPrecision, rulesAlerts, truthPrecision, truthAlerts)
	if rate < 0.2 || rate > 0.35 {
		t.Errorf("positive rate %.3f, want between 0.2 and 0.35", rate)
	}
	if best < 0.78 || best > 0.9 {
		t.Errorf("best AUC %.3f, want between 0.78 and 0.9", best)
	}
	if truthPrecision-rulesPrecision < 0.1 {
		t.Errorf("rules precision %.3f, truth precision %.3f: want the truth ahead by at least 0.1", rulesPrecision, truthPrecision)
	}
}

func TestSimulateStart(t *testing.T) {
	tests := []struct {
		name  string
		now   string
		weeks int
		want  string
	}{
		{"wednesday", "2026-11-25T15:04:05Z", 4, "2026-10-26T00:00:00Z"},
		{"monday midnight", "2026-11-23T00:00:00Z", 1, "2026-11-16T00:00:00Z"},
		{"sunday night", "2026-11-29T23:59:59Z", 2, "2026-11-09T00:00:00Z"},
		{"other zone", "2026-11-23T01:00:00+02:00", 1, "2026-11-09T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, _ := time.Parse(time.RFC3339, tt.now)
			got := simStart(now, tt.weeks)
			if got.Format(time.RFC3339) != tt.want {
				t.Errorf("simStart(%s, %d) = %s, want %s", tt.now, tt.weeks, got.Format(time.RFC3339), tt.want)
			}
			if got.Weekday() != time.Monday || now.Sub(got) < time.Duration(tt.weeks)*7*24*time.Hour {
				t.Errorf("%s is not a Monday at least %d weeks before %s", got, tt.weeks, tt.now)
			}
		})
	}
}

func TestSimulateAUC(t *testing.T) {
	tests := []struct {
		name           string
		scores, labels []float64
		want           float64 // -1: undefined
	}{
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []float64{0, 0, 1, 1}, 1},
		{"reversed", []float64{0.9, 0.8, 0.2, 0.1}, []float64{0, 0, 1, 1}, 0},
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, []float64{0, 1, 0, 1}, 0.5},
		{"one swap", []float64{0.1, 0.3, 0.2, 0.4}, []float64{0, 0, 1, 1}, 0.75},
		{"positives only", []float64{0.1, 0.2}, []float64{1, 1}, -1},
		{"negatives only", []float64{0.1, 0.2}, []float64{0, 0}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := simAUC(tt.scores, tt.labels)
			switch {
			case tt.want < 0 && got != nil:
				t.Errorf("simAUC = %v, want nil", *got)
			case tt.want >= 0 && (got == nil || math.Abs(*got-tt.want) > 1e-12):
				t.Errorf("simAUC = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSimulateRun runs a short simulation against an in-process server,
// tuning included, and checks the weekly rows.
func TestSimulateRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"simulate", "--weeks", "2", "--conversations", "300", "--seed", "5", "--concurrency", "8", "--json"},
		strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	// Standard error is not a terminal: it holds simulate's lines only,
	// no status line (TestSimulateProgress).
	if strings.Contains(stderr.String(), "\r") || strings.Contains(stderr.String(), "week 1 of 2") {
		t.Errorf("stderr holds a status line:\n%q", stderr.String())
	}
	var rep simReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", stdout.String(), err)
	}
	if len(rep.Weeks) != 2 {
		t.Fatalf("%d weekly rows, want 2", len(rep.Weeks))
	}
	rate := func(name string, p *float64) {
		t.Helper()
		if p == nil || !(*p >= 0 && *p <= 1) {
			t.Errorf("%s = %v, want a rate in [0, 1]", name, p)
		}
	}
	for i, row := range rep.Weeks {
		if row.Week != i+1 || row.Conversations != 300 {
			t.Errorf("row %d: week %d with %d conversations, want week %d with 300", i, row.Week, row.Conversations, i+1)
		}
		if got := row.End.Sub(row.Start); got != 7*24*time.Hour || row.Start.Weekday() != time.Monday || row.End.After(time.Now()) {
			t.Errorf("week %d: [%s, %s) is not a past week from a Monday", row.Week, row.Start, row.End)
		}
		if row.AlertsFired < 1 || row.Positives < 1 {
			t.Errorf("week %d: %d alerts, %d positives: want some of both", row.Week, row.AlertsFired, row.Positives)
		}
		if row.Labelled < row.AlertsFired {
			t.Errorf("week %d: %d alerts labelled, want at least the %d fired", row.Week, row.Labelled, row.AlertsFired)
		}
		rate("alert precision", row.AlertPrecision)
		rate("true recall", row.TrueRecall)
		rate("model AUC", row.ModelAUC)
		rate("best AUC", row.BestAUC)
		if row.BestAUC != nil && *row.BestAUC < 0.7 {
			t.Errorf("week %d: best AUC %.3f, want at least 0.7", row.Week, *row.BestAUC)
		}
	}
	if first := rep.Weeks[0]; first.ModelVersion != nil || first.Tuning == nil {
		t.Errorf("week 1: model %v, tuning %+v: want rules only, then a tuning run", first.ModelVersion, first.Tuning)
	} else if first.Tuning.Reason == "" {
		t.Errorf("week 1: tuning %+v has no reason", first.Tuning)
	}
	last := rep.Weeks[1]
	if last.Tuning != nil {
		t.Errorf("week 2 is the last: tuning %+v, want none", last.Tuning)
	}
	if tu := rep.Weeks[0].Tuning; tu != nil && tu.Promoted {
		if last.ModelVersion == nil || tu.CandidateVersion == nil || *last.ModelVersion != *tu.CandidateVersion {
			t.Errorf("week 2 scored with model %v, want the promoted %v", last.ModelVersion, tu.CandidateVersion)
		}
	}

	var table bytes.Buffer
	if err := rep.writeText(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	if len(lines) < 4 || !strings.Contains(lines[0], "precision") || !strings.HasPrefix(strings.TrimSpace(lines[1]), "1 ") ||
		!strings.HasPrefix(strings.TrimSpace(lines[2]), "2 ") || !strings.HasPrefix(lines[3], "after week 1: ") {
		t.Errorf("table:\n%s", table.String())
	}
}

// With --progress always, simulate shows on standard error the week, n of
// N, and how far its part is, below its own lines, then clears the line.
func TestSimulateProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"simulate", "--weeks", "2", "--conversations", "100", "--concurrency", "8", "--json", "--progress", "always"},
		strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	got := stderr.String()
	for _, want := range []string{
		"\rsimulate: week 1 of 2: waiting for the server to score with ruleset 1 and no model",
		"\rsimulate: week 1 of 2: scoring: 0 of 100 conversations", "\rsimulate: week 1 of 2: labelling: 0 of ",
		"\rsimulate: week 1 of 2: reporting outcomes: 0 of 100 conversations", "\rsimulate: week 1 of 2: running the tuning job",
		"\rsimulate: week 2 of 2: scoring: 0 of 100 conversations",
		// simulate's own lines are whole, each on a line of its own.
		"\rsimulate: week 1: scored 100 conversations\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr lacks %q:\n%q", want, got)
		}
	}
	if !lastCleared(got) {
		t.Errorf("the line is not cleared at the end:\n%q", got)
	}
	var rep simReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || len(rep.Weeks) != 2 {
		t.Errorf("stdout: %v, %d weeks; want the JSON report of 2 weeks", err, len(rep.Weeks))
	}
}

func TestSimulateFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no weeks", []string{"--weeks", "0"}, "--weeks"},
		{"url without key", []string{"--url", "http://127.0.0.1:1"}, "--key"},
		{"url without replace-rules", []string{"--url", "http://127.0.0.1:1", "--key", "k"}, "--replace-rules"},
		{"noise", []string{"--label-noise", "0.7"}, "--label-noise"},
		{"argument", []string{"extra"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runSimulate(context.Background(), tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || exitCode(err) != 2 {
				t.Errorf("simulate %v: %v, want a usage error about %s", tt.args, err, tt.want)
			}
		})
	}
}

// simulate --url --replace-rules says it replaces the ruleset, and makes
// the server's ruleset and model live again when it ends.
func TestSimulateReplaceRulesRestores(t *testing.T) {
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--demo", "--demo-history=false", "--reload-interval", "100ms")
	defer srv.stop(t)
	c := client{t: t, base: "http://" + srv.addr, key: srv.key}
	var before struct {
		Version int `json:"version"`
	}
	if code := c.call(http.MethodGet, "/v1/rules", "", &before); code != http.StatusOK {
		t.Fatalf("rules: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"simulate", "--url", c.base, "--key", srv.key, "--replace-rules", "--weeks", "2", "--conversations", "300", "--concurrency", "8"},
		strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("publishing the simulation's ruleset on %s (live now: ruleset %d and no model)", c.base, before.Version)) ||
		!strings.Contains(stderr.String(), fmt.Sprintf("restored ruleset %d and no model", before.Version)) {
		t.Errorf("simulate did not say what it replaced and restored:\n%s", stderr.String())
	}
	var after struct {
		Version int `json:"version"`
	}
	c.call(http.MethodGet, "/v1/rules", "", &after)
	if after.Version != before.Version {
		t.Errorf("live ruleset after the run: %d, want %d again", after.Version, before.Version)
	}
	var models struct {
		Models []struct {
			Version int    `json:"version"`
			Status  string `json:"status"`
		} `json:"models"`
	}
	c.call(http.MethodGet, "/v1/models", "", &models)
	for _, m := range models.Models {
		if m.Status == "active" {
			t.Errorf("model %d is active after the run; the server had none before", m.Version)
		}
	}
	if len(models.Models) == 0 {
		t.Log("the run promoted no model")
	}
}
