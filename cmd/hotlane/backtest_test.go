package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/feedback"
)

func TestCLIRulesBacktest(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	live := filepath.Join(dir, "live.yaml")
	write(t, live, []byte(`
base: -3
rules:
  - {name: big, expression: "deal_size >= 10000", points: 4}
thresholds:
  default: {urgent: 0.95, high: 0.7, medium: 0.5}
`))
	draft := filepath.Join(dir, "draft.yaml")
	write(t, draft, []byte(`
base: -3
rules:
  - {name: big, expression: "deal_size >= 10000", points: 4}
  - {name: enterprise, expression: 'plan == "enterprise"', points: 4}
thresholds:
  default: {urgent: 0.95, high: 0.7, medium: 0.5}
`))
	// Live alerts on the big deal only; the draft also on both
	// enterprise visitors, one of whom converted.
	history := filepath.Join(dir, "history.csv")
	write(t, history, []byte("deal_size,plan,Converted\n20000,pro,yes\n100,enterprise,yes\n100,enterprise,no\n100,free,no\n"))

	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "rules", "backtest", "--db", db, draft); err == nil || !strings.Contains(err.Error(), "no ruleset is live") {
		t.Fatalf("backtest without a live ruleset: %v", err)
	}
	if _, _, err := runCLI(t, "rules", "apply", "--db", db, live); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "import", "--db", db, "--csv", history, "--label", "Converted", "--positive", "yes"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "rules", "backtest", "--db", db, draft, "--weeks", "2")
	if err != nil {
		t.Fatalf("backtest: %v\n%s", err, out)
	}
	for _, want := range []string{
		"4 conversations, 4 decisions replayed; 4 labelled, 2 positive",
		"this ruleset 3 2 1 66.7% 100.0% 0.0 1.5",
		"live 1 1 0 100.0% 50.0% 0.0 0.5",
		"big same 1 1 0 100.0% 50.0% 1 100.0%",
		"enterprise new 2 1 1 50.0% 50.0% - -",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A stored version backtests too, and --json gives the figures.
	out, _, err = runCLI(t, "rules", "backtest", "--db", db, "--json", "1")
	if err != nil {
		t.Fatal(err)
	}
	var rep feedback.BacktestReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if rep.DraftVersion != 1 || rep.Draft.Alerted != 1 || rep.Live.Alerted != 1 {
		t.Errorf("version 1 against itself: %+v", rep)
	}
	for _, bad := range [][]string{
		{"rules", "backtest", "--db", db},
		{"rules", "backtest", "--db", db, draft, "--weeks", "0"},
		{"rules", "backtest", "--db", db, filepath.Join(dir, "missing.yaml")},
		{"rules", "backtest", "--db", db, "9"},
	} {
		if _, _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: accepted", bad[2:])
		}
	}
}
