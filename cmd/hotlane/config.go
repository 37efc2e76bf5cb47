package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/feedback/store"
	"github.com/hotlane/hotlane/jobs"
	"github.com/hotlane/hotlane/server"
)

// Config is every setting of the server, read once from flags and
// HOTLANE_* variables, validated, and passed down. Nothing reads the
// environment after start.
type Config struct {
	Addr            string
	DB              string
	NoMigrate       bool
	Demo            bool
	DemoHistory     bool
	StoreMessages   bool
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	ReloadInterval  time.Duration
	KeyCacheTTL     time.Duration
	WriterConns     int
	Writers         int
	StateCache      int
	SQLiteSync      string
	DebugAddr       string
	RetainDecisions time.Duration

	// Abuse limits and the proxies trusted to name the client.
	KeyRate        float64
	KeyBurst       int
	AnonRate       float64
	AnonBurst      int
	TrustedProxies string

	// Alert delivery and SLA checks.
	Deliver          bool
	DeliveryInterval time.Duration
	SLAInterval      time.Duration
	PublicURL        string
	AllowRanges      string

	// The Chatwoot integration.
	Chatwoot chatwootFlags

	// The tuning job: its settings, its schedule and the schedule's zone.
	Tune         tuneFlags
	TuneSchedule string
	TZ           string
}

// dbFlags are the flags every database command shares.
type dbFlags struct {
	DB        string
	LogLevel  string
	LogFormat string
}

func (d *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.DB, "db", "hotlane.db", "database: a PostgreSQL URL (postgres://...) or keyword string (host=... dbname=...), or a SQLite file (a path ending in .db or .sqlite, file:PATH or sqlite://PATH)")
	fs.StringVar(&d.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&d.LogFormat, "log-format", "json", "log format: json or text")
}

func (d *dbFlags) validate() []string {
	var errs []string
	if strings.TrimSpace(d.DB) == "" {
		errs = append(errs, "--db: must not be empty")
	} else if err := store.CheckDSN(d.DB); err != nil {
		errs = append(errs, "--db: "+err.Error())
	}
	if _, err := parseLevel(d.LogLevel); err != nil {
		errs = append(errs, "--log-level: "+err.Error())
	}
	if d.LogFormat != "json" && d.LogFormat != "text" {
		errs = append(errs, fmt.Sprintf("--log-format: %q is not json or text", d.LogFormat))
	}
	return errs
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

func (d *dbFlags) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(d.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if d.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hotlane "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { writeCommandHelp(fs.Output(), name, fs) }
	return fs
}

// parseFlags parses args, then fills every flag not given on the command
// line from HOTLANE_<FLAG>, or from the file named by HOTLANE_<FLAG>_FILE.
// The command line wins over the environment, which wins over defaults.
// Every problem is reported, not just the first.
//
// Flags may come before or after positional arguments; the positional
// arguments are returned in order.
func parseFlags(fs *flag.FlagSet, args []string, env func(string) (string, bool)) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelpShown
			}
			return nil, &usageError{msg: err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envName(f.Name)
		val, ok := env(name)
		if file, fok := env(name + "_FILE"); fok {
			if ok {
				errs = append(errs, fmt.Sprintf("%s and %s_FILE are both set; use one", name, name))
				return
			}
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s_FILE: %v", name, err))
				return
			}
			val, ok = strings.TrimRight(string(b), "\r\n"), true
		}
		if !ok {
			return
		}
		if err := f.Value.Set(val); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v", name, val, err))
		}
	})
	if len(errs) > 0 {
		return nil, &usageError{msg: "invalid environment:\n  " + strings.Join(errs, "\n  ")}
	}
	return positional, nil
}

