package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestCLIKeysAndRules(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "apikey", "create", "--db", db, "--name", "chatwoot", "--scopes", "score,feedback")
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	key := lastLine(out)
	if !strings.HasPrefix(key, "hl_") || strings.ContainsAny(key, " \t") {
		t.Fatalf("last line %q is not the key alone", key)
	}
	out, _, err = runCLI(t, "apikey", "list", "--db", db)
	if err != nil || !strings.Contains(out, "chatwoot") || strings.Contains(out, key) {
		t.Fatalf("apikey list = %q, %v (must list the key without its secret)", out, err)
	}
	if _, _, err := runCLI(t, "apikey", "create", "--db", db, "--name", "x", "--scopes", "root"); err == nil {
		t.Error("apikey create with an unknown scope succeeded")
	}
	if _, _, err := runCLI(t, "apikey", "revoke", "--db", db, "1"); err != nil {
		t.Errorf("revoke: %v", err)
	}
	if _, _, err := runCLI(t, "apikey", "revoke", "--db", db, "99"); err == nil {
		t.Error("revoking an unknown key succeeded")
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	write(t, good, demoPolicy)
	write(t, bad, []byte("rules:\n  - {name: oops, expression: 'deal_size >=', points: 1}\nthresholds:\n  default: {urgent: 0.9, high: 0.7, medium: 0.4}\n"))

	_, _, err = runCLI(t, "rules", "apply", "--db", db, bad)
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("apply of a broken rule: err = %v, want it to name the rule", err)
	}
	if out, _, err = runCLI(t, "rules", "apply", good, "--db", db, "--note", "first"); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !strings.Contains(out, "version 1") {
		t.Errorf("apply printed %q, want version 1 (the refused file must not take a version)", out)
	}
	if _, _, err = runCLI(t, "rules", "apply", "--db", db, good); err != nil {
		t.Fatal(err)
	}
	if out, _, err = runCLI(t, "rules", "rollback", "--db", db, "1"); err != nil || !strings.Contains(out, "version 1 is live") {
		t.Fatalf("rollback = %q, %v", out, err)
	}
	out, _, _ = runCLI(t, "rules", "list", "--db", db)
	if !regexp.MustCompile(`(?m)^1\s+live`).MatchString(out) || !regexp.MustCompile(`(?m)^2\s+\S`).MatchString(out) {
		t.Errorf("rules list = %q, want version 1 live and version 2 kept", out)
	}
	if out, _, err = runCLI(t, "rules", "validate", good); err != nil || !strings.Contains(out, "valid") {
		t.Errorf("validate = %q, %v", out, err)
	}
	if _, _, err := runCLI(t, "nonsense"); exitCode(err) != 2 {
		t.Errorf("unknown command exit = %d, want 2", exitCode(err))
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeDemo runs the first command of the README against a fresh
// SQLite file: the demo seeds a ruleset and a key, the key scores, and a
// cancel drains and stops the server.
func TestServeDemo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	srv := startServe(t, "--db", db, "--demo", "--log-level", "warn")
	addr, out, m := srv.addr, srv.out, srv.key
	if m == "" || !strings.Contains(out, "published ruleset version 1") {
		t.Fatalf("demo output lacks the ruleset or the key:\n%s", out)
	}
	body := `{"conversation_id":"demo-1","channel":"whatsapp","message":"this is urgent, still waiting","signals":{"deal_size":60000,"lifecycle_stage":"opportunity","owner":"ana@example.com"}}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/score", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+m)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Tier  string `json:"tier"`
		Route struct {
			Owner string `json:"owner"`
		} `json:"route"`
		ModelVersion *int `json:"model_version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || got.Tier != "urgent" || got.Route.Owner != "ana@example.com" {
		t.Errorf("score = %d %+v, want urgent routed to the owner", resp.StatusCode, got)
	}
	// The demo comes with history and a first tuning run: the model it
	// trained scores, and its report is served.
	for _, want := range []string{"demo: imported ", "past conversations", "tuning run (as of", "trained model 1", "/v1/reports/latest"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if got.ModelVersion == nil || *got.ModelVersion != 1 {
		t.Errorf("scored with model %v, want the demo's trained model 1", got.ModelVersion)
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("shutdown: %v", err)
	}

	// hotlane tune right after, as the README says: the demo's model has
	// not seen the last week, so this run judges it there.
	tuned, _, err := runCLI(t, "tune", "--db", db)
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, tuned)
	}
	if !strings.Contains(tuned, "candidate (model 2)") || strings.Contains(tuned, "not judged") {
		t.Errorf("tune after the demo is not judged:\n%s", tuned)
	}
	if !strings.Contains(tuned, "(chosen by inner cross-validation), interactions: ") {
		t.Errorf("tune after the demo does not say how its L2 and interactions were chosen:\n%s", tuned)
	}

	// A second start seeds nothing new.
	again := startServe(t, "--db", db, "--demo", "--log-level", "warn")
	if err := again.stop(t); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if strings.Contains(again.out, "hl_") || strings.Contains(again.out, "published") {
		t.Errorf("second start seeded again:\n%s", again.out)
	}
}

