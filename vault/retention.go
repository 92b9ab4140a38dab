package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/keys"
)

// Retention sweeps are recorded under this principal, with this reason.
const (
	RetentionPrincipal = "sekisho-retention"
	ReasonRetention    = "retention"
)

// DefaultRetentionBatch is how many records a sweep reads and erases at a time.
const DefaultRetentionBatch = 500

// Expired is a record whose retention has run out at the time of a plan or
// sweep.
type Expired struct {
	Collection string    `json:"collection"`
	ID         string    `json:"id"`
	Org        string    `json:"org"`
	Region     string    `json:"region"`
	Expiry     time.Time `json:"expiry"`
	// Hold is the reason of the legal hold that keeps the record, if any.
	Hold string `json:"hold,omitempty"`
}

// RetentionPlan is what a sweep at At would do: erase Expired, keep Held.
type RetentionPlan struct {
	Collection string    `json:"collection"`
	At         time.Time `json:"at"`
	Scanned    int       `json:"scanned"`
	Expired    []Expired `json:"expired"`
	Held       []Expired `json:"held"`
}

// SweepProgress is reported after each batch of a sweep.
type SweepProgress struct {
	Collection string `json:"collection"`
	Batches    int    `json:"batches"`
	Scanned    int    `json:"scanned"`
	Erased     int    `json:"erased"`
	Held       int    `json:"held"`
}

// SweepOptions tune a sweep.
type SweepOptions struct {
	// Batch is how many records are read and erased at a time (default
	// DefaultRetentionBatch).
	Batch int
	// Progress, if set, is called after each batch.
	Progress func(SweepProgress)
	// Orgs limits a plan to the records of these orgs (nil: every org).
	Orgs []string
}

