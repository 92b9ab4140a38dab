// Package incident keeps incidents (suspected principals, devices and orgs,
// and a time window) and computes their scope from the audit log alone.
//
// # What the scope counts
//
// Scope reads the events of the suspects in the window [since, until) with
// sekisho.AuditStore.QueryAudit (per suspect, the window in six-hour slices,
// each paged by index, two slices read at a time and counted in order; never
// a scan of the whole log), stops at the log size it saw first, so the same
// log prefix always gives the same numbers, and sorts every list it returns.
// An event belongs to the incident when its principal, its device or its
// principal's org is a suspect. For each such event:
//
//   - an allowed read, batch-get or lookup that returned fields exposes every
//     listed record (a data subject is one record: collection and id) and
//     every returned field of it; a masked read counts too (a masked value is
//     still personal data), and the subject is marked masked when every one of
//     its exposures was masked;
//   - an allowed lookup that returned ids only, and an allowed update or erase,
//     touched the records without returning a value: they are possible;
//   - a denied event is a denied attempt (its records are not counted as
//     possible: the vault refused them);
//   - an allowed create or import writes what the caller brought and exposes
//     nothing of the vault.
//
// A subject exposed by one event and only touched by another is exposed, not
// possible. Regions come from the records in the store (an erased record keeps
// its region as a tombstone; a sekisho.RecordLocator reads them without the
// ciphertexts); a record's country is its region's code in upper
// case. Field classifications come from the collection schemas.
//
// The worst case counts the live records that the suspects could have read
// under the grants and roles they held during the window: their own org's
// records in every collection (any data role) and the records each grant to
// their org, or to one of them, reaches (grantor org, collections, regions),
// plus every subject the log shows exposed or touched outside of those (a
// grant deleted since, a record erased since), so that the worst case is
// never less than exposed plus possible.
//
// Every count links back to the audit events it counts: each subject keeps the
// indexes of its events, and each denied attempt its index, so that an
// inclusion proof (GET /v1/audit/proof/inclusion?index=N&size=S, with S the
// scope's LogSize) shows the event is in the signed log.
package incident
