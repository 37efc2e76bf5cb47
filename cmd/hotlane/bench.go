package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/hotlane/hotlane/cmd/hotlane/loadgen"
)

// runBench drives a running server's score endpoint and, with --baseline,
// a bare Gin handler in the same run, and prints the comparison.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg loadgen.Config
	var asJSON bool
	fs := newFlagSet("bench", stderr)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the running server")
	fs.StringVar(&cfg.Key, "key", "", "API key with the score scope")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per round")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "concurrent keep-alive connections")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "also measure a bare Gin handler decoding the same bodies, alternating rounds")
	fs.IntVar(&cfg.Rounds, "rounds", 0, "measured rounds per target (default 3 with --baseline, else 1)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the generated bodies")
	fs.IntVar(&cfg.Conversations, "conversations", 5000, "distinct conversation ids")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before each target's first round")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	rest, err := parseFlags(fs, args, osEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("bench takes no arguments")
	}
	if cfg.Key == "" {
		return usagef("bench: --key is required (hotlane apikey create --name bench --scopes score)")
	}
	progress := stderr
	rep, err := loadgen.Run(ctx, cfg, progress)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}
