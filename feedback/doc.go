// Package feedback is the domain of Hotlane's loop: conversations and their
// scoring decisions, alerts and how they are planned, agents' labels,
// platforms' events, deliveries, KPIs (with a baseline period), training
// labels, tuning reports, rule backtests (backtest.go: a draft ruleset and
// the live one replayed over stored history), the Chatwoot integration's
// domain (chatwoot.go: channels, what Hotlane remembers of a Chatwoot
// conversation, and the planning of its write-back without loops), and
// the live pairing of ruleset and model that every part scores with.
//
// It holds types, error kinds and pure rules (alert planning over a batch of
// decisions, training labels, KPI computation, the summary of recent
// decisions' warnings for the leads (warnings.go), validation), each tested
// without a database. Persistence lives in feedback/store, which returns
// these types and wraps its failures in these error kinds; server and jobs
// reach it through small interfaces declared beside their use.
//
// feedback imports model (tiers, policies, models, tuning maths) and
// nothing else of Hotlane's; it never imports GORM, pgx or database/sql.
package feedback
