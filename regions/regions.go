// Package regions keeps each residency region's data in its own store.
//
// A Router is a sekisho.Store over one store per region plus a default
// store. A record is written to, updated in and erased from its region's
// store only, with its wrapped data key; reads by id and lookups fan out to
// every store and merge, since a record id carries no region. Control-plane
// objects and schemas live in the default store.
//
// An Auditor keeps one audit log per store: an event about records goes to
// the log of each region it touches, listing only that region's records;
// an event about no record (a login, an admin action) goes to the default
// log. A region's records and the events that name them never leave the
// region's database.
//
// Writes that span regions (a batch import of jp and th records) are one
// transaction per region, not one across regions: a failure may leave one
// region written and another not, and the importer reports the batch as failed.
package regions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
)

// Router routes record operations by region.
type Router struct {
	sekisho.Store // the default store: schemas, objects, its audit log
	by            map[string]sekisho.Store
	all           []sekisho.Store // distinct stores, default first
}

var _ sekisho.Store = (*Router)(nil)

// NewRouter returns a Router over def and the per-region stores. A region
// not in byRegion uses def.
func NewRouter(def sekisho.Store, byRegion map[string]sekisho.Store) *Router {
	r := &Router{Store: def, by: byRegion, all: []sekisho.Store{def}}
	regions := make([]string, 0, len(byRegion))
	for reg := range byRegion {
		regions = append(regions, reg)
	}
	sort.Strings(regions)
	for _, reg := range regions {
		s := byRegion[reg]
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
	return r.Store
}

// Stores returns every distinct store, the default first.
func (r *Router) Stores() []sekisho.Store { return r.all }

// CreateRecords implements sekisho.RecordStore: one transaction per region.
func (r *Router) CreateRecords(ctx context.Context, recs []*sekisho.SealedRecord) error {
	groups := map[sekisho.Store][]*sekisho.SealedRecord{}
	var order []sekisho.Store
	for _, rec := range recs {
		s := r.StoreFor(rec.Region)
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], rec)
	}
	for _, s := range order {
		if err := s.CreateRecords(ctx, groups[s]); err != nil {
			return err
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

// Auditor keeps one audit log per store and implements vault.RegionalAuditor.
type Auditor struct {
	def *audit.Log
	by  map[string]*audit.Log
}

// NewAuditor returns an Auditor: def for events about no record (and for
// regions without a log of their own), byRegion for the others.
func NewAuditor(def *audit.Log, byRegion map[string]*audit.Log) *Auditor {
	return &Auditor{def: def, by: byRegion}
}

// Append implements vault.Auditor for events without region information.
func (a *Auditor) Append(ctx context.Context, ev audit.Event) (uint64, error) {
	return a.def.Append(ctx, ev)
}

func (a *Auditor) logFor(region string) *audit.Log {
	if l, ok := a.by[region]; ok {
		return l
	}
	return a.def
}

// AppendRegional implements vault.RegionalAuditor: the event is split by
// the log of each record's region, each part listing only that log's
// records, and written to every log concerned before it returns.
func (a *Auditor) AppendRegional(ctx context.Context, ev audit.Event, regionOf map[string]string) error {
	if len(ev.Records) == 0 {
		_, err := a.def.Append(ctx, ev)
		return err
	}
	parts := map[*audit.Log][]string{}
	var order []*audit.Log
	for _, id := range ev.Records {
		l := a.logFor(regionOf[id])
		if _, ok := parts[l]; !ok {
			order = append(order, l)
		}
		parts[l] = append(parts[l], id)
	}
	if len(order) == 1 {
		_, err := order[0].Append(ctx, ev)
		return err
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, l := range order {
		part := ev
		part.Records = parts[l]
		part.Detail = fmt.Sprintf("part %d of %d (split by region)", i+1, len(order))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Append(ctx, part)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
