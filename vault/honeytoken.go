package vault

import (
	"context"
	"maps"
	"slices"

	"github.com/sekisho/sekisho"
)

// CreateHoneytokens seals and stores decoy records of the caller's org:
// validated, sealed and indexed exactly like real records (same id shape,
// fields, lookups and key path), with SealedRecord.Honeytoken set, so that
// only the flag in the store tells them apart. The creation is one audit
// event (action honeytoken.create). The caller (the HTTP layer) checks that
// c is an admin; the authoriser is asked for a create as usual.
func (v *Vault) CreateHoneytokens(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput) ([]string, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return nil, err
	}
	if len(inputs) == 0 || len(inputs) > sekisho.MaxBatch {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "count", "create between 1 and %d honeytokens at a time", sekisho.MaxBatch)
	}
	recs := make([]*sekisho.SealedRecord, 0, len(inputs))
	ids := make([]string, 0, len(inputs))
	now := v.now().UTC()
	var d sekisho.Decision
	for i, in := range inputs {
		if err := v.checkRegion(in.Region); err != nil {
			return nil, err
		}
		values, err := normalizeFields(s, in.Region, in.Fields, true)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			d = v.authz.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: sekisho.ActionCreate, Collection: collection, Schema: s,
				Fields: slices.Sorted(maps.Keys(values)), Region: in.Region, Owner: c.Org})
			if !d.Allow {
				return nil, v.deny(ctx, v.event(c, "honeytoken.create", collection, nil, []string{}, nil, d, false), d)
			}
		}
		id, err := NewRecordID(v.now()) // the shape and order of any record's id
		if err != nil {
			return nil, err
		}
		r, err := v.seal(ctx, s, id, c.Org, in.Region, values)
		if err != nil {
			return nil, err
		}
		r.Version, r.CreatedAt, r.UpdatedAt, r.Honeytoken = 1, now, now, true
		recs = append(recs, r)
		ids = append(ids, id)
	}
	// Write-ahead, as for real records; the event names no fields.
	if err := v.record(ctx, v.event(c, "honeytoken.create", collection, recs, nil, []string{}, d, false)); err != nil {
		return nil, err
	}
	if err := v.store.CreateRecords(ctx, recs); err != nil {
		return nil, err
	}
	return ids, nil
}
