package guard

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/gen"
)

// Honeytoken is the admin's record of one decoy. The decoy itself is a
// sealed record like any other (SealedRecord.Honeytoken set); this object
// (kind honeytoken, org of the creator) is how the admins who manage them
// list them.
type Honeytoken struct {
	ID         string    `json:"id"`
	Collection string    `json:"collection"`
	Org        string    `json:"org"`
	Region     string    `json:"region"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
}

// MaxHoneytokens bounds one creation.
const MaxHoneytokens = 100

// DecoyWriter writes decoy records as the vault does (*vault.Vault
// implements it): through the authoriser and into the audit log.
type DecoyWriter interface {
	CreateHoneytokens(ctx context.Context, c sekisho.Caller, collection string, inputs []*sekisho.RecordInput) ([]string, error)
}

// CreateHoneytokens creates count decoy records in collection, region, with
// values generated to look real for the schema (package gen). Only an
// admin may.
func (g *Guard) CreateHoneytokens(ctx context.Context, v DecoyWriter, c sekisho.Caller, collection, region string, count int) ([]*Honeytoken, error) {
	if !c.HasRole("admin") {
		return nil, g.event(ctx, c, "honeytoken.create", "collection "+collection, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "creating honeytokens needs an admin"))
	}
	if count < 1 || count > MaxHoneytokens {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "count", "count must be between 1 and %d", MaxHoneytokens)
	}
	if !sekisho.ValidRegion(region) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "region", "region %q is not a region code", region)
	}
	var seed [8]byte
	rand.Read(seed[:])
	gn := gen.New(binary.LittleEndian.Uint64(seed[:]))
	inputs := make([]*sekisho.RecordInput, 0, count)
	for len(inputs) < count {
		var in *sekisho.RecordInput
		// The generator spreads regions by weight; draw until the region asked
		// for, so that phone numbers and countries fit it.
		for range 5000 {
			var err error
			if in, err = gn.Record(collection); err != nil {
				return nil, sekisho.FieldErrorf(sekisho.EInvalid, "collection", "%v", err)
			}
			if in.Region == region {
				break
			}
		}
		in.Region = region
		inputs = append(inputs, in)
	}
	ids, err := v.CreateHoneytokens(ctx, c, collection, inputs)
	if err != nil {
		return nil, err
	}
	now := g.now().UTC()
	out := make([]*Honeytoken, 0, len(ids))
	for _, id := range ids {
		h := &Honeytoken{ID: id, Collection: collection, Org: c.Org, Region: region, CreatedAt: now, CreatedBy: c.Principal}
		b, _ := json.Marshal(h)
		if err := g.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindHoneytoken, ID: collection + "/" + id, Org: c.Org, Version: 1, Body: b, Updated: now}); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// ListHoneytokens lists the decoys of collection of the caller's org (admins only).
func (g *Guard) ListHoneytokens(ctx context.Context, c sekisho.Caller, collection string) ([]*Honeytoken, error) {
	if !c.HasRole("admin") {
		return nil, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "listing honeytokens needs an admin")
	}
	objs, err := g.store.ListObjects(ctx, sekisho.KindHoneytoken, c.Org)
	if err != nil {
		return nil, err
	}
	out := []*Honeytoken{}
	for _, o := range objs {
		var h Honeytoken
		if json.Unmarshal(o.Body, &h) == nil && h.Collection == collection {
			out = append(out, &h)
		}
	}
	return out, nil
}

// DecoyHidden reports whether viewer, an admin of an org (not an auditor),
// must not see the record ids of a decision's audit event: the decision of
// a touched decoy (policy guard:honeytoken) about the records of another
// org (recordOrgs). A grantee's admin must not learn which of the
// grantor's records are decoys; the grantor's admins see its own.
func DecoyHidden(policy string, recordOrgs []string, viewer string) bool {
	if policy != "guard:"+RuleHoneytoken {
		return false
	}
	for _, o := range recordOrgs {
		if o != viewer {
			return true
		}
	}
	return false
}

// DecoyHiddenText replaces the hidden record ids (see DecoyHidden).
func DecoyHiddenText(recordOrgs []string) string {
	return "a decoy record of org " + strings.Join(recordOrgs, ", ") + " touched; its id is not shown to another org"
}
