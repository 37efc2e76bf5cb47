package feedback

import (
	"encoding/json"
	"time"
)

// AuditEntry is one change of what decides or delivers: rules,
// thresholds, models, destinations, API keys and users. Before and After
// are JSON (nil when there was nothing before, or is nothing after).
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string // "user:<email>", "apikey:<name>" or "cli"
	Action  string // for example "ruleset.publish", "model.promote"
	Subject string // for example "ruleset 4", "model 2"
	Before  []byte
	After   []byte
}

// Audit actions.
const (
	AuditRulesetPublish    = "ruleset.publish"
	AuditRulesetRollback   = "ruleset.rollback"
	AuditDraftCreate       = "ruleset.draft_create"
	AuditDraftUpdate       = "ruleset.draft_update"
	AuditDraftDelete       = "ruleset.draft_delete"
	AuditReportApply       = "report.apply"
	AuditModelCreate       = "model.create"
	AuditModelPromote      = "model.promote"
	AuditModelRollback     = "model.rollback"
	AuditDestinationCreate = "destination.create"
	AuditDestinationDelete = "destination.delete"
	AuditDestinationRotate = "destination.rotate_secret"
	AuditAPIKeyCreate      = "apikey.create"
	AuditAPIKeyRevoke      = "apikey.revoke"
	AuditUserCreate        = "user.create"
	AuditUserDisable       = "user.disable"
	AuditUserSetPassword   = "user.set_password"
)

// Actor names of the audit log.
func UserActor(email string) string { return "user:" + email }

// KeyActor names an API key in the audit log.
func KeyActor(name string) string { return "apikey:" + name }

// CLIActor is the actor of changes made with the hotlane command; the
// command adds the operating-system user when it knows it ("cli:ana").
const CLIActor = "cli"

// AuditJSON encodes v for an entry's Before or After; nil stays nil.
func AuditJSON(v any) []byte {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// AuditQuery selects a page of the audit log, newest first: entries before
// the id Before when it is set.
type AuditQuery struct {
	Before int64
	Limit  int // <= 0 means 100, capped at 500
}
