package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/keys"
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
		SubjectsPlaintext: 2388, SubjectsMaskedOnly: 12,
		Ciphertext:  incident.Ciphertext{Collections: []string{}},
		Entrustment: []incident.Entrustment{{Grant: "g-personnel", Grantor: "operator", Grantee: "subcontractor", Events: 4800, Subjects: 2400}},
	}
	return in, sc
}

// controller is the fixture's controller, named in three languages.
var controller = report.Controller{
	Name:    map[string]string{"en": "Example Operator K.K.", "ja": "株式会社エグザンプル・オペレーター", "th": "บริษัท เอ็กแซมเพิล โอเปอเรเตอร์ จำกัด"},
	Address: "1-2-3 Kasumigaseki, Chiyoda-ku, Tokyo", Contact: "Privacy office, privacy@example.jp, +81 3 0000 0000",
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
	cfg := report.Config{Controller: controller, Lang: report.LangEN, Now: generated}
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
	put(sekisho.KindPrincipal, "alice", access.Principal{ID: "alice", Org: "operator", Roles: []string{"admin"}, Status: access.StatusActive})
	put(sekisho.KindPrincipal, "bob", access.Principal{ID: "bob", Org: "affiliate", Roles: []string{"member"}, Status: access.StatusSuspended})
	put(sekisho.KindDevice, "d1", access.Device{ID: "d1", Principal: "alice", Org: "operator", Status: access.StatusApproved})
	put(sekisho.KindDevice, "d2", access.Device{ID: "d2", Principal: "bob", Org: "affiliate", Status: access.StatusPending})
	put(sekisho.KindGrant, "g-1", access.Grant{ID: "g-1", GrantorOrg: "operator", GranteeOrg: "affiliate", Status: access.StatusActive,
		Expires: generated.Add(30 * 24 * time.Hour), BudgetPerHour: 100})
	put(sekisho.KindGrant, "g-2", access.Grant{ID: "g-2", GrantorOrg: "operator", GranteeOrg: "subcontractor", Status: access.StatusActive,
		Expires: generated.Add(-24 * time.Hour)})
	in, _ := fixture()
	if err := incident.Create(ctx, st, in, generated); err != nil {
		t.Fatal(err)
	}
	// th's keys are in an HSM, the other regions' in the local keyring.
	custody := &keys.Custody{Default: keys.Home{Provider: keys.ProviderLocal}, Regions: map[string]keys.Home{"th": {Provider: keys.ProviderPKCS11, Token: "sekisho-th"}}}
	r, err := report.Progress(ctx, st, report.Config{Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}, Controller: controller, Now: generated, Keys: custody})
	if err != nil {
		t.Fatal(err)
	}
	md := report.Markdown(r)
	golden(t, "progress.md", md)
	for _, want := range []string{"3 live records in 3 collections, all sealed (100%)", "2 devices enrolled: 1 approved, 1 pending",
		"1 active grants past their expiry", "The guard is installed: 8 rules in force, 8 enabled",
		"1 of 3 live records (33.3%) are sealed under data keys wrapped by key-encryption keys held in an HSM (PKCS#11) (regions th); the others (regions jp, tw)",
		"| operator | th | 1 | pkcs11 token=sekisho-th | yes |", "| operator | jp | 1 | local | no |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("progress report lacks %q", want)
		}
	}
	pdf, err := report.PDF(r)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("progress pdf: %v", err)
	}
	// Every key in an HSM: 100%; none known: the report says it cannot tell.
	all := &keys.Custody{Default: keys.Home{Provider: keys.ProviderPKCS11, Token: "t"}}
	if r, err = report.Progress(ctx, st, report.Config{Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}, Now: generated, Keys: all}); err != nil || !strings.Contains(string(report.Markdown(r)), "3 of 3 live records (100.0%)") {
		t.Errorf("all keys in an HSM: %v\n%s", err, report.Markdown(r))
	}
	if r, err = report.Progress(ctx, st, report.Config{Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}, Now: generated}); err != nil || !strings.Contains(string(report.Markdown(r)), "Not available: the report was not told where") {
		t.Errorf("no key custody: %v", err)
	}
	// In Japanese and Thai: golden Markdown, and the PDF's text.
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{report.LangJA, []string{"個人データの保護に関する進捗報告", "個人情報の保護に関する法律第147条", "HSMに保管された鍵", "有効なレコード3件のうち1件（33.3%）",
			"ガードは稼働している", "要記入", "株式会社エグザンプル・オペレーター"}},
		{report.LangTH, []string{"รายงานความคืบหน้าการคุ้มครองข้อมูลส่วนบุคคล", "กุญแจที่เก็บใน HSM", "1 จาก 3 รายการ (33.3%)", "ผู้รับผิดชอบต้องกรอก"}},
	} {
		r, err := report.Progress(ctx, st, report.Config{Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}, Controller: controller, Now: generated, Keys: custody, Lang: tc.lang})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "progress-"+tc.lang+".md", report.Markdown(r))
		pdf, err := report.PDF(r)
		if err != nil {
			t.Fatal(err)
		}
		flat := flatten(pdfText(t, pdf))
		for _, w := range tc.want {
			if !strings.Contains(flat, flatten(w)) {
				t.Errorf("progress %s: the PDF's text lacks %q", tc.lang, w)
			}
		}
	}
}

