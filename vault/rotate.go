package vault

import (
	"context"
	"fmt"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/keys"
)

// RotateKEK makes a new version of the KEK of (org, region) and re-wraps
// the data key of every live record of that org and region under it. The
// fields are not touched: a DEK does not change when its KEK does. progress
// is called after each chunk with the records re-wrapped so far. The
// rotation is recorded in the audit log (the KEK itself never is).
func (v *Vault) RotateKEK(ctx context.Context, c Caller, org, region string, progress func(done int)) (version, done int, err error) {
	if !sekisho.ValidRegion(region) {
		return 0, 0, sekisho.FieldErrorf(sekisho.EInvalid, "region", "region %q is not a region code", region)
	}
	if org == "" {
		return 0, 0, sekisho.FieldErrorf(sekisho.EInvalid, "org", "name the org whose key rotates")
	}
	if err := v.orgExists(ctx, org, region); err != nil {
		return 0, 0, err
	}
	// Write-ahead: the rotation is in the log before any key changes, so an
	// interrupted rotation is in it too.
	start := audit.Event{Time: v.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: "keys.rotate", Decision: audit.Allow, Policy: "key-admin",
		Reason: fmt.Sprintf("rotation of the KEK of %s/%s started", org, region), RecordOrgs: []string{org}}
	if err := v.record(ctx, decisionEvent{Event: start}); err != nil {
		return 0, 0, err
	}
	version, err = v.keys.RotateKEK(ctx, org, region)
	if err != nil {
		return 0, 0, fmt.Errorf("rotate KEK of %s/%s: %w", org, region, err)
	}
	kek, err := v.keys.KEKVersion(ctx, org, region, version)
	if err != nil {
		return version, 0, err
	}
	schemas, err := v.store.ListSchemas(ctx)
	if err != nil {
		return version, 0, err
	}
	for _, s := range schemas {
		for after := ""; ; {
			ids, err := v.store.ListRecordIDs(ctx, s.Collection, org, after, 500)
			if err != nil {
				return version, done, err
			}
			if len(ids) == 0 {
				break
			}
			after = ids[len(ids)-1]
			recs, err := v.store.GetRecords(ctx, s.Collection, ids)
			if err != nil {
				return version, done, err
			}
			for _, r := range recs {
				if r.Region != region || r.Erased() || r.KEKVersion == version {
					continue
				}
				dek, err := v.dek(ctx, r)
				if err != nil {
					return version, done, err
				}
				w, err := keys.WrapDEK(kek, keys.DEKAD{Org: r.Org, Region: r.Region, Collection: r.Collection, RecordID: r.ID, KEKVersion: version}, dek)
				if err != nil {
					return version, done, err
				}
				r.WrappedDEK, r.KEKVersion = w, version
				r.Version++
				r.UpdatedAt = v.now().UTC()
				if err := v.store.UpdateRecord(ctx, r); err != nil {
					return version, done, fmt.Errorf("re-wrap record %s/%s: %w", r.Collection, r.ID, err)
				}
				done++
			}
			if progress != nil {
				progress(done)
			}
		}
	}
	ev := audit.Event{Time: v.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: "keys.rotate.finished", Decision: audit.Allow, Policy: "key-admin",
		Reason:     fmt.Sprintf("KEK of %s/%s rotated to version %d; %d data keys re-wrapped", org, region, version, done),
		RecordOrgs: []string{org}}
	return version, done, v.record(ctx, decisionEvent{Event: ev})
}

// kindOrg is the object kind of an org (access.KindOrg; the vault does not
// import access).
const kindOrg = "org"

// orgExists refuses an org that was never created: a key operation on a
// misspelt org would otherwise make keys for an org that does not exist. An
// org exists when it was created (an org object) or already has a KEK in
// region (records imported before the first admin enrolled).
func (v *Vault) orgExists(ctx context.Context, org, region string) error {
	_, err := v.store.GetObject(ctx, kindOrg, org)
	if sekisho.Code(err) != sekisho.ENotFound {
		return err
	}
	if _, kerr := v.keys.KEKVersion(ctx, org, region, 1); kerr == nil {
		return nil
	}
	return sekisho.FieldErrorf(sekisho.ENotFound, "org", "org %q does not exist", org)
}
