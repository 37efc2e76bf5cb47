// Package jobs runs Hotlane's background work: delivering alerts from the
// outbox to Slack and signed webhooks (Deliverer), raising SLA escalations
// (SLAChecker), and the weekly tuning job (Tuner) with its report and
// ApplyReport. Deliverer and SLAChecker are types whose RunOnce does one
// pass and whose Run repeats it on an interval until its context ends. The
// Tuner's Run is one run, started by the cron schedule in cmd/hotlane, and
// RunNow the same for `hotlane tune` and the API; a database lock keeps it
// to one run at a time across processes. All state lives in the database,
// so a job stopped at any point resumes where it left off, in this process
// or another. The learning itself (encoder, trainer, metrics) is in model;
// this package gathers the data, decides and records.
package jobs
