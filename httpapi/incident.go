package httpapi

import (
	"bytes"
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

func (s *Server) createIncident(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	// Refused before the body is read, as before the service existed.
	if err := s.incidents.Authorize(r.Context(), c, nil); err != nil {
		return err
	}
	var req incident.Request
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	in, err := s.incidents.Open(r.Context(), c, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/incidents/"+in.ID)
	return writeJSON(w, http.StatusCreated, in)
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	out, err := s.incidents.List(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

// incident reads the incident of the path, if the caller may see it.
func (s *Server) incident(r *http.Request, c sekisho.Caller) (*incident.Incident, error) {
	return s.incidents.Get(r.Context(), c, r.PathValue("id"))
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
	sc, err := incident.Compute(r.Context(), s.vault.Store(), s.dir, s.logStores(), in)
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
	sc, err := incident.Compute(r.Context(), s.vault.Store(), s.dir, s.logStores(), in)
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
	cfg.Directory, cfg.Rules = s.dir, guard.Rules{Store: s.vault.Store()}
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
