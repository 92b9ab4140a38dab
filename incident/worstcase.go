package incident

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sekisho/sekisho"
)

// readActions are the actions that return values.
var readActions = []string{"read", "lookup", "batch-get", "detokenize"}

// dataRoles are the roles that read their own org's records.
var dataRoles = []string{sekisho.RoleAdmin, sekisho.RoleMember, sekisho.RoleSupport, sekisho.RoleService}

type cellKey struct{ collection, org string }

type cell struct {
	all     bool
	regions map[string]bool
	via     map[string]bool
}

// worstCase counts the live records the suspects could have read in the
// window: their own orgs' records (when they hold a data role) and what each
// grant to them or their org reached.
func (c *computer) worstCase(ctx context.Context) error {
	schemas, err := c.st.ListSchemas(ctx)
	if err != nil {
		return fmt.Errorf("schemas: %w", err)
	}
	var collections []string
	for _, s := range schemas {
		collections = append(collections, s.Collection)
	}
	slices.Sort(collections)

	// Who: the suspect principals, the principals of suspect devices, the
	// principals seen in the suspects' events, and the suspect orgs.
	principals := map[string]bool{}
	for _, p := range c.in.Principals {
		principals[p] = true
	}
	for p := range c.actors {
		principals[p] = true
	}
	for _, d := range c.in.Devices {
		dev, ok, err := found(c.dir.Device(ctx, d))
		if err != nil {
			return fmt.Errorf("device %s: %w", d, err)
		} else if ok && dev.Principal != "" {
			principals[dev.Principal] = true
		}
	}
	type who struct {
		org       string
		principal string // "" for a whole org
		dataRole  bool
	}
	var whos []who
	for _, o := range c.in.Orgs {
		whos = append(whos, who{org: o, dataRole: true})
	}
	for _, id := range slices.Sorted(maps.Keys(principals)) {
		p, ok, err := found(c.dir.Principal(ctx, id))
		if err != nil {
			return fmt.Errorf("principal %s: %w", id, err)
		}
		if !ok {
			// A principal the control plane no longer knows: its org from its events.
			if org := c.actors[id]; org != "" {
				whos = append(whos, who{org: org, principal: id, dataRole: true})
			}
			continue
		}
		data := false
		for _, r := range dataRoles {
			data = data || p.HasRole(r)
		}
		whos = append(whos, who{org: p.Org, principal: p.ID, dataRole: data})
	}

	all, err := c.dir.Grants(ctx)
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	var grants []sekisho.GrantEntry
	for _, g := range all {
		if c.grantLive(g) {
			grants = append(grants, g)
		}
	}

	cells := map[cellKey]*cell{}
	add := func(coll, org string, regions []string, via string) {
		k := cellKey{coll, org}
		cl := cells[k]
		if cl == nil {
			cl = &cell{regions: map[string]bool{}, via: map[string]bool{}}
			cells[k] = cl
		}
		cl.via[via] = true
		if len(regions) == 0 || slices.Contains(regions, "*") {
			cl.all = true
		}
		for _, r := range regions {
			cl.regions[r] = true
		}
	}
	for _, w := range whos {
		if w.dataRole {
			for _, coll := range collections {
				add(coll, w.org, nil, "own org "+w.org)
			}
		}
		for _, g := range grants {
			if g.GranteeOrg != w.org {
				continue
			}
			if w.principal != "" && g.GranteePrincipal != "" && g.GranteePrincipal != w.principal {
				continue
			}
			for _, coll := range g.Collections {
				if coll == "*" {
					for _, cn := range collections {
						add(cn, g.GrantorOrg, g.Regions, "grant "+g.ID)
					}
					continue
				}
				add(coll, g.GrantorOrg, g.Regions, "grant "+g.ID)
			}
		}
	}

	// The controller's view (a grantor looking into a grantee's misuse)
	// counts, like its events, only the controller's records: not the
	// grantee's own, nor what other grantors gave.
	if ctl := c.in.Controller; ctl != "" {
		for k := range cells {
			if k.org != ctl {
				delete(cells, k)
			}
		}
	}
	keys := make([]cellKey, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cellKey) int {
		if n := strings.Compare(a.collection, b.collection); n != 0 {
			return n
		}
		return strings.Compare(a.org, b.org)
	})
	for _, k := range keys {
		cl := cells[k]
		n, err := c.countCell(ctx, k, cl)
		if err != nil {
			return err
		}
		r := Reach{Collection: k.collection, Org: k.org, Via: slices.Sorted(maps.Keys(cl.via)), Records: n}
		if !cl.all {
			r.Regions = slices.Sorted(maps.Keys(cl.regions))
		}
		c.sc.WorstCase = append(c.sc.WorstCase, r)
		c.sc.WorstCaseSubjects += n
	}
	// The log can show more than the stored roles and grants allow today
	// (a grant since deleted, a record since erased): what the suspects
	// touched is in the worst case whatever the configuration says now.
	var extra int64
	for _, s := range c.sc.Subjects {
		if ctl := c.in.Controller; ctl != "" && s.Org != ctl {
			continue
		}
		cl := cells[cellKey{s.Collection, s.Org}]
		if s.erased || cl == nil || !(cl.all || cl.regions[s.Region]) {
			extra++
		}
	}
	if extra > 0 {
		c.sc.WorstCase = append(c.sc.WorstCase, Reach{Collection: "*", Org: "*", Via: []string{"audit log: touched outside the stored roles and grants, or erased since"}, Records: extra})
		c.sc.WorstCaseSubjects += extra
	}
	return nil
}

// grantLive reports whether g let its grantee read during the window: it
// was approved (active, or revoked after the window began), valid for part
// of the window, and names a read action.
func (c *computer) grantLive(g sekisho.GrantEntry) bool {
	switch g.Status {
	case sekisho.StatusActive:
	case sekisho.StatusRevoked:
		if g.RevokedAt == nil || !g.RevokedAt.After(c.in.Since) {
			return false
		}
	default:
		return false
	}
	if !g.NotBefore.IsZero() && !g.NotBefore.Before(c.in.Until) {
		return false
	}
	if !g.Expires.IsZero() && !g.Expires.After(c.in.Since) {
		return false
	}
	for _, a := range g.Actions {
		if slices.Contains(readActions, a) || a == "*" {
			return true
		}
	}
	return false
}

func (c *computer) countCell(ctx context.Context, k cellKey, cl *cell) (int64, error) {
	if cl.all {
		n, err := c.st.CountRecords(ctx, k.collection, k.org)
		if err != nil {
			return 0, fmt.Errorf("count records of %s/%s: %w", k.org, k.collection, err)
		}
		return n, nil
	}
	var n int64
	after := ""
	for {
		ids, err := c.st.ListRecordIDs(ctx, k.collection, k.org, after, 1000)
		if err != nil {
			return 0, fmt.Errorf("list records of %s/%s: %w", k.org, k.collection, err)
		}
		if len(ids) == 0 {
			return n, nil
		}
		recs, err := c.st.GetRecords(ctx, k.collection, ids)
		if err != nil {
			return 0, fmt.Errorf("records of %s/%s: %w", k.org, k.collection, err)
		}
		for _, r := range recs {
			if !r.Erased() && cl.regions[r.Region] {
				n++
			}
		}
		after = ids[len(ids)-1]
	}
}

// found turns a directory's ENotFound into (zero, false, nil).
func found[T any](v T, err error) (T, bool, error) {
	if sekisho.Code(err) == sekisho.ENotFound {
		return v, false, nil
	}
	return v, err == nil, err
}