// A command that finds nothing says what is missing and what to do, in
// the user's words: no store, feedback or driver layers in the message.
func TestCLIMissingThingsSaySo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tune"}, "no ruleset published yet: run hotlane rules apply FILE"},
		{[]string{"rules", "show"}, "no ruleset published yet: run hotlane rules apply FILE"},
		{[]string{"rules", "show", "7"}, "no ruleset version 7: hotlane rules list"},
		{[]string{"rules", "rollback", "3"}, "no ruleset version 3: hotlane rules list"},
		{[]string{"rules", "backtest", "4"}, "no ruleset version 4: hotlane rules list"},
		{[]string{"models", "promote", "99"}, "no model version 99: hotlane models list"},
		{[]string{"models", "show", "99"}, "no model version 99: hotlane models list"},
		{[]string{"apikey", "revoke", "99"}, "no API key 99: hotlane apikey list"},
	} {
		_, _, err := runCLI(t, append(tc.args, "--db", db)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
			continue
		}
		for _, leak := range []string{"record not found", "store:", "feedback:", "not found: "} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%v: %q holds %q", tc.args, err, leak)
			}
		}
	}
}

// Only serve and migrate make a database: any other command given a
// SQLite file that does not exist says so, and leaves no file behind.
func TestCLIDoesNotCreateADatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"apikey", "list"}, {"rules", "list"}, {"models", "list"}, {"tune"}, {"user", "list"},
		{"apikey", "create", "--name", "x", "--scopes", "score"},
	} {
		_, _, err := runCLI(t, append(args, "--db", db)...)
		if err == nil || !strings.Contains(err.Error(), "no database at "+db) || !strings.Contains(err.Error(), "hotlane migrate --db") {
			t.Errorf("%v on a missing file: %v", args, err)
		}
		if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v created %s", args, db)
		}
	}
	if _, _, err := runCLI(t, "migrate", "--db", db); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "apikey", "list", "--db", db); err != nil {
		t.Errorf("apikey list after migrate: %v", err)
	}
}

// Every command and subcommand answers --help on standard output with its
// purpose, usage, an example and its flags, and exit status 0; a group
// (apikey, user, rules) lists its subcommands.
func TestCLIHelp(t *testing.T) {
	for name, h := range commandHelp {
		for _, form := range [][]string{append(strings.Fields(name), "--help"), append([]string{"help"}, strings.Fields(name)...)} {
			out, errOut, err := runCLI(t, form...)
			if err != nil {
				t.Errorf("%v: %v (stderr %q)", form, err, errOut)
				continue
			}
			for _, want := range []string{"hotlane " + name + ": " + h.purpose, "Usage:\n  " + h.usage, "Example:\n  " + h.example} {
				if !strings.Contains(out, want) {
					t.Errorf("%v: the help lacks %q:\n%s", form, want, out)
				}
			}
			if name != "rules validate" && !strings.Contains(out, "-db string") && name != "bench" && name != "eval" && name != "simulate" {
				t.Errorf("%v: the help lists no --db flag:\n%s", form, out)
			}
		}
	}
	for group := range commandGroups {
		out, _, err := runCLI(t, group, "--help")
		if err != nil {
			t.Errorf("%s --help: %v", group, err)
		}
		for name, h := range commandHelp {
			if sub, ok := strings.CutPrefix(name, group+" "); ok && !strings.Contains(out, sub) || ok && !strings.Contains(out, h.purpose) {
				t.Errorf("%s --help does not list %s:\n%s", group, name, out)
			}
		}
	}
	// Every command of the top-level usage has help of its own.
	for _, cmd := range []string{"serve", "migrate", "apikey", "user", "rules", "bench", "tune", "models", "reports", "import", "eval", "simulate"} {
		if _, ok := commandHelp[cmd]; !ok && commandGroups[cmd] == "" {
			t.Errorf("%s has no help", cmd)
		}
	}
	// A flag that does not exist is still a usage error.
	if _, _, err := runCLI(t, "serve", "--bogus"); exitCode(err) != 2 {
		t.Errorf("serve --bogus: %v, want exit status 2", err)
	}
}