// envName maps a flag name to its variable: --store-messages is
// HOTLANE_STORE_MESSAGES.
func envName(flagName string) string {
	return "HOTLANE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// osEnv looks variables up in the process environment; tests pass their
// own.
func osEnv(name string) (string, bool) { return os.LookupEnv(name) }

// invalid joins validation problems into one usage error.
func invalid(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return &usageError{msg: "invalid configuration:\n  " + strings.Join(errs, "\n  ")}
}

// parseServeConfig reads the serve command's configuration.
func parseServeConfig(args []string, env func(string) (string, bool), stderr io.Writer) (Config, error) {
	var cfg Config
	var db dbFlags
	fs := newFlagSet("serve", stderr)
	db.register(fs)
	fs.StringVar(&cfg.Addr, "addr", ":8080", "listen address")
	fs.BoolVar(&cfg.NoMigrate, "no-migrate", false, "do not apply database migrations at start")
	fs.BoolVar(&cfg.Demo, "demo", false, "on an empty database, publish a demo ruleset and create an API key")
	fs.BoolVar(&cfg.DemoHistory, "demo-history", true, "with --demo, also import three weeks of synthetic past conversations with outcomes and run the tuning job once")
	fs.BoolVar(&cfg.StoreMessages, "store-messages", false, "store the visitor's message text with each decision")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long to drain in-flight requests on shutdown")
	fs.DurationVar(&cfg.ReloadInterval, "reload-interval", 2*time.Second, "how often to look for a new live ruleset or model")
	fs.DurationVar(&cfg.KeyCacheTTL, "key-cache-ttl", 10*time.Second, "how long an authenticated API key is trusted before asking the database again")
	fs.IntVar(&cfg.WriterConns, "writer-conns", 4, "PostgreSQL connections of the decision writers")
	fs.IntVar(&cfg.Writers, "writers", 1, "PostgreSQL decision writers committing in parallel (conversations are spread over them)")
	fs.IntVar(&cfg.StateCache, "state-cache", store.DefaultStateCache, "conversations whose state a lone PostgreSQL writer keeps in memory to commit each batch in one round trip (0 turns it off)")
	fs.StringVar(&cfg.SQLiteSync, "sqlite-synchronous", "full", "SQLite only: full makes every 2xx durable across power loss; normal is faster but power loss may lose the last acknowledged writes (a process crash does not)")
	fs.BoolVar(&cfg.Deliver, "deliver", true, "run the alert delivery worker in this process (false for API-only processes; another process must deliver)")
	fs.DurationVar(&cfg.DeliveryInterval, "delivery-interval", time.Second, "how often to look for alerts to deliver and deliveries due")
	fs.DurationVar(&cfg.SLAInterval, "sla-interval", 5*time.Second, "how often to look for conversations past their SLA")
	fs.StringVar(&cfg.AllowRanges, "allow-destination-ranges", "", "comma-separated address ranges destinations may reach besides public addresses: loopback, private, link-local or CIDRs (for receivers inside your network)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL of the web UI, for links in alerts (for example https://hotlane.example.com)")
	fs.DurationVar(&cfg.RetainDecisions, "retain-decisions", jobs.DefaultRetainDecisions, "how long decisions are kept: on PostgreSQL whole monthly partitions older than this are dropped, on SQLite the decisions are deleted; 0 keeps them all")
	fs.Float64Var(&cfg.KeyRate, "key-rate", 0, "requests per second one API key may make on average (a token bucket per key; over it: 429 with Retry-After); 0 means no limit")
	fs.IntVar(&cfg.KeyBurst, "key-burst", 0, "requests one API key may make at once above --key-rate; 0 means twice --key-rate")
	fs.Float64Var(&cfg.AnonRate, "anon-rate", 10, "requests per second one client address may make without valid credentials (no or a wrong API key or session, a bad Chatwoot signature; over it: 429 with Retry-After); 0 means no limit")
	fs.IntVar(&cfg.AnonBurst, "anon-burst", 100, "requests without valid credentials one address may make at once above --anon-rate")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (for the per-address limits and the login throttle); empty trusts none")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "address of a second listener serving Go's profiler at /debug/pprof/ (for example 127.0.0.1:6060); off when empty. It has no authentication: keep it on loopback or a private network")
	cfg.Chatwoot.register(fs)
	cfg.Tune.register(fs)
	fs.StringVar(&cfg.TuneSchedule, "tune-schedule", "0 6 * * 1", "cron schedule of the tuning job (minute hour day month weekday, or six fields with seconds first), or off; processes sharing a database run each tick once")
	fs.StringVar(&cfg.TZ, "tz", "UTC", "time zone of --tune-schedule, for example Europe/Berlin")
	rest, err := parseFlags(fs, args, env)
	if err != nil {
		return cfg, err
	}
	if len(rest) > 0 {
		return cfg, usagef("serve takes no arguments, got %q", rest)
	}
	cfg.DB, cfg.LogLevel, cfg.LogFormat = db.DB, db.LogLevel, db.LogFormat
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	errs := (&dbFlags{DB: c.DB, LogLevel: c.LogLevel, LogFormat: c.LogFormat}).validate()
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		errs = append(errs, fmt.Sprintf("--addr: %q is not host:port (for example :8080 or 127.0.0.1:8080)", c.Addr))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, "--shutdown-timeout: must be positive")
	}
	if c.ReloadInterval < 100*time.Millisecond {
		errs = append(errs, "--reload-interval: must be at least 100ms")
	}
	if c.KeyCacheTTL <= 0 {
		errs = append(errs, "--key-cache-ttl: must be positive")
	}
	if c.WriterConns < 1 || c.WriterConns > 64 {
		errs = append(errs, "--writer-conns: must be between 1 and 64")
	}
	if c.Writers < 1 || c.Writers > c.WriterConns {
		errs = append(errs, "--writers: must be between 1 and --writer-conns")
	}
	if c.StateCache < 0 || c.StateCache > 10_000_000 {
		errs = append(errs, "--state-cache: must be between 0 (off) and 10000000")
	}
	if _, err := c.addressPolicy(); err != nil {
		errs = append(errs, "--allow-destination-ranges: "+strings.TrimPrefix(err.Error(), feedback.ErrInvalid.Error()+": "))
	}
	if c.SQLiteSync != "full" && c.SQLiteSync != "normal" {
		errs = append(errs, fmt.Sprintf("--sqlite-synchronous: %q is not full or normal", c.SQLiteSync))
	}
	if c.RetainDecisions < 0 || (c.RetainDecisions > 0 && c.RetainDecisions < c.Tune.Window) {
		errs = append(errs, fmt.Sprintf("--retain-decisions: must be 0 (keep all) or at least --tune-window (%s), or the tuning job loses its window", c.Tune.Window))
	}
	if c.KeyRate < 0 || c.KeyBurst < 0 || c.KeyRate > 1e9 {
		errs = append(errs, "--key-rate and --key-burst: must be 0 (no limit) or positive")
	}
	if c.AnonRate < 0 || c.AnonBurst < 0 || c.AnonRate > 1e9 {
		errs = append(errs, "--anon-rate and --anon-burst: must be 0 (no limit) or positive")
	}
	if _, err := c.trustedProxies(); err != nil {
		errs = append(errs, "--trusted-proxies: "+err.Error())
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			errs = append(errs, fmt.Sprintf("--debug-addr: %q is not host:port", c.DebugAddr))
		} else if c.DebugAddr == c.Addr {
			errs = append(errs, "--debug-addr: must differ from --addr")
		}
	}
	if c.DeliveryInterval < 100*time.Millisecond {
		errs = append(errs, "--delivery-interval: must be at least 100ms")
	}
	if c.SLAInterval < 100*time.Millisecond {
		errs = append(errs, "--sla-interval: must be at least 100ms")
	}
	errs = append(errs, c.Chatwoot.validate()...)
	errs = append(errs, c.Tune.validate()...)
	if _, _, err := parseSchedule(c.TuneSchedule, c.TZ, time.Now()); err != nil {
		errs = append(errs, err.Error())
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Sprintf("--public-url: %q is not an absolute http or https URL", c.PublicURL))
		}
	}
	return invalid(errs)
}

