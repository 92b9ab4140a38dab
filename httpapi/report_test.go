package httpapi_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pdfText extracts a PDF's text with poppler's pdftotext (required where
// SEKISHO_REQUIRE_POPPLER is set: scripts/test.sh and CI).
func pdfText(t *testing.T, pdf string) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("SEKISHO_REQUIRE_POPPLER") != "" {
			t.Fatalf("pdftotext is required (Debian: apt-get install poppler-utils): %v", err)
		}
		t.Skipf("pdftotext not installed (poppler-utils); scripts/test.sh requires it")
	}
	in := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(in, []byte(pdf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return strings.NewReplacer("\n", "", " ", "").Replace(string(out))
}

// Reports over the API in the regulator's language (?lang=), the PDF's
// Japanese text extracted by pdftotext; an unknown language is refused.
func TestReportLanguagesOverHTTP(t *testing.T) {
	ts := newServer(t)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	r := do(t, ts, "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"display_name":"Sakura","email":"s@example.jp"}}`)
	id := r.body["id"].(string)
	do(t, ts, "GET", "/v1/collections/users/records/"+id+"?fields=email", "")
	until := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	r = do(t, ts, "POST", "/v1/incidents", `{"principals":["admin"],"since":"`+since+`","until":"`+until+`","cause":"unauthorized-access"}`)
	inc := r.body["id"].(string)

	ja := do(t, ts, "GET", "/v1/incidents/"+inc+"/report/appi?format=pdf", "")
	if ja.status != 200 || !strings.HasPrefix(ja.raw, "%PDF") {
		t.Fatalf("appi pdf: %d %.40q", ja.status, ja.raw)
	}
	txt := pdfText(t, ja.raw)
	for _, want := range []string{"個人データの漏えい等の報告", "報告者", "事案の概要", "再発防止のための措置", "要記入"} {
		if !strings.Contains(txt, want) {
			t.Errorf("appi (default ja) PDF lacks %q", want)
		}
	}
	en := do(t, ts, "GET", "/v1/incidents/"+inc+"/report/appi?lang=en&format=json", "")
	if en.status != 200 || en.body["lang"] != "en" || !strings.Contains(en.raw, "1. Reporter") {
		t.Errorf("appi en: %d %.200s", en.status, en.raw)
	}
	th := do(t, ts, "GET", "/v1/incidents/"+inc+"/report/pdpa", "")
	if th.status != 200 || !strings.Contains(th.raw, "สำนักงานคณะกรรมการคุ้มครองข้อมูลส่วนบุคคล") {
		t.Errorf("pdpa (default th): %d %.200s", th.status, th.raw)
	}
	// GDPR in Japanese, the progress report in Thai (issue 21 point 1: every
	// report in ja, th and en).
	gj := do(t, ts, "GET", "/v1/incidents/"+inc+"/report/gdpr?lang=ja", "")
	if gj.status != 200 || !strings.Contains(gj.raw, "監督機関に対する個人データ侵害の通知") || !strings.Contains(gj.raw, "## データ主体の数") {
		t.Errorf("gdpr ja: %d %.300s", gj.status, gj.raw)
	}
	pt := do(t, ts, "GET", "/v1/reports/progress?lang=th&format=json", "")
	if pt.status != 200 || pt.body["lang"] != "th" || !strings.Contains(pt.raw, "รายงานความคืบหน้าการคุ้มครองข้อมูลส่วนบุคคล") || !strings.Contains(pt.raw, "กุญแจที่เก็บใน HSM") {
		t.Errorf("progress th: %d %.300s", pt.status, pt.raw)
	}
	for _, bad := range []string{"/report/appi?lang=th", "/report/gdpr?lang=zh-TW", "/report/appi?lang=xx"} {
		if r := do(t, ts, "GET", "/v1/incidents/"+inc+bad, ""); r.status != 400 || !strings.Contains(r.raw, "lang") {
			t.Errorf("%s: %d %s, want 400 naming lang", bad, r.status, r.raw)
		}
	}
}

// An org's admin sets its profile once; its reports name it. Another org's
// admin can neither set nor read it.
func TestOrgProfileNamesTheController(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	body := map[string]any{"controller": map[string]any{"name": map[string]string{"en": "Operator K.K.", "ja": "オペレーター株式会社"},
		"address": "東京都千代田区1-1", "contact": "privacy@operator.example"}}
	refused(t, w.affAdmin.JSON(ctx, "PUT", "/v1/orgs/operator/profile", "", body, nil), "forbidden")
	refused(t, w.affAdmin.JSON(ctx, "GET", "/v1/orgs/operator/profile", "", nil, nil), "forbidden")
	refused(t, w.admin.JSON(ctx, "PUT", "/v1/orgs/operator/profile", "", map[string]any{"controller": map[string]any{"name": map[string]string{"xx": "?"}}}, nil),
		"invalid")
	must(t, w.admin.JSON(ctx, "PUT", "/v1/orgs/operator/profile", "", body, nil))
	var got struct {
		Controller struct {
			Name    map[string]string `json:"name"`
			Address string            `json:"address"`
		} `json:"controller"`
		UpdatedBy string `json:"updated_by"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/orgs/operator/profile", "", nil, &got))
	if got.Controller.Name["ja"] != "オペレーター株式会社" || got.UpdatedBy != "admin" {
		t.Errorf("profile: %+v", got)
	}
	var inc struct{ ID string }
	now := w.clk.Now()
	must(t, w.admin.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"principals": []string{"admin"}, "since": now.Add(-time.Hour), "until": now.Add(time.Hour)}, &inc))
	resp, err := w.admin.Do(ctx, "GET", "/v1/incidents/"+inc.ID+"/report/appi", nil, nil)
	must(t, err)
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(md), "名称：オペレーター株式会社。住所：東京都千代田区1-1。連絡先：privacy@operator.example。") {
		t.Errorf("the report does not name the controller of the profile:\n%s", md)
	}
	// The change is in the audit log.
	var evs struct {
		Events []struct {
			Event struct {
				Action string `json:"action"`
			} `json:"event"`
		} `json:"events"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/audit/events?limit=1000", "", nil, &evs))
	n := 0
	for _, e := range evs.Events {
		if e.Event.Action == "org.profile" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d org.profile events, want 1", n)
	}
}
