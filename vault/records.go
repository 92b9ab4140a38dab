package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/values"
)

// dekVersion is the version bound into every field's associated data. A
// record's DEK is never replaced in place (KEK rotation re-wraps it), so it
// is 1 for now; a DEK rotation would bump it.
const dekVersion = 1

// seal builds a sealed record from normalised values. With cacheDEK its
// data key goes into the DEK cache (a record just created is often read
// next; an import's records are not).
func (v *Vault) seal(ctx context.Context, s *sekisho.Schema, id, org, region string, values map[string][]byte, cacheDEK bool) (*sekisho.SealedRecord, error) {
	dek, err := keys.NewKey()
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	wrapped, kv, err := v.keys.WrapDEK(ctx, keys.DEKAD{Org: org, Region: region, Collection: s.Collection, RecordID: id}, dek)
	if err != nil {
		return nil, keyError(err, fmt.Sprintf("the key of %s/%s", org, region))
	}
	if cacheDEK {
		v.deks.put(keys.DEKAD{Org: org, Region: region, Collection: s.Collection, RecordID: id, KEKVersion: kv}, wrapped, dek)
	}
	r := &sekisho.SealedRecord{ID: id, Collection: s.Collection, Org: org, Region: region, KEKVersion: kv, WrappedDEK: wrapped,
		Fields: make(map[string][]byte, len(values)), Index: map[string][]byte{}}
	if err := v.sealInto(ctx, s, r, dek, values); err != nil {
		return nil, err
	}
	return r, nil
}

func (v *Vault) sealInto(ctx context.Context, s *sekisho.Schema, r *sekisho.SealedRecord, dek []byte, values map[string][]byte) error {
	rk, err := keys.NewRecordKey(dek)
	if err != nil {
		return err
	}
	for name, val := range values {
		ct, err := rk.Seal(keys.FieldAD{Collection: s.Collection, RecordID: r.ID, Field: name, KeyVersion: dekVersion}, val)
		if err != nil {
			return err
		}
		r.Fields[name] = ct
		if f, _ := s.Field(name); f.Lookup {
			ix, err := v.indexer(ctx, r.Org, s.Collection, name)
			if err != nil {
				return err
			}
			r.Index[name] = ix.Index(val)
		}
	}
	return nil
}

func (v *Vault) dek(ctx context.Context, r *sekisho.SealedRecord) ([]byte, error) {
	if r.Erased() {
		return nil, sekisho.Errorf(sekisho.EGone, "record %s was erased", r.ID)
	}
	a := keys.DEKAD{Org: r.Org, Region: r.Region, Collection: r.Collection, RecordID: r.ID, KEKVersion: r.KEKVersion}
	if dek := v.deks.get(a, r.WrappedDEK); dek != nil {
		return dek, nil
	}
	dek, err := v.keys.UnwrapDEK(ctx, a, r.WrappedDEK)
	if err != nil {
		if errors.Is(err, keys.ErrOpen) {
			return nil, integrityErr(r, "the data key", err)
		}
		return nil, keyError(err, "the key of record "+r.ID)
	}
	v.deks.put(a, r.WrappedDEK, dek)
	return dek, nil
}

// openFailed records a read that could not open its records because their
// keys are out of reach (key-unavailable) or destroyed (erased), as a denial
// naming them, and returns the error; nothing of the records is returned.
func (v *Vault) openFailed(ctx context.Context, c sekisho.Caller, action sekisho.Action, collection string, recs []*sekisho.SealedRecord, d sekisho.Decision, err error) error {
	var e *sekisho.Error
	if !errors.As(err, &e) || (e.Type != ProblemKeyUnavailable && e.Code != sekisho.EGone) {
		return err
	}
	if e.Type == ProblemKeyUnavailable {
		v.deks.purge("", "")
	}
	dd := sekisho.Decision{Policy: d.Policy, Reason: e.Message, Code: e.Code, Type: e.Type}
	if rerr := v.record(ctx, v.event(c, action, collection, recs, nil, nil, dd, false)); rerr != nil {
		return rerr
	}
	return err
}

// ProblemKeyUnavailable is the problem type of a request refused because
// the keys are out of reach (the HSM is down or a key is missing).
const ProblemKeyUnavailable = "key-unavailable"

