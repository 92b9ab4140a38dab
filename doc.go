// Package sekisho holds the domain of the sekisho vault: collections and their
// schemas, records, audit events, the error type shared by every layer, and the
// storage interface that the embedded SQLite and the PostgreSQL stores implement.
//
// The package imports no database, HTTP or crypto code; each dependency lives in
// a package of its own (keys, sqlite, postgres, httpapi, audit, ...) and
// cmd/sekisho wires them together.
package sekisho
