package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/report"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	discovered = time.Date(2023, 10, 27, 9, 0, 0, 0, time.UTC)
	generated  = time.Date(2023, 10, 29, 12, 0, 0, 0, time.UTC)
)

// fixture is a fixed incident and scope, shaped like the 2023 case.
func fixture() (*incident.Incident, *incident.Scope) {
	in := &incident.Incident{ID: "inc-0123456789abcdef", Principals: []string{"sub-admin"}, Devices: []string{"dev-attacker"},
		Orgs: []string{"subcontractor"}, Since: time.Date(2023, 9, 14, 0, 0, 0, 0, time.UTC), Until: time.Date(2023, 10, 27, 0, 0, 0, 0, time.UTC),
		DiscoveredAt: discovered, Cause: incident.CauseMalware}
	sc := &incident.Scope{
		Incident:        in.ID,
		Suspects:        incident.Suspects{Principals: in.Principals, Devices: in.Devices, Orgs: in.Orgs},
		Window:          incident.Window{Since: "2023-09-14T00:00:00Z", Until: "2023-10-27T00:00:00Z"},
		SubjectsExposed: 2400, FieldsExposed: 9100, SubjectsPossible: 350, DeniedAttempts: 42, WorstCaseSubjects: 520000,
		ByCollection: map[string]*incident.CollectionCount{
			"users":     {SubjectsExposed: 1500, FieldsExposed: 6000, Fields: []string{"age_group", "country", "gender"}, SubjectsPossible: 300, DeniedAttempts: 40},
			"employees": {SubjectsExposed: 900, FieldsExposed: 3100, Fields: []string{"email", "name", "salary_band"}, SubjectsPossible: 50, DeniedAttempts: 2},
		},
		ByRegion: map[string]*incident.RegionCount{
			"jp": {Country: "JP", SubjectsExposed: 1300, FieldsExposed: 5000, SubjectsPossible: 200},
			"th": {Country: "TH", SubjectsExposed: 600, FieldsExposed: 2200, SubjectsPossible: 100},
			"tw": {Country: "TW", SubjectsExposed: 300, FieldsExposed: 1200, SubjectsPossible: 30},
			"id": {Country: "ID", SubjectsExposed: 200, FieldsExposed: 700, SubjectsPossible: 20},
		},
		ByClassification: map[string]*incident.ClassCount{
			"usage":      {SubjectsExposed: 1500, FieldsExposed: 4500, Fields: []string{"users.age_group", "users.country", "users.gender"}},
			"identifier": {SubjectsExposed: 900, FieldsExposed: 900, Fields: []string{"employees.name"}},
			"contact":    {SubjectsExposed: 900, FieldsExposed: 900, Fields: []string{"employees.email"}},
			"sensitive":  {SubjectsExposed: 12, FieldsExposed: 12, Fields: []string{"employees.salary_band"}},
		},
		LogSize: 1234567, Events: 5120,
	}
	return in, sc
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report/ -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./report/ -update and review the diff)", path)
	}
}

func TestBreachGolden(t *testing.T) {
	in, sc := fixture()
	cfg := report.Config{Controller: "Example Operator K.K.", Now: generated}
	for _, kind := range []string{report.KindAPPI, report.KindPDPA, report.KindPDPID, report.KindPDPATW, report.KindGDPR} {
		t.Run(kind, func(t *testing.T) {
			r, err := report.Breach(kind, in, sc, cfg)
			if err != nil {
				t.Fatal(err)
			}
			md := report.Markdown(r)
			golden(t, kind+".md", md)
			if !bytes.Contains(md, []byte(report.ToCompleteMark)) {
				t.Errorf("%s: nothing marked for a person to complete", kind)
			}
			js, err := report.JSON(r)
			if err != nil {
				t.Fatal(err)
			}
			var back report.Report
			if err := json.Unmarshal(js, &back); err != nil || back.Kind != kind || back.Incident != in.ID {
				t.Errorf("json: %v %+v", err, back.Kind)
			}
			pdf, err := report.PDF(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("%%EOF")) {
				t.Errorf("%s: not a PDF: %q", kind, pdf[:min(len(pdf), 16)])
			}
		})
	}
}

