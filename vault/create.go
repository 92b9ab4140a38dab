package vault

import (
	"context"
	"encoding/json"
	"runtime"
	"sort"
	"sync"

	"github.com/sekisho/sekisho"
)

// The create pipeline: every record comes into being through prepare and
// commit, whichever method is called.
//
//   - Create: one record; the first error is the call's.
//   - CreateBatch, PrepareBatch + CommitBatch (and CommitBatchMarked on a
//     bulk loader, see bulk.go): an import; importer.VaultSink uses these.
//     An invalid or refused row is that row's error only.
//   - CreateHoneytokens: decoy records, flagged in the store only.
//
// prepare, per record: validate (region, fields normalised for the schema,
// idempotency key, retain_until and consents), authorise (once per region),
// derive the id, seal. commit, per batch: leave out keyed rows already
// stored (an import run again), audit the refused regions and then, write
// ahead, the records to be written (one event), write them (one
// transaction). The guard sees no create: a new record is no decoy and
// spends no read budget; it sees every read, update and erase of it.

// createMode is how a caller of the pipeline differs from the others.
type createMode struct {
	event sekisho.Action // the audit event's action
	ask   sekisho.Action // the action the authoriser decides
	// schemaFields: authorise on every field of the schema (an import,
	// whose rows may give different fields) rather than the fields given.
	schemaFields bool
	// atomic: the first failing record fails the call, and a refusal is
	// audited at once; otherwise the failure is that row's and refused
	// regions are audited at commit.
	atomic bool
	// namesFields: the events name the fields written (a decoy's do not).
	namesFields bool
	// skipExisting: a keyed row whose record is stored is Existing and is
	// not written again (an import run again after an interruption).
	skipExisting bool
	honeytoken   bool // SealedRecord.Honeytoken
	// cacheDEK: the new records' data keys go into the DEK cache (a record
	// just created is often read next; an import's million are not).
	cacheDEK bool
}

func modeCreate() createMode {
	return createMode{event: sekisho.ActionCreate, ask: sekisho.ActionCreate, atomic: true, namesFields: true, cacheDEK: true}
}

func modeImport() createMode {
	return createMode{event: sekisho.ActionImport, ask: sekisho.ActionImport, schemaFields: true, namesFields: true, skipExisting: true}
}

func modeHoneytoken() createMode {
	return createMode{event: "honeytoken.create", ask: sekisho.ActionCreate, atomic: true, honeytoken: true, cacheDEK: true}
}

// BatchItem is the outcome of one record of a batch create.
type BatchItem struct {
	ID  string
	Err error // a validation or authorisation error of this record only
	// Existing is set by CommitBatch when the record's idempotency key
	// (RecordInput.Key) names a record that is already stored: it was not
	// written again.
	Existing bool
}

// PreparedBatch is a batch validated, authorised and sealed, not yet
// written. An importer prepares the next batch while the last one commits.
type PreparedBatch struct {
	Items      []BatchItem
	mode       createMode
	caller     sekisho.Caller
	collection string
	recs       []*sekisho.SealedRecord
	keyed      []bool // the row has an idempotency key
	decisions  map[string]sekisho.Decision
}

