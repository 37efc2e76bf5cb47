package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/model"
)

// tuneFlags are the tuning job's settings, shared by serve (for the
// schedule and the API) and tune.
type tuneFlags struct {
	Trainer string
	// L2 is the penalty; 0 has the job choose it by inner
	// cross-validation.
	L2 float64
	// Interactions caps the pairwise interactions; 0 for none.
	Interactions int
	Window       time.Duration
	Holdout      time.Duration
	MinLabelled  int
	MaxRows      int
	Promotion    string
	Guard        model.PromotionGuard
}

// maxTuneInteractions bounds --interactions: each one allowed costs the
// run a few more refits of the inner cross-validation.
const maxTuneInteractions = 50

func (t *tuneFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.Trainer, "trainer", model.DefaultTrainer, "trainer of the tuning job: "+fmt.Sprint(model.TrainerNames()))
	fs.Float64Var(&t.L2, "l2", 0, "L2 penalty of the tuning job's logistic regression (default 0: chosen from "+fmt.Sprint(model.L2Grid)+" by inner cross-validation on the window)")
	fs.IntVar(&t.Interactions, "interactions", model.DefaultInteractions, "most pairwise interactions of signals the tuning job's model keeps, each only if it improves the inner cross-validated log loss; 0 for none")
	fs.DurationVar(&t.Window, "tune-window", jobs.DefaultTuneWindow, "how far back the tuning job gathers labelled conversations")
	fs.DurationVar(&t.Holdout, "holdout", jobs.DefaultHoldout, "the most recent part of the window the models are measured on")
	fs.IntVar(&t.MinLabelled, "min-labelled", jobs.DefaultMinLabelled, "fewest labelled conversations a candidate model is trained on")
	fs.IntVar(&t.MaxRows, "tune-max-rows", jobs.DefaultTuneMaxRows, "most labelled conversations the tuning job holds in memory; past it, every agent-labelled and positive conversation is kept and a weighted sample of the rest")
	fs.StringVar(&t.Promotion, "promotion", jobs.PromoteAuto, "promotion policy: auto (promote a candidate that beats the live model on the holdout) or manual (a lead promotes)")
	fs.Float64Var(&t.Guard.Margin, "promote-margin", model.DefaultPromotionGuard.Margin, "PR-AUC a candidate must gain over the live model to be promoted automatically")
	fs.IntVar(&t.Guard.MinRows, "min-holdout", model.DefaultPromotionGuard.MinRows, "fewest holdout conversations automatic promotion judges on")
	fs.IntVar(&t.Guard.MinPositives, "min-holdout-positives", model.DefaultPromotionGuard.MinPositives, "fewest positive holdout conversations automatic promotion judges on")
}

func (t *tuneFlags) validate() []string {
	var errs []string
	if _, err := model.TrainerByName(t.Trainer); err != nil {
		errs = append(errs, "--trainer: "+err.Error())
	}
	if !(t.L2 >= 0) || math.IsInf(t.L2, 0) {
		errs = append(errs, "--l2: must be 0 (chosen by cross-validation) or a positive number")
	}
	if t.Interactions < 0 || t.Interactions > maxTuneInteractions {
		errs = append(errs, fmt.Sprintf("--interactions: must be 0 (none) to %d", maxTuneInteractions))
	}
	if t.Holdout <= 0 || t.Window <= t.Holdout {
		errs = append(errs, "--tune-window and --holdout: the holdout must be positive and shorter than the window")
	}
	if t.MinLabelled < 2 {
		errs = append(errs, "--min-labelled: must be at least 2")
	}
	if t.MaxRows < minTuneMaxRows {
		errs = append(errs, fmt.Sprintf("--tune-max-rows: must be at least %d", minTuneMaxRows))
	}
	if t.Guard.Margin < 0 || t.Guard.Margin > 1 || t.Guard.MinRows < 0 || t.Guard.MinPositives < 0 {
		errs = append(errs, "--promote-margin, --min-holdout and --min-holdout-positives: must not be negative (and the margin at most 1)")
	}
	if t.Promotion != jobs.PromoteAuto && t.Promotion != jobs.PromoteManual {
		errs = append(errs, fmt.Sprintf("--promotion: %q is not auto or manual", t.Promotion))
	}
	return errs
}

