package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hotlane/hotlane/feedback"
)

// chatwootFlags configure the Chatwoot integration (README, Connect
// Chatwoot).
type chatwootFlags struct {
	URL       string
	AccountID int64
	Token     string
	Secret    string
	Teams     string
	Agents    string
	Write     string
}

// chatwootWrites are the write-back kinds --chatwoot-write names.
var chatwootWrites = []string{"priority", "assignment", "note", "attributes"}

func (f *chatwootFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.URL, "chatwoot-url", "", "Chatwoot's base URL, for writing priorities, assignments, notes and attributes back (for example https://chat.example.com); empty writes nothing back")
	fs.Int64Var(&f.AccountID, "chatwoot-account-id", 0, "the Chatwoot account whose webhooks POST /v1/integrations/chatwoot takes; 0 turns the integration off")
	fs.StringVar(&f.Token, "chatwoot-api-token", "", "api_access_token of the Chatwoot user or agent bot Hotlane writes as (secret: prefer HOTLANE_CHATWOOT_API_TOKEN_FILE)")
	fs.StringVar(&f.Secret, "chatwoot-webhook-secret", "", "the Chatwoot webhook's secret: webhooks must then be signed and at most 5 minutes old (secret: prefer HOTLANE_CHATWOOT_WEBHOOK_SECRET_FILE)")
	fs.StringVar(&f.Teams, "chatwoot-teams", "", "Hotlane team to Chatwoot team id, comma-separated: sales=2,support=3")
	fs.StringVar(&f.Agents, "chatwoot-agents", "", "Hotlane owner (the owner signal) to Chatwoot agent id, comma-separated: sam@example.com=7")
	fs.StringVar(&f.Write, "chatwoot-write", strings.Join(chatwootWrites, ","), "what to write back to Chatwoot, comma-separated: priority, assignment, note, attributes, or none")
}

func (f chatwootFlags) validate() []string {
	var errs []string
	set := f.URL != "" || f.Token != "" || f.Secret != "" || f.Teams != "" || f.Agents != ""
	if f.AccountID < 0 {
		errs = append(errs, "--chatwoot-account-id: must be a Chatwoot account id (0 turns the integration off)")
	} else if f.AccountID == 0 && set {
		errs = append(errs, "--chatwoot-account-id: required with the other --chatwoot flags: the id in your Chatwoot URL, /app/accounts/ID/...")
	}
	if f.URL != "" {
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Sprintf("--chatwoot-url: %q is not an absolute http or https URL without credentials", f.URL))
		}
	}
	if (f.URL == "") != (f.Token == "") {
		errs = append(errs, "--chatwoot-url and --chatwoot-api-token: give both to write back to Chatwoot, or neither")
	}
	if _, err := parseIDMap(f.Teams); err != nil {
		errs = append(errs, "--chatwoot-teams: "+err.Error())
	}
	if _, err := parseIDMap(f.Agents); err != nil {
		errs = append(errs, "--chatwoot-agents: "+err.Error())
	}
	if _, err := f.writes(); err != nil {
		errs = append(errs, "--chatwoot-write: "+err.Error())
	}
	return errs
}

// writes reads --chatwoot-write.
func (f chatwootFlags) writes() ([]string, error) {
	v := strings.TrimSpace(f.Write)
	if v == "none" || v == "" {
		return nil, nil
	}
	var out []string
	for w := range strings.SplitSeq(v, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(chatwootWrites, w) {
			return nil, fmt.Errorf("%q is not one of %s, or none", w, strings.Join(chatwootWrites, ", "))
		}
		out = append(out, w)
	}
	return out, nil
}

// writeBack is what the receiver writes back; nothing without a URL and
// a token. Call it on validated flags.
func (f chatwootFlags) writeBack() feedback.ChatwootWriteBack {
	var wb feedback.ChatwootWriteBack
	wb.Teams, _ = parseIDMap(f.Teams)
	wb.Agents, _ = parseIDMap(f.Agents)
	if f.URL == "" || f.Token == "" {
		return wb
	}
	ws, _ := f.writes()
	wb.Priority = slices.Contains(ws, "priority")
	wb.Assign = slices.Contains(ws, "assignment")
	wb.Note = slices.Contains(ws, "note")
	wb.Attributes = slices.Contains(ws, "attributes")
	return wb
}

// parseIDMap reads name=id,name=id.
func parseIDMap(s string) (map[string]int64, error) {
	out := map[string]int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for pair := range strings.SplitSeq(s, ",") {
		name, id, ok := strings.Cut(pair, "=")
		name = strings.TrimSpace(name)
		n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not name=id with a positive id", strings.TrimSpace(pair))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%q is mapped twice", name)
		}
		out[name] = n
	}
	return out, nil
}

// LogValue logs the integration's settings without its secrets.
func (f chatwootFlags) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", f.URL),
		slog.Int64("account_id", f.AccountID),
		slog.Bool("api_token_set", f.Token != ""),
		slog.Bool("webhook_secret_set", f.Secret != ""),
		slog.String("teams", f.Teams),
		slog.String("agents", f.Agents),
		slog.String("write", f.Write),
	)
}
