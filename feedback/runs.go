package feedback

import "time"

// Job run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// What started a job run.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
	TriggerCLI      = "cli"
)

// JobRun is one recorded run of a background job.
type JobRun struct {
	ID         string
	Job        string
	Trigger    string // TriggerSchedule, TriggerAPI or TriggerCLI
	Status     string // RunRunning, RunSucceeded or RunFailed
	StartedAt  time.Time
	FinishedAt *time.Time
	Error      string
	Detail     []byte // JSON
}
