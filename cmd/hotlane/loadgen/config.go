package loadgen

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by Run to zero-valued Config fields.
const (
	// DefaultConcurrency is the number of concurrent workers when Config.Concurrency is 0.
	DefaultConcurrency = 32
	// DefaultBaselineRounds is the number of rounds per target when Config.Baseline is set and Config.Rounds is 0.
	DefaultBaselineRounds = 3
	// DefaultConversations is the size of the conversation id pool when Config.Conversations is 0.
	DefaultConversations = 5000
	// DefaultWarmup is the unmeasured warm-up before the first round of each target when Config.Warmup is 0.
	DefaultWarmup = 2 * time.Second
)

// Upper bounds that keep a mistyped flag from exhausting the machine.
const (
	maxConcurrency   = 10000
	maxRounds        = 1000
	maxConversations = 100_000_000
)

// Config describes one benchmark run. Zero values of Concurrency, Rounds,
// Conversations and Warmup select the documented defaults.
type Config struct {
	// URL is the server's base URL, such as http://127.0.0.1:8080. A URL
	// that already ends in /v1/score is used as is.
	URL string
	// Key is the API key sent as "Authorization: Bearer <key>"; it needs the
	// score scope.
	Key string
	// Duration is the length of each measured round.
	Duration time.Duration
	// Concurrency is the number of workers, each keeping one request in
	// flight over its own keep-alive connection (default 32).
	Concurrency int
	// Baseline also measures an in-process bare Gin handler that only
	// decodes the same bodies, alternating its rounds with the server's.
	Baseline bool
	// Rounds is the number of measured rounds per target: with Baseline the
	// order is baseline, hotlane, baseline, hotlane, ... so both targets see
	// the same machine conditions (default 3 with Baseline, 1 without).
	Rounds int
	// Seed makes the generated request bodies reproducible.
	Seed int64
	// Conversations is the number of distinct conversation ids the bodies
	// draw from (default 5000).
	Conversations int
	// Warmup is the unmeasured load sent before the first round of each
	// target (default 2s; a negative value disables it).
	Warmup time.Duration
	// Rate, when positive, sends requests at this constant rate per second
	// (open loop) over at most Concurrency connections, and measures each
	// latency from the request's scheduled time: a stall then shows in full
	// in the latencies instead of slowing the client down (coordinated
	// omission), as wrk2 and vegeta measure. Zero keeps Concurrency requests
	// in flight (closed loop).
	Rate float64
}

// maxRate bounds Rate.
const maxRate = 1_000_000

// Validate reports every problem with c in one error, or nil when Run can
// use it. Zero values that select a default are valid.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch {
	case strings.TrimSpace(c.URL) == "":
		add("url is required (for example http://127.0.0.1:8080)")
	default:
		u, err := url.Parse(c.URL)
		switch {
		case !strings.Contains(c.URL, "://"):
			add("url %q must start with http:// or https://", c.URL)
		case err != nil:
			add("url %q is not a valid URL: %v", c.URL, err)
		case u.Scheme != "http" && u.Scheme != "https":
			add("url %q must start with http:// or https://", c.URL)
		case u.Host == "":
			add("url %q has no host", c.URL)
		case u.RawQuery != "" || u.Fragment != "":
			add("url %q must not have a query or fragment", c.URL)
		}
	}
	switch {
	case c.Key == "":
		add("key is required (an API key with the score scope)")
	case strings.ContainsAny(c.Key, " \t\r\n"):
		add("key must not contain spaces or line breaks")
	}
	if c.Duration <= 0 {
		add("duration must be positive, got %s", c.Duration)
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		add("concurrency must be between 1 and %d (0 for the default %d), got %d", maxConcurrency, DefaultConcurrency, c.Concurrency)
	}
	if c.Rounds < 0 || c.Rounds > maxRounds {
		add("rounds must be between 1 and %d (0 for the default), got %d", maxRounds, c.Rounds)
	}
	if c.Rate < 0 || c.Rate > maxRate || c.Rate != c.Rate {
		add("rate must be between 0 (closed loop) and %d requests per second, got %v", maxRate, c.Rate)
	}
	if c.Conversations < 0 || c.Conversations > maxConversations {
		add("conversations must be between 1 and %d (0 for the default %d), got %d", maxConversations, DefaultConversations, c.Conversations)
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid bench config: " + strings.Join(problems, "; "))
}

// withDefaults returns c with every zero-valued field replaced by its default.
func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Rounds == 0 {
		c.Rounds = 1
		if c.Baseline {
			c.Rounds = DefaultBaselineRounds
		}
	}
	if c.Conversations == 0 {
		c.Conversations = DefaultConversations
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = DefaultWarmup
	case c.Warmup < 0:
		c.Warmup = 0
	}
	return c
}

// scoreURL returns the address of the score endpoint below base.
func scoreURL(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/v1/score") {
		return base
	}
	return base + "/v1/score"
}
