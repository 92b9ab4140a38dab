package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// DefaultLog is the name of the default log in a Logs set (the log of the
// default store, which keeps the events about no record: logins, admin
// actions) where a region name is expected, as in ?region=default.
const DefaultLog = "default"

// RegionLog is one member of a Logs set: the region whose store keeps the
// log ("" for the default log) and the log.
type RegionLog struct {
	Region string
	Log    *Log
}

// Name returns the region, or DefaultLog for the default log.
func (r RegionLog) Name() string {
	if r.Region == "" {
		return DefaultLog
	}
	return r.Region
}

// Logs is the explicit set of the audit logs of a deployment: the default
// log and one log per region that has a store of its own. An event about
// records is kept in the log of each record's region (AppendRegional), so
// every reader of the audit trail (incident scope, the guard, the audit API,
// audit verify, reports) iterates All, never the default log alone.
type Logs struct {
	def     *Log
	by      map[string]*Log
	regions []string // sorted, with a log of their own
}

// NewLogs returns the set of def and the per-region logs. A region not in
// byRegion keeps its events in def. Two regions may not share a log.
func NewLogs(def *Log, byRegion map[string]*Log) (*Logs, error) {
	if def == nil {
		return nil, errors.New("audit: a set of logs needs a default log")
	}
	ls := &Logs{def: def, by: map[string]*Log{}}
	seen := map[*Log]string{def: DefaultLog}
	for reg, l := range byRegion {
		if reg == "" || reg == DefaultLog {
			return nil, fmt.Errorf("audit: %q is not a region name", reg)
		}
		if l == nil {
			return nil, fmt.Errorf("audit: region %s has no log", reg)
		}
		ls.by[reg] = l
		ls.regions = append(ls.regions, reg)
	}
	slices.Sort(ls.regions)
	for _, reg := range ls.regions {
		if other, ok := seen[ls.by[reg]]; ok {
			return nil, fmt.Errorf("audit: regions %s and %s share one log: each region's log is its own", other, reg)
		}
		seen[ls.by[reg]] = reg
	}
	return ls, nil
}

// Single returns the set of one log, for a deployment without regional stores.
func Single(l *Log) *Logs {
	return &Logs{def: l, by: map[string]*Log{}}
}

// Default returns the default log.
func (ls *Logs) Default() *Log { return ls.def }

// For returns the log that keeps the events about records of region: the
// region's own log, or the default log for a region without a store of its
// own (and for "" and DefaultLog).
func (ls *Logs) For(region string) *Log {
	if l, ok := ls.by[region]; ok {
		return l
	}
	return ls.def
}

// Lookup returns the log named name: DefaultLog (or "") for the default log,
// or a region with a log of its own. Unlike For, an unknown name is not
// found, so that an API asked for ?region=xx does not answer with another log.
func (ls *Logs) Lookup(name string) (*Log, bool) {
	if name == "" || name == DefaultLog {
		return ls.def, true
	}
	l, ok := ls.by[name]
	return l, ok
}

// All returns every log: the default first, then the regions in order.
func (ls *Logs) All() []RegionLog {
	out := make([]RegionLog, 0, 1+len(ls.regions))
	out = append(out, RegionLog{Log: ls.def})
	for _, reg := range ls.regions {
		out = append(out, RegionLog{Region: reg, Log: ls.by[reg]})
	}
	return out
}

// Stores returns the store of every log, in the order of All.
func (ls *Logs) Stores() []sekisho.LogStore {
	all := ls.All()
	out := make([]sekisho.LogStore, len(all))
	for i, rl := range all {
		out[i] = sekisho.LogStore{Region: rl.Region, Store: rl.Log.Store()}
	}
	return out
}

// Names returns the names of All's logs, DefaultLog first.
func (ls *Logs) Names() []string {
	return append([]string{DefaultLog}, ls.regions...)
}

// Regions returns the regions with a log of their own, sorted.
func (ls *Logs) Regions() []string { return slices.Clone(ls.regions) }

// Append records an event without region information in the default log
// (sekisho.Auditor).
func (ls *Logs) Append(ctx context.Context, ev sekisho.Event) (uint64, error) {
	return ls.def.Append(ctx, ev)
}

// AppendRegional records an event in the log of each record's region
// (vault.Auditor): the event is split by log, each part listing only
// the records that log's region keeps, and written to every log concerned
// before it returns. An event about no record goes to the default log.
func (ls *Logs) AppendRegional(ctx context.Context, ev sekisho.Event, regionOf map[string]string) error {
	if len(ev.Records) == 0 {
		_, err := ls.def.Append(ctx, ev)
		return err
	}
	parts := map[*Log][]string{}
	var order []*Log
	for _, id := range ev.Records {
		l := ls.For(regionOf[id])
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
		part.Detail = strings.TrimPrefix(ev.Detail+fmt.Sprintf("; part %d of %d (split by region)", i+1, len(order)), "; ")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Append(ctx, part)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Checkpoint checkpoints every log (each at its own size, signed as its own
// origin) and returns the latest checkpoint of each, by name. An error of one
// log does not stop the others; the errors are joined, each naming its log.
func (ls *Logs) Checkpoint(ctx context.Context) (map[string]sekisho.Checkpoint, error) {
	out := map[string]sekisho.Checkpoint{}
	var errs []error
	for _, rl := range ls.All() {
		cp, err := rl.Log.Checkpoint(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("log %s: %w", rl.Name(), err))
			continue
		}
		out[rl.Name()] = cp
	}
	return out, errors.Join(errs...)
}

// RunCheckpointer checkpoints every log every interval (the same schedule
// for all) until ctx ends, then returns ctx's error. Errors are reported to
// each log's Options.Logger and do not stop the loop.
func (ls *Logs) RunCheckpointer(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			for _, rl := range ls.All() {
				if _, err := rl.Log.Checkpoint(ctx); err != nil && ctx.Err() == nil {
					rl.Log.logger().Error("audit checkpoint failed", "log", rl.Name(), "err", err)
				}
			}
		}
	}
}

// Close closes every log.
func (ls *Logs) Close() error {
	var errs []error
	for _, rl := range ls.All() {
		errs = append(errs, rl.Log.Close())
	}
	return errors.Join(errs...)
}