// PlanRetention lists the records of collection that a sweep at the vault's
// current time would erase, and those a legal hold keeps. It erases nothing.
// A sweep run at the same time erases exactly the records listed as expired
// (unless one changes or is held in between).
func (v *Vault) PlanRetention(ctx context.Context, c sekisho.Caller, collection string, opts SweepOptions) (*RetentionPlan, error) {
	at := v.now().UTC()
	p := &RetentionPlan{Collection: collection, At: at, Expired: []Expired{}, Held: []Expired{}}
	err := v.scanExpired(ctx, collection, at, opts.Batch, func(batch []*sekisho.SealedRecord, expired []Expired, scanned int) error {
		p.Scanned += scanned
		for _, e := range expired {
			if opts.Orgs != nil && !slices.Contains(opts.Orgs, e.Org) {
				continue
			}
			if e.Hold != "" {
				p.Held = append(p.Held, e)
			} else {
				p.Expired = append(p.Expired, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(p.Expired)+len(p.Held))
	for _, e := range append(slices.Clone(p.Expired), p.Held...) {
		ids = append(ids, e.ID)
	}
	ev := v.event(c, "retention.plan", collection, nil, ids, nil, sekisho.Decision{Allow: true, Policy: "retention", Reason: "dry run"}, false)
	ev.Detail = fmt.Sprintf("%d expired, %d held, at %s", len(p.Expired), len(p.Held), at.Format(time.RFC3339))
	if err := v.record(ctx, ev); err != nil {
		return nil, err
	}
	return p, nil
}

// SweepRetention crypto-shreds the expired records of collection ("" for
// every collection) that no legal hold keeps, in batches: each erasure goes
// the way of Erase (audit event first, action erase, reason retention;
// then the data key, ciphertexts and index entries are destroyed). It
// returns the totals; an error stops the sweep where it is, and the next
// sweep goes on from there.
func (v *Vault) SweepRetention(ctx context.Context, collection string, opts SweepOptions) (SweepProgress, error) {
	var total SweepProgress
	colls := []string{collection}
	if collection == "" {
		list, err := v.store.ListSchemas(ctx)
		if err != nil {
			return total, err
		}
		colls = colls[:0]
		for _, s := range list {
			colls = append(colls, s.Collection)
		}
	}
	at := v.now().UTC()
	c := sekisho.Caller{Principal: RetentionPrincipal}
	for _, coll := range colls {
		pr := SweepProgress{Collection: coll}
		err := v.scanExpired(ctx, coll, at, opts.Batch, func(batch []*sekisho.SealedRecord, expired []Expired, scanned int) error {
			pr.Batches++
			pr.Scanned += scanned
			byID := make(map[string]*sekisho.SealedRecord, len(batch))
			for _, r := range batch {
				byID[r.ID] = r
			}
			for _, e := range expired {
				if e.Hold != "" {
					pr.Held++
					continue
				}
				// The hold is looked up again right before the erasure, so
				// that one set since the batch was read still holds.
				if h, err := v.hold(ctx, e.ID); err != nil {
					return err
				} else if h != nil {
					pr.Held++
					continue
				}
				r := byID[e.ID]
				c.Org = r.Org
				ev := v.event(c, sekisho.ActionErase, coll, []*sekisho.SealedRecord{r}, nil, nil,
					sekisho.Decision{Allow: true, Policy: "retention", Reason: ReasonRetention}, false)
				ev.Detail = "retention ran out at " + e.Expiry.Format(time.RFC3339)
				if err := v.record(ctx, ev); err != nil {
					return err
				}
				if err := v.store.EraseRecord(ctx, coll, r.ID, v.now().UTC()); err != nil && sekisho.Code(err) != sekisho.EGone {
					return fmt.Errorf("erase %s/%s: %w", coll, r.ID, err)
				}
				pr.Erased++
			}
			if opts.Progress != nil {
				opts.Progress(pr)
			}
			return nil
		})
		total.Batches += pr.Batches
		total.Scanned += pr.Scanned
		total.Erased += pr.Erased
		total.Held += pr.Held
		if err != nil {
			return total, fmt.Errorf("retention sweep of %s: %w", coll, err)
		}
	}
	return total, nil
}

// scanExpired pages through a collection's live records and calls fn with
// each batch and its expired records (Hold set for held ones).
func (v *Vault) scanExpired(ctx context.Context, collection string, at time.Time, batch int,
	fn func(batch []*sekisho.SealedRecord, expired []Expired, scanned int) error) error {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return err
	}
	if batch <= 0 {
		batch = DefaultRetentionBatch
	}
	holds, err := v.holdsOf(ctx, collection)
	if err != nil {
		return err
	}
	after := ""
	for {
		ids, err := v.store.ListRecordIDs(ctx, collection, "", after, batch)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		after = ids[len(ids)-1]
		recs, err := v.store.GetRecords(ctx, collection, ids)
		if err != nil {
			return err
		}
		var expired []Expired
		for _, r := range recs {
			if r.Erased() || r.Honeytoken {
				continue // decoys are not personal data, and must stay
			}
			exp, err := v.expiry(ctx, s, r)
			if err != nil {
				return err
			}
			if exp.IsZero() || exp.After(at) {
				continue
			}
			expired = append(expired, Expired{Collection: collection, ID: r.ID, Org: r.Org, Region: r.Region, Expiry: exp, Hold: holds[r.ID]})
		}
		if err := fn(recs, expired, len(recs)); err != nil {
			return err
		}
		if len(ids) < batch {
			return nil
		}
	}
}

// expiry returns when a record expires (zero: never). It opens the record
// only when its retain_until or the schema's retention field decide.
func (v *Vault) expiry(ctx context.Context, s *sekisho.Schema, r *sekisho.SealedRecord) (time.Time, error) {
	_, hasUntil := r.Fields[metaRetainUntil]
	var field string
	if s.Retention != nil && s.Retention.Field != "" {
		field = s.Retention.Field
	}
	_, hasField := r.Fields[field]
	if !hasUntil && (field == "" || !hasField) {
		return s.Expiry(r.CreatedAt, time.Time{}, nil)
	}
	dek, err := v.dek(ctx, r)
	if err != nil {
		return time.Time{}, err
	}
	rk, err := keys.NewRecordKey(dek)
	if err != nil {
		return time.Time{}, err
	}
	m, err := openMeta(rk, r)
	if err != nil {
		return time.Time{}, err
	}
	var value []byte
	if hasField && m.RetainUntil.IsZero() {
		value, err = rk.Open(keys.FieldAD{Collection: r.Collection, RecordID: r.ID, Field: field, KeyVersion: dekVersion}, r.Fields[field])
		if err != nil {
			return time.Time{}, &sekisho.Error{Code: sekisho.EInternal, Message: fmt.Sprintf("field %s of record %s does not open", field, r.ID), Err: err}
		}
	}
	exp, err := s.Expiry(r.CreatedAt, m.RetainUntil, value)
	if err != nil {
		return time.Time{}, &sekisho.Error{Code: sekisho.EInternal, Message: fmt.Sprintf("retention of record %s", r.ID), Err: err}
	}
	return exp, nil
}

// Hold is a legal hold: while it is set, retention does not erase the record.
type Hold struct {
	Record     string    `json:"record"`
	Collection string    `json:"collection"`
	Org        string    `json:"org"`
	Reason     string    `json:"reason"`
	SetBy      string    `json:"set_by"`
	SetAt      time.Time `json:"set_at"`
}

// ProblemLegalHold is the problem type of an erasure refused because the
// record is on legal hold.
const ProblemLegalHold = "legal-hold"

// holdsOf returns the holds on a collection's records: record id -> reason.
func (v *Vault) holdsOf(ctx context.Context, collection string) (map[string]string, error) {
	objs, err := v.store.ListObjects(ctx, sekisho.KindHold, "")
	if err != nil {
		return nil, fmt.Errorf("list legal holds: %w", err)
	}
	out := map[string]string{}
	for _, o := range objs {
		var h Hold
		if err := json.Unmarshal(o.Body, &h); err != nil {
			return nil, fmt.Errorf("legal hold %s: %w", o.ID, err)
		}
		if h.Collection == collection {
			out[h.Record] = h.Reason
		}
	}
	return out, nil
}

// hold returns the hold on a record, or nil.
func (v *Vault) hold(ctx context.Context, id string) (*Hold, error) {
	o, err := v.store.GetObject(ctx, sekisho.KindHold, id)
	if sekisho.Code(err) == sekisho.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("legal hold of %s: %w", id, err)
	}
	var h Hold
	if err := json.Unmarshal(o.Body, &h); err != nil {
		return nil, fmt.Errorf("legal hold %s: %w", id, err)
	}
	return &h, nil
}

// MaxHoldReason bounds a hold's reason.
const MaxHoldReason = 500

// findRecord finds a record by id in any collection.
func (v *Vault) findRecord(ctx context.Context, id string) (*sekisho.SealedRecord, error) {
	if !ValidID(id) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "record", "%q is not a record id", id)
	}
	list, err := v.store.ListSchemas(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		recs, err := v.store.GetRecords(ctx, s.Collection, []string{id})
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 {
			return recs[0], nil
		}
	}
	return nil, sekisho.Errorf(sekisho.ENotFound, "record %s not found", id)
}

