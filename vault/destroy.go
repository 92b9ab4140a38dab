package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sekisho/sekisho"
)

// States of a destruction.
const (
	DestructionPending   = "pending"
	DestructionDestroyed = "destroyed"
)

// Destruction is the crypto-shredding of an org's region: every version of
// the KEK of (org, region) destroyed, so that every record of that org in
// that region is unreadable at once and for good. It takes two people: one
// admin requests it, a second approves it, and only then is it done.
type Destruction struct {
	ID          string    `json:"id"`
	Org         string    `json:"org"`
	Region      string    `json:"region"`
	State       string    `json:"state"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ApprovedBy  string    `json:"approved_by,omitempty"`
	DestroyedAt time.Time `json:"destroyed_at,omitzero"`
	// Records is the erasure's report: the live records of the org in the
	// region that became unreadable.
	Records int64 `json:"records"`
	// Versions is the highest KEK version destroyed.
	Versions int `json:"versions_destroyed,omitempty"`

	objVersion int64
}

// RequestDestruction records a request to destroy the KEK of (org, region);
// nothing is destroyed until a second admin approves it.
func (v *Vault) RequestDestruction(ctx context.Context, c sekisho.Caller, org, region string) (*Destruction, error) {
	if !sekisho.ValidRegion(region) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "region", "region %q is not a region code", region)
	}
	if org == "" {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "org", "name the org whose key is destroyed")
	}
	if err := v.orgExists(ctx, org, region); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	d := &Destruction{ID: "kd-" + hex.EncodeToString(b[:]), Org: org, Region: region, State: DestructionPending,
		RequestedBy: c.Principal, RequestedAt: v.now().UTC()}
	if err := v.keyAdminEvent(ctx, c, "keys.destroy.request", org, fmt.Sprintf("destruction %s of the KEK of %s/%s requested; it needs a second admin", d.ID, org, region)); err != nil {
		return nil, err
	}
	return d, v.saveDestruction(ctx, d)
}

// Destruction returns a destruction request.
func (v *Vault) Destruction(ctx context.Context, id string) (*Destruction, error) {
	o, err := v.store.GetObject(ctx, sekisho.KindDestruction, id)
	if sekisho.Code(err) == sekisho.ENotFound {
		return nil, sekisho.Errorf(sekisho.ENotFound, "key destruction %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	var d Destruction
	if err := json.Unmarshal(o.Body, &d); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored destruction " + id + " does not decode", Err: err}
	}
	d.objVersion = o.Version
	return &d, nil
}

// ApproveDestruction is the second admin's approval, and the destruction:
// the event is written first, the records counted, then every version of
// the KEK destroyed and the cached data keys of that org and region
// dropped. The caller must not be the admin who requested it.
func (v *Vault) ApproveDestruction(ctx context.Context, c sekisho.Caller, id string) (*Destruction, error) {
	d, err := v.Destruction(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.State != DestructionPending {
		return nil, sekisho.TypedErrorf(sekisho.EConflict, "destruction-not-pending", "key destruction %s is %s, not pending", id, d.State)
	}
	if d.RequestedBy == c.Principal {
		err := sekisho.TypedErrorf(sekisho.EForbidden, "two-person-rule", "key destruction %s needs a second admin: %s requested it", id, c.Principal)
		ev := sekisho.Event{Time: v.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Source: c.Source,
			Action: "keys.destroy", Decision: sekisho.Deny, Policy: "two-person-rule", Reason: err.Message, Detail: "destruction " + id, RecordOrgs: []string{d.Org}}
		if rerr := v.record(ctx, decisionEvent{Event: ev}); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	n, err := v.countRegion(ctx, d.Org, d.Region)
	if err != nil {
		return nil, err
	}
	// Write-ahead: the destruction is in the log before any key is gone.
	if err := v.keyAdminEvent(ctx, c, "keys.destroy", d.Org, fmt.Sprintf("destruction %s approved: every version of the KEK of %s/%s is destroyed (%d records), requested by %s",
		id, d.Org, d.Region, n, d.RequestedBy)); err != nil {
		return nil, err
	}
	top, err := v.keys.DestroyKEKs(ctx, d.Org, d.Region)
	if err != nil {
		return nil, keyError(err, fmt.Sprintf("the key of %s/%s", d.Org, d.Region))
	}
	v.deks.purge(d.Org, d.Region)
	d.State, d.ApprovedBy, d.DestroyedAt, d.Records, d.Versions = DestructionDestroyed, c.Principal, v.now().UTC(), n, top
	if err := v.saveDestruction(ctx, d); err != nil {
		return nil, err
	}
	if err := v.keyAdminEvent(ctx, c, "keys.destroy.finished", d.Org, fmt.Sprintf("KEK of %s/%s destroyed (versions up to %d): %d records erased", d.Org, d.Region, top, n)); err != nil {
		return nil, err
	}
	return d, nil
}

func (v *Vault) keyAdminEvent(ctx context.Context, c sekisho.Caller, action, org, reason string) error {
	ev := sekisho.Event{Time: v.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: action, Decision: sekisho.Allow, Policy: "key-admin", Reason: reason, RecordOrgs: []string{org}}
	return v.record(ctx, decisionEvent{Event: ev})
}

func (v *Vault) saveDestruction(ctx context.Context, d *Destruction) error {
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	o := &sekisho.Object{Kind: sekisho.KindDestruction, ID: d.ID, Org: d.Org, Version: d.objVersion + 1, Body: body, Updated: v.now().UTC()}
	if err := v.store.PutObject(ctx, o); err != nil {
		return fmt.Errorf("save key destruction %s: %w", d.ID, err)
	}
	d.objVersion = o.Version
	return nil
}

// countRegion counts the live records of org in region, over every collection.
func (v *Vault) countRegion(ctx context.Context, org, region string) (int64, error) {
	schemas, err := v.store.ListSchemas(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, s := range schemas {
		for after := ""; ; {
			ids, err := v.store.ListRecordIDs(ctx, s.Collection, org, after, 1000)
			if err != nil {
				return 0, err
			}
			if len(ids) == 0 {
				break
			}
			after = ids[len(ids)-1]
			recs, err := v.store.GetRecords(ctx, s.Collection, ids)
			if err != nil {
				return 0, err
			}
			for _, r := range recs {
				if r.Region == region && !r.Erased() {
					n++
				}
			}
		}
	}
	return n, nil
}