// keyError turns a key provider's error into the vault's: key-unavailable
// (503) while the keys cannot be reached, erased (410) for a destroyed KEK.
// The provider's detail goes to the log only.
func keyError(err error, what string) error {
	switch {
	case errors.Is(err, keys.ErrKeyDestroyed):
		return &sekisho.Error{Code: sekisho.EGone, Message: what + " was destroyed: the record is erased", Err: err}
	case errors.Is(err, keys.ErrKeyUnavailable):
		return &sekisho.Error{Code: sekisho.EUnavailable, Type: ProblemKeyUnavailable, Message: what + " is unavailable; nothing was returned", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &sekisho.Error{Code: sekisho.EUnavailable, Type: ProblemKeyUnavailable, Message: what + " is unavailable; nothing was returned", Err: err}
}

// open opens the given fields of a sealed record and masks those in masked.
func (v *Vault) open(ctx context.Context, s *sekisho.Schema, r *sekisho.SealedRecord, fields []string, masked map[string]bool) (*sekisho.Record, error) {
	out := &sekisho.Record{ID: r.ID, Collection: r.Collection, Org: r.Org, Region: r.Region, Version: r.Version,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Fields: make(map[string]json.RawMessage, len(fields))}
	dek, err := v.dek(ctx, r)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	rk, err := keys.NewRecordKey(dek)
	if err != nil {
		return nil, err
	}
	if len(fields) > 0 {
		m, err := openMeta(rk, r)
		if err != nil {
			return nil, err
		}
		if !m.RetainUntil.IsZero() {
			out.RetainUntil = &m.RetainUntil
		}
		if len(m.Consents.Current) > 0 {
			out.Consents, out.ConsentHistory = m.Consents.Current, m.Consents.History
		}
	}
	for _, name := range fields {
		ct, ok := r.Fields[name]
		if !ok {
			continue // not set on this record
		}
		pt, err := rk.Open(keys.FieldAD{Collection: r.Collection, RecordID: r.ID, Field: name, KeyVersion: dekVersion}, ct)
		if err != nil {
			return nil, integrityErr(r, "field "+name, err)
		}
		if masked[name] {
			f, _ := s.Field(name)
			out.Fields[name] = values.ApplyMask(f, pt)
			out.Masked = append(out.Masked, name)
		} else {
			out.Fields[name] = pt
		}
	}
	sort.Strings(out.Masked)
	return out, nil
}

// Get reads one record's fields (all when fields is empty).
func (v *Vault) Get(ctx context.Context, c sekisho.Caller, collection, id string, fields []string) (*sekisho.Record, error) {
	recs, err := v.read(ctx, c, sekisho.ActionRead, collection, []string{id}, fields, true)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, sekisho.Errorf(sekisho.ENotFound, "record %s not found in %s", id, collection)
	}
	return recs[0], nil
}

// BatchGet reads up to MaxBatch records; ids that do not exist are left out.
func (v *Vault) BatchGet(ctx context.Context, c sekisho.Caller, collection string, ids, fields []string) ([]*sekisho.Record, error) {
	if len(ids) == 0 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "ids", "no ids given")
	}
	if len(ids) > sekisho.MaxBatch {
		return nil, sekisho.FieldErrorf(sekisho.ETooLarge, "ids", "at most %d ids per batch", sekisho.MaxBatch)
	}
	return v.read(ctx, c, sekisho.ActionBatchGet, collection, ids, fields, true)
}

// read is the read path shared by Get, BatchGet and Lookup: fetch the sealed
// records, authorise on their owner and region, let the guard see it, write
// the audit event, and only then open and return the fields.
//
// With withValues false only ids are returned, no field is opened, and the
// event lists no fields.
func (v *Vault) read(ctx context.Context, c sekisho.Caller, action sekisho.Action, collection string, ids, asked []string, withValues bool) ([]*sekisho.Record, error) {
	return v.readLooked(ctx, c, action, collection, ids, asked, withValues, nil)
}