func TestAPPIRules(t *testing.T) {
	in, sc := fixture()
	cfg := report.Config{Now: generated}
	cases := []struct {
		name      string
		cause     string
		exposed   int
		sensitive bool
		required  bool
		finalDays int
	}{
		{"unauthorized access", incident.CauseUnauthorizedAccess, 10, false, true, 60},
		{"over 1000 persons", incident.CauseMisdelivery, 1001, false, true, 30},
		{"exactly 1000 persons", incident.CauseMisdelivery, 1000, false, false, 30},
		{"sensitive data", incident.CauseLoss, 1, true, true, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in2, sc2 := *in, *sc
			in2.Cause = tc.cause
			sc2.SubjectsExposed, sc2.SubjectsPossible = tc.exposed, 0
			sc2.ByClassification = map[string]*incident.ClassCount{}
			if tc.sensitive {
				sc2.ByClassification["sensitive"] = &incident.ClassCount{SubjectsExposed: 1, FieldsExposed: 1}
			}
			r, err := report.Breach(report.KindAPPI, &in2, &sc2, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Required != tc.required {
				t.Errorf("required = %v (%v), want %v", r.Required, r.Because, tc.required)
			}
			if got := r.Deadline[1].Due.Sub(discovered); got != time.Duration(tc.finalDays)*24*time.Hour {
				t.Errorf("final report due after %v, want %d days", got, tc.finalDays)
			}
			if got := r.Deadline[0].Due.Sub(discovered); got > 5*24*time.Hour || got < 3*24*time.Hour {
				t.Errorf("preliminary report due after %v, want 3 to 5 days", got)
			}
		})
	}
	if _, err := report.Breach("nope", in, sc, cfg); sekisho.Code(err) != sekisho.EInvalid {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestRegionalDeadlines(t *testing.T) {
	in, sc := fixture()
	for kind, want := range map[string]time.Duration{report.KindPDPA: 72 * time.Hour, report.KindPDPID: 72 * time.Hour, report.KindGDPR: 72 * time.Hour} {
		r, err := report.Breach(kind, in, sc, report.Config{Now: generated})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Deadline[0].Due.Sub(discovered); got != want {
			t.Errorf("%s: due after %v, want %v", kind, got, want)
		}
	}
	r, _ := report.Breach(report.KindPDPA, in, sc, report.Config{Now: generated})
	if r.Persons.InScope != 700 || r.Persons.Region != "th" {
		t.Errorf("pdpa persons in Thailand: %+v", r.Persons)
	}
}

func TestProgressGolden(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ss, _ := schemas.Defaults()
	for _, s := range ss {
		s.Version = 1
		if err := st.PutSchema(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*sekisho.SealedRecord
	for i, id := range []string{"u1", "u2", "u3"} {
		recs = append(recs, &sekisho.SealedRecord{ID: id, Collection: "users", Org: "operator", Region: []string{"jp", "th", "tw"}[i], KEKVersion: 1,
			WrappedDEK: []byte("k"), Fields: map[string][]byte{}, Index: map[string][]byte{}, Version: 1, CreatedAt: generated, UpdatedAt: generated})
	}
	if err := st.CreateRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	put := func(kind, id string, v any) {
		b, _ := json.Marshal(v)
		if err := st.PutObject(ctx, &sekisho.Object{Kind: kind, ID: id, Version: 1, Body: b, Updated: generated}); err != nil {
			t.Fatal(err)
		}
	}
	put(access.KindPrincipal, "alice", access.Principal{ID: "alice", Org: "operator", Roles: []string{"admin"}, Status: access.StatusActive})
	put(access.KindPrincipal, "bob", access.Principal{ID: "bob", Org: "affiliate", Roles: []string{"member"}, Status: access.StatusSuspended})
	put(access.KindDevice, "d1", access.Device{ID: "d1", Principal: "alice", Org: "operator", Status: access.StatusApproved})
	put(access.KindDevice, "d2", access.Device{ID: "d2", Principal: "bob", Org: "affiliate", Status: access.StatusPending})
	put(access.KindGrant, "g-1", access.Grant{ID: "g-1", GrantorOrg: "operator", GranteeOrg: "affiliate", Status: access.StatusActive,
		Expires: generated.Add(30 * 24 * time.Hour), BudgetPerHour: 100})
	put(access.KindGrant, "g-2", access.Grant{ID: "g-2", GrantorOrg: "operator", GranteeOrg: "subcontractor", Status: access.StatusActive,
		Expires: generated.Add(-24 * time.Hour)})
	in, _ := fixture()
	if err := incident.Create(ctx, st, in, generated); err != nil {
		t.Fatal(err)
	}
	r, err := report.Progress(ctx, st, report.Config{Controller: "Example Operator K.K.", Now: generated})
	if err != nil {
		t.Fatal(err)
	}
	md := report.Markdown(r)
	golden(t, "progress.md", md)
	for _, want := range []string{"3 live records in 3 collections, all sealed (100%)", "2 devices enrolled: 1 approved, 1 pending",
		"1 active grants past their expiry", "Not available: the store holds no guard rules"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("progress report lacks %q", want)
		}
	}
	pdf, err := report.PDF(r)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("progress pdf: %v", err)
	}
}