// Every translated message has an English one, and takes the arguments the
// English text takes (a translation with a verb too many, too few or of
// another type would print %!d(MISSING) or the like).
func TestMessagesMatchEnglish(t *testing.T) {
	for _, lang := range []string{report.LangJA, report.LangTH} {
		for key, text := range report.Messages(lang) {
			en, ok := report.Messages(report.LangEN)[key]
			if !ok {
				t.Errorf("%s: %q has no English text", lang, key)
				continue
			}
			args := sampleArgs(en)
			if got := fmt.Sprintf(text, args...); strings.Contains(got, "%!") {
				t.Errorf("%s %q: %s", lang, key, got)
			}
			if got := fmt.Sprintf(en, args...); strings.Contains(got, "%!") {
				t.Errorf("en %q: %s", key, got)
			}
		}
	}
}

// sampleArgs are arguments for the verbs of an English format.
func sampleArgs(format string) []any {
	var args []any
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("0123456789.+-# ", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			break
		}
		switch format[j] {
		case 'd':
			args = append(args, 1)
		case 's', 'q':
			args = append(args, "x")
		case 'f':
			args = append(args, 1.5)
		}
		i = j
	}
	return args
}

// pdfText extracts a PDF's text with poppler's pdftotext. The tool is
// required where SEKISHO_REQUIRE_POPPLER is set (scripts/test.sh, CI).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("SEKISHO_REQUIRE_POPPLER") != "" {
			t.Fatalf("pdftotext is required (Debian: apt-get install poppler-utils): %v", err)
		}
		t.Skipf("pdftotext not installed (poppler-utils); scripts/test.sh requires it")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return string(out)
}

