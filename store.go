package sekisho

import (
	"context"
	"time"
)

// Store is the persistence the vault needs. It holds sealed records, their
// blind indexes, schemas, control-plane objects and the audit log, and never a
// plaintext value or an unwrapped key. Two implementations (sqlite, postgres)
// pass the conformance suite in storetest, which defines the behaviour.
type Store interface {
	RecordStore
	SchemaStore
	ObjectStore
	AuditStore
	ReplayStore
	// Ping reports whether the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// RecordStore keeps sealed records.
type RecordStore interface {
	// CreateRecords inserts records in one transaction; an existing id is
	// EConflict and nothing is written.
	CreateRecords(ctx context.Context, recs []*SealedRecord) error
	// GetRecords returns the records of collection with the given ids, in the
	// order asked, skipping ids that do not exist. Erased records are returned
	// with a nil WrappedDEK and no fields.
	GetRecords(ctx context.Context, collection string, ids []string) ([]*SealedRecord, error)
	// UpdateRecord replaces the fields and index of a record whose stored
	// Version is rec.Version-1. A concurrent change is EConflict; a missing
	// record ENotFound; an erased record EGone.
	UpdateRecord(ctx context.Context, rec *SealedRecord) error
	// EraseRecord destroys the wrapped data key, the ciphertexts and the index
	// entries of a record, keeping a tombstone (id, org, region, times).
	EraseRecord(ctx context.Context, collection, id string, at time.Time) error
	// Lookup returns the ids of records of collection whose blind index for
	// field equals token, at most limit of them.
	Lookup(ctx context.Context, collection, field string, token []byte, limit int) ([]string, error)
	// CountRecords counts the live records of a collection (an org's, if org != "").
	CountRecords(ctx context.Context, collection, org string) (int64, error)
	// CountRecordsByPlace counts the live records of a collection per
	// owning org and residency region (only those created before
	// createdBefore, when it is not zero), ordered by org then region. The
	// progress report uses it for the share of records whose keys are held
	// in an HSM (key providers are chosen per region).
	CountRecordsByPlace(ctx context.Context, collection string, createdBefore time.Time) ([]PlaceCount, error)
	// ListRecordIDs pages through the ids of a collection's live records, in id
	// order, after the id after (used by reports, worst-case scopes and key rotation).
	ListRecordIDs(ctx context.Context, collection, org, after string, limit int) ([]string, error)
	// RewrapRecords writes many re-wrapped data keys (a KEK rotation) in one
	// transaction per store: each record's wrapped key and KEK version
	// change, and its version grows by one, if its version is still
	// Rewrap.Version. done[i] is false for a record that changed, was erased
	// or is gone since it was read: the caller reads it again.
	RewrapRecords(ctx context.Context, rs []Rewrap) (done []bool, err error)
}

// PlaceCount is the number of live records of one org in one region.
type PlaceCount struct {
	Org     string `json:"org"`
	Region  string `json:"region"`
	Records int64  `json:"records"`
}

// SchemaStore keeps collection schemas.
type SchemaStore interface {
	// PutSchema creates or replaces a schema; s.Version must be the stored
	// version plus one (1 for a new collection), or EConflict.
	PutSchema(ctx context.Context, s *Schema) error
	GetSchema(ctx context.Context, collection string) (*Schema, error)
	ListSchemas(ctx context.Context) ([]*Schema, error)
}

// Object is a control-plane document: an org, a principal, a device, a grant,
// a policy, a guard rule, an incident. Control-plane data is small, read
// often and written rarely, so one versioned table keeps them all.
type Object struct {
	Kind    string
	ID      string
	Org     string
	Version int64
	Body    []byte // JSON
	Updated time.Time
}

// ObjectStore keeps control-plane objects.
type ObjectStore interface {
	// PutObject creates (o.Version == 1) or updates (stored version ==
	// o.Version-1) an object; anything else is EConflict.
	PutObject(ctx context.Context, o *Object) error
	GetObject(ctx context.Context, kind, id string) (*Object, error)
	// ListObjects lists the objects of a kind (of an org if org != ""), by id.
	ListObjects(ctx context.Context, kind, org string) ([]*Object, error)
	DeleteObject(ctx context.Context, kind, id string) error
}

// ReplayStore remembers values that may be used once (the ids of DPoP
// proofs) for every node that shares the store, across restarts. It holds
// only what is live: an entry may be forgotten once its expiry has passed.
type ReplayStore interface {
	// UseOnce records key as used until expires and reports true; it reports
	// false, recording nothing, when key is already recorded with an expiry
	// after now. Of concurrent calls with the same live key exactly one
	// reports true. Entries that expired at or before now may be removed by
	// any call, so the state is bounded by the live entries.
	UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error)
}

