package access

import (
	"context"
	"time"

	"github.com/sekisho/sekisho"
)

// CheckApproverTenure applies the rule of a sensitive grant's second
// approver to another two-person action (a key destruction): the approver
// must have held the admin role, with an approved device, since at least
// MinApproverTenure before the action was requested (at created).
func (s *Service) CheckApproverTenure(ctx context.Context, c sekisho.Caller, what string, created time.Time) error {
	since, err := s.adminSince(ctx, c.Principal)
	if err != nil {
		return err
	}
	if since.IsZero() || since.After(created.Add(-MinApproverTenure)) {
		return sekisho.TypedErrorf(sekisho.EForbidden, "approver-too-recent",
			"%s needs a second admin who held the admin role (and an approved device) at least %s before it was requested (%s); %s did not",
			what, MinApproverTenure, created.Format(time.RFC3339), c.Principal)
	}
	return nil
}
