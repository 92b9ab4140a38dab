package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/report"
)

func (s *Server) incidentRoutes() []route {
	return []route{
		{"GET", "/v1/incidents", true, false, s.listIncidents},
		{"POST", "/v1/incidents", true, false, s.createIncident},
		{"GET", "/v1/incidents/{id}", true, false, s.getIncident},
		{"GET", "/v1/incidents/{id}/scope", true, false, s.incidentScope},
		{"GET", "/v1/incidents/{id}/report/{kind}", true, false, s.incidentReport},
		{"GET", "/v1/reports/progress", true, false, s.progressReport},
		{"GET", "/v1/orgs/{id}/profile", true, false, s.getOrgProfile},
		{"PUT", "/v1/orgs/{id}/profile", true, false, s.putOrgProfile},
		{"GET", "/v1/collections/{c}/records/{id}/access-report", true, false, s.subjectAccessReport},
		{"GET", "/v1/reports/provision", true, false, s.provisionReport},
	}
}

// IncidentRequest is the body of POST /v1/incidents.
type IncidentRequest struct {
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
	CiphertextCopy *incident.CiphertextCopy `json:"ciphertext_copy,omitempty"`
}

// canIncident: incidents are for the instance's auditors, and for an org's
// admins about their own org (its principals, devices and the org itself),
// or, as the grantor (the controller that entrusted the data), about an org
// it granted access to: such an incident is the grantor's view (Controller),
// counting only the events about the grantor's records.
func (s *Server) canIncident(r *http.Request, c sekisho.Caller, in *incident.Incident) error {
	if err := canAudit(c); err != nil {
		return sekisho.Errorf(sekisho.EForbidden, "incidents are for admins and auditors")
	}
	if c.HasRole(RoleAuditor) || in == nil {
		return nil
	}
	st := s.vault.Store()
	grantees := map[string]bool{}
	if gs, err := st.ListObjects(r.Context(), "grant", ""); err == nil {
		for _, o := range gs {
			var g struct {
				Grantor string `json:"grantor_org"`
				Grantee string `json:"grantee_org"`
			}
			if json.Unmarshal(o.Body, &g) == nil && g.Grantor == c.Org {
				grantees[g.Grantee] = true
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
	}{{"principal", in.Principals}, {"device", in.Devices}} {
		for _, id := range kind.ids {
			o, err := st.GetObject(r.Context(), kind.kind, id)
			if err != nil {
				return sekisho.Errorf(sekisho.EForbidden, "an org admin may only open incidents about known %ss (%s)", kind.kind, id)
			}
			if err := check(o.Org, kind.kind+" "+id); err != nil {
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

func (s *Server) createIncident(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.canIncident(r, c, nil); err != nil {
		return err
	}
	var req IncidentRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	in := &incident.Incident{Principals: req.Principals, Devices: req.Devices, Orgs: req.Orgs, Since: req.Since, Until: req.Until,
		DiscoveredAt: req.DiscoveredAt, Cause: req.Cause, Description: req.Description, CreatedBy: c.Principal, CiphertextCopy: req.CiphertextCopy}
	if err := in.Validate(); err != nil {
		return err
	}
	if err := s.canIncident(r, c, in); err != nil {
		return err
	}
	// Write-ahead: the event is durable before the incident exists.
	in.ID = incident.NewID()
	if s.auditLog != nil {
		ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Source: c.Source,
			Action: "incident.create", Decision: sekisho.Allow, Policy: "incident", Detail: "incident " + in.ID}
		if _, err := s.auditLog.Append(r.Context(), ev); err != nil {
			return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable", Err: err}
		}
	}
	if err := incident.Create(r.Context(), s.vault.Store(), in, s.now()); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/incidents/"+in.ID)
	return writeJSON(w, http.StatusCreated, in)
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.canIncident(r, c, nil); err != nil {
		return err
	}
	all, err := incident.List(r.Context(), s.vault.Store())
	if err != nil {
		return err
	}
	out := []*incident.Incident{}
	for _, in := range all {
		if s.canIncident(r, c, in) == nil {
			out = append(out, in)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

// incident reads the incident of the path, if the caller may see it.
func (s *Server) incident(r *http.Request, c sekisho.Caller) (*incident.Incident, error) {
	if err := s.canIncident(r, c, nil); err != nil {
		return nil, err
	}
	in, err := incident.Get(r.Context(), s.vault.Store(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.canIncident(r, c, in); err != nil {
		return nil, sekisho.Errorf(sekisho.ENotFound, "incident %s not found", in.ID)
	}
	return in, nil
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	in, err := s.incident(r, c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) incidentScope(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	in, err := s.incident(r, c)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if !slices.Contains(incident.Formats, format) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "format", "format %q: want one of %v", format, incident.Formats)
	}
	sc, err := incident.Compute(r.Context(), s.vault.Store(), s.logStores(), in)
	if err != nil {
		return err
	}
	hideDecoys(sc, c)
	var b bytes.Buffer
	if err := incident.Render(&b, sc, format, r.URL.Query().Get("region")); err != nil {
		return err
	}
	w.Header().Set("Content-Type", incident.ContentType(format))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Sekisho-Audit-Size", fmt.Sprint(sc.LogSize))
	if len(sc.LogSizes) > 1 {
		var sizes []string
		for _, rl := range s.auditLogs.All() { // more than one log: auditLogs is set
			sizes = append(sizes, fmt.Sprintf("%s=%d", rl.Name(), sc.LogSizes[rl.Name()]))
		}
		w.Header().Set("Sekisho-Audit-Sizes", strings.Join(sizes, ", "))
	}
	_, err = w.Write(b.Bytes())
	return err
}

// hideDecoys drops from an org admin's scope the record ids of its
// principals' touches of another org's decoys (guard.DecoyHidden): the
// attempts stay counted, their records are not named.
func hideDecoys(sc *incident.Scope, c sekisho.Caller) {
	if c.HasRole(RoleAuditor) {
		return
	}
	for i := range sc.Denied {
		a := &sc.Denied[i]
		if guard.DecoyHidden(a.Policy, a.RecordOrgs, c.Org) {
			a.Records, a.Reason = nil, guard.DecoyHiddenText(a.RecordOrgs)
		}
	}
}

func (s *Server) incidentReport(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	in, err := s.incident(r, c)
	if err != nil {
		return err
	}
	kind := r.PathValue("kind")
	if kind == report.KindProgress {
		return s.progressReport(w, r, c)
	}
	if !slices.Contains(report.Kinds, kind) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "kind", "report kind %q: want one of %v", kind, report.Kinds)
	}
	format, err := reportFormat(r)
	if err != nil {
		return err
	}
	cfg, err := s.reportConfig(r, c, kind)
	if err != nil {
		return err
	}
	sc, err := incident.Compute(r.Context(), s.vault.Store(), s.logStores(), in)
	if err != nil {
		return err
	}
	hideDecoys(sc, c)
	rep, err := report.Breach(kind, in, sc, cfg)
	if err != nil {
		return err
	}
	return writeReport(w, rep, format)
}

func (s *Server) progressReport(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	if !c.HasRole(RoleAuditor) {
		return sekisho.Errorf(sekisho.EForbidden, "the progress report covers every org: it is for auditors")
	}
	format, err := reportFormat(r)
	if err != nil {
		return err
	}
	cfg, err := s.reportConfig(r, c, report.KindProgress)
	if err != nil {
		return err
	}
	if v := r.URL.Query().Get("since"); v != "" {
		if cfg.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return sekisho.FieldErrorf(sekisho.EInvalid, "since", "since %q is not an RFC 3339 time", v)
		}
		if !cfg.Since.Before(cfg.Now) {
			return sekisho.FieldErrorf(sekisho.EInvalid, "since", "since must be in the past")
		}
	}
	// Where the keys live, per region: the providers this server runs with.
	custody := keys.CustodyOf(s.vault.Keys())
	if custody.Default.Provider != "" {
		cfg.Keys = &custody
	}
	rep, err := report.Progress(r.Context(), s.vault.Store(), cfg)
	if err != nil {
		return err
	}
	return writeReport(w, rep, format)
}

// reportConfig is the configuration of a report of kind for the caller: the
// language of ?lang= (the kind's default when absent) and the controller of
// the caller's org profile, else the server's configured controller.
func (s *Server) reportConfig(r *http.Request, c sekisho.Caller, kind string) (report.Config, error) {
	lang, err := report.Lang(kind, r.URL.Query().Get("lang"))
	if err != nil {
		return report.Config{}, err
	}
	ctl, err := report.ControllerOf(r.Context(), s.vault.Store(), c.Org, s.reports.Controller)
	if err != nil {
		return report.Config{}, err
	}
	return report.Config{Controller: ctl, Lang: lang, Now: s.now(), Logs: s.logStores()}, nil
}

// getOrgProfile: an org's admins and the instance's auditors read its
// profile (the controller named in its reports).
func (s *Server) getOrgProfile(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	org := r.PathValue("id")
	if !(c.HasRole(RoleAuditor) || c.HasRole(RoleAdmin) && c.Org == org) {
		return sekisho.Errorf(sekisho.EForbidden, "an org's profile is for its admins and for auditors")
	}
	p, _, err := report.GetProfile(r.Context(), s.vault.Store(), org)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// OrgProfileRequest is the body of PUT /v1/orgs/{id}/profile.
type OrgProfileRequest struct {
	Controller report.Controller `json:"controller"`
}

// putOrgProfile: an org's admins set its profile; the change is audited.
func (s *Server) putOrgProfile(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	org := r.PathValue("id")
	if !c.HasRole(RoleAdmin) || c.Org != org {
		return sekisho.Errorf(sekisho.EForbidden, "only an admin of %s sets its profile", org)
	}
	var req OrgProfileRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	p := &report.OrgProfile{Org: org, Controller: req.Controller, UpdatedAt: s.now().UTC(), UpdatedBy: c.Principal}
	if err := p.Controller.Validate(); err != nil {
		return err
	}
	if s.auditLog != nil {
		ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Source: c.Source,
			Action: "org.profile", Decision: sekisho.Allow, Policy: "org-admin", Detail: "profile of org " + org}
		if _, err := s.auditLog.Append(r.Context(), ev); err != nil {
			return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable", Err: err}
		}
	}
	if err := report.PutProfile(r.Context(), s.vault.Store(), p); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func reportFormat(r *http.Request) (string, error) {
	f := r.URL.Query().Get("format")
	if f == "" {
		f = "md"
	}
	if !slices.Contains(report.Formats, f) {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, "format", "format %q: want md, json or pdf", f)
	}
	return f, nil
}

func writeReport(w http.ResponseWriter, rep *report.Report, format string) error {
	b, ct, err := report.Render(rep, format)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(b)
	return err
}

// logStores returns every audit log's store: the set's, or the vault
// store's own log when the server was given no log.
func (s *Server) logStores() []sekisho.LogStore {
	if s.auditLogs == nil {
		return []sekisho.LogStore{{Store: s.vault.Store()}}
	}
	return s.auditLogs.Stores()
}
