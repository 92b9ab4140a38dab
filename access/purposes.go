package access

import (
	"context"
	"slices"

	"github.com/cedar-policy/cedar-go"

	"github.com/sekisho/sekisho"
)

// PurposeInfo says what allows a purpose: the roles whose stored policies
// permit it on their own org's records (with the actions they permit), and
// the active grants the caller can see that list it.
type PurposeInfo struct {
	Purpose string `json:"purpose"`
	// Roles maps a role to the actions its policies permit for this
	// purpose on its own org's records, in some collection.
	Roles  map[string][]string `json:"roles"`
	Grants []PurposeGrant      `json:"grants"`
}

// PurposeGrant is a grant that lists a purpose.
type PurposeGrant struct {
	ID               string   `json:"id"`
	GrantorOrg       string   `json:"grantor_org"`
	GranteeOrg       string   `json:"grantee_org"`
	GranteePrincipal string   `json:"grantee_principal,omitempty"`
	Collections      []string `json:"collections"`
	Actions          []string `json:"actions"`
}

// PurposeNames returns the known purposes, in their configured order.
func (s *Service) PurposeNames() []string { return slices.Clone(s.cfg.Purposes) }

// Purposes lists the known purposes and what allows each: the stored
// policies are asked, as Cedar decides them now, whether a principal
// holding only that role may do each action on its own org's records of
// each of collections; the grants are those of the caller's org (every
// org's for root admins and auditors).
func (s *Service) Purposes(ctx context.Context, c sekisho.Caller, collections []string) ([]PurposeInfo, error) {
	sn, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	grants, err := s.ListGrants(ctx, c, "")
	if err != nil {
		return nil, err
	}
	const probeOrg = "sekisho.purposes" // not a valid org id: no policy names it
	now := s.cfg.Now()
	out := make([]PurposeInfo, 0, len(s.cfg.Purposes))
	for _, p := range s.cfg.Purposes {
		info := PurposeInfo{Purpose: p, Roles: map[string][]string{}, Grants: []PurposeGrant{}}
		for _, role := range Roles {
			caller := sekisho.Caller{Principal: "sekisho.purposes", Org: probeOrg, Device: "sekisho.purposes", Roles: []string{role}}
			var actions []string
			for _, a := range Actions {
				for _, coll := range collections {
					ents, req := cedarRequest(sekisho.AccessRequest{Caller: caller, Action: sekisho.Action(a), Collection: coll}, probeOrg, p, hardware, now)
					if d, _ := cedar.Authorize(sn.own, ents, req); d == cedar.Allow {
						actions = append(actions, a)
						break
					}
				}
			}
			if len(actions) > 0 {
				info.Roles[role] = actions
			}
		}
		for _, g := range grants {
			if g.Status == StatusActive && slices.Contains(g.Purposes, p) {
				info.Grants = append(info.Grants, PurposeGrant{ID: g.ID, GrantorOrg: g.GrantorOrg, GranteeOrg: g.GranteeOrg,
					GranteePrincipal: g.GranteePrincipal, Collections: g.Collections, Actions: g.Actions})
			}
		}
		out = append(out, info)
	}
	return out, nil
}
