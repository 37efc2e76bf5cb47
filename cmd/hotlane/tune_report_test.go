package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestTuneTooLittleDataCLI tunes on a history of 30 conversations from the
// command line: the output says "too little data" with the counts and
// what is needed, and prints no metrics, thresholds or promotion; --json
// carries the same with the metrics null.
func TestTuneTooLittleDataCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	policy := filepath.Join(dir, "p.yaml")
	write(t, policy, demoPolicy)
	var csv strings.Builder
	csv.WriteString("deal_size,won\n")
	rng := rand.New(rand.NewPCG(7, 8))
	for range 30 {
		deal := 500 + rng.IntN(20000)
		fmt.Fprintf(&csv, "%d,%v\n", deal, (deal >= 10000) != (rng.IntN(8) == 0))
	}
	history := filepath.Join(dir, "history.csv")
	write(t, history, []byte(csv.String()))
	for _, args := range [][]string{
		{"migrate", "--db", db},
		{"rules", "apply", "--db", db, policy},
		{"import", "--db", db, "--csv", history, "--label", "won"},
	} {
		if out, _, err := runCLI(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}

	out, _, err := runCLI(t, "tune", "--db", db, "--min-labelled", "10")
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, out)
	}
	for _, want := range []string{"not judged: too little data: the holdout holds ", "at least 20 positive and 20 negative needed",
		"no metrics, no threshold proposals and no promotion", "promoted=false: not promoted: too little data"} {
		if !strings.Contains(out, want) {
			t.Errorf("tune output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"ROC-AUC", "target met", "true"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("tune output has %q:\n%s", unwanted, out)
		}
	}

	out, _, err = runCLI(t, "tune", "--db", db, "--json")
	if err != nil {
		t.Fatalf("tune --json: %v\n%s", err, out)
	}
	var got struct {
		Report struct {
			Evidence *struct {
				Judged           bool           `json:"judged"`
				Reason           string         `json:"reason"`
				HoldoutPositives int            `json:"holdout_positives"`
				HoldoutNegatives int            `json:"holdout_negatives"`
				Needed           map[string]int `json:"needed"`
			} `json:"evidence"`
			Live       json.RawMessage `json:"live"`
			Candidate  json.RawMessage `json:"candidate"`
			Thresholds json.RawMessage `json:"thresholds"`
			Promotion  struct {
				Promoted bool `json:"promoted"`
			} `json:"promotion"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("tune --json: %v\n%s", err, out)
	}
	r := got.Report
	if r.Evidence == nil || r.Evidence.Judged || !strings.HasPrefix(r.Evidence.Reason, "too little data: ") ||
		r.Evidence.HoldoutPositives+r.Evidence.HoldoutNegatives == 0 || r.Evidence.Needed["holdout_positives"] != 20 {
		t.Errorf("evidence = %+v", r.Evidence)
	}
	if string(r.Live) != "null" || string(r.Candidate) != "null" || string(r.Thresholds) != "null" || r.Promotion.Promoted {
		t.Errorf("live %s, candidate %s, thresholds %s, promoted %v", r.Live, r.Candidate, r.Thresholds, r.Promotion.Promoted)
	}
}
