package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/report"
)

// Purposes of the regulators' and the persons' requests.
const (
	PurposeSubjectAccess      = "subject-access"
	PurposeBreachNotification = "breach-notification"
)

// subjectAccessReport: GET /v1/collections/{c}/records/{id}/access-report.
// An admin (of the record's org, as the policies decide) or an auditor asks;
// the record is opened under purpose subject-access, through the vault, so
// the read is authorised, guarded and audited like any other; then a
// checkpoint is signed, and every event naming the record comes with its
// inclusion proof at that checkpoint.
func (s *Server) subjectAccessReport(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := canAudit(c); err != nil {
		return sekisho.Errorf(sekisho.EForbidden, "subject access reports are for admins and auditors")
	}
	if p := r.Header.Get(HeaderPurpose); p != "" && p != PurposeSubjectAccess {
		return sekisho.FieldErrorf(sekisho.EInvalid, "purpose", "a subject access report is made under purpose %s, not %s", PurposeSubjectAccess, p)
	}
	if s.auditLog == nil {
		return sekisho.Errorf(sekisho.EUnavailable, "the audit log is unavailable")
	}
	format, err := reportFormat(r)
	if err != nil {
		return err
	}
	cfg, err := s.reportConfig(r, c, report.KindAccess)
	if err != nil {
		return err
	}
	c.Purpose = PurposeSubjectAccess
	coll, id := r.PathValue("c"), r.PathValue("id")
	rec, err := s.vault.Get(r.Context(), c, coll, id, nil)
	if err != nil {
		return err
	}
	// The record's events are in its region's log (the default log when
	// the region has no store of its own).
	l := s.auditLogs.For(rec.Region)
	cp, err := l.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	acc, err := report.Accesses(r.Context(), s.dir, l.Store(), coll, id, cp.Size, cp)
	if err != nil {
		return err
	}
	rep, err := report.SubjectAccess(rec, acc, cp, cfg)
	if err != nil {
		return err
	}
	w.Header().Set("Sekisho-Audit-Size", itoa64(cp.Size))
	return writeReport(w, rep, format)
}

// provisionReport: GET /v1/reports/provision?org=O&since=T&until=T: the
// record of provision to third parties of org O, for O's admins and for
// auditors.
func (s *Server) provisionReport(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	q := r.URL.Query()
	org := q.Get("org")
	if org == "" {
		org = c.Org
	}
	if !(c.HasRole(RoleAuditor) || c.HasRole(RoleAdmin) && c.Org == org) {
		return sekisho.Errorf(sekisho.EForbidden, "the record of provision of %s is for its admins and for auditors", org)
	}
	var since, until time.Time
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		v := q.Get(p.name)
		if v == "" {
			return sekisho.FieldErrorf(sekisho.EInvalid, p.name, "%s is required (RFC 3339)", p.name)
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return sekisho.FieldErrorf(sekisho.EInvalid, p.name, "%s %q is not an RFC 3339 time", p.name, v)
		}
		*p.t = t
	}
	if !until.After(since) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "until", "until must be after since")
	}
	format := q.Get("format")
	if format == "" {
		format = "md"
	}
	if !slices.Contains([]string{"md", "csv", "json", "pdf"}, format) {
		return sekisho.FieldErrorf(sekisho.EInvalid, "format", "format %q: want md, csv, json or pdf", format)
	}
	cfg, err := s.reportConfig(r, c, report.KindProvide)
	if err != nil {
		return err
	}
	rows, sizes, err := report.Provisions(r.Context(), s.auditLogs.Stores(), org, since, until)
	if err != nil {
		return err
	}
	w.Header().Set("Sekisho-Audit-Size", itoa64(sizes["default"]))
	if format == "csv" {
		b, err := report.ProvisionCSV(rows)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, err = w.Write(b)
		return err
	}
	rep, err := report.ProvisionReport(org, since, until, rows, sizes, cfg)
	if err != nil {
		return err
	}
	return writeReport(w, rep, format)
}

func itoa64(n uint64) string { return strconv.FormatUint(n, 10) }
