package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotlane/hotlane/model"
)

// evalConfig is what hotlane eval was asked to do.
type evalConfig struct {
	CSV      string
	Label    string
	Positive string
	Ignore   string
	Folds    int
	JSON     bool
	Trainer  string
	L2       float64
	Seed     uint64
	MinCount int
	// Interactions caps the pairwise interactions; negative for none.
	Interactions int
}

// evalReport is the outcome of hotlane eval: pooled out-of-fold metrics
// plus the per-fold ROC-AUC.
type evalReport struct {
	model.Metrics
	File           string    `json:"file"`
	Folds          int       `json:"folds"`
	FoldROCAUC     []float64 `json:"fold_roc_auc"`
	FoldROCAUCMean float64   `json:"fold_roc_auc_mean"`
	FoldROCAUCStd  float64   `json:"fold_roc_auc_std"`
	Trainer        string    `json:"trainer"`
	// L2 is the penalty given with --l2, or 0 when each fold chose its own
	// by inner cross-validation (FoldL2).
	L2     float64   `json:"l2"`
	FoldL2 []float64 `json:"fold_l2"`
	// FoldInteractions are the interactions each fold kept.
	FoldInteractions [][]string `json:"fold_interactions"`
	Seed             uint64     `json:"seed"`
	Signals          int        `json:"signals"`
	// Features is the number of features of the encoder fitted on every
	// row; each fold fits its own on its training part.
	Features int     `json:"features"`
	Seconds  float64 `json:"seconds"`
}

// runEval evaluates the encoder and trainer offline on a labelled CSV
// file by stratified k-fold cross-validation.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg evalConfig
	fs := newFlagSet("eval", stderr)
	prog := newProgress(stderr)
	prog.register(fs)
	fs.StringVar(&cfg.CSV, "csv", "", "labelled CSV file with a header line")
	fs.StringVar(&cfg.Label, "label", "", "label column")
	fs.StringVar(&cfg.Positive, "positive", "", "label value meaning positive (default TRUE, 1 or YES, any case)")
	fs.StringVar(&cfg.Ignore, "ignore", "", "comma-separated columns to leave out")
	fs.IntVar(&cfg.Folds, "folds", 5, "cross-validation folds")
	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object")
	fs.StringVar(&cfg.Trainer, "trainer", model.DefaultTrainer, "trainer: "+strings.Join(model.TrainerNames(), ", "))
	fs.Float64Var(&cfg.L2, "l2", 0, "L2 penalty strength (default: chosen by inner cross-validation on each fold's training part)")
	fs.IntVar(&cfg.Interactions, "interactions", model.DefaultInteractions, "most pairwise interactions kept (each only if it improves inner cross-validated log loss); -1 for none")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the fold shuffle")
	fs.IntVar(&cfg.MinCount, "min-count", model.DefaultMinCount, "least rows a category value needs for its own feature")
	rest, err := parseFlags(fs, args, osEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("eval takes no arguments, got %q", rest)
	}
	var problems []string
	if cfg.CSV == "" {
		problems = append(problems, "--csv is required")
	}
	if cfg.Label == "" {
		problems = append(problems, "--label is required")
	}
	if cfg.Folds < 2 {
		problems = append(problems, fmt.Sprintf("--folds must be at least 2, got %d", cfg.Folds))
	}
	if !(cfg.L2 >= 0) || math.IsInf(cfg.L2, 0) {
		problems = append(problems, fmt.Sprintf("--l2 must be a positive number, got %v", cfg.L2))
	}
	if cfg.Interactions == 0 {
		cfg.Interactions = -1 // --interactions 0 means none too
	}
	if cfg.MinCount < 1 {
		problems = append(problems, fmt.Sprintf("--min-count must be at least 1, got %d", cfg.MinCount))
	}
	if len(problems) > 0 {
		return usagef("eval: %s", strings.Join(problems, "; "))
	}
	trainer, err := model.TrainerByName(cfg.Trainer)
	if err != nil {
		return usagef("eval: %v", err)
	}

	start := time.Now()
	prog.start()
	defer prog.done()
	f, err := os.Open(cfg.CSV)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	name := filepath.Base(cfg.CSV)
	prog.step("eval: reading %s: 0 rows", name)
	data, err := readLabelledCSV(f, csvOptions{Label: cfg.Label, Positive: cfg.Positive, Ignore: strings.Split(cfg.Ignore, ","),
		Progress: func(rows int) { prog.update("eval: reading %s: %d rows", name, rows) }})
	f.Close()
	if err != nil {
		return fmt.Errorf("eval: %s: %w", cfg.CSV, err)
	}
	rep, err := crossValidate(ctx, data, trainer, cfg, prog)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	prog.done()
	rep.File = filepath.Base(cfg.CSV)
	rep.Seconds = math.Round(time.Since(start).Seconds()*1000) / 1000
	if cfg.JSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	return rep.writeText(stdout)
}