// AuditEntry is one leaf of the audit log as stored: the exact bytes hashed
// into the Merkle tree, plus the columns that event queries filter on.
type AuditEntry struct {
	Index     uint64
	Leaf      []byte
	Time      time.Time
	RequestID string
	Org       string
	Principal string
	Device    string
	Decision  string
	// RecordOrg is the owning org of the records the event touched, so that an
	// org's admin sees the events about its own records.
	RecordOrgs []string
	Records    []string
}

// AuditFilter selects audit entries. Empty fields do not filter.
type AuditFilter struct {
	Principal string
	Device    string
	Org       string // principal's org or records' org
	Record    string
	RequestID string
	Decision  string
	Since     time.Time
	Until     time.Time
	From      uint64 // first index
	Limit     int
}

// AuditNode is a perfect subtree hash of the Merkle tree.
type AuditNode struct {
	Level uint
	Index uint64
	Hash  []byte
}

// Checkpoint is a signed checkpoint note as stored.
type Checkpoint struct {
	Size uint64
	Note []byte
	Time time.Time
}

// AuditStore keeps the audit log: leaves, perfect subtree hashes and signed
// checkpoints. Appends are ordered: the entries of one call have consecutive
// indexes starting at the current size, or the call fails with EConflict and
// writes nothing (another writer appended first).
type AuditStore interface {
	AppendAudit(ctx context.Context, entries []AuditEntry, nodes []AuditNode) error
	AuditSize(ctx context.Context) (uint64, error)
	// AuditLeaves returns the entries with from <= index < from+limit, in order.
	AuditLeaves(ctx context.Context, from uint64, limit int) ([]AuditEntry, error)
	QueryAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// AuditNodes returns the stored hashes of the given nodes; a missing node is
	// an error.
	AuditNodes(ctx context.Context, ids []AuditNode) ([][]byte, error)
	// AuditNodeRange returns the stored hashes of the nodes of one level
	// with from <= index < to: element i is the node at from+i, nil where
	// none is stored; to < from is EInvalid. It is how audit.Verify reads a
	// page of the tree: one query per level instead of one per node.
	AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error)
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns the stored checkpoints in increasing size.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
}

// LogStore is one audit log of a deployment and the store that keeps it:
// Region is the region whose store keeps the log, "" for the default store's
// log (the events about no record, and about records of regions without a
// store of their own). A reader of the whole audit trail reads every
// LogStore of the deployment (audit.Logs.Stores, regions.Router.AuditStores).
type LogStore struct {
	Region string
	Store  AuditStore
}

// AuditRef is an audit event's index and request id.
type AuditRef struct {
	Index     uint64
	RequestID string
}

// RecordPlace is where a record is: its org and residency region, and
// whether it is erased (SealedRecord.Erased: a tombstone keeps its org and
// region).
type RecordPlace struct {
	ID     string
	Org    string
	Region string
	Erased bool
}

// RecordLocator is implemented by a RecordStore that tells where records
// are without reading them: an incident's scope needs the org and region of
// every subject, not its ciphertexts.
type RecordLocator interface {
	// LocateRecords returns the places of the records of collection with the
	// given ids, in the order asked, skipping ids that do not exist (as
	// GetRecords does), and an id asked twice once.
	LocateRecords(ctx context.Context, collection string, ids []string) ([]RecordPlace, error)
}

// PlacesAsked returns the places of byID in the order of ids, an id asked
// twice once, as LocateRecords returns them; it empties byID of them.
func PlacesAsked(ids []string, byID map[string]RecordPlace) []RecordPlace {
	out := make([]RecordPlace, 0, len(byID))
	for _, id := range ids {
		if p, ok := byID[id]; ok {
			out = append(out, p)
			delete(byID, id)
		}
	}
	return out
}

// AuditRefLister is an AuditStore that lists its events' indexes and
// request ids without the events: a follower that decided most events
// itself (the guard, on a node that serves the requests) reads the events
// of the others only.
type AuditRefLister interface {
	// AuditRefs returns the refs of the entries with from <= index <
	// from+limit, in order.
	AuditRefs(ctx context.Context, from uint64, limit int) ([]AuditRef, error)
}

// Rewrap is a record's data key wrapped anew (a KEK rotation): the record's
// wrapped key and KEK version change, and its version grows by one, if its
// version is still Version.
type Rewrap struct {
	Collection string
	ID         string
	Region     string // the record's residency region (a router writes there)
	Version    int64
	KEKVersion int
	WrappedDEK []byte
	UpdatedAt  time.Time
}
