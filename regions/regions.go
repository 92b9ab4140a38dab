// Package regions keeps each residency region's data in its own store.
//
// A Router is a sekisho.Store over one store per region plus a default
// store. A record is written to, updated in and erased from its region's
// store only, with its wrapped data key; reads by id and lookups fan out to
// every store and merge, since a record id carries no region. Control-plane
// objects and schemas live in the default store.
//
// Each store keeps its own audit log; audit.Logs is the set of them: an
// event about records goes to the log of each region it touches, listing
// only that region's records; an event about no record (a login, an admin
// action) goes to the default log. A region's records and the events that
// name them never leave the region's database. The Router's own audit
// methods are the default store's log; AuditStores lists every log.
//
// Writes that span regions (a batch import of jp and th records) are one
// transaction per region, not one across regions: when one region's write
// fails after another's committed, CreateRecords returns a
// *PartialWriteError saying, per record, which region committed.
package regions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// Router routes record operations by region. It implements every method of
// sekisho.Store itself (it embeds none), so that a method added to the
// interface cannot silently reach the default store alone.
type Router struct {
	def sekisho.Store // schemas, objects, the default audit log
	by  map[string]sekisho.Store
	all []sekisho.Store // distinct stores, default first
}

var _ sekisho.Store = (*Router)(nil)

// NewRouter returns a Router over def and the per-region stores. A region
// not in byRegion uses def.
func NewRouter(def sekisho.Store, byRegion map[string]sekisho.Store) *Router {
	r := &Router{def: def, by: map[string]sekisho.Store{}, all: []sekisho.Store{def}}
	regions := make([]string, 0, len(byRegion))
	for reg := range byRegion {
		regions = append(regions, reg)
	}
	sort.Strings(regions)
	for _, reg := range regions {
		s := byRegion[reg]
		r.by[reg] = s
		dup := false
		for _, a := range r.all {
			if a == s {
				dup = true
			}
		}
		if !dup {
			r.all = append(r.all, s)
		}
	}
	return r
}

// StoreFor returns the store of a region.
func (r *Router) StoreFor(region string) sekisho.Store {
	if s, ok := r.by[region]; ok {
		return s
	}
	return r.def
}

// Default returns the default store.
func (r *Router) Default() sekisho.Store { return r.def }

// Stores returns every distinct store, the default first.
func (r *Router) Stores() []sekisho.Store { return r.all }

// Regions returns the regions with a store of their own, sorted.
func (r *Router) Regions() []string {
	out := make([]string, 0, len(r.by))
	for reg := range r.by {
		out = append(out, reg)
	}
	sort.Strings(out)
	return out
}

// PartialWriteError reports a write of records of several regions that did
// not complete in every region: each region's write is one transaction, so
// the records of a region are either all committed or none of them.
type PartialWriteError struct {
	// Committed lists, per region, the ids of the records that are stored.
	Committed map[string][]string
	// Failed lists, per region, the ids of the records that are not stored
	// because that region's write failed (Err) or was not attempted after
	// an earlier region's failure.
	Failed map[string][]string
	// FailedRegion is the region whose write failed, with its error.
	FailedRegion string
	Err          error
}

func (e *PartialWriteError) Error() string {
	var done []string
	for _, reg := range slices.Sorted(maps.Keys(e.Committed)) {
		done = append(done, fmt.Sprintf("%s (%d records)", reg, len(e.Committed[reg])))
	}
	committed := "no region"
	if len(done) > 0 {
		committed = strings.Join(done, ", ")
	}
	return fmt.Sprintf("write to region %s failed (committed: %s; not written: %d records): %v",
		regionName(e.FailedRegion), committed, countIDs(e.Failed), e.Err)
}

func (e *PartialWriteError) Unwrap() error { return e.Err }

// Outcome returns the region of the record id and whether it was committed;
// ok is false for an id the write did not contain.
func (e *PartialWriteError) Outcome(id string) (region string, committed, ok bool) {
	for reg, ids := range e.Committed {
		if slices.Contains(ids, id) {
			return reg, true, true
		}
	}
	for reg, ids := range e.Failed {
		if slices.Contains(ids, id) {
			return reg, false, true
		}
	}
	return "", false, false
}

func regionName(r string) string {
	if r == "" {
		return "(none)"
	}
	return r
}

