package vault

import (
	"context"
	"runtime"
	"sort"
	"sync"

	"github.com/sekisho/sekisho"
)

// BatchItem is the outcome of one record of a batch create.
type BatchItem struct {
	ID  string
	Err error // a validation or authorisation error of this record only
	// Existing is set by CommitBatch when the record's idempotency key
	// (RecordInput.Key) names a record that is already stored: it was not
	// written again.
	Existing bool
}

// CreateBatch creates many records of the caller's org in one transaction and
// one audit event (action import, listing every id). Invalid records are
// reported in their BatchItem and do not stop the others. Sealing runs on all
// cores; the store write is one transaction.
func (v *Vault) CreateBatch(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput) ([]BatchItem, error) {
	p, err := v.PrepareBatch(ctx, c, collection, inputs)
	if err != nil {
		return nil, err
	}
	return p.Items, v.CommitBatch(ctx, p)
}

// PreparedBatch is a batch validated, authorised and sealed, not yet
// written. An importer prepares the next batch while the last one commits.
type PreparedBatch struct {
	Items      []BatchItem
	caller     sekisho.Caller
	collection string
	recs       []*sekisho.SealedRecord
	keyed      []bool // the row has an idempotency key
	decisions  map[string]sekisho.Decision
}

// PrepareBatch validates, authorises and seals a batch (CPU work only; the
// keyring may be written when a new org or region gets its first key).
func (v *Vault) PrepareBatch(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput) (*PreparedBatch, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return nil, err
	}
	out := make([]BatchItem, len(inputs))
	recs := make([]*sekisho.SealedRecord, len(inputs))
	decisions := map[string]sekisho.Decision{}
	var dmu sync.Mutex
	authorize := func(region string) sekisho.Decision {
		dmu.Lock()
		defer dmu.Unlock()
		d, ok := decisions[region]
		if !ok {
			d = v.authz.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: sekisho.ActionImport, Collection: collection, Schema: s,
				Fields: s.FieldNames(), Region: region, Owner: c.Org})
			decisions[region] = d
		}
		return d
	}
	now := v.now().UTC()
	workers := min(runtime.GOMAXPROCS(0), max(1, len(inputs)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(inputs); i += workers {
				in := inputs[i]
				if err := v.checkRegion(in.Region); err != nil {
					out[i].Err = err
					continue
				}
				values, err := normalizeFields(s, in.Region, in.Fields, true)
				if err != nil {
					out[i].Err = err
					continue
				}
				if err := v.inputMeta(values, c, in.RetainUntil, in.Consents); err != nil {
					out[i].Err = err
					continue
				}
				if d := authorize(in.Region); !d.Allow {
					out[i].Err = sekisho.Errorf(sekisho.EForbidden, "%s", d.Reason)
					continue
				}
				id, err := v.recordID(ctx, c.Org, collection, in.Key)
				if err != nil {
					out[i].Err = err
					continue
				}
				r, err := v.seal(ctx, s, id, c.Org, in.Region, values)
				if err != nil {
					out[i].Err = err
					continue
				}
				r.Version, r.CreatedAt, r.UpdatedAt = 1, now, now
				recs[i], out[i].ID = r, id
			}
		}()
	}
	wg.Wait()
	// A key given twice in one batch: the first row makes the record.
	seen := map[string]int{}
	for i, in := range inputs {
		if in.Key == "" || recs[i] == nil {
			continue
		}
		if j, dup := seen[out[i].ID]; dup {
			out[i].Err = sekisho.FieldErrorf(sekisho.EConflict, "key", "key %q repeats row %d of the batch", in.Key, j+1)
			recs[i], out[i].ID = nil, ""
			continue
		}
		seen[out[i].ID] = i
	}
	keyed := make([]bool, len(inputs))
	for i, in := range inputs {
		keyed[i] = in.Key != ""
	}
	return &PreparedBatch{Items: out, caller: c, collection: collection, recs: recs, keyed: keyed, decisions: decisions}, nil
}

// CommitBatch writes a prepared batch: its audit events first, then the
// records, in one transaction.
func (v *Vault) CommitBatch(ctx context.Context, p *PreparedBatch) error {
	return v.commitBatch(ctx, p, func(ctx context.Context, recs []*sekisho.SealedRecord) error {
		if len(recs) == 0 {
			return nil
		}
		return v.store.CreateRecords(ctx, recs)
	})
}

func (v *Vault) commitBatch(ctx context.Context, p *PreparedBatch, write func(context.Context, []*sekisho.SealedRecord) error) error {
	c, collection, recs, decisions := p.caller, p.collection, p.recs, p.decisions
	if err := v.skipExisting(ctx, p); err != nil {
		return err
	}
	var ok []*sekisho.SealedRecord
	fieldSet := map[string]bool{}
	for _, r := range recs {
		if r != nil {
			ok = append(ok, r)
			for f := range r.Fields {
				if !isMeta(f) {
					fieldSet[f] = true
				}
			}
		}
	}
	// Denials are decisions too: one event for the refused regions.
	for region, d := range decisions {
		if !d.Allow {
			ev := v.event(c, sekisho.ActionImport, collection, nil, []string{}, nil, d, false)
			ev.Detail = "region " + region
			if err := v.record(ctx, ev); err != nil {
				return err
			}
		}
	}
	if len(ok) == 0 {
		return write(ctx, nil)
	}
	d := sekisho.Decision{Allow: true, Policy: "own-org", Reason: "batch import"}
	for _, dd := range decisions {
		if dd.Allow {
			d = dd
			break
		}
	}
	fields := make([]string, 0, len(fieldSet))
	for f := range fieldSet {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	// Write-ahead: the event is durable before the records exist.
	if err := v.record(ctx, v.event(c, sekisho.ActionImport, collection, ok, nil, fields, d, false)); err != nil {
		return err
	}
	return write(ctx, ok)
}

// skipExisting marks the rows whose keyed id is already stored (an import
// run again after an interruption) as Existing and leaves them out of the
// write. Only keyed rows are looked up: a random id is new.
func (v *Vault) skipExisting(ctx context.Context, p *PreparedBatch) error {
	var ids []string
	at := map[string]int{}
	for i, r := range p.recs {
		if r != nil && p.keyed[i] {
			ids = append(ids, r.ID)
			at[r.ID] = i
		}
	}
	if len(ids) == 0 {
		return nil
	}
	found, err := v.store.GetRecords(ctx, p.collection, ids)
	if err != nil {
		return err
	}
	for _, r := range found {
		i := at[r.ID]
		p.recs[i] = nil
		p.Items[i].Existing = true
	}
	return nil
}