// tuner builds the tuning job from validated flags.
func (t *tuneFlags) tuner(store jobs.TuneStore, live *feedback.Live, log *slog.Logger) *jobs.Tuner {
	trainer, _ := model.TrainerByName(t.Trainer)
	interactions := t.Interactions
	if interactions == 0 {
		interactions = -1 // the tuner's 0 is the default
	}
	return &jobs.Tuner{Store: store, Live: live, Trainer: trainer, L2: t.L2, Interactions: interactions, Window: t.Window,
		Holdout: t.Holdout, MinLabelled: t.MinLabelled, MaxRows: t.MaxRows, Promotion: t.Promotion, Guard: t.Guard, Log: log}
}

// minTuneMaxRows is the least --tune-max-rows: a sample smaller than this
// leaves a week's holdout too few conversations to judge a model on.
const minTuneMaxRows = 1000

// cronParser reads the standard five-field schedule, or six fields with
// seconds first.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule checks a tuning schedule in a time zone and returns when
// it next runs after from; "off" disables it (zero time, nil error).
func parseSchedule(spec, tz string, from time.Time) (time.Time, *time.Location, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("--tz: %w", err)
	}
	if spec == "off" {
		return time.Time{}, loc, nil
	}
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("--tune-schedule: %w", err)
	}
	return sched.Next(from.In(loc)), loc, nil
}

