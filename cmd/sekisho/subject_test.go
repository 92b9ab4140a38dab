package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
)

// subject report --data: from a stopped instance, the record is opened
// through the vault under purpose subject-access and that read is audited
// like the server's; every event naming the record is listed with a proof,
// and the list equals an independent count of the audit log (issue 21
// point 7, offline).
func TestSubjectReportOffline(t *testing.T) {
	dir, _, _ := incidentDataDir(t)
	ctx := context.Background()
	events := func(id string) (allowed, denied int, subjectAccess int) {
		st, err := openReadOnlyStore(ctx, dir, "")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		es, err := st.QueryAudit(ctx, sekisho.AuditFilter{Record: id, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !slices.Contains(e.Records, id) {
				continue
			}
			var l struct{ Purpose, Collection string }
			json.Unmarshal(e.Leaf, &l)
			if l.Collection != "users" {
				continue
			}
			if e.Decision == "allow" {
				allowed++
			} else {
				denied++
			}
			if l.Purpose == "subject-access" && e.Principal == "cli-subject-access" {
				subjectAccess++
			}
		}
		return
	}
	// The jp record: created by alice, read by mallory.
	st, err := openReadOnlyStore(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := st.ListRecordIDs(ctx, "users", "", "", 10)
	recs, _ := st.GetRecords(ctx, "users", ids)
	st.Close()
	var id string
	for _, r := range recs {
		if r.Region == "jp" {
			id = r.ID
		}
	}
	if id == "" {
		t.Fatal("no jp record")
	}
	if _, _, n := events(id); n != 0 {
		t.Fatalf("%d subject-access reads before the report", n)
	}

	out, code := runCLI(t, "subject", "report", "users", id, "--data", dir, "--format", "json")
	if code != 0 {
		t.Fatalf("subject report --data: exit %d %s", code, out)
	}
	var rep struct {
		Kind    string
		Subject struct {
			ID       string
			Fields   map[string]json.RawMessage
			Accesses []struct {
				Index             uint64
				Purpose, Decision string
				Proof             []string
			}
			CheckpointSize uint64 `json:"checkpoint_size"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	allowed, denied, sa := events(id)
	if sa != 1 {
		t.Errorf("the report's read is audited %d times under subject-access by cli-subject-access, want 1", sa)
	}
	if rep.Kind != "subject-access" || rep.Subject.ID != id || string(rep.Subject.Fields["email"]) != `"u0@example.com"` {
		t.Fatalf("report: %s", out)
	}
	if len(rep.Subject.Accesses) != allowed+denied || allowed < 3 {
		t.Errorf("the report lists %d accesses; the log names the record in %d allowed and %d refused events", len(rep.Subject.Accesses), allowed, denied)
	}
	last := rep.Subject.Accesses[len(rep.Subject.Accesses)-1]
	if last.Purpose != "subject-access" || last.Decision != "allow" {
		t.Errorf("the last access is not the report's own read: %+v", last)
	}
	for _, a := range rep.Subject.Accesses {
		if a.Index < rep.Subject.CheckpointSize && len(a.Proof) == 0 && rep.Subject.CheckpointSize > 1 {
			t.Errorf("event %d below the checkpoint has no proof", a.Index)
		}
	}
	// Japanese, as a PDF: the text of the title through pdftotext.
	pdf := filepath.Join(t.TempDir(), "sa.pdf")
	if _, code := runCLI(t, "subject", "report", "users", id, "--data", dir, "--lang", "ja", "--format", "pdf", "--out", pdf); code != 0 {
		t.Fatalf("pdf: exit %d", code)
	}
	if txt := pdfText(t, pdf); !strings.Contains(txt, "保有個人データの開示及びアクセス記録の報告") || !strings.Contains(txt, id) {
		t.Errorf("Japanese PDF text: %.400s", txt)
	}
	// Refused: a record that does not exist, --store without --data, a
	// held data directory (a running server); nothing is read then.
	if _, code := runCLI(t, "subject", "report", "users", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "--data", dir); code == 0 {
		t.Error("a missing record was reported")
	}
	if out, code := runCLI(t, "subject", "report", "users", id, "--store", "postgres://nobody@127.0.0.1:1/x"); code != exitUsage {
		t.Errorf("--store without --data: exit %d %s", code, out)
	}
	// A data directory that does not exist is refused, not created (the
	// same for incident notices --data).
	none := filepath.Join(t.TempDir(), "none")
	if _, code := runCLI(t, "subject", "report", "users", id, "--data", none); code != exitUsage {
		t.Errorf("subject report of a missing data directory: exit %d", code)
	}
	if _, code := runCLI(t, "incident", "notices", "--data", none, "--incident", "inc-x", "--out", filepath.Join(t.TempDir(), "n")); code != exitUsage {
		t.Errorf("incident notices of a missing data directory: exit %d", code)
	}
	if _, err := os.Stat(none); err == nil {
		t.Error("a missing data directory was created")
	}
	lock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, code := runCLI(t, "subject", "report", "users", id, "--data", dir); code == 0 {
		t.Error("a held data directory was opened")
	}
	lock.Close()
	if _, _, n := events(id); n != 2 {
		t.Errorf("%d subject-access reads audited, want 2 (the json and the pdf reports; nothing read by the refused ones)", n)
	}
}
