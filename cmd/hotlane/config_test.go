package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotlane/hotlane/model"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestServeConfigSources(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(secret, []byte("postgres://u:s3cret@db/hotlane\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(Config) bool
	}{
		{"defaults", nil, nil, func(c Config) bool {
			return c.Addr == ":8080" && c.DB == "hotlane.db" && !c.Demo && c.ReloadInterval == 2*time.Second
		}},
		{"environment", nil, map[string]string{"HOTLANE_ADDR": "127.0.0.1:9999", "HOTLANE_DEMO": "true", "HOTLANE_STORE_MESSAGES": "1"},
			func(c Config) bool { return c.Addr == "127.0.0.1:9999" && c.Demo && c.StoreMessages }},
		{"flag beats environment", []string{"--addr", ":7000"}, map[string]string{"HOTLANE_ADDR": ":9999"},
			func(c Config) bool { return c.Addr == ":7000" }},
		{"secret from file", nil, map[string]string{"HOTLANE_DB_FILE": secret},
			func(c Config) bool { return c.DB == "postgres://u:s3cret@db/hotlane" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServeConfig(tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !tt.want(got) {
				t.Errorf("config = %+v", got)
			}
		})
	}
}

func TestServeConfigListsEveryError(t *testing.T) {
	_, err := parseServeConfig([]string{"--addr", "nope", "--log-level", "loud", "--writer-conns", "0"},
		envOf(nil), io.Discard)
	var ue *usageError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a usage error", err)
	}
	for _, want := range []string{"--addr", "--log-level", "--writer-conns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	_, err = parseServeConfig(nil, envOf(map[string]string{"HOTLANE_DB": "a", "HOTLANE_DB_FILE": "/x", "HOTLANE_DEMO": "maybe"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "both set") || !strings.Contains(err.Error(), "HOTLANE_DEMO") {
		t.Errorf("err = %v, want both environment problems", err)
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:s3cret@db:5432/hotlane?sslmode=disable", "postgres://u:xxxxx@db:5432/hotlane?sslmode=disable"},
		{"postgres://db/hotlane?password=s3cret", "postgres://db/hotlane?password=xxxxx"},
		{"host=db user=u password=s3cret dbname=h", "host=db user=u password=xxxxx dbname=h"},
		{"hotlane.db", "hotlane.db"},
	}
	for _, tt := range tests {
		if got := redactDSN(tt.in); got != tt.want || strings.Contains(got, "s3cret") {
			t.Errorf("redactDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// --db names its engine unambiguously: a keyword string is PostgreSQL, a
// mistyped URL or a bare name is a usage error naming both accepted forms,
// and SQLite's durability setting is checked.
func TestServeConfigDB(t *testing.T) {
	for _, ok := range []string{"hotlane.db", "data/h.sqlite", "file:h.db", "sqlite:///var/lib/h.db",
		"postgres://u@db/hotlane", "host=db user=hotlane password=x dbname=hotlane"} {
		if _, err := parseServeConfig([]string{"--db", ok}, envOf(nil), io.Discard); err != nil {
			t.Errorf("--db %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"postgress://u:s3cret@db/hotlane", "hotlane", "/var/lib/hotlane"} {
		_, err := parseServeConfig([]string{"--db", bad}, envOf(nil), io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--db") || !strings.Contains(err.Error(), "postgres://") ||
			!strings.Contains(err.Error(), ".db") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("--db %q: %v; want a usage error naming both forms without the password", bad, err)
		}
	}
	if _, err := parseServeConfig([]string{"--sqlite-synchronous", "off"}, envOf(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--sqlite-synchronous") {
		t.Errorf("--sqlite-synchronous off: %v", err)
	}
	if _, err := parseServeConfig([]string{"--allow-destination-ranges", "loopback,internal"}, envOf(nil), io.Discard); err == nil || !strings.Contains(err.Error(), `"internal"`) {
		t.Errorf("--allow-destination-ranges internal: %v", err)
	}
	if c, err := parseServeConfig([]string{"--allow-destination-ranges", "loopback, 10.0.0.0/8"}, envOf(nil), io.Discard); err != nil || c.AllowRanges == "" {
		t.Errorf("--allow-destination-ranges loopback, 10.0.0.0/8: %v", err)
	}
}

// TestChatwootConfig: the integration's flags are checked together, its
// secrets come from _FILE variables, and the log shows neither secret.
func TestChatwootConfig(t *testing.T) {
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--chatwoot-url", "https://chat.example.com", "--chatwoot-api-token", "t"}, "--chatwoot-account-id: required"},
		{[]string{"--chatwoot-account-id", "-1"}, "--chatwoot-account-id"},
		{[]string{"--chatwoot-account-id", "1", "--chatwoot-url", "https://chat.example.com"}, "give both"},
		{[]string{"--chatwoot-account-id", "1", "--chatwoot-url", "chat.example.com", "--chatwoot-api-token", "t"}, "--chatwoot-url"},
		{[]string{"--chatwoot-account-id", "1", "--chatwoot-teams", "sales=two"}, `"sales=two"`},
		{[]string{"--chatwoot-account-id", "1", "--chatwoot-agents", "a=1,a=2"}, "mapped twice"},
		{[]string{"--chatwoot-account-id", "1", "--chatwoot-write", "priority,labels"}, `"labels"`},
	}
	for _, tc := range bad {
		_, err := parseServeConfig(tc.args, envOf(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	dir := t.TempDir()
	tokenFile, secretFile := filepath.Join(dir, "token"), filepath.Join(dir, "secret")
	write(t, tokenFile, []byte("tok-123\n"))
	write(t, secretFile, []byte("whsec-456\n"))
	cfg, err := parseServeConfig([]string{"--chatwoot-account-id", "3", "--chatwoot-url", "https://chat.example.com",
		"--chatwoot-teams", "sales=2, support=4", "--chatwoot-agents", "ana@example.com=7", "--chatwoot-write", "priority,note"},
		envOf(map[string]string{"HOTLANE_CHATWOOT_API_TOKEN_FILE": tokenFile, "HOTLANE_CHATWOOT_WEBHOOK_SECRET_FILE": secretFile}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cw := cfg.Chatwoot
	if cw.Token != "tok-123" || cw.Secret != "whsec-456" || cw.AccountID != 3 {
		t.Errorf("chatwoot config %+v", cw)
	}
	wb := cw.writeBack()
	if !wb.Priority || !wb.Note || wb.Assign || wb.Attributes || wb.Teams["support"] != 4 || wb.Agents["ana@example.com"] != 7 {
		t.Errorf("write-back %+v", wb)
	}
	var logged strings.Builder
	(&dbFlags{LogLevel: "info", LogFormat: "json"}).logger(&logged).Info("config", "config", cfg)
	if s := logged.String(); strings.Contains(s, "tok-123") || strings.Contains(s, "whsec-456") || !strings.Contains(s, `"api_token_set":true`) {
		t.Errorf("logged config %s shows a secret or hides that one is set", s)
	}
	// Without a URL and token, nothing is written back.
	cfg, err = parseServeConfig([]string{"--chatwoot-account-id", "3"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if wb := cfg.Chatwoot.writeBack(); wb.Priority || wb.Assign || wb.Note || wb.Attributes {
		t.Errorf("write-back without an API: %+v", wb)
	}
}

// TestTuneMaxRowsConfig: --tune-max-rows (or HOTLANE_TUNE_MAX_ROWS) reaches
// the tuning job, and a cap too small to judge a model on is refused.
func TestTuneMaxRowsConfig(t *testing.T) {
	def, err := parseServeConfig(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if def.Tune.MaxRows < minTuneMaxRows || def.Tune.tuner(nil, nil, nil).MaxRows != def.Tune.MaxRows {
		t.Errorf("default --tune-max-rows %d does not reach the tuner", def.Tune.MaxRows)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{[]string{"--tune-max-rows", "5000"}, nil, 5000},
		{nil, map[string]string{"HOTLANE_TUNE_MAX_ROWS": "20000"}, 20000},
	} {
		c, err := parseServeConfig(tc.args, envOf(tc.env), io.Discard)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		if got := c.Tune.tuner(nil, nil, nil).MaxRows; got != tc.want {
			t.Errorf("%v %v: tuner MaxRows %d, want %d", tc.args, tc.env, got, tc.want)
		}
	}
	for _, bad := range []string{"999", "0", "-1"} {
		_, err := parseServeConfig([]string{"--tune-max-rows", bad}, envOf(nil), io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--tune-max-rows: must be at least 1000") {
			t.Errorf("--tune-max-rows %s: %v, want a usage error", bad, err)
		}
	}
}

// TestTuneSelectionConfig: by default the tuning job chooses its L2 by
// inner cross-validation and keeps up to model.DefaultInteractions
// interactions; --l2 and --interactions (or HOTLANE_L2 and
// HOTLANE_INTERACTIONS) override, --interactions 0 turns them off, and
// values out of range are refused.
func TestTuneSelectionConfig(t *testing.T) {
	for _, tc := range []struct {
		name             string
		args             []string
		env              map[string]string
		wantL2           float64
		wantInteractions int // the tuner's: 0 the default, negative none
	}{
		{name: "defaults", wantL2: 0, wantInteractions: model.DefaultInteractions},
		{name: "flags", args: []string{"--l2", "3", "--interactions", "4"}, wantL2: 3, wantInteractions: 4},
		{name: "none", args: []string{"--interactions", "0"}, wantInteractions: -1},
		{name: "environment", env: map[string]string{"HOTLANE_L2": "0.3", "HOTLANE_INTERACTIONS": "2"}, wantL2: 0.3, wantInteractions: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServeConfig(tc.args, envOf(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tuner := c.Tune.tuner(nil, nil, nil)
			if tuner.L2 != tc.wantL2 || tuner.Interactions != tc.wantInteractions {
				t.Errorf("tuner L2 %v, interactions %d; want %v, %d", tuner.L2, tuner.Interactions, tc.wantL2, tc.wantInteractions)
			}
		})
	}
	for _, bad := range [][]string{{"--l2", "-1"}, {"--l2", "+Inf"}, {"--interactions", "-1"}, {"--interactions", "51"}} {
		_, err := parseServeConfig(bad, envOf(nil), io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad[0]+": must be") {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestServeConfigLimits(t *testing.T) {
	cfg, err := parseServeConfig(nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.limits(); l.KeyRate != 0 || l.AnonRate != 10 || l.AnonBurst != 100 {
		t.Errorf("default limits %+v, want no key limit and 10/s, burst 100 per address", l)
	}
	if p, _ := cfg.trustedProxies(); len(p) != 0 {
		t.Errorf("default trusted proxies %v, want none", p)
	}
	cfg, err = parseServeConfig([]string{"--key-rate", "50", "--trusted-proxies", "10.0.0.0/8, 192.0.2.1"},
		envOf(map[string]string{"HOTLANE_ANON_RATE": "0"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.limits(); l.KeyRate != 50 || l.KeyBurst != 100 || l.AnonRate != 0 {
		t.Errorf("limits %+v, want 50/s per key with a burst of 100, no address limit", l)
	}
	if p, _ := cfg.trustedProxies(); len(p) != 2 || p[1] != "192.0.2.1" {
		t.Errorf("trusted proxies %q", p)
	}
	for _, bad := range [][]string{
		{"--key-rate", "-1"},
		{"--anon-burst", "-5"},
		{"--trusted-proxies", "10.0.0.0/8,proxy.local"},
	} {
		_, err := parseServeConfig(bad, envOf(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: err = %v, want a usage error naming the flag", bad, err)
		}
	}
}
