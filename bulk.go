package sekisho

import "context"

// BulkLoader is a Store that an import holding the data directory (or
// database) alone can load in bulk. The importer uses it when the store
// offers it; a store without it (a router over per-region stores) takes the
// ordinary CreateRecords path.
type BulkLoader interface {
	// BeginBulk lets the store defer the upkeep of secondary indexes until
	// EndBulk (they are built from sorted input then). Until EndBulk, only
	// CreateRecords, LoadRecords, GetRecords and the audit log are meant to
	// be used; a store opened after an interrupted bulk load finishes it
	// first, so a server never sees a half-built index.
	BeginBulk(ctx context.Context) error
	// EndBulk builds what BeginBulk deferred.
	EndBulk(ctx context.Context) error
	// LoadRecords inserts recs like CreateRecords and, in the same
	// transaction, stores mark (an import's record that this batch is
	// written: kind, id, org, body; any stored version is replaced), so that
	// an interrupted import knows exactly which batches are stored.
	LoadRecords(ctx context.Context, recs []*SealedRecord, mark *Object) error
	// LoadParallel is how many LoadRecords calls may usefully run at once
	// (1 for a store with one writer).
	LoadParallel() int
}
