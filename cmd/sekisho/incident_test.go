package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// incidentDataDir makes a data directory where mallory read two records
// (jp and th) with values and looked one up (ids only), and alice read one.
func incidentDataDir(t *testing.T) (dir, since, until string) {
	t.Helper()
	setMasterKey(t)
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "data")
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	start := time.Now().Add(-time.Minute).UTC()
	alice := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Purpose: "support"}
	mallory := sekisho.Caller{Principal: "mallory", Org: "operator", Device: "d-evil", Roles: []string{"admin"}, Purpose: "support"}
	var ids []string
	for i, region := range []string{"jp", "th", "tw"} {
		rec, err := in.vault.Create(ctx, alice, "users", &sekisho.RecordInput{Region: region,
			Fields: map[string]json.RawMessage{"display_name": json.RawMessage(`"User"`), "email": json.RawMessage(`"u` + string(rune('0'+i)) + `@example.com"`)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	for _, id := range ids[:2] {
		if _, err := in.vault.Get(ctx, mallory, "users", id, []string{"display_name", "email"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.vault.Lookup(ctx, mallory, "users", vault.LookupRequest{Field: "email", Value: json.RawMessage(`"u2@example.com"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.vault.Get(ctx, alice, "users", ids[2], nil); err != nil {
		t.Fatal(err)
	}
	return dir, start.Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
}

func TestIncidentOfflineScopeAndReports(t *testing.T) {
	dir, since, until := incidentDataDir(t)
	out, code := runCLI(t, "incident", "open", "--data", dir, "--principal", "mallory", "--since", since, "--until", until, "--cause", "malware")
	if code != 0 || !strings.HasPrefix(out, "incident id: inc-") {
		t.Fatalf("incident open: %d %q", code, out)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "incident id: "))

	var sc map[string]any
	out, code = runCLI(t, "incident", "scope", "--data", dir, "--incident", id, "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &sc) != nil {
		t.Fatalf("incident scope: %d %s", code, out)
	}
	if sc["incident"] != id || sc["subjects_exposed"] != float64(2) || sc["fields_exposed"] != float64(4) || sc["subjects_possible"] != float64(1) {
		t.Errorf("scope: %s", out)
	}
	// The ad-hoc form gives the same numbers.
	var adhoc map[string]any
	out, code = runCLI(t, "incident", "scope", "--data", dir, "--principal", "mallory", "--since", since, "--until", until, "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &adhoc) != nil {
		t.Fatalf("ad-hoc scope: %d %s", code, out)
	}
	for _, k := range []string{"subjects_exposed", "fields_exposed", "subjects_possible", "denied_attempts", "worst_case_subjects"} {
		if adhoc[k] != sc[k] {
			t.Errorf("%s: ad hoc %v, recorded %v", k, adhoc[k], sc[k])
		}
	}
	out, code = runCLI(t, "incident", "scope", "--data", dir, "--incident", id)
	if code != 0 || !strings.Contains(out, "subjects exposed") {
		t.Errorf("table: %d %s", code, out)
	}
	notify := filepath.Join(t.TempDir(), "notify")
	if _, code = runCLI(t, "incident", "scope", "--data", dir, "--incident", id, "--notify-dir", notify); code != 0 {
		t.Fatal("notify-dir failed")
	}
	for _, region := range []string{"jp", "th", "tw"} {
		b, err := os.ReadFile(filepath.Join(notify, "subjects-"+region+".csv"))
		if err != nil || !strings.HasPrefix(string(b), "collection,record_id,") || strings.Count(string(b), "\n") != 2 {
			t.Errorf("subjects-%s.csv: %v %q", region, err, b)
		}
	}
	out, code = runCLI(t, "report", "appi", "--data", dir, "--incident", id, "--lang", "en")
	if code != 0 || !strings.Contains(out, "the cause is unauthorized access (malware)") || !strings.Contains(out, "TO BE COMPLETED BY A PERSON") {
		t.Errorf("appi: %d %s", code, out)
	}
	// In Japanese by default, the controller from the configuration file's
	// controller section, the PDF's text extracted by pdftotext.
	cfg := filepath.Join(t.TempDir(), "sekisho.yaml")
	os.WriteFile(cfg, []byte("controller:\n  name:\n    en: Operator K.K.\n    ja: オペレーター株式会社\n  address: 東京都千代田区1-1\n  contact: privacy@operator.example\n"), 0o600)
	out, code = runCLI(t, "report", "appi", "--data", dir, "--incident", id, "--config", cfg)
	if code != 0 || !strings.Contains(out, "名称：オペレーター株式会社。住所：東京都千代田区1-1。連絡先：privacy@operator.example。") || !strings.Contains(out, "## 二次被害又はそのおそれの有無及びその内容") {
		t.Errorf("appi in ja with the config's controller: %d %s", code, out)
	}
	jaPDF := filepath.Join(t.TempDir(), "appi.pdf")
	if _, code = runCLI(t, "report", "appi", "--data", dir, "--incident", id, "--config", cfg, "--format", "pdf", "--out", jaPDF); code != 0 {
		t.Fatal("appi pdf failed")
	}
	if txt := pdfText(t, jaPDF); !strings.Contains(txt, "オペレーター株式会社") || !strings.Contains(txt, "事案の概要") {
		t.Errorf("appi pdf text: %s", txt)
	}
	pdf := filepath.Join(t.TempDir(), "gdpr.pdf")
	if _, code = runCLI(t, "report", "gdpr", "--data", dir, "--incident", id, "--format", "pdf", "--out", pdf); code != 0 {
		t.Fatal("pdf report failed")
	}
	if b, _ := os.ReadFile(pdf); !strings.HasPrefix(string(b), "%PDF") {
		t.Errorf("not a PDF")
	}
	// The record of provision, offline: every event here is the operator's
	// own (mallory and alice are operator principals), so no row; md names the period.
	out, code = runCLI(t, "report", "provision", "--data", dir, "--org", "operator", "--since", since, "--until", until, "--format", "csv")
	if code != 0 || out != "date,recipient_org,purpose,via,collection,subjects,subject_ids,items,log,event_index\n" {
		t.Errorf("provision offline: %d %q", code, out)
	}
	out, code = runCLI(t, "report", "provision", "--data", dir, "--org", "operator", "--since", since, "--until", until, "--lang", "ja")
	if code != 0 || !strings.Contains(out, "# 第三者提供に係る記録") || !strings.Contains(out, "提供は 0 件") {
		t.Errorf("provision offline md: %d %s", code, out)
	}
	if _, code = runCLI(t, "report", "provision", "--data", dir, "--since", since); code == 0 {
		t.Error("offline provision without --org succeeded")
	}
	var prog map[string]any
	out, code = runCLI(t, "report", "progress", "--data", dir, "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &prog) != nil || prog["kind"] != "progress" {
		t.Errorf("progress: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"incident", "scope", "--data", dir},
		{"incident", "scope", "--data", dir, "--incident", id, "--principal", "x"},
		{"incident", "scope", "--data", dir, "--incident", id, "--format", "xml"},
		{"incident", "scope", "--data", dir, "--incident", "inc-nope"},
		{"report", "appi", "--data", dir},
		{"report", "nope", "--data", dir, "--incident", id},
		{"report", "gdpr", "--data", dir, "--incident", id, "--format", "pdf"},
		{"report", "appi", "--data", dir, "--incident", id, "--lang", "th"},
	} {
		if _, code := runCLI(t, bad...); code == 0 {
			t.Errorf("sekisho %s succeeded", strings.Join(bad, " "))
		}
	}
}

func TestIncidentThroughTheAPI(t *testing.T) {
	url, tokenFile := startServer(t)
	admin := filepath.Join(t.TempDir(), "admin")
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("login: %d %s", code, out)
	}
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	out, code := cli(t, "api", "--profile", admin, "POST", "/v1/collections/users/records", "--header", "Sekisho-Purpose: support",
		"--data", `{"region":"th","fields":{"display_name":"Somchai","email":"s@example.com"}}`)
	if code != 0 {
		t.Fatalf("create: %d %s", code, out)
	}
	var rec struct{ ID string }
	json.Unmarshal([]byte(out), &rec)
	if out, code := cli(t, "api", "--profile", admin, "GET", "/v1/collections/users/records/"+rec.ID, "--header", "Sekisho-Purpose: support"); code != 0 {
		t.Fatalf("read: %d %s", code, out)
	}
	until := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	out, code = cli(t, "incident", "open", "--profile", admin, "--principal", "admin", "--since", since, "--until", until, "--cause", "unauthorized-access")
	if code != 0 || !strings.HasPrefix(out, "incident id: inc-") {
		t.Fatalf("incident open: %d %s", code, out)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "incident id: "))
	var sc map[string]any
	out, code = cli(t, "incident", "scope", "--profile", admin, "--incident", id, "--format", "json")
	if code != 0 || json.Unmarshal([]byte(out), &sc) != nil || sc["subjects_exposed"] != float64(1) {
		t.Fatalf("scope: %d %s", code, out)
	}
	if th := sc["by_region"].(map[string]any)["th"].(map[string]any); th["country"] != "TH" {
		t.Errorf("by_region: %v", sc["by_region"])
	}
	out, code = cli(t, "incident", "scope", "--profile", admin, "--incident", id, "--format", "subjects", "--region", "th")
	if code != 0 || !strings.Contains(out, rec.ID) {
		t.Errorf("subjects: %d %s", code, out)
	}
	out, code = cli(t, "report", "pdpa", "--profile", admin, "--incident", id, "--lang", "en")
	if code != 0 || !strings.Contains(out, "within 72 hours") {
		t.Errorf("pdpa: %d %s", code, out)
	}
	out, code = cli(t, "report", "pdpa", "--profile", admin, "--incident", id)
	if code != 0 || !strings.Contains(out, "ภายใน 72 ชั่วโมง") {
		t.Errorf("pdpa in th: %d %s", code, out)
	}
	out, code = cli(t, "report", "progress", "--profile", admin, "--format", "json")
	if code != 0 || !strings.Contains(out, `"kind": "progress"`) {
		t.Errorf("progress: %d %s", code, out)
	}
	// The subject access report of the record: its data, and the create,
	// the read and the report's own read, each with a proof.
	out, code = cli(t, "subject", "report", "users", rec.ID, "--profile", admin, "--format", "json")
	var sa struct {
		Subject struct {
			Fields   map[string]any `json:"fields"`
			Accesses []struct {
				Action, Purpose string
				Proof           []string
			} `json:"accesses"`
		} `json:"subject"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sa) != nil || sa.Subject.Fields["display_name"] != "Somchai" || len(sa.Subject.Accesses) != 3 ||
		sa.Subject.Accesses[2].Purpose != "subject-access" || len(sa.Subject.Accesses[2].Proof) == 0 {
		t.Errorf("subject report: %d %s", code, out)
	}
	if out, code = cli(t, "subject", "report", "users", rec.ID, "--profile", admin, "--lang", "ja"); code != 0 || !strings.Contains(out, "# 保有個人データの開示及びアクセス記録の報告") {
		t.Errorf("subject report ja: %d %s", code, out)
	}
	// Notices through the API: the th person, its contact fields, the texts in Thai and English.
	ndir := filepath.Join(t.TempDir(), "notices")
	if out, code = cli(t, "incident", "notices", "--profile", admin, "--incident", id, "--out", ndir); code != 0 {
		t.Fatalf("notices: %d %s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(ndir, "notify-th.csv")); err != nil || !strings.Contains(string(b), rec.ID+",th,") || !strings.Contains(string(b), "s@example.com") || strings.Contains(string(b), "Somchai") {
		t.Errorf("notify-th.csv: %v %s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(ndir, "notice-th.th.txt")); err != nil || !strings.Contains(string(b), "การแจ้งเหตุการละเมิดข้อมูลส่วนบุคคล") {
		t.Errorf("notice-th.th.txt: %v %s", err, b)
	}
	if _, err := os.Stat(filepath.Join(ndir, "notice-th.en.txt")); err != nil {
		t.Error(err)
	}
	out, code = cli(t, "report", "provision", "--profile", admin, "--since", since, "--format", "csv")
	if code != 0 || out != "date,recipient_org,purpose,via,collection,subjects,subject_ids,items,log,event_index\n" {
		t.Errorf("provision (none across orgs): %d %q", code, out)
	}
	if out, code = cli(t, "incident", "list", "--profile", admin); code != 0 || !strings.Contains(out, id) {
		t.Errorf("list: %d %s", code, out)
	}
}

// Without --until the window ends after now, not at the start of the
// current second: an event a moment ago is in it.
func TestIncidentWindowWithoutUntilCoversNow(t *testing.T) {
	f := suspectFlags{principals: []string{"bob"}, since: "2000-01-01T00:00:00Z", cause: "unauthorized-access"}
	before := time.Now()
	in, err := f.incident()
	if err != nil {
		t.Fatal(err)
	}
	if !in.Until.After(before) {
		t.Fatalf("window ends at %s, before now (%s)", in.Until, before)
	}
}

// pdfText extracts a PDF file's text with poppler's pdftotext (required
// where SEKISHO_REQUIRE_POPPLER is set: scripts/test.sh and CI), without
// line breaks and spaces.
func pdfText(t *testing.T, path string) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("SEKISHO_REQUIRE_POPPLER") != "" {
			t.Fatalf("pdftotext is required (Debian: apt-get install poppler-utils): %v", err)
		}
		t.Skipf("pdftotext not installed (poppler-utils); scripts/test.sh requires it")
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return strings.NewReplacer("\n", "", " ", "").Replace(string(out))
}
