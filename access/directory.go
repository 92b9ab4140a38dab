package access

import (
	"context"
	"slices"

	"github.com/sekisho/sekisho"
)

// Directory is access's read API over its stored orgs, principals, devices
// and grants: the guard, incidents, reports and the HTTP API read them
// through it (each through an interface of its own), as sekisho.*Entry
// views, and never decode access's objects themselves. It reads the store
// directly, uncached: a caller that reads on the request path caches what
// it needs.
type Directory struct {
	store sekisho.ObjectStore
}

// NewDirectory returns the directory over st (the store access writes to).
func NewDirectory(st sekisho.ObjectStore) *Directory { return &Directory{store: st} }

// one reads and decodes one object; a missing one is ENotFound.
func one[T any](ctx context.Context, st sekisho.ObjectStore, kind, id string) (*T, error) {
	o, err := st.GetObject(ctx, kind, id)
	if err != nil {
		if sekisho.Code(err) == sekisho.ENotFound {
			return nil, sekisho.Errorf(sekisho.ENotFound, "%s %q not found", kind, id)
		}
		return nil, err
	}
	return decode[T](o)
}

// all reads and decodes every object of kind (of org, or of all orgs).
func all[T any](ctx context.Context, st sekisho.ObjectStore, kind, org string) ([]*T, error) {
	objs, err := st.ListObjects(ctx, kind, org)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(objs))
	for _, o := range objs {
		v, err := decode[T](o)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Org returns an org.
func (d *Directory) Org(ctx context.Context, id string) (sekisho.OrgEntry, error) {
	o, err := one[Org](ctx, d.store, sekisho.KindOrg, id)
	if err != nil {
		return sekisho.OrgEntry{}, err
	}
	return o.Entry(), nil
}

// Principal returns a principal.
func (d *Directory) Principal(ctx context.Context, id string) (sekisho.PrincipalEntry, error) {
	p, err := one[Principal](ctx, d.store, sekisho.KindPrincipal, id)
	if err != nil {
		return sekisho.PrincipalEntry{}, err
	}
	return p.Entry(), nil
}

// Principals returns every principal of every org.
func (d *Directory) Principals(ctx context.Context) ([]sekisho.PrincipalEntry, error) {
	ps, err := all[Principal](ctx, d.store, sekisho.KindPrincipal, "")
	if err != nil {
		return nil, err
	}
	out := make([]sekisho.PrincipalEntry, len(ps))
	for i, p := range ps {
		out[i] = p.Entry()
	}
	return out, nil
}

// OrgAdmins returns the ids of the active admins of org, sorted.
func (d *Directory) OrgAdmins(ctx context.Context, org string) ([]string, error) {
	ps, err := all[Principal](ctx, d.store, sekisho.KindPrincipal, org)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if p.Status == StatusActive && p.HasRole(RoleAdmin) {
			out = append(out, p.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Device returns a device.
func (d *Directory) Device(ctx context.Context, id string) (sekisho.DeviceEntry, error) {
	dv, err := one[Device](ctx, d.store, sekisho.KindDevice, id)
	if err != nil {
		return sekisho.DeviceEntry{}, err
	}
	return dv.Entry(), nil
}

// Devices returns every device of every org.
func (d *Directory) Devices(ctx context.Context) ([]sekisho.DeviceEntry, error) {
	ds, err := all[Device](ctx, d.store, sekisho.KindDevice, "")
	if err != nil {
		return nil, err
	}
	out := make([]sekisho.DeviceEntry, len(ds))
	for i, dv := range ds {
		out[i] = dv.Entry()
	}
	return out, nil
}

// Grant returns a grant.
func (d *Directory) Grant(ctx context.Context, id string) (sekisho.GrantEntry, error) {
	g, err := one[Grant](ctx, d.store, sekisho.KindGrant, id)
	if err != nil {
		return sekisho.GrantEntry{}, err
	}
	return g.Entry(), nil
}

// Grants returns every grant, of every status.
func (d *Directory) Grants(ctx context.Context) ([]sekisho.GrantEntry, error) {
	gs, err := all[Grant](ctx, d.store, sekisho.KindGrant, "")
	if err != nil {
		return nil, err
	}
	out := make([]sekisho.GrantEntry, len(gs))
	for i, g := range gs {
		out[i] = g.Entry()
	}
	return out, nil
}

// Entry is the org as the directory shows it.
func (o *Org) Entry() sekisho.OrgEntry {
	return sekisho.OrgEntry{ID: o.ID, HomeRegion: o.HomeRegion, TimeZone: o.TimeZone, Root: o.Root, Status: o.Status}
}

// Entry is the principal as the directory shows it.
func (p *Principal) Entry() sekisho.PrincipalEntry {
	return sekisho.PrincipalEntry{ID: p.ID, Org: p.Org, Kind: p.Kind, Roles: slices.Clone(p.Roles), Status: p.Status,
		CreatedAt: p.CreatedAt, RevokedAt: p.RevokedAt}
}

// Entry is the device as the directory shows it.
func (d *Device) Entry() sekisho.DeviceEntry {
	return sekisho.DeviceEntry{ID: d.ID, Principal: d.Principal, Org: d.Org, Status: d.Status, KeyStorage: d.KeyStorage,
		Attested: d.Attested, EnrolledAt: d.EnrolledAt, ApprovedAt: d.ApprovedAt, RevokedAt: d.RevokedAt}
}

// Entry is the grant as the directory shows it.
func (g *Grant) Entry() sekisho.GrantEntry {
	return sekisho.GrantEntry{ID: g.ID, GrantorOrg: g.GrantorOrg, GranteeOrg: g.GranteeOrg, GranteePrincipal: g.GranteePrincipal,
		Collections: slices.Clone(g.Collections), Regions: slices.Clone(g.Regions), Purposes: slices.Clone(g.Purposes),
		Actions: slices.Clone(g.Actions), NotBefore: g.NotBefore, Expires: g.Expires, BudgetPerHour: g.BudgetPerHour,
		BudgetTotal: g.BudgetTotal, Status: g.Status, CreatedAt: g.CreatedAt, RevokedAt: g.RevokedAt}
}
