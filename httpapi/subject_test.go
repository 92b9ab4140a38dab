package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/client"
)

// allEvents reads the whole audit log as the root admin (an auditor).
func allEvents(t *testing.T, c *client.Client) []struct {
	Index uint64        `json:"index"`
	Leaf  string        `json:"leaf"`
	Event sekisho.Event `json:"event"`
} {
	t.Helper()
	var out []struct {
		Index uint64        `json:"index"`
		Leaf  string        `json:"leaf"`
		Event sekisho.Event `json:"event"`
	}
	from := uint64(0)
	for {
		var page struct {
			Events []struct {
				Index uint64        `json:"index"`
				Leaf  string        `json:"leaf"`
				Event sekisho.Event `json:"event"`
			} `json:"events"`
			Next *uint64 `json:"next"`
		}
		must(t, c.JSON(context.Background(), "GET", "/v1/audit/events?limit=1000&from="+strconv.FormatUint(from, 10), "", nil, &page))
		out = append(out, page.Events...)
		if page.Next == nil {
			return out
		}
		from = *page.Next
	}
}

func get(t *testing.T, c *client.Client, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Do(context.Background(), "GET", path, nil, nil)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// The subject access report lists every access to the record that the log
// holds (counted here independently from GET /v1/audit/events), each with an
// inclusion proof that verifies against the signed checkpoint's root; the
// read for the report is itself audited under purpose subject-access.
func TestSubjectAccessReport(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.grant(w.admin, w.grantToAffiliate("jp"))
	must(t, err)
	_, err = w.read(w.bob, w.recJP, "support", "phone")
	must(t, err)
	_, err = w.read(w.bob, w.recJP, "support", "phone,gender") // refused: not in the grant
	refused(t, err, "grant-field-not-listed")
	_, err = w.read(w.eve, w.recJP, "support", "phone") // refused: no grant
	refused(t, err, "no-grant")
	_, err = w.read(w.admin, w.recTH, "support", "phone") // another record
	must(t, err)

	// Negative: a member, and another org's admin, get no report.
	if st, _, b := get(t, w.bob, "/v1/collections/users/records/"+w.recJP+"/access-report"); st != 403 {
		t.Errorf("a member's access report: %d %s", st, b)
	}
	if st, _, b := get(t, w.affAdmin, "/v1/collections/users/records/"+w.recJP+"/access-report"); st != 403 {
		t.Errorf("the affiliate admin's access report of an operator record: %d %s", st, b)
	}
	st, hdr, body := get(t, w.admin, "/v1/collections/users/records/"+w.recJP+"/access-report?format=json")
	if st != 200 {
		t.Fatalf("access report: %d %s", st, body)
	}
	var rep struct {
		Subject struct {
			Fields         map[string]any `json:"fields"`
			CheckpointSize uint64         `json:"checkpoint_size"`
			Checkpoint     string         `json:"checkpoint"`
			Accesses       []struct {
				Index    uint64   `json:"index"`
				Org      string   `json:"org"`
				Kind     string   `json:"principal_kind"`
				Purpose  string   `json:"purpose"`
				Decision string   `json:"decision"`
				Fields   []string `json:"fields"`
				Proof    []string `json:"proof"`
			} `json:"accesses"`
		} `json:"subject"`
	}
	must(t, json.Unmarshal(body, &rep))
	if rep.Subject.Fields["phone"] != "+819012345678" {
		t.Errorf("the report's data: %v", rep.Subject.Fields)
	}
	size, _ := strconv.ParseUint(hdr.Get("Sekisho-Audit-Size"), 10, 64)
	if size != rep.Subject.CheckpointSize || size == 0 {
		t.Fatalf("audit size %d, checkpoint %d", size, rep.Subject.CheckpointSize)
	}
	// The independent count: every event below the checkpoint naming the record.
	var want []uint64
	leaves := map[uint64][]byte{}
	sawOwnRead := false
	for _, e := range allEvents(t, w.admin) {
		leaf, _ := base64.StdEncoding.DecodeString(e.Leaf)
		leaves[e.Index] = leaf
		if e.Index < size && e.Event.Collection == "users" && slices.Contains(e.Event.Records, w.recJP) {
			want = append(want, e.Index)
			if e.Event.Purpose == "subject-access" && e.Event.Action == "read" && e.Event.Principal == "admin" && e.Event.Decision == "allow" {
				sawOwnRead = true
			}
		}
	}
	var got []uint64
	denied := 0
	for _, a := range rep.Subject.Accesses {
		got = append(got, a.Index)
		if a.Decision == "deny" {
			denied++
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("report lists events %v, the log has %v", got, want)
	}
	// Refused: bob's unlisted field, eve without a grant, and the
	// affiliate admin's attempt at this very report.
	if denied != 3 || !sawOwnRead {
		t.Errorf("denied %d (want 3), own read audited under subject-access: %v", denied, sawOwnRead)
	}
	body2, err := audit.ParseCheckpointBody(rep.Subject.Checkpoint[:strings.Index(rep.Subject.Checkpoint, "\n\n")+1])
	must(t, err)
	var kinds []string
	for _, a := range rep.Subject.Accesses {
		var hs [][]byte
		for _, h := range a.Proof {
			b, _ := base64.StdEncoding.DecodeString(h)
			hs = append(hs, b)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, a.Index, body2.Size, rfc6962.DefaultHasher.HashLeaf(leaves[a.Index]), hs, body2.Root); err != nil {
			t.Errorf("event %d: inclusion proof does not verify: %v", a.Index, err)
		}
		kinds = append(kinds, a.Kind)
	}
	if !slices.Contains(kinds, "person (member)") || !slices.Contains(kinds, "person (admin, auditor)") {
		t.Errorf("principal kinds: %v", kinds)
	}
	// A proof for another leaf does not verify (the check can fail).
	a := rep.Subject.Accesses[0]
	var hs [][]byte
	for _, h := range a.Proof {
		b, _ := base64.StdEncoding.DecodeString(h)
		hs = append(hs, b)
	}
	if proof.VerifyInclusion(rfc6962.DefaultHasher, a.Index, body2.Size, rfc6962.DefaultHasher.HashLeaf([]byte("forged")), hs, body2.Root) == nil {
		t.Error("a forged leaf verified")
	}
	// Japanese, as PDF.
	st, _, pdf := get(t, w.admin, "/v1/collections/users/records/"+w.recJP+"/access-report?format=pdf&lang=ja")
	if txt := pdfText(t, string(pdf)); st != 200 || !strings.Contains(txt, "保有個人データの開示及びアクセス記録の報告") || !strings.Contains(txt, "+819012345678") {
		t.Errorf("ja pdf: %d %s", st, txt)
	}
	_ = ctx
}

// The record of provision lists every event in which another org was
// returned values of the org's records; its count equals an independent
// count of those events.
func TestProvisionRecord(t *testing.T) {
	w := newWorld(t)
	since := w.clk.Now().Add(-time.Hour).UTC()
	_, err := w.grant(w.admin, w.grantToAffiliate("jp"))
	must(t, err)
	recJP2 := w.create(w.admin, "jp", "+81 90-2222-3333")
	for _, id := range []string{w.recJP, recJP2, w.recJP} {
		_, err = w.read(w.bob, id, "support", "phone")
		must(t, err)
	}
	_, err = w.read(w.bob, w.recJP, "support", "gender")
	refused(t, err, "grant-field-not-listed")
	until := w.clk.Now().Add(time.Hour).UTC()
	q := "/v1/reports/provision?org=operator&since=" + since.Format(time.RFC3339) + "&until=" + until.Format(time.RFC3339)
	if st, _, b := get(t, w.affAdmin, q); st != 403 {
		t.Errorf("the affiliate's admin reads the operator's provisions: %d %s", st, b)
	}
	st, hdr, body := get(t, w.admin, q+"&format=json")
	if st != 200 {
		t.Fatalf("provision: %d %s", st, body)
	}
	var rep struct {
		Provisions []struct {
			Index     uint64   `json:"event_index"`
			Recipient string   `json:"recipient_org"`
			Purpose   string   `json:"purpose"`
			IDs       []string `json:"subject_ids"`
			Items     []string `json:"items"`
		} `json:"provisions"`
	}
	must(t, json.Unmarshal(body, &rep))
	size, _ := strconv.ParseUint(hdr.Get("Sekisho-Audit-Size"), 10, 64)
	var want []uint64
	for _, e := range allEvents(t, w.admin) {
		if e.Index < size && e.Event.Decision == "allow" && e.Event.Org != "operator" && len(e.Event.Fields) > 0 && len(e.Event.Records) > 0 &&
			slices.Contains(e.Event.RecordOrgs, "operator") && !e.Event.Time.Before(since) && e.Event.Time.Before(until) {
			want = append(want, e.Index)
		}
	}
	var got []uint64
	for _, p := range rep.Provisions {
		got = append(got, p.Index)
		if p.Recipient != "affiliate" || p.Purpose != "support" || len(p.IDs) != 1 || !slices.Equal(p.Items, []string{"phone"}) {
			t.Errorf("provision %+v", p)
		}
	}
	if len(want) != 3 || !slices.Equal(got, want) {
		t.Fatalf("report lists %v, the log has %v (want 3)", got, want)
	}
	st, _, csv := get(t, w.admin, q+"&format=csv")
	if st != 200 || strings.Count(string(csv), "\n") != 4 || !strings.HasPrefix(string(csv), "date,recipient_org,purpose,") {
		t.Errorf("csv: %d %s", st, csv)
	}
}

// Entrustment: the operator granted the affiliate access; an operator admin
// (no auditor role) opens an incident about the affiliate's member from its
// own side. The scope counts only the events about the operator's records,
// and the report names the grantor and the grantee. Without a grant to the
// suspect's org the incident is refused.
func TestEntrustmentFromTheGrantorsLog(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	g, err := w.grant(w.admin, w.grantToAffiliate("jp"))
	must(t, err)
	_, err = w.read(w.bob, w.recJP, "support", "phone")
	must(t, err)
	own := w.create(w.affAdmin, "jp", "+81 90-5555-6666") // the affiliate's own record
	_, err = w.read(w.bob, own, "support", "phone")
	must(t, err)
	now := w.clk.Now()
	body := map[string]any{"principals": []string{"bob"}, "since": now.Add(-time.Hour), "until": now.Add(time.Hour), "cause": "insider"}
	refused(t, w.admin2.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"principals": []string{"eve"}, "since": now.Add(-time.Hour), "until": now.Add(time.Hour)}, nil), "forbidden")
	var in struct {
		ID         string `json:"id"`
		Controller string `json:"controller"`
	}
	must(t, w.admin2.JSON(ctx, "POST", "/v1/incidents", "", body, &in))
	if in.Controller != "operator" {
		t.Errorf("controller %q, want operator", in.Controller)
	}
	type scope struct {
		SubjectsExposed int `json:"subjects_exposed"`
		Entrustment     []struct {
			Grant, Grantor, Grantee string
		} `json:"entrustment"`
		WorstCaseSubjects int64 `json:"worst_case_subjects"`
		WorstCase         []struct {
			Collection, Org string
			Records         int64
		} `json:"worst_case"`
	}
	var sc scope
	st, _, b := get(t, w.admin2, "/v1/incidents/"+in.ID+"/scope?format=json")
	must(t, json.Unmarshal(b, &sc))
	if st != 200 || sc.SubjectsExposed != 1 || len(sc.Entrustment) != 1 || sc.Entrustment[0].Grant != g.ID {
		t.Fatalf("grantor's scope: %d %s", st, b)
	}
	grantorView := sc
	// The positive control: the auditor's view of the same suspect counts
	// the affiliate's own record too.
	var all struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/incidents", "", body, &all))
	_, _, b = get(t, w.admin, "/v1/incidents/"+all.ID+"/scope?format=json")
	sc = scope{}
	must(t, json.Unmarshal(b, &sc))
	if sc.SubjectsExposed != 2 {
		t.Errorf("auditor's scope: %s", b)
	}
	// The worst case is narrowed like the scope: the grantor's view counts
	// only the grantor's records (what the grant reached), the auditor's
	// also the affiliate's own records that bob's role reads.
	var operatorRecords, affiliateRecords int64
	for _, r := range sc.WorstCase {
		switch r.Org {
		case "operator":
			operatorRecords += r.Records
		case "affiliate":
			affiliateRecords += r.Records
		}
	}
	if affiliateRecords == 0 || operatorRecords == 0 || sc.WorstCaseSubjects != operatorRecords+affiliateRecords {
		t.Fatalf("auditor's worst case: %+v", sc.WorstCase)
	}
	for _, r := range grantorView.WorstCase {
		if r.Org != "operator" {
			t.Errorf("the grantor's worst case counts records of org %s: %+v", r.Org, grantorView.WorstCase)
		}
	}
	if grantorView.WorstCaseSubjects != operatorRecords {
		t.Errorf("the grantor's worst case is %d records, want the operator's %d (the auditor's view: %d)", grantorView.WorstCaseSubjects, operatorRecords, sc.WorstCaseSubjects)
	}
	_, _, md := get(t, w.admin2, "/v1/incidents/"+in.ID+"/report/appi?lang=en")
	if !strings.Contains(string(md), "grant "+g.ID+" from operator (the controller) to affiliate (the entrusted party)") {
		t.Errorf("appi report does not name grantor and grantee:\n%s", md)
	}
	// The grantor's view is not the affiliate's to read.
	if st, _, _ := get(t, w.affAdmin, "/v1/incidents/"+in.ID); st != 404 && st != 403 {
		t.Errorf("the affiliate admin reads the operator's incident: %d", st)
	}
}