func countIDs(m map[string][]string) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// CreateRecords implements sekisho.RecordStore: one transaction per store,
// in the order of the stores. A record id is unique in a collection across
// every store: an id that another store already holds is EConflict and
// nothing is written. When the records span stores and one store's write
// fails after another's committed, the error is a *PartialWriteError that
// says, per record, which region committed; its code is the failed write's.
func (r *Router) CreateRecords(ctx context.Context, recs []*sekisho.SealedRecord) error {
	if len(recs) == 0 {
		return nil
	}
	groups := map[sekisho.Store][]*sekisho.SealedRecord{}
	for _, rec := range recs {
		s := r.StoreFor(rec.Region)
		groups[s] = append(groups[s], rec)
	}
	var order []sekisho.Store
	for _, s := range r.all {
		if len(groups[s]) > 0 {
			order = append(order, s)
		}
	}
	if len(r.all) > 1 {
		if err := r.checkElsewhere(ctx, groups); err != nil {
			return err
		}
	}
	var pe *PartialWriteError
	for i, s := range order {
		err := s.CreateRecords(ctx, groups[s])
		if err == nil {
			continue
		}
		if i == 0 {
			return err // nothing was written anywhere
		}
		pe = &PartialWriteError{Committed: map[string][]string{}, Failed: map[string][]string{}, Err: err}
		pe.FailedRegion = groups[s][0].Region
		for j, t := range order {
			for _, rec := range groups[t] {
				if j < i {
					pe.Committed[rec.Region] = append(pe.Committed[rec.Region], rec.ID)
				} else {
					pe.Failed[rec.Region] = append(pe.Failed[rec.Region], rec.ID)
				}
			}
		}
		return pe
	}
	return nil
}

// checkElsewhere refuses records whose id another store already holds in
// the same collection (EConflict, nothing written).
func (r *Router) checkElsewhere(ctx context.Context, groups map[sekisho.Store][]*sekisho.SealedRecord) error {
	byColl := map[string][]string{}
	home := map[string]sekisho.Store{}
	for s, recs := range groups {
		for _, rec := range recs {
			byColl[rec.Collection] = append(byColl[rec.Collection], rec.ID)
			home[rec.Collection+"\x00"+rec.ID] = s
		}
	}
	for coll, ids := range byColl {
		for _, s := range r.all {
			found, err := s.GetRecords(ctx, coll, ids)
			if err != nil {
				return err
			}
			for _, f := range found {
				if home[coll+"\x00"+f.ID] != s {
					return sekisho.Errorf(sekisho.EConflict, "record %s/%s exists in region %s", coll, f.ID, regionName(f.Region))
				}
			}
		}
	}
	return nil
}

// fanOut runs fn on every store concurrently and returns the first error.
func (r *Router) fanOut(fn func(i int, s sekisho.Store) error) error {
	if len(r.all) == 1 {
		return fn(0, r.all[0])
	}
	errs := make([]error, len(r.all))
	var wg sync.WaitGroup
	for i, s := range r.all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i, s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RewrapRecords implements sekisho.RecordStore: each re-wrap goes to the
// store of its region (one transaction per store, in the order of the
// stores); done is in the order asked.
func (r *Router) RewrapRecords(ctx context.Context, rs []sekisho.Rewrap) ([]bool, error) {
	done := make([]bool, len(rs))
	groups := map[sekisho.Store][]int{}
	for i, x := range rs {
		s := r.StoreFor(x.Region)
		groups[s] = append(groups[s], i)
	}
	for _, s := range r.all {
		at := groups[s]
		if len(at) == 0 {
			continue
		}
		part := make([]sekisho.Rewrap, len(at))
		for j, i := range at {
			part[j] = rs[i]
		}
		d, err := s.RewrapRecords(ctx, part)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			done[i] = d[j]
		}
	}
	return done, nil
}

// GetRecords implements sekisho.RecordStore.
func (r *Router) GetRecords(ctx context.Context, collection string, ids []string) ([]*sekisho.SealedRecord, error) {
	parts := make([][]*sekisho.SealedRecord, len(r.all))
	err := r.fanOut(func(i int, s sekisho.Store) error {
		var err error
		parts[i], err = s.GetRecords(ctx, collection, ids)
		return err
	})
	if err != nil {
		return nil, err
	}
	byID := map[string]*sekisho.SealedRecord{}
	for _, p := range parts {
		for _, rec := range p {
			byID[rec.ID] = rec
		}
	}
	out := make([]*sekisho.SealedRecord, 0, len(byID))
	for _, id := range ids {
		if rec, ok := byID[id]; ok {
			out = append(out, rec)
			delete(byID, id) // an id asked twice is returned once, as the stores do
		}
	}
	return out, nil
}

