// Package jobs runs Hotlane's background work: delivering alerts from the
// outbox to Slack and signed webhooks (Deliverer), writing priorities,
// assignments, notes and attributes back to Chatwoot from its own outbox
// (ChatwootWriter), raising SLA escalations (SLAChecker), keeping the
// decisions table's months and retention (Retention), and the weekly
// tuning job (Tuner) with ApplyReport.
//
// Each job is a type whose Run runs until its context ends (Deliverer,
// SLAChecker, Retention: a pass every interval) or once (Tuner: started by the cron
// schedule in cmd/hotlane; RunNow does the same for `hotlane tune` and the
// API). A database lock keeps the Tuner to one run at a time across
// processes, and a scheduled run first claims its tick (TuneStore's
// ClaimJobTick), so that of several replicas sharing a schedule one runs
// each tick. All state lives in the database, so a job stopped at any
// point resumes where it left off, in this process or another.
//
// A tuning run gathers the window from the store, computes with model's
// tuning maths (model.JudgeEvidence, EvaluateHoldout, JudgeRules,
// EstimateRecall, ProposeHoldoutThresholds, DecidePromotion) and saves the
// candidate and its feedback.Report; with too little data to judge by
// (below model.DefaultMinimums) the report says so and the run measures,
// proposes and promotes nothing. It reads the live ruleset and model from
// a feedback.Live, as the SLAChecker does through LiveSLA.
//
// jobs imports feedback and model, and nothing else of Hotlane's: it
// reaches the store through the small interfaces declared beside each job
// (DeliveryStore, ChatwootStore, SLAStore, RetentionStore, TuneStore,
// ApplyStore), which cmd satisfies
// with feedback/store.
package jobs