// holdAdmin refuses a caller who is not an admin of the record's org.
func holdAdmin(c sekisho.Caller, r *sekisho.SealedRecord) error {
	if !c.HasRole("admin") || c.Org != r.Org {
		return sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "only an admin of the record's org sets or lifts a legal hold")
	}
	return nil
}

// SetHold puts a record on legal hold: retention does not erase it until the
// hold is lifted. Setting and lifting are audited (hold.set, hold.lift).
func (v *Vault) SetHold(ctx context.Context, c sekisho.Caller, id, reason string) (*Hold, error) {
	if reason == "" || len(reason) > MaxHoldReason {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "reason", "a legal hold needs a reason of at most %d bytes", MaxHoldReason)
	}
	r, err := v.findRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := holdAdmin(c, r); err != nil {
		d := sekisho.Decision{Policy: "hold-admin", Reason: sekisho.Message(err)}
		return nil, v.holdEvent(ctx, c, "hold.set", r, d, err)
	}
	if r.Erased() {
		return nil, sekisho.Errorf(sekisho.EGone, "record %s was erased", id)
	}
	h := &Hold{Record: r.ID, Collection: r.Collection, Org: r.Org, Reason: reason, SetBy: c.Principal, SetAt: v.now().UTC()}
	body, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	version := int64(1)
	if o, err := v.store.GetObject(ctx, sekisho.KindHold, id); err == nil {
		version = o.Version + 1
	} else if sekisho.Code(err) != sekisho.ENotFound {
		return nil, err
	}
	d := sekisho.Decision{Allow: true, Policy: "hold-admin", Reason: "legal hold: " + reason}
	if err := v.holdEvent(ctx, c, "hold.set", r, d, nil); err != nil {
		return nil, err
	}
	if err := v.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindHold, ID: id, Org: r.Org, Version: version, Body: body, Updated: h.SetAt}); err != nil {
		return nil, err
	}
	return h, nil
}

// LiftHold lifts a record's legal hold; retention applies again.
func (v *Vault) LiftHold(ctx context.Context, c sekisho.Caller, id string) error {
	r, err := v.findRecord(ctx, id)
	if err != nil {
		return err
	}
	if err := holdAdmin(c, r); err != nil {
		return v.holdEvent(ctx, c, "hold.lift", r, sekisho.Decision{Policy: "hold-admin", Reason: sekisho.Message(err)}, err)
	}
	h, err := v.hold(ctx, id)
	if err != nil {
		return err
	}
	if h == nil {
		return sekisho.Errorf(sekisho.ENotFound, "record %s has no legal hold", id)
	}
	if err := v.holdEvent(ctx, c, "hold.lift", r, sekisho.Decision{Allow: true, Policy: "hold-admin", Reason: "legal hold lifted"}, nil); err != nil {
		return err
	}
	return v.store.DeleteObject(ctx, sekisho.KindHold, id)
}

