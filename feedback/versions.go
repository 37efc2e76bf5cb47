package feedback

import "time"

// PolicyVersion is one version of the policy document (rules, thresholds,
// routes): a draft, or published. Every published version is kept;
// exactly one is live once any has been published.
type PolicyVersion struct {
	Version     int
	Document    []byte // canonical JSON
	Source      string // the document as its author wrote it (YAML or JSON)
	Author      string
	Note        string
	Live        bool
	Status      string // PolicyDraft or PolicyPublished
	CreatedAt   time.Time
	ActivatedAt *time.Time
}

// Ruleset statuses. A draft serves nothing and may be edited, backtested,
// published or deleted; a published version is immutable and kept.
const (
	PolicyDraft     = "draft"
	PolicyPublished = "published"
)

// Conflicts of ruleset drafts; each is also ErrConflict.
var (
	ErrPublishedImmutable error = &kindError{"the version is published and cannot change: create a draft", ErrConflict}
	ErrDraftNotPublished  error = &kindError{"the version is a draft: publish it instead", ErrConflict}
)

// Model statuses. A model is created as a candidate; activating it retires
// the model active before.
const (
	ModelCandidate = "candidate"
	ModelActive    = "active"
	ModelRetired   = "retired"
)

// ModelVersion is one stored version of the trained scoring model.
type ModelVersion struct {
	Version int
	Status  string // ModelCandidate, ModelActive or ModelRetired
	Body    []byte // the model as JSON
	Note    string
	// Trainer, WindowStart, WindowEnd, Metrics (JSON) and ReportID describe
	// how a trained model was made; empty for a model stored by hand.
	Trainer     string
	WindowStart *time.Time
	WindowEnd   *time.Time
	Metrics     []byte
	ReportID    string
	// RolledBackAt is when a rollback retired the model; rollbacks do not
	// return to it (promoting it again clears it).
	RolledBackAt *time.Time
	CreatedAt    time.Time
	ActivatedAt  *time.Time
}

// ModelMeta describes how a trained model was made, for the registry.
type ModelMeta struct {
	Note        string
	Trainer     string
	WindowStart *time.Time
	WindowEnd   *time.Time
	Metrics     []byte // JSON; empty means {}
	ReportID    string
}