// Create validates, seals and stores one record of the caller's org, and
// returns it (without field values).
func (v *Vault) Create(ctx context.Context, c sekisho.Caller, collection string, in *sekisho.RecordInput) (*sekisho.Record, error) {
	p, err := v.prepare(ctx, c, collection, []*sekisho.RecordInput{in}, modeCreate())
	if err != nil {
		return nil, err
	}
	if err := v.commit(ctx, p, v.createRecords); err != nil {
		return nil, err
	}
	r := p.recs[0]
	out := &sekisho.Record{ID: r.ID, Collection: collection, Org: c.Org, Region: in.Region, Version: 1, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Fields: map[string]json.RawMessage{}}
	if in.RetainUntil != nil {
		t := in.RetainUntil.UTC()
		out.RetainUntil = &t
	}
	if len(in.Consents) > 0 {
		out.Consents = in.Consents
	}
	return out, nil
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

// PrepareBatch validates, authorises and seals a batch (CPU work only; the
// keyring may be written when a new org or region gets its first key).
func (v *Vault) PrepareBatch(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput) (*PreparedBatch, error) {
	return v.prepare(ctx, c, collection, inputs, modeImport())
}

// CommitBatch writes a prepared batch: its audit events first, then the
// records, in one transaction.
func (v *Vault) CommitBatch(ctx context.Context, p *PreparedBatch) error {
	return v.commit(ctx, p, v.createRecords)
}

// CreateHoneytokens seals and stores decoy records of the caller's org:
// validated, sealed and indexed exactly like real records (same id shape,
// fields, lookups and key path), with SealedRecord.Honeytoken set, so that
// only the flag in the store tells them apart. The creation is one audit
// event (action honeytoken.create). The caller (the HTTP layer) checks that
// c is an admin; the authoriser is asked for a create as usual.
func (v *Vault) CreateHoneytokens(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput) ([]string, error) {
	if _, err := v.Schema(ctx, collection); err != nil {
		return nil, err
	}
	if len(inputs) == 0 || len(inputs) > sekisho.MaxBatch {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "count", "create between 1 and %d honeytokens at a time", sekisho.MaxBatch)
	}
	p, err := v.prepare(ctx, c, collection, inputs, modeHoneytoken())
	if err != nil {
		return nil, err
	}
	if err := v.commit(ctx, p, v.createRecords); err != nil {
		return nil, err
	}
	ids := make([]string, len(p.Items))
	for i, it := range p.Items {
		ids[i] = it.ID
	}
	return ids, nil
}

// prepare validates, authorises and seals records of c's org (the
// pipeline's first half). In an atomic mode the first failure is returned
// (a refusal audited); otherwise each row's failure is in its BatchItem.
func (v *Vault) prepare(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput, mode createMode) (*PreparedBatch, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return nil, err
	}
	p := &PreparedBatch{
		Items: make([]BatchItem, len(inputs)), mode: mode, caller: c, collection: collection,
		recs: make([]*sekisho.SealedRecord, len(inputs)), keyed: make([]bool, len(inputs)), decisions: map[string]sekisho.Decision{},
	}
	var dmu sync.Mutex
	// authorize decides once per region; the request names the fields of
	// the first record of the region, or every field of the schema.
	// (The field list is made only when it is used: an import's rows reuse
	// their region's decision.)
	fieldsOf := func(values map[string][]byte) []string {
		if mode.schemaFields {
			return s.FieldNames()
		}
		return dataFields(values)
	}
	authorize := func(region string, values map[string][]byte) sekisho.Decision {
		dmu.Lock()
		defer dmu.Unlock()
		d, ok := p.decisions[region]
		if !ok {
			fields := fieldsOf(values)
			d = v.authz.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: mode.ask, Collection: collection, Schema: s,
				Fields: fields, Region: region, Owner: c.Org})
			p.decisions[region] = d
		}
		return d
	}
	now := v.now().UTC()
	one := func(in *sekisho.RecordInput) (*sekisho.SealedRecord, error) {
		if err := v.checkRegion(in.Region); err != nil {
			return nil, err
		}
		values, err := normalizeFields(s, in.Region, in.Fields, true)
		if err != nil {
			return nil, err
		}
		if err := checkKey(in.Key); err != nil {
			return nil, err
		}
		if err := v.inputMeta(values, c, in.RetainUntil, in.Consents); err != nil {
			return nil, err
		}
		d := authorize(in.Region, values)
		if !d.Allow {
			if !mode.atomic {
				return nil, sekisho.Errorf(sekisho.EForbidden, "%s", d.Reason)
			}
			var fields []string
			if mode.namesFields {
				fields = fieldsOf(values)
			}
			return nil, v.deny(ctx, v.event(c, mode.event, collection, nil, []string{}, fields, d, false), d)
		}
		id, err := v.recordID(ctx, c.Org, collection, in.Key)
		if err != nil {
			return nil, err
		}
		r, err := v.seal(ctx, s, id, c.Org, in.Region, values, mode.cacheDEK)
		if err != nil {
			return nil, err
		}
		r.Version, r.CreatedAt, r.UpdatedAt, r.Honeytoken = 1, now, now, mode.honeytoken
		return r, nil
	}
	if mode.atomic {
		for i, in := range inputs {
			r, err := one(in)
			if err != nil {
				return nil, err
			}
			p.recs[i], p.Items[i].ID = r, r.ID
		}
	} else {
		// Sealing runs on all cores.
		workers := min(runtime.GOMAXPROCS(0), max(1, len(inputs)/64))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(inputs); i += workers {
					r, err := one(inputs[i])
					if err != nil {
						p.Items[i].Err = err
						continue
					}
					p.recs[i], p.Items[i].ID = r, r.ID
				}
			}()
		}
		wg.Wait()
	}
	// A key given twice in one batch: the first row makes the record.
	seen := map[string]int{}
	for i, in := range inputs {
		p.keyed[i] = in.Key != ""
		if in.Key == "" || p.recs[i] == nil {
			continue
		}
		if j, dup := seen[p.Items[i].ID]; dup {
			err := sekisho.FieldErrorf(sekisho.EConflict, "key", "key %q repeats row %d of the batch", in.Key, j+1)
			if mode.atomic {
				return nil, err
			}
			p.Items[i].Err = err
			p.recs[i], p.Items[i].ID = nil, ""
			continue
		}
		seen[p.Items[i].ID] = i
	}
	return p, nil
}