// startTuneSchedule runs the tuning job on its schedule until ctx ends. A
// run that panics is recovered and logged; a run still going when the
// next is due makes that one skip. Each run is for its scheduled tick,
// which processes sharing the database claim, so that of several replicas
// on one schedule one runs each tick.
func startTuneSchedule(ctx context.Context, spec string, loc *time.Location, tuner *jobs.Tuner, log *slog.Logger) (*cron.Cron, error) {
	logger := cron.PrintfLogger(slog.NewLogLogger(log.Handler(), slog.LevelInfo))
	c := cron.New(cron.WithLocation(loc), cron.WithParser(cronParser),
		cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	var id cron.EntryID // set before Start, so before the first run
	id, err := c.AddFunc(spec, func() {
		// The cron sets an entry's Prev to the tick it starts the job for.
		tick := c.Entry(id).Prev
		if err := tuner.Run(ctx, tick); err != nil {
			log.Error("scheduled tuning failed", slog.Any("err", err))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("--tune-schedule: %w", err)
	}
	c.Start()
	return c, nil
}

func runTune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var tf tuneFlags
	var asOf string
	var asJSON bool
	// Logs go through the status line, which clears itself for them.
	prog := newProgress(stderr)
	db, rest, log, err := parseDBCommand("tune", args, prog, func(fs *flag.FlagSet) {
		tf.register(fs)
		prog.register(fs)
		fs.StringVar(&asOf, "as-of", "", "end of the training window (RFC 3339); default now")
		fs.BoolVar(&asJSON, "json", false, "print the run and its report as one JSON object")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("tune takes no arguments")
	}
	if err := invalid(tf.validate()); err != nil {
		return err
	}
	req := feedback.TuneRequest{Trigger: feedback.TriggerCLI}
	if asOf != "" {
		t, err := time.Parse(time.RFC3339, asOf)
		if err != nil {
			return usagef("--as-of: %q is not an RFC 3339 time", asOf)
		}
		req.AsOf = t
	}
	store, err := openStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer store.Close()
	prog.start()
	defer prog.done()
	tuner := tf.tuner(store, nil, log)
	step := 0
	tuner.Step = func(n, of int, name string) {
		if n != step {
			step = n
			prog.step("tune: step %d of %d: %s", n, of, name)
			return
		}
		prog.update("tune: step %d of %d: %s", n, of, name)
	}
	res, err := tuner.RunNow(ctx, req)
	prog.done()
	if errors.Is(err, jobs.ErrTuneRunning) {
		return fmt.Errorf("tune: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(map[string]any{"run": res.Run, "report": res.Report}); encErr != nil {
			return encErr
		}
	} else if res.Report != nil {
		printReport(stdout, res.Report)
	}
	if err != nil {
		return ifMissing(err, fmt.Sprintf("tune: %s (run %s recorded as failed)", noRuleset, res.Run.ID),
			fmt.Errorf("tune: run %s failed: %w", res.Run.ID, err))
	}
	return nil
}

// noRuleset is what a command that needs a live ruleset says without one.
const noRuleset = "no ruleset published yet: run hotlane rules apply FILE (or start hotlane serve --demo on an empty database)"

// ifMissing returns msg as the error when err says something was not
// found, and otherwise other: a user reads what is missing and what to do,
// not the layers it came through.
func ifMissing(err error, msg string, other error) error {
	if errors.Is(err, feedback.ErrNotFound) {
		return errors.New(msg)
	}
	return other
}

// printReport prints the essentials of a tuning report for a terminal.
func printReport(w io.Writer, r *feedback.Report) {
	fmt.Fprintf(w, "tuning report %s (run %s)\n", r.ID, r.RunID)
	fmt.Fprintf(w, "window %s to %s, holdout from %s\n", r.Window.Start.Format(time.RFC3339), r.Window.End.Format(time.RFC3339),
		r.Window.HoldoutStart.Format(time.RFC3339))
	fmt.Fprintf(w, "conversations %d, labelled %d (train %d, holdout %d)\n", r.Data.Conversations, r.Data.Labelled, r.Data.Train, r.Data.Holdout)
	if line := selectionLine(r); line != "" {
		fmt.Fprintln(w, line)
	}
	if !r.Judged() {
		fmt.Fprintf(w, "not judged: %s\nno metrics, no threshold proposals and no promotion on this evidence\n", r.Evidence.Reason)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if r.Live != nil && r.Candidate != nil {
		live := "rules only"
		if r.LiveModelVersion > 0 {
			live = fmt.Sprintf("model %d", r.LiveModelVersion)
		}
		fmt.Fprintln(tw, "\tROC-AUC\tPR-AUC\tlog loss\tBrier\tECE")
		for _, row := range []struct {
			name string
			m    *model.ModelEval
		}{{"live (" + live + ")", r.Live}, {fmt.Sprintf("candidate (model %d)", r.CandidateModelVersion), r.Candidate}} {
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n", row.name, row.m.ROCAUC, row.m.PRAUC, row.m.LogLoss, row.m.Brier, row.m.ECE)
		}
		tw.Flush()
	}
	if len(r.Rules) > 0 {
		fmt.Fprintln(tw, "rule\thits\tlabelled\tprecision\thand-set\ttuned\tverdict")
		for _, rr := range r.Rules {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.2f\t%s\t%s\n", rr.Name, rr.Hits, rr.LabelledHits, fmtPtr(rr.Precision, "%.2f"),
				rr.HandSetWeight, fmtPtr(rr.TunedWeight, "%.2f"), rr.Verdict)
		}
		tw.Flush()
	}
	if len(r.Thresholds) > 0 {
		fmt.Fprintln(tw, "channel\ttier\tcurrent\tproposed\tprecision\trecall\tvolume\tlabelled\ttarget met")
		for _, t := range r.Thresholds {
			cur := map[model.Tier]float64{model.TierUrgent: t.Current.Urgent, model.TierHigh: t.Current.High, model.TierMedium: t.Current.Medium}
			for _, tp := range t.Proposal.Tiers {
				fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.2f\t%.2f\t%.0f\t%d\t%v\n", t.Channel, tp.Tier, cur[tp.Tier], tp.Threshold,
					tp.Precision, tp.Recall, tp.Volume, tp.Labelled, tp.Met)
			}
		}
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "promotion (%s): promoted=%v: %s\n", r.Promotion.Policy, r.Promotion.Promoted, r.Promotion.Reason)
}

// selectionLine says in one line what the candidate was fitted with: its
// penalty, how it was set, and the interactions it kept; "" without a
// candidate.
func selectionLine(r *feedback.Report) string {
	if r.Interactions == nil {
		return ""
	}
	how := "set by --l2"
	if r.L2FromCV {
		how = "chosen by inner cross-validation"
	}
	in := "none"
	if len(r.Interactions) > 0 {
		in = strings.Join(r.Interactions, ", ")
	}
	return fmt.Sprintf("candidate: %d features, L2 %g (%s), interactions: %s", r.Fit.Features, r.L2, how, in)
}

func fmtPtr(p *float64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	db, rest, log, err := parseDBCommand("models", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("models needs a subcommand: list, show VERSION, promote VERSION or rollback")
	}
	store, err := openStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer store.Close()
	version := func() (int, error) {
		if len(rest) != 2 {
			return 0, usagef("models %s takes one VERSION", rest[0])
		}
		v, err := strconv.Atoi(rest[1])
		if err != nil || v < 1 {
			return 0, usagef("models %s: %q is not a version", rest[0], rest[1])
		}
		return v, nil
	}
	switch rest[0] {
	case "list":
		list, err := store.ListModels(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATUS\tTRAINER\tWINDOW END\tCREATED\tNOTE")
		for _, m := range list {
			end := "-"
			if m.WindowEnd != nil {
				end = m.WindowEnd.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", m.Version, m.Status, m.Trainer, end, m.CreatedAt.Format(time.RFC3339), m.Note)
		}
		return tw.Flush()
	case "show":
		v, err := version()
		if err != nil {
			return err
		}
		m, err := store.Model(ctx, v)
		if err != nil {
			return ifMissing(err, fmt.Sprintf("no model version %d: hotlane models list shows the versions", v), err)
		}
		_, err = fmt.Fprintln(stdout, string(m.Body))
		return err
	case "promote":
		v, err := version()
		if err != nil {
			return err
		}
		m, err := store.ActivateModel(ctx, v)
		if err != nil {
			return ifMissing(err, fmt.Sprintf("no model version %d: hotlane models list shows the versions", v), err)
		}
		auditCLI(ctx, store, stdout, feedback.AuditModelPromote, fmt.Sprintf("model %d", m.Version), map[string]any{"model": m.Version})
		fmt.Fprintf(stdout, "model %d is active; running servers load it at their next reload\n", m.Version)
		return nil
	case "rollback":
		if len(rest) != 1 {
			return usagef("models rollback takes no arguments")
		}
		m, err := store.RollbackModel(ctx)
		if errors.Is(err, feedback.ErrNotFound) {
			return errors.New("no model is active: scoring already uses the rules only")
		}
		if err != nil {
			return err
		}
		auditCLI(ctx, store, stdout, feedback.AuditModelRollback, "model", map[string]any{"model": m.Version})
		if m.Version == 0 {
			fmt.Fprintln(stdout, "no earlier model: the model is retired and scoring uses the rules only")
			return nil
		}
		fmt.Fprintf(stdout, "model %d is active again\n", m.Version)
		return nil
	}
	return usagef("models: unknown subcommand %q (want list, show, promote or rollback)", rest[0])
}

func runReports(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var apply bool
	db, rest, log, err := parseDBCommand("reports", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&apply, "apply", false, "publish the report's tuned weights and proposed thresholds as a new ruleset version")
	})
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("reports takes at most one report id (or latest)")
	}
	store, err := openStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if len(rest) == 0 {
		list, err := store.ListReports(ctx, 50)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAS OF\tCANDIDATE\tPROMOTED\tAPPLIED AS")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%d\n", r.ID, r.AsOf.Format(time.RFC3339), r.CandidateModel, r.Promoted, r.AppliedPolicy)
		}
		return tw.Flush()
	}
	var sr feedback.StoredReport
	if rest[0] == "latest" {
		sr, err = store.LatestReport(ctx)
	} else {
		sr, err = store.Report(ctx, rest[0])
	}
	if err != nil {
		return err
	}
	if apply {
		pv, err := jobs.ApplyReport(ctx, store, sr.ID, cliAuthor())
		if err != nil {
			return err
		}
		auditCLI(ctx, store, stdout, feedback.AuditReportApply, "report "+sr.ID, map[string]any{"applied_as_ruleset": pv.Version})
		fmt.Fprintf(stdout, "published ruleset version %d from report %s\n", pv.Version, sr.ID)
		return nil
	}
	_, err = fmt.Fprintln(stdout, string(sr.Body))
	return err
}
