package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// backtestFlags are the flags of hotlane rules backtest.
type backtestFlags struct {
	weeks int
	json  bool
}

func (b *backtestFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&b.weeks, "weeks", 4, "how many weeks of history to replay, 1 to 52")
	fs.BoolVar(&b.json, "json", false, "print the backtest as JSON")
}

// runBacktest replays the last weeks of stored history through a policy
// file (or a stored version) and through the live ruleset, both with the
// active model, and prints what each would have caught.
func runBacktest(ctx context.Context, db dbFlags, log *slog.Logger, args []string, bt backtestFlags, stdout io.Writer) error {
	if len(args) != 1 {
		return usagef("rules backtest takes one policy file (YAML or JSON) or a stored version")
	}
	if bt.weeks < 1 || bt.weeks > 52 {
		return usagef("rules backtest: --weeks must be from 1 to 52, got %d", bt.weeks)
	}
	src, err := os.ReadFile(args[0])
	version := 0
	if errors.Is(err, fs.ErrNotExist) {
		if v, perr := strconv.Atoi(args[0]); perr == nil && v > 0 {
			version, err = v, nil
		}
	}
	if err != nil {
		return err
	}
	var draft *model.Policy
	if version == 0 {
		if _, draft, _, err = compilePolicy(src); err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
	}
	store, err := openStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if version > 0 {
		pv, err := store.Policy(ctx, version)
		if err != nil {
			return ifMissing(err, fmt.Sprintf("no ruleset version %d: hotlane rules list shows the versions", version), fmt.Errorf("ruleset %d: %w", version, err))
		}
		if _, draft, _, err = compilePolicy(pv.Document); err != nil {
			return fmt.Errorf("ruleset %d: %w", version, err)
		}
	}
	live := feedback.NewLive(store, feedback.LiveOptions{Log: log})
	if err := live.Refresh(ctx); err != nil {
		return ifMissing(err, noRuleset, fmt.Errorf("live ruleset: %w", err))
	}
	cur := live.Current()
	if cur == nil {
		return errors.New("no ruleset is live yet to compare with: publish one first (hotlane rules apply FILE)")
	}
	to := time.Now()
	rep, err := feedback.Backtest(ctx, store, feedback.BacktestRequest{Draft: draft, DraftVersion: version,
		Live: cur.Policy, LiveVersion: cur.PolicyVersion, Model: cur.Model, ModelVersion: cur.ModelVersion,
		From: to.AddDate(0, 0, -7*bt.weeks), To: to})
	if err != nil {
		return err
	}
	if bt.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printBacktest(stdout, args[0], rep)
}

func printBacktest(w io.Writer, name string, rep *feedback.BacktestReport) error {
	pct := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100**p)
	}
	model := "rules only"
	if rep.ModelVersion > 0 {
		model = fmt.Sprintf("model %d", rep.ModelVersion)
	}
	fmt.Fprintf(w, "Backtest of %s against live ruleset %d (%s), %s to %s (%.4g weeks)\n",
		name, rep.LiveVersion, model, rep.From.Format("2006-01-02"), rep.To.Format("2006-01-02"), rep.Weeks)
	fmt.Fprintf(w, "%d conversations, %d decisions replayed; %d labelled, %d positive; %.1f s\n\n",
		rep.Conversations, rep.Decisions, rep.Labelled, rep.Positives, rep.Seconds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tALERTED\tUSEFUL\tNOISE\tPRECISION\tRECALL\tURGENT/WK\tHIGH/WK\t")
	for _, s := range []struct {
		name string
		side feedback.BacktestSide
	}{{"this ruleset", rep.Draft}, {"live", rep.Live}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%.1f\t%.1f\t\n", s.name, s.side.Alerted, s.side.Useful, s.side.Noise,
			pct(s.side.Precision), pct(s.side.Recall), s.side.AlertsPerWeek["urgent"], s.side.AlertsPerWeek["high"])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tCHANGE\tHITS\tUSEFUL\tNOISE\tPRECISION\tRECALL\tLIVE HITS\tLIVE PRECISION")
	for _, r := range rep.Rules {
		hits, useful, noise, prec, rec := "-", "-", "-", "-", "-"
		if r.Draft != nil {
			hits, useful, noise = strconv.Itoa(r.Draft.Hits), strconv.Itoa(r.Draft.Useful), strconv.Itoa(r.Draft.Noise)
			prec, rec = pct(r.Draft.Precision), pct(r.Draft.Recall)
		}
		lhits, lprec := "-", "-"
		if r.Live != nil {
			lhits, lprec = strconv.Itoa(r.Live.Hits), pct(r.Live.Precision)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Change, hits, useful, noise, prec, rec, lhits, lprec)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	return nil
}