// readLooked is read for a lookup of look (nil for other reads): the guard's
// one call sees the lookup's field and normalised value, also when the
// lookup matched nothing.
func (v *Vault) readLooked(ctx context.Context, c sekisho.Caller, action sekisho.Action, collection string, ids, asked []string, withValues bool, look *sekisho.LookupValue) ([]*sekisho.Record, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return nil, err
	}
	fields, err := fieldList(s, asked)
	if err != nil {
		return nil, err
	}
	if !withValues {
		fields = []string{}
	}
	for _, id := range ids {
		if !ValidID(id) {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "id", "%q is not a record id", id)
		}
	}
	recs, err := v.store.GetRecords(ctx, collection, ids)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		if action == sekisho.ActionRead {
			d := sekisho.Decision{Policy: "none", Reason: "record not found", Code: sekisho.ENotFound}
			return nil, v.deny(ctx, v.event(c, action, collection, nil, ids, nil, d, false), d)
		}
		d := sekisho.Decision{Allow: true, Policy: "none", Reason: "no records found"}
		if look != nil && v.guard != nil {
			d = v.guard.Check(ctx, sekisho.AccessRequest{Caller: c, Action: action, Collection: collection, Schema: s, Fields: fields, Lookup: look}, nil, d)
			if !d.Allow {
				return nil, v.deny(ctx, v.event(c, action, collection, nil, nil, nil, d, false), d)
			}
		}
		if err := v.record(ctx, v.event(c, action, collection, nil, []string{}, nil, d, false)); err != nil {
			return nil, err
		}
		return []*sekisho.Record{}, nil
	}
	// Every record is authorised; one denial denies the whole request, so a
	// batch cannot be used to probe which records are readable.
	var d sekisho.Decision
	masked := map[string]bool{}
	for i, r := range recs {
		di := v.authz.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: action, Collection: collection, Schema: s, Fields: fields, Region: r.Region, Owner: r.Org})
		if !di.Allow {
			d = di
			break
		}
		if i == 0 {
			d = di
		}
		if d.Grant == "" {
			// The grant the request is made under, for the guard to charge:
			// the first record's that was read under one.
			d.Grant = di.Grant
		}
		for f := range di.MaskedFields {
			masked[f] = true
		}
	}
	d.MaskedFields = masked
	// Consent is checked before the guard, so that a refusal for want of
	// consent counts as a denial there like any other.
	if d, err = v.consentDecision(ctx, c, s, recs, d); err != nil {
		return nil, err
	}
	if v.guard != nil {
		d = v.guard.Check(ctx, sekisho.AccessRequest{Caller: c, Action: action, Collection: collection, Schema: s, Fields: fields, Lookup: look}, recs, d)
	}
	if !d.Allow {
		return nil, v.deny(ctx, v.event(c, action, collection, recs, nil, nil, d, false), d)
	}
	for _, r := range recs {
		if r.Erased() {
			d := sekisho.Decision{Policy: d.Policy, Reason: fmt.Sprintf("record %s was erased", r.ID), Code: sekisho.EGone}
			return nil, v.deny(ctx, v.event(c, action, collection, recs, nil, nil, d, false), d)
		}
	}
	// Open before recording, so that a record that fails to open is not
	// counted as exposed; return only after the event is durable.
	out := make([]*sekisho.Record, 0, len(recs))
	for _, r := range recs {
		rec, err := v.open(ctx, s, r, fields, masked)
		if err != nil {
			if e := (*sekisho.Error)(nil); errors.As(err, &e) && e.Type == ProblemRecordIntegrity {
				return nil, v.integrity(ctx, c, action, collection, r, err)
			}
			return nil, v.openFailed(ctx, c, action, collection, recs, d, err)
		}
		out = append(out, rec)
	}
	if err := v.record(ctx, v.event(c, action, collection, recs, nil, fields, d, len(masked) > 0)); err != nil {
		return nil, err
	}
	return out, nil
}

// Update changes some fields of a record; fields not given keep their values.
func (v *Vault) Update(ctx context.Context, c sekisho.Caller, collection, id string, patch map[string]json.RawMessage) (*sekisho.Record, error) {
	return v.Patch(ctx, c, collection, id, &sekisho.RecordPatch{Fields: patch})
}