// TestLanguagesGolden renders each report in its languages, compares the
// Markdown with the golden files, and extracts the PDF's text to find the
// form's items in the report's script: if a font lacked the glyphs, the
// text would come out as dots or nothing.
func TestLanguagesGolden(t *testing.T) {
	in, sc := fixture()
	cases := []struct {
		kind, lang string
		want       []string
	}{
		{report.KindAPPI, "", []string{"個人データの漏えい等の報告", "報告者", "事案の概要", "漏えい等が発生し、又は発生したおそれがある個人データの項目",
			"本人の数", "原因", "二次被害又はそのおそれの有無及びその内容", "本人への対応の実施状況", "公表の実施状況", "再発防止のための措置",
			"その他参考となる事項", "株式会社エグザンプル・オペレーター", "要記入", "速報", "確報", "2400"}},
		{report.KindAPPI, report.LangEN, []string{"1. Reporter", "Example Operator K.K.", "10. Other matters for reference", report.ToCompleteMark}},
		{report.KindPDPA, "", []string{"การแจ้งเหตุการละเมิดข้อมูลส่วนบุคคล", "สำนักงานคณะกรรมการคุ้มครองข้อมูลส่วนบุคคล", "ผู้รับผิดชอบต้องกรอก",
			"บริษัท เอ็กแซมเพิล โอเปอเรเตอร์ จำกัด", "72 ชั่วโมง", "700"}},
		{report.KindPDPA, report.LangEN, []string{"Office of the Personal Data Protection Committee", "Example Operator K.K."}},
		// GDPR, Indonesia and Taiwan in Japanese (the PPC's translation of
		// the GDPR's terms) and in Thai (the PDPA's terms).
		{report.KindGDPR, report.LangJA, []string{"監督機関に対する個人データ侵害の通知", "所轄の監督機関", "不当な遅滞なく", "(a)個人データ侵害の性質",
			"(c)個人データ侵害の結果として発生する可能性のある事態", "(d)管理者が講じた措置又は講ずることを提案する措置", "株式会社エグザンプル・オペレーター", "要記入", "データ主体の数"}},
		{report.KindGDPR, report.LangTH, []string{"การแจ้งเหตุการละเมิดข้อมูลส่วนบุคคลต่อหน่วยงานกำกับดูแล", "หน่วยงานกำกับดูแลที่มีอำนาจ", "72 ชั่วโมง", "ผู้รับผิดชอบต้องกรอก"}},
		{report.KindPDPID, report.LangJA, []string{"個人データ保護の不備", "個人データ保護に関する2022年法律第27号", "3×24時間", "インドネシアに居住するデータ主体220人", "管理者"}},
		{report.KindPDPID, report.LangTH, []string{"การแจ้งความล้มเหลวในการคุ้มครองข้อมูลส่วนบุคคล", "มาตรา 46", "3 x 24 ชั่วโมง"}},
		{report.KindPDPATW, report.LangJA, []string{"個人資料の漏えい等に関する当事者への通知", "台湾：個人資料保護法第12条", "通知の時期及び方法"}},
		{report.KindPDPATW, report.LangTH, []string{"การแจ้งเจ้าของข้อมูลส่วนบุคคลเกี่ยวกับการละเมิดข้อมูลส่วนบุคคล", "ไต้หวัน", "เวลาและช่องทางการแจ้ง"}},
	}
	for _, tc := range cases {
		name := tc.kind + "-" + tc.lang
		if tc.lang == "" {
			name = tc.kind + "-default"
		}
		t.Run(name, func(t *testing.T) {
			r, err := report.Breach(tc.kind, in, sc, report.Config{Controller: controller, Lang: tc.lang, Now: generated})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".md", report.Markdown(r))
			pdf, err := report.PDF(r)
			if err != nil {
				t.Fatal(err)
			}
			txt := pdfText(t, pdf)
			// pdftotext breaks lines where the layout does, and puts a Thai
			// mark (drawn over the character before it) after the next
			// character: compare without spaces, line breaks and marks.
			flat := flatten(txt)
			for _, w := range tc.want {
				if !strings.Contains(flat, flatten(w)) {
					t.Errorf("%s: the PDF's text lacks %q", name, w)
				}
			}
			if strings.Contains(txt, "?????") {
				t.Errorf("%s: characters replaced in the PDF: %q", name, txt[:min(len(txt), 400)])
			}
		})
	}
}

// flatten drops white space and Thai combining marks.
func flatten(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == 0x0E31 || (r >= 0x0E34 && r <= 0x0E3A) || (r >= 0x0E47 && r <= 0x0E4E) {
			return -1
		}
		return r
	}, s)
}

func TestLangRefused(t *testing.T) {
	in, sc := fixture()
	for _, tc := range []struct{ kind, lang string }{{report.KindAPPI, "th"}, {report.KindPDPA, "ja"}, {report.KindGDPR, "xx"}} {
		_, err := report.Breach(tc.kind, in, sc, report.Config{Lang: tc.lang, Now: generated})
		if sekisho.Code(err) != sekisho.EInvalid {
			t.Errorf("%s in %s: %v, want invalid", tc.kind, tc.lang, err)
		}
	}
	// The positive control: each kind's own languages are accepted.
	for kind, langs := range report.Langs {
		if kind == report.KindProgress || kind == report.KindAccess || kind == report.KindProvide {
			continue
		}
		for _, l := range langs {
			if _, err := report.Breach(kind, in, sc, report.Config{Lang: l, Now: generated}); err != nil {
				t.Errorf("%s in %s: %v", kind, l, err)
			}
		}
	}
}

