// Package guard is sekisho's exfiltration guard. It implements vault.Guard:
// the vault calls Check on every read, lookup and batch get after the
// authoriser has decided and before any field is opened, with the caller
// (principal, org, device, source address, purpose), the sealed records
// concerned and the decision. The guard may turn an allow into a deny.
//
// # Budgets
//
// Sliding windows in memory count, per principal, per device and per grant,
// the records read and the distinct data subjects (collection/record) over
// the last minute, hour and day, and in total. A window is a ring of time
// buckets per span (60 of a second, 60 of a minute, 96 of a quarter hour)
// and a set of subject hashes of at most 8192 per span, then a HyperLogLog
// sketch per bucket: its memory is bounded by keys x buckets, never by the
// requests counted (TestWindowMemoryBounded). Records are exact; a budget
// may hold up to one bucket longer than its span, never shorter. Distinct
// subjects are exact up to 8192 per span (the exactness limit, above every
// default subject budget) and a HyperLogLog estimate beyond it (standard
// error about 1.6%); see window for the details. A principal and its device
// are held to the budget of the principal's role (DefaultBudgets; a support
// agent's working day of a few hundred reads stays well inside it); a
// cross-org read is also held to the budget of the grant that allowed it
// (Grant.BudgetPerHour and BudgetTotal). A request that would pass a budget
// is denied (problem type budget-exceeded, or quarantined when the
// volume-budget rule's action is quarantine), so a bulk read stops after at
// most the budget's number of records.
//
// # Rules
//
// Anomaly rules are data: sekisho.Object documents of kind guard-rule (the
// DefaultRules until changed), each with an action (log, alert, step-up,
// quarantine) and thresholds. A change is a new version, kept as a
// guard-rule-version object, and audited before it applies. The rules are
// new-device, new-source, off-hours (hours learned per principal in its
// org's time zone, Org.TimeZone, else Config.Location, the server's local
// zone; quiet for a principal's first min_history requests, then a
// baseline until learn_after), enumeration (lookup values in arithmetic
// progression with any stride, or near-sequential, or many distinct values
// a minute, seen by Check in the request's Lookup, which the vault fills
// with the value after normalisation on every path and passes also when
// the lookup matched nothing, because most of an enumeration's lookups
// match nothing; or many distinct
// subjects a minute through lookups), denied-burst, new-purpose,
// volume-budget and honeytoken.
// What is learned of a principal (devices, addresses, purposes, hours) is a
// guard-profile object, written when something new is learned.
//
// # Honeytokens and quarantine
//
// A decoy record (SealedRecord.Honeytoken, made by CreateHoneytokens) that
// a request reads, lists or matches quarantines the principal and the device
// before that request returns, and the request returns nothing of it. A
// quarantine is a quarantine object per principal and per device, written to
// the store before the response: access (which takes the guard as its
// access.Quarantine: authentication, token issuance, device enrolment) and
// Check refuse
// the subject from the next request on, on this node at once and on every
// other within the cache TTL (at most one second). Access tokens issued
// before a quarantine stay refused after it is lifted, which only an admin of
// the principal's own org may do, audited.
//
// # Alerts
//
// A rule that fires writes a structured log line (log/slog), increments
// sekisho_guard_rule_fired_total{rule,action} on the server's registry, and,
// for alert, step-up and quarantine, queues a signed webhook delivery (see
// Webhook) that is retried with back-off off the request path.
//
// # Several nodes, and restarts
//
// The windows live in memory; the shared state is the audit log, which every
// node appends to in the one store. Every SyncInterval (1s) a node reads the
// audit events appended since its last read and folds the decisions it did
// not make itself into its windows (its own are skipped once by request id),
// so a principal spreading a bulk read over n nodes is counted on each within
// about a second. A node that starts, or restarts, rebuilds its windows from
// the audit events of the last 24 hours: it knows every minute, hour and day
// window exactly, and a grant's "total" over that day only (grant lifetime
// totals older than a day are not rebuilt; access's own per-node counter
// and the grant's expiry bound them). Rules, quarantines and profiles are
// objects in the store, so a restarted node has them all.
//
// # Cost
//
// BenchmarkCheck measures the guard's check of an allowed read (the
// numbers are in bench/README.md, "Package benchmarks").
package guard