// Patch changes some fields of a record, its retain_until or its consents;
// what is not given keeps its value. A consent change (a withdrawal too) is
// an update like any other: authorised, audited (the event lists
// "consents"), and in force from the next request on.
func (v *Vault) Patch(ctx context.Context, c sekisho.Caller, collection, id string, p *sekisho.RecordPatch) (*sekisho.Record, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return nil, err
	}
	if !ValidID(id) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "id", "%q is not a record id", id)
	}
	if p.Empty() {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "fields", "no fields, retain_until or consents given")
	}
	if err := sekisho.ValidateConsents(p.Consents); err != nil {
		return nil, err
	}
	recs, err := v.store.GetRecords(ctx, collection, []string{id})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, sekisho.Errorf(sekisho.ENotFound, "record %s not found in %s", id, collection)
	}
	r := recs[0]
	values := map[string][]byte{}
	if len(p.Fields) > 0 {
		if values, err = normalizeFields(s, r.Region, p.Fields, false); err != nil {
			return nil, err
		}
	}
	fields := dataFields(values)
	evFields := fields
	if p.RetainUntil != nil {
		evFields = append(evFields, "retain_until")
	}
	if len(p.Consents) > 0 {
		evFields = append(evFields, "consents")
	}
	req := sekisho.AccessRequest{Caller: c, Action: sekisho.ActionUpdate, Collection: collection, Schema: s, Fields: fields, Region: r.Region, Owner: r.Org}
	d := v.authz.Authorize(ctx, req)
	// The guard sees writes too: a honeytoken touched by an update
	// quarantines, and denied writes count towards a burst of denials.
	if v.guard != nil {
		d = v.guard.Check(ctx, req, recs, d)
	}
	if !d.Allow {
		return nil, v.deny(ctx, v.event(c, sekisho.ActionUpdate, collection, recs, nil, evFields, d, false), d)
	}
	if r.Erased() {
		return nil, sekisho.Errorf(sekisho.EGone, "record %s was erased", id)
	}
	dek, err := v.dek(ctx, r)
	if err != nil {
		return nil, v.integrity(ctx, c, sekisho.ActionUpdate, collection, r, err)
	}
	defer clear(dek)
	rk, err := keys.NewRecordKey(dek)
	if err != nil {
		return nil, err
	}
	m, err := openMeta(rk, r)
	if err != nil {
		return nil, v.integrity(ctx, c, sekisho.ActionUpdate, collection, r, err)
	}
	if len(p.Consents) > 0 {
		m.Consents.Apply(p.Consents, v.now(), c.Principal)
		if err := addMeta(values, nil, &m.Consents); err != nil {
			return nil, err
		}
	}
	if err := addMeta(values, p.RetainUntil, nil); err != nil {
		return nil, err
	}
	// Keep the other fields' ciphertexts and index entries as they are.
	index := map[string][]byte{}
	for _, f := range s.Fields {
		if f.Lookup {
			if _, changed := values[f.Name]; !changed {
				if _, has := r.Fields[f.Name]; has {
					pt, err := rk.Open(keys.FieldAD{Collection: collection, RecordID: id, Field: f.Name, KeyVersion: dekVersion}, r.Fields[f.Name])
					if err != nil {
						return nil, v.integrity(ctx, c, sekisho.ActionUpdate, collection, r, integrityErr(r, "field "+f.Name, err))
					}
					ix, err := v.indexer(ctx, r.Org, collection, f.Name)
					if err != nil {
						return nil, err
					}
					index[f.Name] = ix.Index(pt)
				}
			}
		}
	}
	orig := *r
	orig.Fields = maps.Clone(r.Fields)
	r.Index = index
	if err := v.sealInto(ctx, s, r, dek, values); err != nil {
		return nil, err
	}
	r.Version++
	r.UpdatedAt = v.now().UTC()
	if err := v.record(ctx, v.event(c, sekisho.ActionUpdate, collection, recs, nil, evFields, d, false)); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		err := v.store.UpdateRecord(ctx, r)
		if err == nil {
			break
		}
		if sekisho.Code(err) != sekisho.EConflict || attempt >= 10 {
			return nil, err
		}
		// A KEK rotation re-wraps the record's data key (the same key)
		// and bumps its version: take its wrapping and write again. Any
		// other concurrent change is a conflict.
		fresh, gerr := v.store.GetRecords(ctx, collection, []string{id})
		if gerr != nil || len(fresh) != 1 || !sameData(&orig, fresh[0]) {
			return nil, err
		}
		r.WrappedDEK, r.KEKVersion, r.Version = fresh[0].WrappedDEK, fresh[0].KEKVersion, fresh[0].Version+1
	}
	out := &sekisho.Record{ID: id, Collection: collection, Org: r.Org, Region: r.Region, Version: r.Version,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Fields: map[string]json.RawMessage{}}
	if p.RetainUntil != nil {
		t := p.RetainUntil.UTC()
		out.RetainUntil = &t
	} else if !m.RetainUntil.IsZero() {
		out.RetainUntil = &m.RetainUntil
	}
	if len(p.Consents) > 0 {
		out.Consents = m.Consents.Current
	}
	return out, nil
}

