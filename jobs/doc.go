// Package jobs runs Hotlane's background work: delivering alerts from the
// outbox to Slack and signed webhooks (Deliverer), raising SLA escalations
// (SLAChecker), and later the weekly tuning job. Each job is a type whose
// RunOnce does one pass and whose Run repeats it on an interval until its
// context ends; all state lives in the database, so a job stopped at any
// point resumes where it left off, in this process or another.
package jobs
