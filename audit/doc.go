// Package audit is sekisho's tamper-evident audit log: one Event per access
// decision, appended to an RFC 6962 Merkle tree kept in a sekisho.AuditStore,
// with signed checkpoints, inclusion and consistency proofs, and a verifier.
//
// # Events and leaves
//
// An Event is encoded canonically by Marshal (fixed key order, UTC time with
// microsecond precision, lists as [] never null); those exact bytes are the
// leaf hashed into the tree (leaf hash = SHA-256(0x00 || bytes), node hash =
// SHA-256(0x01 || left || right)) and stored with the query columns of Entry.
//
// # Appending
//
// Log.Append returns only when the event is durable in the store: the caller
// must not return the data the event describes before Append succeeds. One
// writer goroutine group-commits the appends that arrive while the previous
// commit is written, in one AppendAudit call that also stores every perfect
// subtree hash the new leaves complete (level 0 being the leaf hashes). Those
// stored nodes make proofs a single read, and let Verify pin an edited row to
// its index. Several Logs may share one store; a commit that loses the race
// (EConflict) reloads the tree's right edge and retries.
//
// The tree hashing and proofs are transparency-dev/merkle's (compact ranges,
// proof.Inclusion and proof.Consistency), so any RFC 6962 verifier checks our
// proofs; the log layout is our own store's rather than Tessera's tiles,
// because the leaves must also be queryable rows in the same database.
//
// # Checkpoints
//
// Log.Checkpoint signs, with an Ed25519 golang.org/x/mod/sumdb/note key, a
// C2SP tlog-checkpoint:
//
//	sekisho.local/audit
//	<tree size>
//	<base64 root hash>
//
//	— sekisho.local/audit <base64 signature>
//
// It signs only a tree that a consistency proof shows to extend the previous
// checkpoint. RunCheckpointer makes one every few seconds when the log grew.
// LoadOrCreateKeys keeps the signing key in DATA/audit-signing-key (mode 0600)
// and the verifier key, which auditors pin, in DATA/audit-verifier-key, in
// note's "name+hash+base64key" format.
//
// # Witness export
//
// With Options.WitnessDir set, every checkpoint the Log makes is also written
// to that directory as the file checkpoint-<size> (the signed note, exactly
// as served at GET /v1/audit/checkpoint), atomically: written to a temporary
// file, synced, then renamed. Point the directory at storage the operator does
// not control (a mount synced to an auditor, a regulator's drop box); the
// witness keeps the files, and `sekisho audit verify --checkpoint FILE` checks
// the log against any of them, so a log rewritten or truncated after the
// checkpoint left is detected even if every stored checkpoint was replaced.
//
// # Verifying
//
// Verify streams every stored leaf in pages, recomputes the tree and checks
// it against the stored perfect subtree hashes, every stored checkpoint (its
// signature, its root, and the consistency of successive ones) and an
// optional external checkpoint. It reports each problem with the index of the
// first leaf concerned: an edited leaf, a missing, duplicated or inserted row,
// query columns that disagree with the leaf, a truncated log.
package audit