// Erase crypto-shreds a record: its wrapped DEK, ciphertexts and index
// entries are destroyed; a tombstone keeps its id, org and region.
func (v *Vault) Erase(ctx context.Context, c sekisho.Caller, collection, id string) error {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return err
	}
	if !ValidID(id) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "id", "%q is not a record id", id)
	}
	recs, err := v.store.GetRecords(ctx, collection, []string{id})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return sekisho.Errorf(sekisho.ENotFound, "record %s not found in %s", id, collection)
	}
	r := recs[0]
	req := sekisho.AccessRequest{Caller: c, Action: sekisho.ActionErase, Collection: collection, Schema: s, Region: r.Region, Owner: r.Org}
	d := v.authz.Authorize(ctx, req)
	if v.guard != nil {
		d = v.guard.Check(ctx, req, recs, d)
	}
	if d.Allow {
		// A legal hold keeps the record from any erasure, not only
		// retention's, until it is lifted.
		if h, err := v.hold(ctx, id); err != nil {
			return err
		} else if h != nil {
			d = sekisho.Decision{Policy: "legal-hold", Reason: fmt.Sprintf("record %s is on legal hold (%s); lift the hold first", id, h.Reason),
				Code: sekisho.EConflict, Type: ProblemLegalHold}
		}
	}
	if !d.Allow {
		return v.deny(ctx, v.event(c, sekisho.ActionErase, collection, recs, nil, nil, d, false), d)
	}
	if err := v.record(ctx, v.event(c, sekisho.ActionErase, collection, recs, nil, nil, d, false)); err != nil {
		return err
	}
	return v.store.EraseRecord(ctx, collection, id, v.now().UTC())
}

// sameData reports whether two versions of a record hold the same data
// (fields and index): they differ at most in the wrapping of their key.
func sameData(a, b *sekisho.SealedRecord) bool {
	eq := func(x, y map[string][]byte) bool { return maps.EqualFunc(x, y, bytes.Equal) }
	return a.Org == b.Org && a.Region == b.Region && !b.Erased() && eq(a.Fields, b.Fields) && eq(a.Index, b.Index)
}

// LookupRequest is the body of a lookup.
type LookupRequest struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
	// Region reads national phone numbers; optional.
	Region string `json:"region,omitempty"`
	// Fields to return of each match; none returns ids only.
	Fields []string `json:"fields,omitempty"`
}

// MaxLookupMatches bounds the records one lookup returns.
const MaxLookupMatches = 100

// Lookup finds the caller's org's records whose lookup field equals value
// after normalisation, and returns them with the fields asked for.
func (v *Vault) Lookup(ctx context.Context, c sekisho.Caller, collection string, lr LookupRequest) ([]*sekisho.Record, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return nil, err
	}
	f, ok := s.Field(lr.Field)
	if !ok || !f.Lookup {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "field", "field %q of %s is not a lookup field", lr.Field, collection)
	}
	if lr.Region != "" {
		if err := v.checkRegion(lr.Region); err != nil {
			return nil, err
		}
	}
	val, err := values.Normalize(f, lr.Value, lr.Region)
	if err != nil {
		return nil, err
	}
	if _, err := fieldList(s, lr.Fields); err != nil {
		return nil, err
	}
	ix, err := v.indexer(ctx, c.Org, collection, f.Name)
	if err != nil {
		return nil, err
	}
	ids, err := v.store.Lookup(ctx, collection, f.Name, ix.Index(val), MaxLookupMatches)
	if err != nil {
		return nil, err
	}
	// With no fields asked, only ids are returned: still a decision on these
	// records, and audited as one.
	// The guard sees the value after normalisation, on every path, in
	// read's one call, matched or not (most of an enumeration's lookups
	// match nothing).
	return v.readLooked(ctx, c, sekisho.ActionLookup, collection, nonEmpty(ids), lr.Fields, len(lr.Fields) > 0,
		&sekisho.LookupValue{Field: f.Name, Value: string(val)})
}

// nonEmpty keeps read's "no ids" check from firing on a lookup with no match.
func nonEmpty(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}
