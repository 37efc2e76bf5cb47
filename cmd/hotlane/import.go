package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// maxImportSignals matches the score endpoint's limit on signals.
const maxImportSignals = 100

// importProgressRows is how many rows import scores, and conversations it
// stores, between two looks at the status line.
const importProgressRows = 1000

// runImport loads labelled history from a CSV file: each row becomes a
// past conversation with one decision, scored by the live ruleset and
// model, and its outcome (converted for a positive label, lost otherwise),
// so the tuning job learns from it. Importing the same file again adds
// nothing.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		path, label, positive, channel, at, timeColumn string
	)
	// Logs go through the status line, which clears itself for them.
	prog := newProgress(stderr)
	db, rest, log, err := parseDBCommand("import", args, prog, func(fs *flag.FlagSet) {
		prog.register(fs)
		fs.StringVar(&path, "csv", "", "CSV file with a header line (required)")
		fs.StringVar(&label, "label", "", "the label column (required)")
		fs.StringVar(&positive, "positive", "", "label value meaning positive (default: TRUE, 1 or YES)")
		fs.StringVar(&channel, "channel", "", "channel of every row (default: a \"channel\" column, else web)")
		fs.StringVar(&at, "at", "", "when the history happened, RFC 3339 (default now), for rows without --time-column; place it inside the tuning window")
		fs.StringVar(&timeColumn, "time-column", "", "column holding when each row happened (RFC 3339, YYYY-MM-DD or YYYY-MM-DD HH:MM:SS, UTC unless it says)")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("import takes no arguments")
	}
	if path == "" || label == "" {
		return usagef("import needs --csv FILE and --label COLUMN")
	}
	when := time.Now().UTC()
	if at != "" {
		if when, err = time.Parse(time.RFC3339, at); err != nil {
			return usagef("--at: %q is not an RFC 3339 time", at)
		}
	}
	if channel != "" && !model.PlainText(channel) {
		return usagef("--channel: %q is not a plain token", channel)
	}
	prog.start()
	defer prog.done()
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	name := filepath.Base(path)
	prog.step("import: reading %s: 0 rows", name)
	data, err := readLabelledCSV(bytes.NewReader(raw), csvOptions{Label: label, Positive: positive,
		Progress: func(rows int) { prog.update("import: reading %s: %d rows", name, rows) }})
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	prog.step("import: read %d rows from %s; loading the live ruleset", len(data.Rows), name)

	store, err := openStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer store.Close()
	live := feedback.NewLive(store, feedback.LiveOptions{Log: log})
	if err := live.Refresh(ctx); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	sc := live.Current()
	if sc == nil {
		return errors.New("import: no live ruleset: publish one first (hotlane rules apply FILE)")
	}

	// Ids come from the file's content and the row, so a second import of
	// the same file finds its conversations and skips them.
	sum := sha256.Sum256(raw)
	prefix := "import-" + hex.EncodeToString(sum[:6]) + "-"
	convs := make([]feedback.ImportedConversation, 0, len(data.Rows))
	timeKey := ""
	if timeColumn != "" {
		timeKey = snakeCase(timeColumn)
		if !slices.Contains(data.Signals, timeKey) {
			return usagef("--time-column: no column %q in %s", timeColumn, path)
		}
	}
	prog.step("import: scoring 0 of %d rows", len(data.Rows))
	for i, signals := range data.Rows {
		if i%importProgressRows == 0 {
			prog.update("import: scoring %d of %d rows", i, len(data.Rows))
		}
		rowAt := when
		if timeKey != "" {
			t, err := parseRowTime(signals[timeKey])
			if err != nil {
				return fmt.Errorf("import %s: line %d: %s: %w", path, data.Lines[i], timeColumn, err)
			}
			rowAt = t
			delete(signals, timeKey)
		}
		ch := channel
		if v, ok := signals["channel"].(string); ok {
			if ch == "" {
				ch = v
			}
			delete(signals, "channel")
		}
		if ch == "" {
			ch = "web"
		}
		msg, _ := signals["message"].(string)
		delete(signals, "message")
		if len(signals) > maxImportSignals {
			return fmt.Errorf("import %s: line %d: %d signals, at most %d", path, data.Lines[i], len(signals), maxImportSignals)
		}
		d := sc.Scorer.Score(model.Input{Channel: ch, Message: msg, Signals: signals})
		sig, err := json.Marshal(signals)
		if err != nil {
			return fmt.Errorf("import %s: line %d: %w", path, data.Lines[i], err)
		}
		reasons, _ := json.Marshal(d.Reasons)
		route, _ := json.Marshal(d.Route)
		outcome := feedback.EventLost
		if data.Labels[i] {
			outcome = feedback.EventConverted
		}
		id := fmt.Sprintf("%s%d", prefix, data.Lines[i])
		convs = append(convs, feedback.ImportedConversation{
			Decision: feedback.Decision{
				ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(id+"/decision")).String(), ConversationID: id, Channel: ch,
				Signals: sig, Score: d.Score, Tier: d.Tier, Reasons: reasons, Route: route,
				PolicyVersion: sc.PolicyVersion, ModelVersion: sc.ModelVersion, OccurredAt: rowAt,
			},
			Outcome: outcome,
			EventID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(id+"/outcome")).String(),
		})
	}
	// Stored a part at a time, for the status line; the store commits a
	// few hundred at a time either way.
	var res feedback.ImportResult
	prog.step("import: storing 0 of %d conversations", len(convs))
	for start := 0; start < len(convs); start += importProgressRows {
		end := min(start+importProgressRows, len(convs))
		part, err := store.ImportHistory(ctx, convs[start:end])
		res.Added += part.Added
		res.Skipped += part.Skipped
		if err != nil {
			return fmt.Errorf("import %s: %w (%d conversations added before the failure)", path, err, res.Added)
		}
		prog.update("import: storing %d of %d conversations (%d added, %d already present)", end, len(convs), res.Added, res.Skipped)
	}
	prog.done()
	fmt.Fprintf(stdout, "imported %d labelled conversations from %s (%d positive, %d signals each at most, channel %s); %d already present were skipped\n",
		res.Added, filepath.Base(path), data.Positives, len(data.Signals), orDefault(channel, "from the file or web"), res.Skipped)
	return nil
}

// rowTimeLayouts are the time formats --time-column accepts.
var rowTimeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// parseRowTime reads a time cell: one of rowTimeLayouts, UTC unless it
// names its offset, within the years a database stores.
func parseRowTime(v any) (time.Time, error) {
	if v == nil {
		return time.Time{}, errors.New("the cell is empty")
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%v is not a time", v)
	}
	for _, layout := range rowTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.After(time.Now().Add(24*time.Hour)) {
				return time.Time{}, fmt.Errorf("%q is out of range", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, YYYY-MM-DD or YYYY-MM-DD HH:MM:SS", s)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
