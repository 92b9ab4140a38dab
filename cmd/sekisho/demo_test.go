package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/demo"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/sqlite"
)

// independentCount counts, straight from a vault's audit events, the data
// subjects and field values returned to the incident's suspects in its
// window: the definition of "exposed", computed without the incident package.
func independentCount(t *testing.T, dir string, inc *incident.Incident) (subjects, fields int) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	exposed := map[string]map[string]bool{} // collection/id -> field names
	for from := uint64(0); ; {
		entries, err := st.AuditLeaves(ctx, from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			ev, err := sekisho.UnmarshalEvent(e.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			from = e.Index + 1
			if ev.Time.Before(inc.Since) || !ev.Time.Before(inc.Until) || ev.Decision != sekisho.Allow || len(ev.Fields) == 0 {
				continue
			}
			if !slices.Contains(inc.Principals, ev.Principal) && !slices.Contains(inc.Devices, ev.Device) && !slices.Contains(inc.Orgs, ev.Org) {
				continue
			}
			for _, id := range ev.Records {
				k := ev.Collection + "/" + id
				if exposed[k] == nil {
					exposed[k] = map[string]bool{}
				}
				for _, f := range ev.Fields {
					exposed[k][f] = true
				}
			}
		}
	}
	for _, fs := range exposed {
		fields += len(fs)
	}
	return len(exposed), fields
}

