package incident

import (
	"context"
	"time"

	"github.com/sekisho/sekisho"
)

// Request is what the one who opens an incident says: the body of POST
// /v1/incidents, and what `sekisho incident open` sends or, offline, opens.
type Request struct {
	Principals   []string  `json:"principals"`
	Devices      []string  `json:"devices"`
	Orgs         []string  `json:"orgs"`
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
	DiscoveredAt time.Time `json:"discovered_at"`
	Cause        string    `json:"cause"`
	Description  string    `json:"description,omitempty"`
	// CiphertextCopy names collections whose records were reached as
	// ciphertext only (a copy of the database without the keys).
	CiphertextCopy *CiphertextCopy `json:"ciphertext_copy,omitempty"`
}

// Incident returns the incident the request describes (not validated yet).
func (r Request) Incident() *Incident {
	return &Incident{Principals: r.Principals, Devices: r.Devices, Orgs: r.Orgs, Since: r.Since, Until: r.Until,
		DiscoveredAt: r.DiscoveredAt, Cause: r.Cause, Description: r.Description, CiphertextCopy: r.CiphertextCopy}
}

// Request returns the request that opens in.
func (in *Incident) Request() Request {
	return Request{Principals: in.Principals, Devices: in.Devices, Orgs: in.Orgs, Since: in.Since, Until: in.Until,
		DiscoveredAt: in.DiscoveredAt, Cause: in.Cause, Description: in.Description, CiphertextCopy: in.CiphertextCopy}
}

// Auditor records events durably; *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, ev sekisho.Event) (uint64, error)
}

// Service owns the incidents' control-plane rules: who may open and see an
// incident, and the audit event that opening one writes ahead. The HTTP API
// and the offline CLI both go through it.
type Service struct {
	Store sekisho.Store
	// Directory says who principals and devices are and which grants exist
	// (access.NewDirectory over Store).
	Directory Directory
	// Audit receives the incident.create events (nil: none, for tests).
	Audit Auditor
	Now   func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Authorize says whether c may open or see in (nil: incidents at all).
// Incidents are for the instance's auditors, and for an org's admins about
// their own org (its principals, devices and the org itself), or, as the
// grantor (the controller that entrusted the data), about an org it granted
// access to: such an incident is the grantor's view (Controller), counting
// only the events about the grantor's records. A new incident of that kind
// gets its Controller here.
func (s *Service) Authorize(ctx context.Context, c sekisho.Caller, in *Incident) error {
	if !c.HasRole(sekisho.RoleAuditor) && !c.HasRole(sekisho.RoleAdmin) {
		return sekisho.Errorf(sekisho.EForbidden, "incidents are for admins and auditors")
	}
	if c.HasRole(sekisho.RoleAuditor) || in == nil {
		return nil
	}
	grantees := map[string]bool{}
	if gs, err := s.Directory.Grants(ctx); err == nil {
		for _, g := range gs {
			if g.GrantorOrg == c.Org {
				grantees[g.GranteeOrg] = true
			}
		}
	}
	outside := false
	check := func(org, what string) error {
		switch {
		case org == c.Org:
			return nil
		case grantees[org]:
			outside = true
			return nil
		}
		return sekisho.Errorf(sekisho.EForbidden, "an org admin may only open incidents about its own org, or an org it granted access to, not %s", what)
	}
	for _, o := range in.Orgs {
		if err := check(o, "org "+o); err != nil {
			return err
		}
	}
	for _, kind := range []struct {
		kind string
		ids  []string
		org  func(ctx context.Context, id string) (string, error)
	}{
		{"principal", in.Principals, func(ctx context.Context, id string) (string, error) {
			p, err := s.Directory.Principal(ctx, id)
			return p.Org, err
		}},
		{"device", in.Devices, func(ctx context.Context, id string) (string, error) {
			d, err := s.Directory.Device(ctx, id)
			return d.Org, err
		}},
	} {
		for _, id := range kind.ids {
			org, err := kind.org(ctx, id)
			if err != nil {
				return sekisho.Errorf(sekisho.EForbidden, "an org admin may only open incidents about known %ss (%s)", kind.kind, id)
			}
			if err := check(org, kind.kind+" "+id); err != nil {
				return err
			}
		}
	}
	if outside || in.Controller != "" {
		if in.Controller == "" && in.CreatedAt.IsZero() {
			in.Controller = c.Org // a new incident: the grantor's view
		}
		if in.Controller != c.Org {
			return sekisho.Errorf(sekisho.EForbidden, "this incident is %s's view", in.Controller)
		}
	}
	return nil
}

// Open records the incident req describes, opened by c: authorised,
// validated, its incident.create event durable in the audit log before the
// incident is stored (write-ahead). An offline opening (c.Source "local")
// says so in the event's detail.
func (s *Service) Open(ctx context.Context, c sekisho.Caller, req Request) (*Incident, error) {
	if err := s.Authorize(ctx, c, nil); err != nil {
		return nil, err
	}
	in := req.Incident()
	in.CreatedBy = c.Principal
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := s.Authorize(ctx, c, in); err != nil {
		return nil, err
	}
	in.ID = NewID()
	if s.Audit != nil {
		detail := "incident " + in.ID
		if c.Source == "local" {
			detail += " (opened offline)"
		}
		ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Source: c.Source,
			Action: "incident.create", Decision: sekisho.Allow, Policy: "incident", Detail: detail}
		if _, err := s.Audit.Append(ctx, ev); err != nil {
			return nil, &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable", Err: err}
		}
	}
	if err := Create(ctx, s.Store, in, s.now()); err != nil {
		return nil, err
	}
	return in, nil
}

// List returns the incidents c may see.
func (s *Service) List(ctx context.Context, c sekisho.Caller) ([]*Incident, error) {
	if err := s.Authorize(ctx, c, nil); err != nil {
		return nil, err
	}
	all, err := List(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	out := []*Incident{}
	for _, in := range all {
		if s.Authorize(ctx, c, in) == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// Get returns incident id if c may see it; one c may not see is not found.
func (s *Service) Get(ctx context.Context, c sekisho.Caller, id string) (*Incident, error) {
	if err := s.Authorize(ctx, c, nil); err != nil {
		return nil, err
	}
	in, err := Get(ctx, s.Store, id)
	if err != nil {
		return nil, err
	}
	if err := s.Authorize(ctx, c, in); err != nil {
		return nil, sekisho.Errorf(sekisho.ENotFound, "incident %s not found", in.ID)
	}
	return in, nil
}
