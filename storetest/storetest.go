// Package storetest is the conformance suite of sekisho.Store. A behaviour of
// the store is what this suite checks, not what one backend happens to do:
// every backend's tests are a few lines that call Run.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sekisho.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Where store.go's doc comments leave a behaviour open, the suite picks the
// stricter reading and says so in a comment starting "Decided:". In short:
//
//   - "id order" is byte-wise order of the UTF-8 id (Go's string order,
//     COLLATE "C" in SQL), for ListRecordIDs, Lookup and ListObjects.
//   - Record ids are unique within a collection; GetRecords, UpdateRecord and
//     EraseRecord with the wrong collection do not see the record.
//   - Lookup returns ids in id order, so that a limit is deterministic.
//   - GetRecords returns a live record's Index as it was written.
//   - EraseRecord of a missing record is ENotFound, of an erased one EGone
//     (the first ErasedAt stays).
//   - CreateRecords with an id repeated within the batch is EConflict.
//   - GetSchema and GetObject of a missing name are ENotFound; DeleteObject of
//     a missing object is ENotFound; a deleted object can be created again
//     with Version 1. ListSchemas is in collection order.
//   - Object bodies round-trip byte for byte (they are not re-encoded JSON).
//   - An audit batch whose indexes are not consecutive is EConflict and
//     nothing is written, like one whose first index is not the size.
//   - AuditNodes of a missing node is ENotFound.
//   - QueryAudit's time range is half-open: Since <= Time < Until. Limit 0 is
//     no limit. Filters combine with AND. Results are in index order.
//   - Times are returned in UTC with microsecond precision; the suite only
//     writes times that are whole microseconds.
//   - An empty CreateRecords, GetRecords or AppendAudit is a no-op.
//   - UseOnce: an entry is live while now < expires; a live key is not
//     renewed by a second use; keys are compared as bytes.
package storetest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// Run runs the conformance suite. open must return a fresh, empty store each
// time it is called and register its cleanup (Close) with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) sekisho.Store) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Records", func(t *testing.T) { testRecords(t, open) })
	t.Run("Schemas", func(t *testing.T) { testSchemas(t, open) })
	t.Run("Objects", func(t *testing.T) { testObjects(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, open) })
	t.Run("Bulk", func(t *testing.T) { testBulk(t, open) })
}

// Base is the time the suite's fixtures start at: whole microseconds, with a
// non-zero microsecond part so that a store that drops it is caught.
var Base = time.Date(2024, 3, 1, 9, 30, 0, 123456000, time.UTC)

// At returns Base plus n seconds.
func At(n int) time.Time { return Base.Add(time.Duration(n) * time.Second) }

// jst is a non-UTC zone; times written in it must come back in UTC.
var jst = time.FixedZone("JST", 9*3600)

// NewRecord returns a live sealed record with deterministic contents derived
// from its id: two fields, one blind index entry (email), version 1.
func NewRecord(collection, id, org, region string) *sekisho.SealedRecord {
	return &sekisho.SealedRecord{
		ID:         id,
		Collection: collection,
		Org:        org,
		Region:     region,
		KEKVersion: 1,
		WrappedDEK: []byte("dek:" + id + "\x00\xff"),
		Fields: map[string][]byte{
			"name":  []byte("ct-name:" + id + "\x00\x01\xfe"),
			"email": []byte("ct-email:" + id),
		},
		Index: map[string][]byte{
			"email": []byte("tok-email:" + id + "\x00"),
		},
		Version:   1,
		CreatedAt: At(0),
		UpdatedAt: At(0),
	}
}

// wantCode fails the test unless sekisho.Code(err) is code.
func wantCode(t *testing.T, what string, err error, code sekisho.ErrorCode) {
	t.Helper()
	if got := sekisho.Code(err); got != code {
		t.Fatalf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

// must fails the test if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkTime reports a difference between two times, and a returned time that
// is not in UTC.
func checkTime(what string, want, got time.Time) error {
	if want.IsZero() && got.IsZero() {
		return nil
	}
	if !got.Equal(want) {
		return fmt.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if got.Location() != time.UTC {
		return fmt.Errorf("%s = %s is not in UTC", what, got)
	}
	return nil
}

// equalBytesMap compares two maps of bytes, treating nil and empty alike.
func equalBytesMap(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, bytes.Equal)
}

// equalStrings compares two string slices, treating nil and empty alike.
func equalStrings(a, b []string) bool { return slices.Equal(a, b) }

// DiffRecord describes how got differs from want, or returns "" if they are
// the same record.
func DiffRecord(want, got *sekisho.SealedRecord) string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if got == nil {
		return "record is nil"
	}
	if got.ID != want.ID || got.Collection != want.Collection {
		add("id = %s/%s, want %s/%s", got.Collection, got.ID, want.Collection, want.ID)
	}
	if got.Org != want.Org || got.Region != want.Region {
		add("org, region = %q, %q, want %q, %q", got.Org, got.Region, want.Org, want.Region)
	}
	if got.KEKVersion != want.KEKVersion {
		add("KEKVersion = %d, want %d", got.KEKVersion, want.KEKVersion)
	}
	if (got.WrappedDEK == nil) != (want.WrappedDEK == nil) || !bytes.Equal(got.WrappedDEK, want.WrappedDEK) {
		add("WrappedDEK = %q, want %q", got.WrappedDEK, want.WrappedDEK)
	}
	if !equalBytesMap(got.Fields, want.Fields) {
		add("Fields = %q, want %q", got.Fields, want.Fields)
	}
	if !equalBytesMap(got.Index, want.Index) {
		add("Index = %q, want %q", got.Index, want.Index)
	}
	if got.Honeytoken != want.Honeytoken {
		add("Honeytoken = %v, want %v", got.Honeytoken, want.Honeytoken)
	}
	if got.Version != want.Version {
		add("Version = %d, want %d", got.Version, want.Version)
	}
	for _, err := range []error{
		checkTime("CreatedAt", want.CreatedAt, got.CreatedAt),
		checkTime("UpdatedAt", want.UpdatedAt, got.UpdatedAt),
		checkTime("ErasedAt", want.ErasedAt, got.ErasedAt),
	} {
		if err != nil {
			add("%v", err)
		}
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}
