package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportThenTune loads labelled history from a CSV file, checks that a
// second import adds nothing, and tunes on it from the command line.
func TestImportThenTune(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	var csv strings.Builder
	csv.WriteString("Deal Size,Plan,Returning,Converted\n")
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		deal := 500 + rng.IntN(20000)
		plan := []string{"free", "pro", "enterprise"}[rng.IntN(3)]
		converted := (deal >= 10000 || plan == "enterprise") != (rng.IntN(8) == 0)
		fmt.Fprintf(&csv, "%d,%s,%s,%s\n", deal, plan, []string{"TRUE", "FALSE"}[rng.IntN(2)], map[bool]string{true: "yes", false: "no"}[converted])
	}
	path := filepath.Join(dir, "history.csv")
	write(t, path, []byte(csv.String()))

	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	// Without a ruleset the history cannot be scored.
	if _, _, err := runCLI(t, "import", "--db", db, "--csv", path, "--label", "Converted"); err == nil || !strings.Contains(err.Error(), "no live ruleset") {
		t.Fatalf("import without ruleset: %v", err)
	}
	policy := filepath.Join(dir, "p.yaml")
	write(t, policy, demoPolicy)
	if _, _, err := runCLI(t, "rules", "apply", "--db", db, policy); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"import", "--db", db, "--label", "Converted"},
		{"import", "--db", db, "--csv", path},
		{"import", "--db", db, "--csv", path, "--label", "Nope"},
		{"import", "--db", db, "--csv", filepath.Join(dir, "missing.csv"), "--label", "Converted"},
		{"import", "--db", db, "--csv", path, "--label", "Converted", "--at", "yesterday"},
	} {
		if _, _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: accepted", bad[3:])
		}
	}
	out, _, err := runCLI(t, "import", "--db", db, "--csv", path, "--label", "Converted", "--positive", "yes", "--channel", "whatsapp")
	if err != nil || !strings.Contains(out, "imported 300 labelled conversations") {
		t.Fatalf("import: %q, %v", out, err)
	}
	out, _, err = runCLI(t, "import", "--db", db, "--csv", path, "--label", "Converted", "--positive", "yes", "--channel", "whatsapp")
	if err != nil || !strings.Contains(out, "imported 0 ") || !strings.Contains(out, "300 already present") {
		t.Fatalf("second import: %q, %v", out, err)
	}

	// 300 conversations leave a holdout below the default guard of
	// automatic promotion; this test wants the promotion, so it lowers it.
	out, _, err = runCLI(t, "tune", "--db", db, "--min-holdout", "0", "--min-holdout-positives", "0", "--promote-margin", "0")
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, out)
	}
	for _, want := range []string{"conversations 300, labelled 300", "candidate (model 1)", "whatsapp", "promotion (auto)"} {
		if !strings.Contains(out, want) {
			t.Errorf("tune output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCLI(t, "models", "list", "--db", db)
	if err != nil || !strings.Contains(out, "newton") {
		t.Fatalf("models list: %q, %v", out, err)
	}
	out, _, err = runCLI(t, "reports", "--db", db, "latest")
	if err != nil || !strings.Contains(out, `"candidate_model_version":1`) {
		t.Fatalf("reports latest: %.200q, %v", out, err)
	}
	if _, _, err := runCLI(t, "reports", "--db", db, "--apply", "latest"); err != nil {
		t.Fatalf("reports --apply: %v", err)
	}
	if _, _, err := runCLI(t, "models", "--db", db, "promote", "x"); err == nil {
		t.Error("promote x accepted")
	}
}

// TestImportTimeColumn dates each row from a column, so the tuning window
// and its holdout see the history as it happened.
func TestImportTimeColumn(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	policy := filepath.Join(dir, "p.yaml")
	write(t, policy, demoPolicy)
	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "rules", "apply", "--db", db, policy); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("Date,deal_size,won\n")
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		deal := 500 + rng.IntN(20000)
		fmt.Fprintf(&csv, "2026-10-%02d,%d,%v\n", 1+i%28, deal, (deal >= 10000) != (rng.IntN(8) == 0))
	}
	path := filepath.Join(dir, "dated.csv")
	write(t, path, []byte(csv.String()))
	if _, _, err := runCLI(t, "import", "--db", db, "--csv", path, "--label", "won", "--time-column", "When"); err == nil {
		t.Error("an unknown --time-column was accepted")
	}
	if _, _, err := runCLI(t, "import", "--db", db, "--csv", path, "--label", "won", "--time-column", "Date"); err != nil {
		t.Fatal(err)
	}
	// The days 22 to 28 (the seven before the 29th) hold 7 rows each: the
	// holdout is that week, not everything.
	out, _, err := runCLI(t, "tune", "--db", db, "--as-of", "2026-10-29T00:00:00Z")
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, out)
	}
	if !strings.Contains(out, "labelled 200 (train 151, holdout 49)") {
		t.Errorf("tune output:\n%s", out)
	}

	bad := filepath.Join(dir, "bad.csv")
	write(t, bad, []byte("Date,deal_size,won\n2026-10-01,5,true\nnot a date,6,false\n"))
	_, _, err = runCLI(t, "import", "--db", db, "--csv", bad, "--label", "won", "--time-column", "Date")
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad date: %v", err)
	}
}