// LogValue logs the configuration with the database password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("db", redactDSN(c.DB)),
		slog.Bool("no_migrate", c.NoMigrate),
		slog.Bool("demo", c.Demo),
		slog.Bool("demo_history", c.DemoHistory),
		slog.Bool("store_messages", c.StoreMessages),
		slog.String("log_level", c.LogLevel),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.String("reload_interval", c.ReloadInterval.String()),
		slog.String("key_cache_ttl", c.KeyCacheTTL.String()),
		slog.Int("writer_conns", c.WriterConns),
		slog.Int("writers", c.Writers),
		slog.Int("state_cache", c.StateCache),
		slog.String("sqlite_synchronous", c.SQLiteSync),
		slog.String("debug_addr", c.DebugAddr),
		slog.Float64("key_rate", c.KeyRate),
		slog.Int("key_burst", c.KeyBurst),
		slog.Float64("anon_rate", c.AnonRate),
		slog.Int("anon_burst", c.AnonBurst),
		slog.String("trusted_proxies", c.TrustedProxies),
		slog.String("retain_decisions", c.RetainDecisions.String()),
		slog.Bool("deliver", c.Deliver),
		slog.String("delivery_interval", c.DeliveryInterval.String()),
		slog.String("sla_interval", c.SLAInterval.String()),
		slog.String("public_url", c.PublicURL),
		slog.String("allow_destination_ranges", c.AllowRanges),
		slog.Any("chatwoot", c.Chatwoot),
		slog.String("tune_schedule", c.TuneSchedule),
		slog.String("tz", c.TZ),
		slog.String("trainer", c.Tune.Trainer),
		slog.Float64("l2", c.Tune.L2),
		slog.Int("interactions", c.Tune.Interactions),
		slog.String("tune_window", c.Tune.Window.String()),
		slog.String("holdout", c.Tune.Holdout.String()),
		slog.Int("min_labelled", c.Tune.MinLabelled),
		slog.Int("tune_max_rows", c.Tune.MaxRows),
		slog.String("promotion", c.Tune.Promotion),
	)
}

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redactDSN hides the password of a PostgreSQL DSN in URL or key=value
// form.
func redactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "postgres://(unparsable)"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// addressPolicy is the destination address policy --allow-destination-ranges
// names.
func (c Config) addressPolicy() (feedback.AddressPolicy, error) {
	if strings.TrimSpace(c.AllowRanges) == "" {
		return feedback.AddressPolicy{}, nil
	}
	return feedback.ParseAddressPolicy(strings.Split(c.AllowRanges, ","))
}

// trustedProxies parses --trusted-proxies: addresses or CIDRs.
func (c Config) trustedProxies() ([]string, error) {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR (for example 10.0.0.1 or 10.0.0.0/8)", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// limits are the server's abuse limits from the flags.
func (c Config) limits() server.Limits {
	keyBurst := c.KeyBurst
	if keyBurst == 0 {
		keyBurst = max(1, int(2*c.KeyRate))
	}
	return server.Limits{KeyRate: c.KeyRate, KeyBurst: keyBurst, AnonRate: c.AnonRate, AnonBurst: c.AnonBurst}
}