// The trend compares this period with the previous one; each count is set
// up here on one side of the boundary, and the guard's refusals and the
// grants used come from real audit events.
func TestProgressTrend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, st, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	now := generated
	since := now.Add(-30 * 24 * time.Hour)
	inPrev, inCur := since.Add(-24*time.Hour), since.Add(24*time.Hour)
	put := func(kind, id string, v any) {
		b, _ := json.Marshal(v)
		if err := st.PutObject(ctx, &sekisho.Object{Kind: kind, ID: id, Version: 1, Body: b, Updated: now}); err != nil {
			t.Fatal(err)
		}
	}
	revoked := inCur
	put(sekisho.KindGrant, "g-old", access.Grant{ID: "g-old", GrantorOrg: "operator", GranteeOrg: "affiliate", Status: access.StatusActive, CreatedAt: inPrev, Expires: now.Add(time.Hour)})
	put(sekisho.KindGrant, "g-new1", access.Grant{ID: "g-new1", GrantorOrg: "operator", GranteeOrg: "affiliate", Status: access.StatusActive, CreatedAt: inCur, Expires: inCur.Add(time.Hour)})
	put(sekisho.KindGrant, "g-new2", access.Grant{ID: "g-new2", GrantorOrg: "operator", GranteeOrg: "affiliate", Status: access.StatusRevoked, CreatedAt: inCur, RevokedAt: &revoked, Expires: now.Add(time.Hour)})
	put(sekisho.KindDevice, "d1", access.Device{ID: "d1", Principal: "bob", Org: "affiliate", Status: access.StatusApproved, EnrolledAt: inPrev, ApprovedAt: &inPrev})
	put(report.KindQuarantine, "principal:bob", map[string]any{"status": "active", "since": inCur})
	for _, ev := range []sekisho.Event{
		{Time: inPrev, Org: "affiliate", Principal: "bob", Action: "read", Collection: "users", Records: []string{"r1"}, Decision: sekisho.Allow, Policy: "grant:g-old"},
		{Time: inCur, Org: "affiliate", Principal: "bob", Action: "read", Collection: "users", Records: []string{"r1"}, Decision: sekisho.Deny, Policy: "guard:honeytoken"},
		{Time: inCur, Org: "affiliate", Principal: "bob", Action: "read", Collection: "users", Records: []string{"r1"}, Decision: sekisho.Deny, Policy: "guard:volume-budget"},
		{Time: inCur.Add(time.Minute), Org: "affiliate", Principal: "bob", Action: "read", Collection: "users", Records: []string{"r2"}, Decision: sekisho.Deny, Policy: "guard:volume-budget"},
	} {
		if _, err := log.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Records: one jp record from before the period (jp's keys are in an
	// HSM) and one th record created in it (th's are local).
	if err := st.PutSchema(ctx, &sekisho.Schema{Collection: "users", Version: 1, Fields: []sekisho.Field{{Name: "country", Type: sekisho.TypeString, Classification: sekisho.ClassUsage}}}); err != nil {
		t.Fatal(err)
	}
	for _, rc := range []struct {
		id, region string
		at         time.Time
	}{{"r1", "jp", inPrev}, {"r2", "th", inCur}} {
		if err := st.CreateRecords(ctx, []*sekisho.SealedRecord{{ID: rc.id, Collection: "users", Org: "operator", Region: rc.region, KEKVersion: 1,
			WrappedDEK: []byte("k"), Fields: map[string][]byte{}, Index: map[string][]byte{}, Version: 1, CreatedAt: rc.at, UpdatedAt: rc.at}}); err != nil {
			t.Fatal(err)
		}
	}
	custody := &keys.Custody{Default: keys.Home{Provider: keys.ProviderLocal}, Regions: map[string]keys.Home{"jp": {Provider: keys.ProviderPKCS11, Token: "jp"}}}
	r, err := report.Progress(ctx, st, report.Config{Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}, Now: now, Since: since, Keys: custody})
	if err != nil {
		t.Fatal(err)
	}
	var tr *report.Table
	for i := range r.Tables {
		if strings.HasPrefix(r.Tables[i].Title, "Trend") {
			tr = &r.Tables[i]
		}
	}
	if tr == nil {
		t.Fatal("no trend table")
	}
	want := map[string][3]string{
		"grants added":   {"1", "2", "+1"},
		"grants expired": {"0", "1", "+1"},
		"grants revoked": {"0", "1", "+1"},
		"grants stale at the end (expired, not revoked)": {"0", "1", "+1"},
		"grants in force and unused":                     {"0", "2", "+2"}, // g-old used before, not now; g-new1 never
		"quarantines started":                            {"0", "1", "+1"},
		"devices enrolled":                               {"1", "0", "-1"},
		"guard refusals: honeytoken":                     {"0", "1", "+1"},
		"guard refusals: volume-budget":                  {"0", "2", "+2"},
		"live records sealed under HSM-held keys":        {"1 / 1 (100.0%)", "1 / 2 (50.0%)", "-50.0 pt"},
	}
	got := map[string][3]string{}
	for _, row := range tr.Rows {
		got[row[0]] = [3]string{row[1], row[2], row[3]}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %v, want %v", k, got[k], w)
		}
	}
	// Without --since there is no trend.
	r, _ = report.Progress(ctx, st, report.Config{Directory: access.NewDirectory(st), Rules: guard.Rules{Store: st}, Now: now})
	for _, tb := range r.Tables {
		if strings.HasPrefix(tb.Title, "Trend") {
			t.Error("a trend without since")
		}
	}
}