// progressDB makes a database with the demo ruleset and a labelled history
// CSV of n rows beside it.
func progressDB(t *testing.T, n int) (db, csvPath string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "h.db")
	policy := filepath.Join(dir, "p.yaml")
	write(t, policy, demoPolicy)
	for _, args := range [][]string{{"migrate", "--db", db}, {"rules", "apply", "--db", db, policy}} {
		if _, _, err := runCLI(t, args...); err != nil {
			t.Fatal(err)
		}
	}
	var csv strings.Builder
	csv.WriteString("Deal Size,Plan,Converted\n")
	rng := rand.New(rand.NewPCG(7, 8))
	for range n {
		deal := 500 + rng.IntN(20000)
		plan := []string{"free", "pro", "enterprise"}[rng.IntN(3)]
		fmt.Fprintf(&csv, "%d,%s,%v\n", deal, plan, (deal >= 10000 || plan == "enterprise") != (rng.IntN(8) == 0))
	}
	csvPath = filepath.Join(dir, "history.csv")
	write(t, csvPath, []byte(csv.String()))
	return db, csvPath
}

// With --progress always, import shows on standard error the rows it read,
// scored and stored, with its logs above the line, then clears it; by
// default (standard error is not a terminal here) nothing is added.
func TestImportProgress(t *testing.T) {
	db, path := progressDB(t, 300)
	out, stderr, err := runCLI(t, "import", "--db", db, "--csv", path, "--label", "Converted", "--log-level", "error")
	if err != nil || stderr != "" || !strings.Contains(out, "imported 300 ") {
		t.Fatalf("import: %q, %v, stderr %q: want nothing on stderr", out, err, stderr)
	}
	db, path = progressDB(t, 300)
	out, stderr, err = runCLI(t, "import", "--db", db, "--csv", path, "--label", "Converted", "--progress", "always")
	if err != nil || !strings.Contains(out, "imported 300 ") {
		t.Fatalf("import --progress always: %q, %v", out, err)
	}
	for _, want := range []string{"\rimport: reading history.csv: 0 rows", "\rimport: read 300 rows from history.csv",
		"\rimport: scoring 0 of 300 rows", "\rimport: storing 0 of 300 conversations",
		// A log line is written whole on a line of its own.
		"\r{\"time\":", "\"msg\":\"scorer loaded\"", "}\n\rimport: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%q", want, stderr)
		}
	}
	if !lastCleared(stderr) {
		t.Errorf("the line is not cleared at the end:\n%q", stderr)
	}
}
