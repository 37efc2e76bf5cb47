package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotlane/hotlane/model"

	"github.com/hotlane/hotlane/feedback/feedbacktest"
)

// writeEvalCSV writes a 300-row CSV whose label depends on a skewed
// count, a category and a boolean, with some noise and missing cells.
func writeEvalCSV(t *testing.T) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	var b strings.Builder
	b.WriteString("PageViews,Plan Type,Returning,Session Id,Converted\n")
	plans := []string{"free", "pro", "team"}
	for i := range 300 {
		views := int(rng.ExpFloat64() * 5)
		plan := plans[rng.IntN(3)]
		ret := rng.IntN(2) == 0
		z := -2 + 0.3*float64(views)
		if plan == "pro" {
			z += 1
		}
		if ret {
			z += 0.5
		}
		y := rng.Float64() < 1/(1+math.Exp(-z))
		vs := fmt.Sprint(views)
		if i%17 == 0 {
			vs = ""
		}
		fmt.Fprintf(&b, "%s,%s,%s,s%d,%s\n", vs, plan, strings.ToUpper(fmt.Sprint(ret)), i, map[bool]string{true: "yes", false: "no"}[y])
	}
	path := filepath.Join(t.TempDir(), "small.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runEvalCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"eval"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestEvalJSON(t *testing.T) {
	path := writeEvalCSV(t)
	out, stderr, err := runEvalCmd(t, "--csv", path, "--label", "Converted", "--ignore", "Session Id", "--json", "--folds", "4")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	var rep map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Errorf("output holds more than one JSON value:\n%s", out)
	}
	for _, key := range []string{"roc_auc", "pr_auc", "log_loss", "brier", "rows", "positives", "folds", "trainer", "features", "seconds"} {
		if _, ok := rep[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, out)
		}
	}
	if rep["rows"] != 300.0 || rep["folds"] != 4.0 || rep["trainer"] != "newton" {
		t.Errorf("rows, folds, trainer = %v, %v, %v; want 300, 4, newton", rep["rows"], rep["folds"], rep["trainer"])
	}
	if auc := rep["roc_auc"].(float64); auc < 0.7 || auc > 1 {
		t.Errorf("roc_auc = %v, want a clearly informative model (>= 0.7)", auc)
	}
	// The session id is ignored: signals are page_views, plan_type, returning.
	if rep["signals"] != 3.0 {
		t.Errorf("signals = %v, want 3", rep["signals"])
	}

	// Same seed, same result.
	again, _, err := runEvalCmd(t, "--csv", path, "--label", "Converted", "--ignore", "Session Id", "--json", "--folds", "4")
	if err != nil {
		t.Fatal(err)
	}
	var rep2 map[string]any
	if err := json.Unmarshal([]byte(again), &rep2); err != nil {
		t.Fatal(err)
	}
	if rep["roc_auc"] != rep2["roc_auc"] || rep["log_loss"] != rep2["log_loss"] {
		t.Errorf("two runs with one seed differ: %v vs %v", rep["roc_auc"], rep2["roc_auc"])
	}
}

func TestEvalText(t *testing.T) {
	path := writeEvalCSV(t)
	out, _, err := runEvalCmd(t, "--csv", path, "--label", "Converted", "--positive", "YES")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"300 rows", "ROC-AUC", "PR-AUC", "log loss", "Brier", "5-fold", "calibration"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalUsageErrors(t *testing.T) {
	path := writeEvalCSV(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no csv", []string{"--label", "x"}, "--csv is required"},
		{"no label", []string{"--csv", path}, "--label is required"},
		{"one fold", []string{"--csv", path, "--label", "Converted", "--folds", "1"}, "--folds"},
		{"unknown trainer", []string{"--csv", path, "--label", "Converted", "--trainer", "nope"}, "unknown trainer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runEvalCmd(t, tt.args...)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
	_, _, err := runEvalCmd(t, "--csv", path, "--label", "Missing")
	if err == nil || !strings.Contains(err.Error(), "no label column") {
		t.Errorf("err = %v, want the missing label column named", err)
	}
}

func TestEvalStratifiedFolds(t *testing.T) {
	labels := make([]bool, 103)
	for i := range 23 {
		labels[i*4] = true
	}
	fold := model.StratifiedFolds(labels, 5, 3)
	var pos, all [5]int
	for i, f := range fold {
		all[f]++
		if labels[i] {
			pos[f]++
		}
	}
	for k := range 5 {
		if pos[k] < 4 || pos[k] > 5 || all[k] < 20 || all[k] > 21 {
			t.Errorf("fold %d: %d rows, %d positive; want 20-21 rows and 4-5 positive", k, all[k], pos[k])
		}
	}
}

func TestEvalRealDataQuality(t *testing.T) {
	realDataCSV := feedbacktest.SharedData(t, "online_shoppers_intention.csv")
	out, stderr, err := runEvalCmd(t, "--csv", realDataCSV, "--label", "Revenue", "--json")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	var rep struct {
		ROCAUC    float64 `json:"roc_auc"`
		Rows      int     `json:"rows"`
		Positives int     `json:"positives"`
		Folds     int     `json:"folds"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Rows != 12330 || rep.Positives != 1908 || rep.Folds != 5 {
		t.Errorf("rows, positives, folds = %d, %d, %d; want 12330, 1908, 5", rep.Rows, rep.Positives, rep.Folds)
	}
	if rep.ROCAUC < 0.90 {
		t.Errorf("out-of-fold ROC-AUC = %.4f, want >= 0.90", rep.ROCAUC)
	}
}

// With --progress always, eval shows on standard error the rows it read
// and the fold it fits, then clears the line; by default (standard error
// is not a terminal here) it writes nothing there.
func TestEvalProgress(t *testing.T) {
	path := writeEvalCSV(t)
	args := []string{"--csv", path, "--label", "Converted", "--ignore", "Session Id", "--folds", "4"}
	out, stderr, err := runEvalCmd(t, args...)
	if err != nil || stderr != "" || out == "" {
		t.Fatalf("eval: %v, stderr %q, want output and nothing on stderr", err, stderr)
	}
	out, stderr, err = runEvalCmd(t, append(args, "--progress", "always")...)
	if err != nil || !strings.Contains(out, "ROC-AUC") {
		t.Fatalf("eval --progress always: %v\n%s", err, out)
	}
	for _, want := range []string{"\reval: reading small.csv: 0 rows", "\reval: fold 1 of 4: training on 225 rows", "\reval: fold 4 of 4: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%q", want, stderr)
		}
	}
	if strings.Contains(stderr, "\n") || !lastCleared(stderr) {
		t.Errorf("stderr is not one line redrawn and cleared at the end:\n%q", stderr)
	}
}
