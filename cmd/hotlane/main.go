// Command hotlane is the Hotlane server and its operator commands: serve
// the API, migrate the database, manage API keys and rulesets, tune, import
// and evaluate, and drive a running server with load. main only calls run,
// so tests can run the whole program in-process.
//
// This is where Hotlane is wired: configuration is read and validated
// here, and serve builds the metrics, then the store (feedback/store), the
// live holder (feedback.Live), the server and the jobs, handing each what
// it needs. It is the only package that imports them all.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The score path allocates many short-lived objects and the heap stays
	// small (tens of MB), so collecting less often buys throughput cheaply
	// (measured in BENCHMARKS.md). An explicit GOGC still wins.
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsageShown) {
			fmt.Fprintln(os.Stderr, "hotlane:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errUsageShown marks an error whose explanation was already printed.
var errUsageShown = errors.New("usage shown")

// errHelpShown ends a command whose help was asked for and printed: run
// returns nil for it (exit status 0).
var errHelpShown = errors.New("help shown")

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, errUsageShown) {
		return 2
	}
	return 1
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

const usage = `hotlane: visitor priority routing for live chat

Usage:
  hotlane serve [--addr ADDR] [--db DSN] [--demo] [--no-migrate] [--store-messages]
  hotlane migrate [--db DSN]
  hotlane apikey create --name NAME --scopes score,feedback,admin
  hotlane apikey list
  hotlane apikey revoke ID
  hotlane user create --email E --role agent|lead|admin [--team T] --password-stdin
  hotlane user list | disable E | set-password E --password-stdin     web UI accounts
  hotlane rules apply FILE [--note TEXT]     publish a policy document (YAML or JSON)
  hotlane rules validate FILE                check a policy document without a database
  hotlane rules show [VERSION]               print the live (or a given) ruleset
  hotlane rules list                         list every ruleset version
  hotlane rules rollback VERSION             make an earlier version live again
  hotlane rules backtest FILE|VERSION [--weeks N] [--json]   what it would have caught
  hotlane bench --url URL --key KEY [--duration D] [--concurrency N] [--baseline] [--json]
  hotlane tune [--as-of TIME] [--promotion auto|manual]   run the weekly tuning job now
  hotlane models list|show V|promote V|rollback      the model registry
  hotlane reports [latest|ID]                        print a tuning report as JSON
  hotlane import --csv F --label COL [--positive V] [--channel C]
  hotlane eval --csv F --label COL [--positive V] [--ignore COLS] [--folds K] [--json]
  hotlane simulate [--url URL --key KEY] [--weeks N]  synthetic traffic through the weekly loop
  hotlane version

Every flag can also be set as HOTLANE_<FLAG> (for example HOTLANE_DB,
HOTLANE_ADDR); HOTLANE_<FLAG>_FILE reads the value from a file, for secrets.
--db takes postgres://... or a SQLite file path (default hotlane.db).
Run "hotlane COMMAND --help" (or "hotlane help COMMAND") for what a command
does, an example and its flags.
`

// run is the whole program: it parses args and runs one subcommand.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsageShown
	}
	if len(args) > 1 && args[0] == "help" {
		// hotlane help rules apply: the help of rules apply.
		args = append(args[1:len(args):len(args)], "--help")
	}
	if wantsHelp(args) {
		// Asked for, help goes to standard output, and is no error.
		stderr = stdout
	}
	err := dispatch(ctx, args, stdin, stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// dispatch runs the subcommand args name.
func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, rest, stdout, stderr)
	case "user":
		return runUser(ctx, rest, stdin, stdout, stderr)
	case "rules":
		return runRules(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "tune":
		return runTune(ctx, rest, stdout, stderr)
	case "models":
		return runModels(ctx, rest, stdout, stderr)
	case "reports":
		return runReports(ctx, rest, stdout, stderr)
	case "import":
		return runImport(ctx, rest, stdout, stderr)
	case "eval":
		return runEval(ctx, rest, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "hotlane", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown command %q", cmd)
	}
}