// crossValidate fits the encoder and the model on each fold's training
// part and scores its held-out part; the metrics pool every out-of-fold
// prediction. prog (nil for none) shows the fold being fitted.
func crossValidate(ctx context.Context, data labelledCSV, trainer model.Trainer, cfg evalConfig, prog *progressLine) (evalReport, error) {
	n := len(data.Rows)
	neg := n - data.Positives
	if data.Positives < cfg.Folds || neg < cfg.Folds {
		return evalReport{}, fmt.Errorf("%d positive and %d negative rows: each class needs at least --folds %d rows", data.Positives, neg, cfg.Folds)
	}
	fold := model.StratifiedFolds(data.Labels, cfg.Folds, cfg.Seed)
	labels := make([]float64, n)
	for i, y := range data.Labels {
		if y {
			labels[i] = 1
		}
	}
	// A "channel" column is the conversation's channel, as hotlane import
	// reads it: the model reads it beside the signals.
	channels := make([]string, n)
	for i, row := range data.Rows {
		if v, ok := row[model.ChannelSignal].(string); ok {
			channels[i] = v
			delete(row, model.ChannelSignal)
		}
	}
	encOpt := model.EncoderOptions{MinCount: cfg.MinCount, Knots: model.DefaultKnots}
	oof := make([]float64, n)
	rep := evalReport{Folds: cfg.Folds, Trainer: trainer.Name(), L2: cfg.L2, Seed: cfg.Seed, Signals: len(data.Signals)}
	for k := range cfg.Folds {
		if err := ctx.Err(); err != nil {
			return evalReport{}, err
		}
		var examples []model.Example
		var test []int
		for i := range n {
			if fold[i] == k {
				test = append(test, i)
				continue
			}
			examples = append(examples, model.Example{Channel: channels[i], Signals: data.Rows[i], Label: data.Labels[i]})
		}
		prog.step("eval: fold %d of %d: training on %d rows", k+1, cfg.Folds, len(examples))
		design, fit, sel, err := model.FitModel(ctx, trainer, nil, model.ExampleSlice(examples), model.FitOptions{Encoder: encOpt, L2: cfg.L2,
			Interactions: cfg.Interactions, Seed: cfg.Seed})
		if err != nil {
			return evalReport{}, fmt.Errorf("fold %d: %w", k+1, err)
		}
		rep.FoldL2 = append(rep.FoldL2, sel.L2)
		rep.FoldInteractions = append(rep.FoldInteractions, append([]string{}, sel.Interactions...))
		m := design.Model(fit)
		ts := make([]float64, len(test))
		tl := make([]float64, len(test))
		var buf []float64
		for t, i := range test {
			buf = m.Encoder.EncodeFor(channels[i], data.Rows[i], buf)
			z := m.Intercept
			for j, x := range buf {
				z += m.Beta[j] * x
			}
			oof[i] = 1 / (1 + math.Exp(-z))
			ts[t], tl[t] = oof[i], labels[i]
		}
		rep.FoldROCAUC = append(rep.FoldROCAUC, model.ROCAUC(ts, tl, nil))
	}
	rep.Metrics = model.Evaluate(oof, labels, nil, 10)
	rep.Features = len(model.FitEncoder(data.Rows, encOpt).Features)
	for _, a := range rep.FoldROCAUC {
		rep.FoldROCAUCMean += a
	}
	rep.FoldROCAUCMean /= float64(len(rep.FoldROCAUC))
	for _, a := range rep.FoldROCAUC {
		d := a - rep.FoldROCAUCMean
		rep.FoldROCAUCStd += d * d
	}
	if len(rep.FoldROCAUC) > 1 {
		rep.FoldROCAUCStd = math.Sqrt(rep.FoldROCAUCStd / float64(len(rep.FoldROCAUC)-1))
	}
	return rep, nil
}

// writeText prints the report for a person.
func (r *evalReport) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d rows, %d positive (%.1f%%), %d signals, %d features\n",
		r.File, r.Rows, r.Positives, 100*float64(r.Positives)/float64(max(r.Rows, 1)), r.Signals, r.Features)
	l2 := fmt.Sprintf("L2 %g", r.L2)
	if r.L2 == 0 {
		l2 = fmt.Sprintf("L2 by inner cross-validation: %v", r.FoldL2)
	}
	fmt.Fprintf(&b, "trainer %s (%s), stratified %d-fold cross-validation, seed %d, %.1fs\n",
		r.Trainer, l2, r.Folds, r.Seed, r.Seconds)
	for k, in := range r.FoldInteractions {
		fmt.Fprintf(&b, "fold %d interactions: %s\n", k+1, strings.Join(in, ", "))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ROC-AUC\t%.4f\t(per fold: mean %.4f, std %.4f)\n", r.ROCAUC, r.FoldROCAUCMean, r.FoldROCAUCStd)
	fmt.Fprintf(tw, "PR-AUC\t%.4f\t(average precision)\n", r.PRAUC)
	fmt.Fprintf(tw, "log loss\t%.4f\t\n", r.LogLoss)
	fmt.Fprintf(tw, "Brier\t%.4f\t\n", r.Brier)
	fmt.Fprintf(tw, "ECE\t%.4f\t(expected calibration error, 10 bins)\n", r.ECE)
	tw.Flush()
	b.WriteString("\ncalibration (out of fold):\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "score\trows\tmean score\tpositive rate\t\n")
	for _, c := range r.Calibration {
		if c.Count == 0 {
			continue
		}
		fmt.Fprintf(tw, "%.1f-%.1f\t%d\t%.3f\t%.3f\t\n", c.Lo, c.Hi, c.Count, c.MeanPredicted, c.ObservedRate)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
