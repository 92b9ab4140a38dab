// Package keys is sekisho's cryptography, small enough to review in one
// sitting. Every primitive comes from the Go standard library.
//
// The hierarchy (see DESIGN.md):
//
//   - master key (32 bytes, outside the data directory) seals the keyring file;
//   - KEK per (org, region), versioned, in the keyring, wraps data keys;
//   - DEK per record, random, wrapped by its KEK and stored next to the record;
//     it seals every field of the record;
//   - blind-index key per (org, collection, field), derived with HKDF from the
//     org's index root key, turns a normalised lookup value into a token.
//
// All encryption is AES-256-GCM with a random 96-bit nonce, prefixed to the
// ciphertext. Random nonces are safe here because no key seals more than a few
// thousand messages: a DEK seals one record's fields (and their updates), a KEK
// wraps the DEKs of one (org, region) — for 10^8 records the collision chance
// stays below 2^-32 — and the master key seals one keyring file per change.
//
// Associated data is spelled out in ad(): a label naming the purpose and the
// format version, then length-prefixed strings, so that no two different
// tuples encode to the same bytes. A field's ciphertext is bound to
// (collection, record id, field, key version); a wrapped DEK to (org, region,
// collection, record id, KEK version). Moving either to another record or
// field makes Open fail.
//
// Erasure (crypto-shredding) is the deletion of the wrapped DEK: the field
// ciphertexts are then unreadable even with the keyring and the master key.
package keys
