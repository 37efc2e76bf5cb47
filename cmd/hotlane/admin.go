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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
)

// openStore opens the database of a one-shot command and applies the
// migrations, so every command works on a fresh database.
// openStore opens the database of a command and brings its schema up to
// date. A SQLite file that does not exist is not created: only serve and
// migrate make a database (createStore), so that a command run in the
// wrong directory says so instead of answering from a new, empty file.
func openStore(ctx context.Context, db dbFlags, log *slog.Logger) (*store.Store, error) {
	if file, ok := store.SQLiteFile(db.DB); ok {
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: give the --db that hotlane serve uses, or create one with hotlane migrate --db %s", file, file)
		}
	}
	return createStore(ctx, db, log)
}

// createStore is openStore that creates a SQLite file that does not exist.
func createStore(ctx context.Context, db dbFlags, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, db.DB, store.Options{Logger: log, WriterConns: 1})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return st, nil
}

// parseDBCommand parses the flags of a database command, registered by
// extra, and returns its logger.
func parseDBCommand(name string, args []string, stderr io.Writer, extra func(fs *flag.FlagSet)) (dbFlags, []string, *slog.Logger, error) {
	var db dbFlags
	fs := newFlagSet(name, stderr)
	db.register(fs)
	if extra != nil {
		extra(fs)
	}
	rest, err := parseFlags(fs, args, osEnv)
	if err != nil {
		return db, nil, nil, err
	}
	if err := invalid(db.validate()); err != nil {
		return db, nil, nil, err
	}
	return db, rest, db.logger(stderr), nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	db, rest, log, err := parseDBCommand("migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("migrate takes no arguments")
	}
	store, err := createStore(ctx, db, log)
	if err != nil {
		return err
	}
	defer store.Close()
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s is at schema version %d\n", redactDSN(db.DB), v)
	return nil
}

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("apikey needs a subcommand: create, list or revoke")
	}
	sub, args := args[0], args[1:]
	if isHelp(sub) {
		writeGroupHelp(stdout, "apikey")
		return nil
	}
	var name, scopes string
	db, rest, log, err := parseDBCommand("apikey "+sub, args, stderr, func(fs *flag.FlagSet) {
		if sub == "create" {
			fs.StringVar(&name, "name", "", "a name for the key (who uses it)")
			fs.StringVar(&scopes, "scopes", "score", "comma-separated scopes: score, feedback, admin")
		}
	})
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if strings.TrimSpace(name) == "" {
			return usagef("apikey create: --name is required")
		}
		var list []string
		for _, s := range strings.Split(scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		key, secret, err := store.CreateAPIKey(ctx, name, list)
		if err != nil {
			return fmt.Errorf("create API key: %w", err)
		}
		auditCLI(ctx, store, stdout, feedback.AuditAPIKeyCreate, fmt.Sprintf("API key %d", key.ID), map[string]any{"name": key.Name, "scopes": key.Scopes})
		fmt.Fprintf(stdout, "created API key %d %q with scopes %s; it is shown only once:\n", key.ID, key.Name, strings.Join(key.Scopes, ","))
		fmt.Fprintln(stdout, secret)
		return nil
	case "list":
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		keys, err := store.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tCREATED\tSTATUS")
		for _, k := range keys {
			status := "active"
			if k.RevokedAt != nil {
				status = "revoked " + k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(k.Scopes, ","),
				k.CreatedAt.Format(time.RFC3339), status)
		}
		return tw.Flush()
	case "revoke":
		if len(rest) != 1 {
			return usagef("apikey revoke takes one key ID (see hotlane apikey list)")
		}
		id, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil || id < 1 {
			return usagef("apikey revoke: %q is not a key ID", rest[0])
		}
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		if err := store.RevokeAPIKey(ctx, id); err != nil {
			return ifMissing(err, fmt.Sprintf("no API key %d: hotlane apikey list shows the keys", id),
				fmt.Errorf("revoke API key %d: %w", id, err))
		}
		auditCLI(ctx, store, stdout, feedback.AuditAPIKeyRevoke, fmt.Sprintf("API key %d", id), nil)
		fmt.Fprintf(stdout, "revoked API key %d; servers stop accepting it within their key cache TTL\n", id)
		return nil
	default:
		return usagef("unknown apikey subcommand %q: use create, list or revoke", sub)
	}
}

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("rules needs a subcommand: apply, validate, show, list, rollback or backtest")
	}
	sub, args := args[0], args[1:]
	if isHelp(sub) {
		writeGroupHelp(stdout, "rules")
		return nil
	}
	var note string
	var bt backtestFlags
	db, rest, log, err := parseDBCommand("rules "+sub, args, stderr, func(fs *flag.FlagSet) {
		switch sub {
		case "apply":
			fs.StringVar(&note, "note", "", "a note stored with the new version")
		case "backtest":
			bt.register(fs)
		}
	})
	if err != nil {
		return err
	}
	switch sub {
	case "backtest":
		return runBacktest(ctx, db, log, rest, bt, stdout)
	case "validate", "apply":
		if len(rest) != 1 {
			return usagef("rules %s takes one policy file (YAML or JSON)", sub)
		}
		src, err := os.ReadFile(rest[0])
		if err != nil {
			return err
		}
		doc, _, canonical, err := compilePolicy(src)
		if err != nil {
			return fmt.Errorf("%s: %w", rest[0], err)
		}
		if sub == "validate" {
			fmt.Fprintf(stdout, "%s: valid, %d rules\n", rest[0], len(doc.Rules))
			return nil
		}
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		pv, err := store.PublishPolicy(ctx, canonical, string(src), cliAuthor(), note)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		auditCLI(ctx, store, stdout, feedback.AuditRulesetPublish, fmt.Sprintf("ruleset %d", pv.Version), map[string]any{"ruleset": pv.Version, "note": note})
		fmt.Fprintf(stdout, "published ruleset version %d (%d rules); it is live\n", pv.Version, len(doc.Rules))
		return nil
	case "show":
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		var pv feedback.PolicyVersion
		if len(rest) == 1 {
			v, perr := strconv.Atoi(rest[0])
			if perr != nil {
				return usagef("rules show: %q is not a version", rest[0])
			}
			pv, err = store.Policy(ctx, v)
			if err != nil {
				return ifMissing(err, fmt.Sprintf("no ruleset version %d: hotlane rules list shows the versions", v), fmt.Errorf("ruleset: %w", err))
			}
		} else {
			pv, err = store.LivePolicy(ctx)
			if err != nil {
				return ifMissing(err, noRuleset, fmt.Errorf("ruleset: %w", err))
			}
		}
		fmt.Fprintf(stdout, "# ruleset version %d, live=%t, created %s by %s\n", pv.Version, pv.Live,
			pv.CreatedAt.Format(time.RFC3339), pv.Author)
		if pv.Source != "" {
			fmt.Fprint(stdout, pv.Source)
			if !strings.HasSuffix(pv.Source, "\n") {
				fmt.Fprintln(stdout)
			}
			return nil
		}
		var pretty json.RawMessage = pv.Document
		out, _ := json.MarshalIndent(pretty, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return nil
	case "list":
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		list, err := store.ListPolicies(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATUS\tCREATED\tAUTHOR\tNOTE")
		for _, p := range list {
			status := p.Status
			if p.Live {
				status = "live"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.Version, status, p.CreatedAt.Format(time.RFC3339), p.Author, p.Note)
		}
		return tw.Flush()
	case "rollback", "activate":
		if len(rest) != 1 {
			return usagef("rules %s takes one version (see hotlane rules list)", sub)
		}
		v, err := strconv.Atoi(rest[0])
		if err != nil || v < 1 {
			return usagef("rules %s: %q is not a version", sub, rest[0])
		}
		store, err := openStore(ctx, db, log)
		if err != nil {
			return err
		}
		defer store.Close()
		pv, err := store.ActivatePolicy(ctx, v)
		if err != nil {
			return ifMissing(err, fmt.Sprintf("no ruleset version %d: hotlane rules list shows the versions", v),
				fmt.Errorf("activate ruleset %d: %w", v, err))
		}
		auditCLI(ctx, store, stdout, feedback.AuditRulesetRollback, fmt.Sprintf("ruleset %d", pv.Version), map[string]any{"ruleset": pv.Version})
		fmt.Fprintf(stdout, "ruleset version %d is live; running servers load it within their reload interval\n", pv.Version)
		return nil
	default:
		return usagef("unknown rules subcommand %q: use apply, validate, show, list, rollback or backtest", sub)
	}
}

// cliAuthor names the operator of a command-line change for the audit
// trail.
// auditor records changes in the audit log.
type auditor interface {
	Audit(ctx context.Context, e feedback.AuditEntry) error
}

// auditCLI records a change made with the hotlane command. The change
// stands if the entry cannot be written; the command says so.
func auditCLI(ctx context.Context, st auditor, w io.Writer, action, subject string, after any) {
	e := feedback.AuditEntry{Actor: cliAuthor(), Action: action, Subject: subject, After: feedback.AuditJSON(after)}
	if err := st.Audit(ctx, e); err != nil {
		fmt.Fprintf(w, "warning: the change is made but its audit entry was not recorded: %v\n", err)
	}
}

func cliAuthor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}