// The demo's numbers are the audit log's: an independent count of the
// events gives the same subjects and fields, for both vaults, and the
// printed side-by-side table shows those numbers.
func TestDemoNumbersEqualTheAuditLog(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the chain on two vaults")
	}
	setMasterKey(t)
	data := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	res, err := runDemo(context.Background(), demo.Options{Data: data, Records: 4000, Seed: 7, Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"token-key-mismatch", "no-grant", "grant-field-not-listed", "grant-budget-exceeded", "quarantined", "incident id: " + res.IncidentID} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for i, sc := range []*incident.Scope{res.ZeroTrust, res.Shared} {
		subjects, fields := independentCount(t, res.Dirs[i], res.Suspects)
		if sc.SubjectsExposed != subjects || sc.FieldsExposed != fields {
			t.Errorf("vault %d: scope says %d subjects / %d fields, the audit events %d / %d", i, sc.SubjectsExposed, sc.FieldsExposed, subjects, fields)
		}
	}
	row := regexp.MustCompile(`data subjects exposed \(values returned\)\s+(\d+)\s+(\d+)`).FindStringSubmatch(text)
	if row == nil || row[1] != fmt.Sprint(res.ZeroTrust.SubjectsExposed) || row[2] != fmt.Sprint(res.Shared.SubjectsExposed) {
		t.Errorf("side-by-side row %v, want %d and %d", row, res.ZeroTrust.SubjectsExposed, res.Shared.SubjectsExposed)
	}
	// Zero trust stopped the bulk read: far less exposed than shared trust,
	// and none of the messaging users.
	if res.ZeroTrust.SubjectsExposed == 0 || res.ZeroTrust.SubjectsExposed*5 > res.Shared.SubjectsExposed {
		t.Errorf("zero trust exposed %d, shared trust %d", res.ZeroTrust.SubjectsExposed, res.Shared.SubjectsExposed)
	}
	if c := res.ZeroTrust.ByCollection["users"]; c != nil && c.SubjectsExposed != 0 {
		t.Errorf("zero trust exposed %d users", c.SubjectsExposed)
	}
	// The vault left behind verifies, and its scope can be recomputed offline.
	if _, code := runCLI(t, "audit", "verify", "--data", data); code != 0 {
		t.Errorf("audit verify of the demo vault: exit %d", code)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(data, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	inc, err := incident.Get(context.Background(), st, res.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := incident.Compute(context.Background(), st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, inc)
	if err != nil {
		t.Fatal(err)
	}
	if again.SubjectsExposed != res.ZeroTrust.SubjectsExposed || again.DeniedAttempts != res.ZeroTrust.DeniedAttempts {
		t.Errorf("recomputed scope %d/%d differs from the demo's %d/%d", again.SubjectsExposed, again.DeniedAttempts, res.ZeroTrust.SubjectsExposed, res.ZeroTrust.DeniedAttempts)
	}
	st.Close()

	// The notices for the demo's incident: one list per region, only the
	// contact fields, each person's read audited under breach-notification.
	notices := filepath.Join(t.TempDir(), "notices")
	out2, code := runCLI(t, "incident", "notices", "--data", data, "--incident", res.IncidentID, "--out", notices)
	if code != 0 {
		t.Fatalf("incident notices: %d %s", code, out2)
	}
	regionsSeen := again.Regions()
	sch, err := sqlite.OpenReadOnly(context.Background(), filepath.Join(data, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	emp, err := sch.GetSchema(context.Background(), "employees")
	sch.Close()
	if err != nil {
		t.Fatal(err)
	}
	var contact []string
	for _, f := range emp.Fields {
		if f.Classification == sekisho.ClassContact {
			contact = append(contact, f.Name)
		}
	}
	slices.Sort(contact)
	emailCol := 3 + slices.Index(contact, "email")
	files, _ := filepath.Glob(filepath.Join(notices, "notify-*.csv"))
	if len(files) != len(regionsSeen) || len(files) == 0 {
		t.Errorf("notify files %v, regions of the scope %v", files, regionsSeen)
	}
	listed := map[string]bool{}
	for _, f := range files {
		rows, err := csv.NewReader(mustOpen(t, f)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows[0], append([]string{"collection", "record_id", "region"}, contact...)) {
			t.Errorf("%s header %v: want the contact fields only (employees: %v)", f, rows[0], contact)
		}
		for _, r := range rows[1:] {
			if emailCol < 3 || !strings.Contains(r[emailCol], "@") {
				t.Errorf("%s: no email for %v", f, r)
			}
			listed[r[0]+"/"+r[1]] = true
		}
		region := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "notify-"), ".csv")
		for _, lang := range incident.RegionLangs(region) {
			b, err := os.ReadFile(filepath.Join(notices, "notice-"+region+"."+lang+".txt"))
			if err != nil || !strings.Contains(string(b), res.IncidentID) {
				t.Errorf("notice %s.%s: %v", region, lang, err)
			}
		}
	}
	if len(listed) != len(again.Subjects) {
		t.Errorf("%d persons listed, the scope has %d", len(listed), len(again.Subjects))
	}
	// An independent count of the audit events: every listed person was
	// read under breach-notification, and only its contact fields.
	st2, err := sqlite.Open(context.Background(), filepath.Join(data, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	readFor := map[string]bool{}
	for from := uint64(0); ; {
		entries, err := st2.AuditLeaves(context.Background(), from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			from = e.Index + 1
			ev, _ := sekisho.UnmarshalEvent(e.Leaf)
			if ev.Purpose != "breach-notification" {
				continue
			}
			if ev.Decision != sekisho.Allow || !slices.Equal(ev.Fields, contact) {
				t.Errorf("event %d under breach-notification: %s %v", e.Index, ev.Decision, ev.Fields)
			}
			for _, id := range ev.Records {
				readFor[ev.Collection+"/"+id] = true
			}
		}
	}
	if len(readFor) != len(listed) {
		t.Errorf("%d persons read under breach-notification, %d listed", len(readFor), len(listed))
	}
	for k := range listed {
		if !readFor[k] {
			t.Errorf("%s listed without an audited read", k)
		}
	}

	// The last line is the incident id, as the README reads it.
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "incident id: "+res.IncidentID {
		t.Errorf("last line %q, want the incident id", last)
	}
	// DIR/admin-profile holds the admin's approved device: served with
	// serve --data DIR, the vault answers that admin.
	if res.Profile != filepath.Join(data, "admin-profile") {
		t.Fatalf("profile %q", res.Profile)
	}
	if fi, err := os.Stat(filepath.Join(res.Profile, "device-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-profile device key: %v", err)
	}
	url, _ := startNodeOn(t, data)
	profile := filepath.Join(t.TempDir(), "admin-profile") // the same key and identity, with this test server's URL
	copyProfile(t, res.Profile, profile, url)
	var who struct{ Principal, Org string }
	if runJSON(t, &who, "whoami", "--profile", profile); who.Principal != "admin" || who.Org != "operator" {
		t.Fatalf("whoami with the demo's admin-profile: %+v", who)
	}
	var list struct{ Incidents []struct{ ID string } }
	if runJSON(t, &list, "incident", "list", "--profile", profile); len(list.Incidents) == 0 || list.Incidents[0].ID != res.IncidentID {
		t.Fatalf("incident list as the demo's admin: %+v", list)
	}
}

func mustOpen(t *testing.T, path string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