// A copy of the database without the keys: records reached as ciphertext
// only; the APPI report says the advanced-encryption exclusion applies and
// the GDPR one art. 34(3)(a), while a plaintext read keeps them out.
func TestCiphertextOnlyIncident(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	now := w.clk.Now()
	var in struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"orgs": []string{"subcontractor"}, "since": now.Add(-time.Hour), "until": now.Add(time.Hour),
		"cause": "loss", "ciphertext_copy": map[string]any{"collections": []string{"users"}, "note": "backup copy lost; keys not on it"}}, &in))
	var sc struct {
		Exposed    int `json:"subjects_exposed"`
		Ciphertext struct {
			Records int `json:"records"`
		} `json:"ciphertext"`
	}
	_, _, b := get(t, w.admin, "/v1/incidents/"+in.ID+"/scope?format=json")
	must(t, json.Unmarshal(b, &sc))
	if sc.Exposed != 0 || sc.Ciphertext.Records != 2 {
		t.Fatalf("scope: %s", b)
	}
	_, _, appi := get(t, w.admin, "/v1/incidents/"+in.ID+"/report/appi?lang=en&format=json")
	var rep struct {
		Required bool `json:"required"`
	}
	json.Unmarshal(appi, &rep)
	if rep.Required || !strings.Contains(string(appi), "advanced encryption and its keys did not leak") {
		t.Errorf("appi: %s", appi)
	}
	if _, _, gd := get(t, w.admin, "/v1/incidents/"+in.ID+"/report/gdpr"); !strings.Contains(string(gd), "not required (GDPR art. 34(3)(a))") {
		t.Errorf("gdpr: %s", gd)
	}
	// The contrast: an incident where a value was returned in plaintext.
	_, err := w.read(w.admin, w.recJP, "support", "phone")
	must(t, err)
	var in2 struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"principals": []string{"admin"}, "since": now.Add(-time.Hour), "until": now.Add(time.Hour),
		"cause": "loss", "ciphertext_copy": map[string]any{"collections": []string{"users"}}}, &in2))
	if _, _, a2 := get(t, w.admin, "/v1/incidents/"+in2.ID+"/report/appi?lang=en"); !strings.Contains(string(a2), "Values were returned in plaintext") {
		t.Errorf("plaintext appi: %s", a2)
	}
}