var _ sekisho.RecordLocator = (*Router)(nil)

// LocateRecords implements sekisho.RecordLocator: every store is asked (a
// store that is no RecordLocator through its records).
func (r *Router) LocateRecords(ctx context.Context, collection string, ids []string) ([]sekisho.RecordPlace, error) {
	parts := make([][]sekisho.RecordPlace, len(r.all))
	err := r.fanOut(func(i int, s sekisho.Store) error {
		if l, ok := s.(sekisho.RecordLocator); ok {
			var err error
			parts[i], err = l.LocateRecords(ctx, collection, ids)
			return err
		}
		recs, err := s.GetRecords(ctx, collection, ids)
		for _, rec := range recs {
			parts[i] = append(parts[i], rec.Place())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	byID := map[string]sekisho.RecordPlace{}
	for _, p := range parts {
		for _, pl := range p {
			byID[pl.ID] = pl
		}
	}
	return sekisho.PlacesAsked(ids, byID), nil
}

// UpdateRecord implements sekisho.RecordStore.
func (r *Router) UpdateRecord(ctx context.Context, rec *sekisho.SealedRecord) error {
	return r.StoreFor(rec.Region).UpdateRecord(ctx, rec)
}

// EraseRecord implements sekisho.RecordStore: the store that holds the record erases it.
func (r *Router) EraseRecord(ctx context.Context, collection, id string, at time.Time) error {
	var found sekisho.Store
	for _, s := range r.all {
		recs, err := s.GetRecords(ctx, collection, []string{id})
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			found = s
			break
		}
	}
	if found == nil {
		return sekisho.Errorf(sekisho.ENotFound, "record %s/%s not found", collection, id)
	}
	return found.EraseRecord(ctx, collection, id, at)
}

// Lookup implements sekisho.RecordStore.
func (r *Router) Lookup(ctx context.Context, collection, field string, token []byte, limit int) ([]string, error) {
	parts := make([][]string, len(r.all))
	err := r.fanOut(func(i int, s sekisho.Store) error {
		var err error
		parts[i], err = s.Lookup(ctx, collection, field, token, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return mergeIDs(parts, limit), nil
}

// CountRecords implements sekisho.RecordStore.
func (r *Router) CountRecords(ctx context.Context, collection, org string) (int64, error) {
	counts := make([]int64, len(r.all))
	err := r.fanOut(func(i int, s sekisho.Store) error {
		var err error
		counts[i], err = s.CountRecords(ctx, collection, org)
		return err
	})
	var n int64
	for _, c := range counts {
		n += c
	}
	return n, err
}

// CountRecordsByPlace implements sekisho.RecordStore: every store's counts,
// summed per org and region.
func (r *Router) CountRecordsByPlace(ctx context.Context, collection string, createdBefore time.Time) ([]sekisho.PlaceCount, error) {
	parts := make([][]sekisho.PlaceCount, len(r.all))
	err := r.fanOut(func(i int, s sekisho.Store) error {
		var err error
		parts[i], err = s.CountRecordsByPlace(ctx, collection, createdBefore)
		return err
	})
	if err != nil {
		return nil, err
	}
	sum := map[[2]string]int64{}
	for _, p := range parts {
		for _, c := range p {
			sum[[2]string{c.Org, c.Region}] += c.Records
		}
	}
	out := make([]sekisho.PlaceCount, 0, len(sum))
	for k, n := range sum {
		out = append(out, sekisho.PlaceCount{Org: k[0], Region: k[1], Records: n})
	}
	slices.SortFunc(out, func(a, b sekisho.PlaceCount) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.Region, b.Region))
	})
	return out, nil
}

// ListRecordIDs implements sekisho.RecordStore.
func (r *Router) ListRecordIDs(ctx context.Context, collection, org, after string, limit int) ([]string, error) {
	parts := make([][]string, len(r.all))
	err := r.fanOut(func(i int, s sekisho.Store) error {
		var err error
		parts[i], err = s.ListRecordIDs(ctx, collection, org, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return mergeIDs(parts, limit), nil
}

// mergeIDs merges sorted id lists into one sorted list of at most limit.
func mergeIDs(parts [][]string, limit int) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	sort.Strings(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// PutSchema implements sekisho.SchemaStore: schemas live in the default store.
func (r *Router) PutSchema(ctx context.Context, sc *sekisho.Schema) error {
	return r.def.PutSchema(ctx, sc)
}

// GetSchema implements sekisho.SchemaStore (the default store).
func (r *Router) GetSchema(ctx context.Context, collection string) (*sekisho.Schema, error) {
	return r.def.GetSchema(ctx, collection)
}

// ListSchemas implements sekisho.SchemaStore (the default store).
func (r *Router) ListSchemas(ctx context.Context) ([]*sekisho.Schema, error) {
	return r.def.ListSchemas(ctx)
}

// UseOnce implements sekisho.ReplayStore: replay state is control-plane
// state and lives in the default store, shared by every node.
func (r *Router) UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	return r.def.UseOnce(ctx, key, expires, now)
}

// PutObject implements sekisho.ObjectStore: control-plane objects live in
// the default store.
func (r *Router) PutObject(ctx context.Context, o *sekisho.Object) error {
	return r.def.PutObject(ctx, o)
}

// GetObject implements sekisho.ObjectStore (the default store).
func (r *Router) GetObject(ctx context.Context, kind, id string) (*sekisho.Object, error) {
	return r.def.GetObject(ctx, kind, id)
}

// ListObjects implements sekisho.ObjectStore (the default store).
func (r *Router) ListObjects(ctx context.Context, kind, org string) ([]*sekisho.Object, error) {
	return r.def.ListObjects(ctx, kind, org)
}

// DeleteObject implements sekisho.ObjectStore (the default store).
func (r *Router) DeleteObject(ctx context.Context, kind, id string) error {
	return r.def.DeleteObject(ctx, kind, id)
}

// The audit methods of a Router are those of the default store's log, by
// design and not by fall-through: a store keeps one Merkle tree, and each
// region's store keeps its own. A reader of the whole audit trail takes the
// set of logs (audit.Logs, or AuditStores here) and reads every member.

// AuditStores returns the audit store of every log: the default store's
// under "", then each region with a store of its own, in region order.
func (r *Router) AuditStores() []sekisho.LogStore {
	out := []sekisho.LogStore{{Store: r.def}}
	for _, reg := range r.Regions() {
		if s := r.by[reg]; s != r.def {
			out = append(out, sekisho.LogStore{Region: reg, Store: s})
		}
	}
	return out
}

// LogStores returns the audit logs of st: every log of a Router, or st's
// own log for any other store.
func LogStores(st sekisho.Store) []sekisho.LogStore {
	if r, ok := st.(*Router); ok {
		return r.AuditStores()
	}
	return []sekisho.LogStore{{Store: st}}
}

// AppendAudit implements sekisho.AuditStore on the default store's log.
func (r *Router) AppendAudit(ctx context.Context, entries []sekisho.AuditEntry, nodes []sekisho.AuditNode) error {
	return r.def.AppendAudit(ctx, entries, nodes)
}

// AuditSize implements sekisho.AuditStore: the default store's log.
func (r *Router) AuditSize(ctx context.Context) (uint64, error) { return r.def.AuditSize(ctx) }

// AuditLeaves implements sekisho.AuditStore: the default store's log.
func (r *Router) AuditLeaves(ctx context.Context, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	return r.def.AuditLeaves(ctx, from, limit)
}

// QueryAudit implements sekisho.AuditStore: the default store's log.
func (r *Router) QueryAudit(ctx context.Context, f sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	return r.def.QueryAudit(ctx, f)
}

// AuditNodes implements sekisho.AuditStore: the default store's log.
func (r *Router) AuditNodes(ctx context.Context, ids []sekisho.AuditNode) ([][]byte, error) {
	return r.def.AuditNodes(ctx, ids)
}

// AuditNodeRange implements sekisho.AuditStore: the default store's log.
func (r *Router) AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error) {
	return r.def.AuditNodeRange(ctx, level, from, to)
}

// PutCheckpoint implements sekisho.AuditStore: the default store's log.
func (r *Router) PutCheckpoint(ctx context.Context, c sekisho.Checkpoint) error {
	return r.def.PutCheckpoint(ctx, c)
}

// Checkpoints implements sekisho.AuditStore: the default store's log.
func (r *Router) Checkpoints(ctx context.Context) ([]sekisho.Checkpoint, error) {
	return r.def.Checkpoints(ctx)
}

// Ping implements sekisho.Store: every store must answer.
func (r *Router) Ping(ctx context.Context) error {
	return r.fanOut(func(_ int, s sekisho.Store) error { return s.Ping(ctx) })
}

// Close closes every store.
func (r *Router) Close() error {
	var errs []error
	for _, s := range r.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