// ListHolds lists the legal holds on the caller's org's records.
func (v *Vault) ListHolds(ctx context.Context, c sekisho.Caller) ([]*Hold, error) {
	objs, err := v.store.ListObjects(ctx, sekisho.KindHold, c.Org)
	if err != nil {
		return nil, err
	}
	out := make([]*Hold, 0, len(objs))
	for _, o := range objs {
		var h Hold
		if err := json.Unmarshal(o.Body, &h); err != nil {
			return nil, fmt.Errorf("legal hold %s: %w", o.ID, err)
		}
		out = append(out, &h)
	}
	return out, nil
}

// holdEvent records a hold decision; with refusal set, it returns it.
func (v *Vault) holdEvent(ctx context.Context, c sekisho.Caller, action sekisho.Action, r *sekisho.SealedRecord, d sekisho.Decision, refusal error) error {
	ev := v.event(c, action, r.Collection, []*sekisho.SealedRecord{r}, nil, nil, d, false)
	if err := v.record(ctx, ev); err != nil {
		return err
	}
	return refusal
}

// RunRetention sweeps every collection every interval until ctx ends,
// logging each batch that erased something and each sweep's totals. A
// failed sweep is logged and the next one goes on. Nodes that share a store
// take turns: a sweep runs only under the retention lease (an object in the
// store, taken with a version check), so two nodes never sweep at once and
// never record one erasure twice.
func (v *Vault) RunRetention(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	holder, err := NewID()
	if err != nil {
		log.Error("retention sweeper not started", "error", err.Error())
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		took, err := v.takeLease(ctx, holder, RetentionLease)
		if err != nil {
			log.Error("retention lease", "error", err.Error())
			continue
		}
		if !took {
			continue // another node is sweeping
		}
		start := time.Now()
		total, err := v.SweepRetention(ctx, "", SweepOptions{Progress: func(p SweepProgress) {
			if p.Erased > 0 {
				log.Info("retention sweep progress", "collection", p.Collection, "batches", p.Batches, "scanned", p.Scanned, "erased", p.Erased, "held", p.Held)
			}
		}})
		if rerr := v.releaseLease(ctx, holder); rerr != nil && ctx.Err() == nil {
			log.Warn("retention lease not released; it expires by itself", "error", rerr.Error())
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("retention sweep failed", "error", err.Error(), "erased", total.Erased)
			continue
		}
		level := slog.LevelDebug
		if total.Erased > 0 {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "retention sweep done", "scanned", total.Scanned, "erased", total.Erased, "held", total.Held, "took", time.Since(start).Round(time.Millisecond).String())
	}
}

// RetentionLease is how long a node may sweep before another may take
// over; a sweep of 500,000 records takes well under a minute.
const RetentionLease = 15 * time.Minute

// kindLease is the object kind of leases; the retention lease's id is
// "retention".
const kindLease = "lease"

type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// takeLease takes (or renews) the retention lease for holder, for ttl. It
// reports false when another holder has it. The store's version check makes
// taking it atomic.
func (v *Vault) takeLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	now := v.now().UTC()
	version := int64(1)
	o, err := v.store.GetObject(ctx, kindLease, "retention")
	switch {
	case sekisho.Code(err) == sekisho.ENotFound:
	case err != nil:
		return false, err
	default:
		var l lease
		if err := json.Unmarshal(o.Body, &l); err != nil {
			return false, fmt.Errorf("retention lease: %w", err)
		}
		if l.Holder != holder && l.Until.After(now) {
			return false, nil
		}
		version = o.Version + 1
	}
	body, err := json.Marshal(lease{Holder: holder, Until: now.Add(ttl)})
	if err != nil {
		return false, err
	}
	err = v.store.PutObject(ctx, &sekisho.Object{Kind: kindLease, ID: "retention", Version: version, Body: body, Updated: now})
	if sekisho.Code(err) == sekisho.EConflict {
		return false, nil // another node took it first
	}
	return err == nil, err
}

// releaseLease ends holder's lease (it stays in the store, expired, so that
// its version only grows).
func (v *Vault) releaseLease(ctx context.Context, holder string) error {
	o, err := v.store.GetObject(ctx, kindLease, "retention")
	if err != nil {
		return err
	}
	var l lease
	if err := json.Unmarshal(o.Body, &l); err != nil || l.Holder != holder {
		return err
	}
	body, err := json.Marshal(lease{Holder: holder, Until: v.now().UTC()})
	if err != nil {
		return err
	}
	return v.store.PutObject(ctx, &sekisho.Object{Kind: kindLease, ID: "retention", Version: o.Version + 1, Body: body, Updated: v.now().UTC()})
}