// checkKey validates an idempotency key (RecordInput.Key).
func checkKey(key string) error {
	if len(key) > sekisho.MaxKeyBytes {
		return sekisho.FieldErrorf(sekisho.EInvalid, "key", "key is longer than %d bytes", sekisho.MaxKeyBytes)
	}
	return nil
}

// commit writes a prepared batch (the pipeline's second half): the events
// of refused regions, then, write-ahead, one event naming every record to
// be written, then the records through write (one transaction).
func (v *Vault) commit(ctx context.Context, p *PreparedBatch, write func(context.Context, []*sekisho.SealedRecord) error) error {
	c, collection, mode := p.caller, p.collection, p.mode
	if mode.skipExisting {
		if err := v.skipExisting(ctx, p); err != nil {
			return err
		}
	}
	var ok []*sekisho.SealedRecord
	fieldSet := map[string]bool{}
	for _, r := range p.recs {
		if r != nil {
			ok = append(ok, r)
			for f := range r.Fields {
				if !isMeta(f) {
					fieldSet[f] = true
				}
			}
		}
	}
	// Denials are decisions too: one event per refused region (an atomic
	// call audited its refusal when it failed).
	if !mode.atomic {
		for region, d := range p.decisions {
			if !d.Allow {
				ev := v.event(c, mode.event, collection, nil, []string{}, nil, d, false)
				ev.Detail = "region " + region
				if err := v.record(ctx, ev); err != nil {
					return err
				}
			}
		}
	}
	if len(ok) == 0 {
		return write(ctx, nil)
	}
	d := sekisho.Decision{Allow: true, Policy: "own-org", Reason: "batch import"}
	for _, dd := range p.decisions {
		if dd.Allow {
			d = dd
			break
		}
	}
	fields := []string{}
	if mode.namesFields {
		fields = make([]string, 0, len(fieldSet))
		for f := range fieldSet {
			fields = append(fields, f)
		}
		sort.Strings(fields)
	}
	// Write-ahead: the event is durable before the records exist.
	if err := v.record(ctx, v.event(c, mode.event, collection, ok, nil, fields, d, false)); err != nil {
		return err
	}
	return write(ctx, ok)
}

// createRecords is the store write of Create, CommitBatch and
// CreateHoneytokens: one transaction, none for no record.
func (v *Vault) createRecords(ctx context.Context, recs []*sekisho.SealedRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return v.store.CreateRecords(ctx, recs)
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
