// Package postgres is the production store of sekisho: a sekisho.Store on
// PostgreSQL through pgx (pgxpool). It passes the conformance suite in
// storetest, like the embedded sqlite store.
//
// # Portability
//
// The SQL is kept to what CockroachDB and YugabyteDB are documented to
// run, so that a region could move to a distributed database without a new
// store. This is design intent, untested: no test runs against either
// database (only PostgreSQL 15 is tested); the choices are:
//
//   - no advisory locks, no PL/pgSQL, no triggers, no LISTEN/NOTIFY, no
//     sequences: ordering comes from primary keys and one guarded row;
//   - the audit log's order is kept by the single row of audit_head: an
//     append updates it with "WHERE size = first index", so of two writers at
//     the same index exactly one sees its row updated, the other gets
//     EConflict (row locks in PostgreSQL, serializable conflicts elsewhere);
//   - migrations run in a transaction each, claimed by inserting their
//     version into schema_migrations; a second process that migrates at the
//     same time blocks on that key and then skips the version. CockroachDB
//     runs DDL in explicit transactions too, though it advises against
//     mixing it with writes; if that ever bites, run `sekisho migrate` once
//     before starting the nodes;
//   - ids, collection and kind names are COLLATE "C", so that "id order" is
//     byte order as the conformance suite requires, whatever the database's
//     default collation (CockroachDB's default string order is byte order);
//   - transactions that fail with a serialization failure (40001) or a
//     deadlock (40P01) are retried a few times, as CockroachDB requires of
//     its clients;
//   - bulk writes (CreateRecords, the index entries, AppendAudit) use COPY
//     FROM STDIN in binary format (pgx's CopyFrom), which CockroachDB
//     supports since 20.2, inside the write's transaction.
//
// # Encoding
//
// A record's Fields and Index maps are stored as BYTEA in the stores' one
// compact binary encoding (sekisho.EncodeFields, the SQLite store's too):
// for each entry in name order its name and value, every length an unsigned
// varint. (Databases created before migration 3 held a header of their own
// before the entries; migration 3 strips it.) It is smaller than JSON of base64 and needs no
// JSON support; the ciphertexts are opaque to the database anyway. Index
// tokens are also stored one per row in record_index, which is what Lookup
// searches. Control-plane object bodies and schemas are BYTEA holding the JSON
// as written, so that bodies round-trip byte for byte.
//
// Times are TIMESTAMPTZ (microsecond precision); the store truncates to the
// microsecond before writing, so a value is never rounded up, and returns
// times in UTC.
//
// # The audit log at scale
//
// audit_entries is keyed by index, with indexes on (principal, event_time,
// idx), (device, event_time, idx), (event_time, idx) and request_id. The lists
// an entry carries are kept as arrays for reading back, and also as rows of
// audit_orgs (org, event_time, idx), indexed again by (org, idx) for paging
// with From — the principal's org and every record's org, deduplicated — and
// audit_records (record, idx), so that "every event about org O in a window"
// and "every event that touched record R" are index range scans at 100
// million events, not array scans. Queries on a busy principal or org should
// carry a time window (Since, Until) or page with From and Limit.
package postgres
