package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// cmdHelp is what `hotlane COMMAND --help` prints above the flags.
type cmdHelp struct {
	purpose string // one line
	usage   string
	example string
}

// commandHelp holds every command and subcommand, by its name as typed
// ("rules apply"). The flags come from each command's flag set.
var commandHelp = map[string]cmdHelp{
	"serve": {"run the server: the score API, the web UI, alert delivery, SLA checks and the tuning schedule",
		"hotlane serve [--addr ADDR] [--db DSN] [--demo] [flags]",
		"hotlane serve --demo    # an embedded SQLite database with a demo ruleset, model and key"},
	"migrate": {"create the database or bring its schema up to date",
		"hotlane migrate [--db DSN]",
		"hotlane migrate --db 'postgres://hotlane@db:5432/hotlane?sslmode=require'"},
	"apikey create": {"make an API key and print it once (only its hash is stored)",
		"hotlane apikey create --name NAME [--scopes score,feedback,admin] [--db DSN]",
		"hotlane apikey create --name chatwoot --scopes score,feedback"},
	"apikey list": {"list the API keys: id, name, scopes, created and revoked",
		"hotlane apikey list [--db DSN]",
		"hotlane apikey list"},
	"apikey revoke": {"revoke an API key: servers refuse it within --key-cache-ttl",
		"hotlane apikey revoke ID [--db DSN]",
		"hotlane apikey revoke 2"},
	"user create": {"make a web UI account; the password is read from standard input",
		"hotlane user create --email E [--role agent|lead|admin] [--team T] --password-stdin [--db DSN]",
		"printf '%s\\n' \"$PASSWORD\" | hotlane user create --email ana@example.com --role lead --team sales --password-stdin"},
	"user list": {"list the web UI accounts",
		"hotlane user list [--db DSN]",
		"hotlane user list"},
	"user disable": {"disable a web UI account and end its sessions",
		"hotlane user disable EMAIL [--db DSN]",
		"hotlane user disable ana@example.com"},
	"user set-password": {"set a web UI account's password, read from standard input",
		"hotlane user set-password EMAIL --password-stdin [--db DSN]",
		"printf '%s\\n' \"$PASSWORD\" | hotlane user set-password ana@example.com --password-stdin"},
	"rules apply": {"publish a policy document (YAML or JSON) as the live ruleset",
		"hotlane rules apply FILE [--note TEXT] [--db DSN]",
		"hotlane rules apply rules.yaml --note 'lower the urgent threshold'"},
	"rules validate": {"check a policy document without a database",
		"hotlane rules validate FILE",
		"hotlane rules validate rules.yaml"},
	"rules show": {"print the live ruleset, or a given version",
		"hotlane rules show [VERSION] [--db DSN]",
		"hotlane rules show 3"},
	"rules list": {"list every ruleset version, the live one marked",
		"hotlane rules list [--db DSN]",
		"hotlane rules list"},
	"rules rollback": {"make an earlier (or later) ruleset version live again",
		"hotlane rules rollback VERSION [--db DSN]",
		"hotlane rules rollback 1"},
	"rules backtest": {"replay past conversations through a ruleset: what it would have caught, split by outcome",
		"hotlane rules backtest FILE|VERSION [--weeks N] [--json] [--db DSN]",
		"hotlane rules backtest draft.yaml --weeks 4"},
	"bench": {"load a running server's score endpoint and print throughput and latency, optionally against a bare baseline",
		"hotlane bench --url URL --key KEY [--concurrency N | --rate R] [--duration D] [--baseline] [--json]",
		"hotlane bench --url http://127.0.0.1:8080 --key \"$KEY\" --concurrency 128 --duration 10s --baseline"},
	"tune": {"run the weekly tuning job now: train, measure, propose thresholds, maybe promote",
		"hotlane tune [--as-of TIME] [--promotion auto|manual] [--l2 L] [--interactions N] [--json] [--progress auto|always|never] [--db DSN]",
		"hotlane tune --promotion manual"},
	"models": {"the model registry: list, show VERSION, promote VERSION, rollback",
		"hotlane models list|show VERSION|promote VERSION|rollback [--db DSN]",
		"hotlane models promote 3"},
	"reports": {"print a tuning report as JSON (the latest, or by id), or apply it",
		"hotlane reports [latest|ID] [--apply] [--db DSN]",
		"hotlane reports latest"},
	"import": {"load a CSV of past conversations and their outcomes for the next tuning run",
		"hotlane import --csv FILE --label COLUMN [--positive VALUE] [--channel C] [--time-column COLUMN] [--progress auto|always|never] [--db DSN]",
		"hotlane import --csv history.csv --label Converted --positive yes --time-column Date"},
	"eval": {"cross-validate the model on a labelled CSV and print ROC-AUC, PR-AUC and calibration",
		"hotlane eval --csv FILE --label COLUMN [--positive VALUE] [--ignore COLUMNS] [--folds K] [--json] [--progress auto|always|never]",
		"hotlane eval --csv online_shoppers_intention.csv --label Revenue"},
	"simulate": {"drive a server with synthetic visitors of known probabilities through weeks of the tuning loop",
		"hotlane simulate [--weeks N] [--conversations N] [--url URL --key KEY --replace-rules] [--json] [--progress auto|always|never]",
		"hotlane simulate --weeks 4"},
}

// commandGroups are the commands whose first argument is a subcommand.
var commandGroups = map[string]string{
	"apikey": "API keys for the score, feedback and admin endpoints",
	"user":   "web UI accounts",
	"rules":  "rulesets: publish, check, list, roll back and backtest policy documents",
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// writeCommandHelp prints a command's purpose, usage, example and flags.
func writeCommandHelp(w io.Writer, name string, fs *flag.FlagSet) {
	h, ok := commandHelp[name]
	if !ok {
		fmt.Fprintf(w, "hotlane %s\n\nFlags:\n", name)
		fs.SetOutput(w)
		fs.PrintDefaults()
		return
	}
	fmt.Fprintf(w, "hotlane %s: %s\n\nUsage:\n  %s\n\nExample:\n  %s\n", name, h.purpose, h.usage, h.example)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags (each also HOTLANE_<FLAG>, or HOTLANE_<FLAG>_FILE to read it from a file):")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// writeGroupHelp prints a command group's purpose and its subcommands.
func writeGroupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "hotlane %s: %s\n\nSubcommands:\n", group, commandGroups[group])
	var subs []string
	for name := range commandHelp {
		if strings.HasPrefix(name, group+" ") {
			subs = append(subs, name)
		}
	}
	slices.Sort(subs)
	for _, name := range subs {
		fmt.Fprintf(w, "  %-14s %s\n", strings.TrimPrefix(name, group+" "), commandHelp[name].purpose)
	}
	fmt.Fprintf(w, "\nRun \"hotlane %s SUBCOMMAND --help\" for its flags and an example.\n", group)
}
