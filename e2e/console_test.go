package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
)

// chromium finds Debian's chromium (or another Chrome). Missing, the test
// fails when SEKISHO_REQUIRE_CHROMIUM is set (scripts/test.sh sets it; .ci/run
// installs chromium), and skips otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SEKISHO_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not found; install Debian's chromium (.ci/run does)")
	}
	t.Skip("chromium not found; set SEKISHO_REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

// TestConsole drives the web console in headless Chromium against a real
// `sekisho serve` on a small generated history (the demo's 2023 chain,
// 4,000 records): the browser enrols a non-extractable device key for the
// demo's second admin and waits; the first admin approves it over the API;
// the incident page shows the numbers of the API's scope; the console's
// admin approves a grant pending under the two-person rule (which the
// grant's creator cannot); a quarantine is lifted; a PDF report downloads.
// No Content-Security-Policy violation and no uncaught error may happen.
// Screenshots of every page go to $SEKISHO_CONSOLE_SCREENSHOTS, or the
// test's temporary directory (logged).
func TestConsole(t *testing.T) {
	chrome := chromium(t)
	tmp := t.TempDir()
	shots := os.Getenv("SEKISHO_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(tmp, "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	downloads := filepath.Join(tmp, "downloads")
	if err := os.MkdirAll(downloads, 0o755); err != nil {
		t.Fatal(err)
	}

	// The demo writes its vault, its master key (under the user's config
	// directory) and the first admin's profile; serve opens the same.
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(tmp, "config"))
	data := filepath.Join(tmp, "demo")
	out, err := exec.Command(binary, "demo", "line-breach", "--data", data, "--records", "4000").CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`incident id: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("demo printed no incident id:\n%s", out)
	}
	incidentID := string(m[1])
	keyFiles, _ := filepath.Glob(filepath.Join(tmp, "config", "sekisho", "master-keys", "*.key"))
	if len(keyFiles) != 1 {
		t.Fatalf("master key files: %v", keyFiles)
	}
	mk, err := os.ReadFile(keyFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, data, strings.TrimSpace(string(mk)))
	_, admin, err := client.LoadProfile(filepath.Join(data, "admin-profile"))
	if err != nil {
		t.Fatal(err)
	}
	admin.Server = srv.base
	ctx := context.Background()
	// admin2, the operator's second admin in the demo's history, gets a
	// device key here too (approved by admin): it approves the browser and
	// creates the grant that the browser's admin must approve.
	admin2 := enrolled(t, ctx, srv.base, admin, "admin2")

	// The browser, at 1280x800, in Tokyo's time zone.
	actx, cancelA := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "en-US"))...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	defer cancelT()

	var mu sync.Mutex
	var problems []string // CSP violations, uncaught exceptions, console errors
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception: %s at %s:%d", desc, d.URL, d.LineNumber))
		case *cdplog.EventEntryAdded:
			// (Refused API requests, such as the token requests while the
			// device waits for approval, are logged by the network source.)
			if (e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork) || strings.Contains(e.Entry.Text, "Content Security Policy") {
				problems = append(problems, fmt.Sprintf("log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(parts, " "))
			}
		}
	}
	// do runs actions, each wait at most 30 s; on failure the page's text
	// is in the message.
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(actx, actions...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v; the page says:\n%s", what, err, body)
		}
	}
	evalInt := func(expr string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return n
	}
	evalString := func(expr string, opts ...chromedp.EvaluateOption) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr, opts...))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	textOf := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		do("settle", chromedp.Sleep(300*time.Millisecond))
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}
	// page opens a route and waits until the console has rendered it.
	page := func(hash, name string) {
		t.Helper()
		before := evalString(`document.querySelector('main').dataset.ready || ''`)
		evalString(`location.hash = ` + strconv.Quote(hash))
		poll("open "+hash, fmt.Sprintf(`(() => { const m = document.querySelector('main'); return m.dataset.page === %q && (m.dataset.ready || '') !== %q })()`, name, before))
	}

	// The tab exists once something ran in it; then listen, set the zone
	// and the download directory, and open the console.
	// (The first action runs on bctx itself: a timeout on it would stop the browser.)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(bctx, listen); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		second(chromedp.Call(bctx, cdplog.Enable, cdp.Empty{})),
		second(chromedp.Call(bctx, runtime.Enable, cdp.Empty{})),
		second(chromedp.Call(bctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})),
		second(chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	do("open the console", chromedp.Navigate(srv.base+"/console"), visible(`#principal`))
	shot("01-signin")

	// Sign in: the browser enrols a key for admin (the operator's first admin
	// and auditor, since 2023 in the demo's history; its other device is the
	// demo's CLI profile) and shows the device id while it waits.
	do("enrol", chromedp.SendKeys(chromedp.CSS(`#principal`), "admin"), click(`#enrol`), visible(`#device-id`))
	deviceID := textOf(`#device-id`)
	shot("02-waiting-for-approval")
	var dev struct{ ID, Principal, Status string }
	if err := admin.JSON(ctx, "GET", "/v1/devices/"+deviceID, "", nil, &dev); err != nil {
		t.Fatal(err)
	}
	if dev.Principal != "admin" || dev.Status != "pending" {
		t.Fatalf("device %s: %+v", deviceID, dev)
	}
	// The key is a non-extractable P-256 key in IndexedDB: the page itself
	// cannot export it. Nothing but the language sits in localStorage.
	keyInfo := evalString(`new Promise((res, rej) => { const r = indexedDB.open('sekisho-console'); r.onsuccess = () => {
		const g = r.result.transaction('device').objectStore('device').get('current'); g.onsuccess = async () => { const k = g.result.key.privateKey;
		let exported = 'no'; try { await crypto.subtle.exportKey('jwk', k); exported = 'yes' } catch (e) {}
		res(k.algorithm.name + ' ' + k.algorithm.namedCurve + ' extractable=' + k.extractable + ' exported=' + exported + ' localStorage=' + Object.keys(localStorage).join(',') + ' sessionStorage=' + sessionStorage.length) } }; r.onerror = rej })`,
		chromedp.EvalAwaitPromise)
	if keyInfo != "ECDSA P-256 extractable=false exported=no localStorage= sessionStorage=0" {
		t.Fatalf("stored key: %s", keyInfo)
	}
	// The demo's own admin profile (DIR/admin-profile, a CLI device of the
	// same principal) approves the browser, as the README's demo section
	// says (issue 20 point 9: the console explores the replayed breach).
	if err := admin.JSON(ctx, "POST", "/v1/devices/"+deviceID+"/approve", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	do("signed in", visible(`#nav-incidents`), visible(`a[data-incident]`))
	who := textOf(`#whoami`)
	if !strings.Contains(who, "admin (operator)") {
		t.Fatalf("header says %q", who)
	}
	shot("03-incidents")

	// The incident: the page's numbers are the API's scope.
	page("#/incidents/"+incidentID, "incidents")
	do("scope shown", visible(`#scope-numbers`), visible(`#timeline`))
	var scope struct {
		SubjectsExposed   int `json:"subjects_exposed"`
		FieldsExposed     int `json:"fields_exposed"`
		SubjectsPossible  int `json:"subjects_possible"`
		DeniedAttempts    int `json:"denied_attempts"`
		WorstCaseSubjects int `json:"worst_case_subjects"`
		ByCollection      map[string]struct {
			SubjectsExposed int `json:"subjects_exposed"`
			FieldsExposed   int `json:"fields_exposed"`
			DeniedAttempts  int `json:"denied_attempts"`
		} `json:"by_collection"`
		ByRegion map[string]struct {
			Country         string `json:"country"`
			SubjectsExposed int    `json:"subjects_exposed"`
			FieldsExposed   int    `json:"fields_exposed"`
		} `json:"by_region"`
		ByClassification map[string]struct {
			SubjectsExposed int `json:"subjects_exposed"`
			FieldsExposed   int `json:"fields_exposed"`
		} `json:"by_classification"`
	}
	if err := admin.JSON(ctx, "GET", "/v1/incidents/"+incidentID+"/scope", "", nil, &scope); err != nil {
		t.Fatal(err)
	}
	if scope.SubjectsExposed == 0 || scope.DeniedAttempts == 0 {
		t.Fatalf("the demo's scope is empty: %+v", scope)
	}
	text := func(sel string) int {
		t.Helper()
		s := textOf(sel)
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("%s: %q is not a number", sel, s)
		}
		return n
	}
	for sel, want := range map[string]int{
		`#scope-numbers [data-k=subjects_exposed]`:    scope.SubjectsExposed,
		`#scope-numbers [data-k=fields_exposed]`:      scope.FieldsExposed,
		`#scope-numbers [data-k=subjects_possible]`:   scope.SubjectsPossible,
		`#scope-numbers [data-k=denied_attempts]`:     scope.DeniedAttempts,
		`#scope-numbers [data-k=worst_case_subjects]`: scope.WorstCaseSubjects,
	} {
		if got := text(sel); got != want {
			t.Errorf("%s = %d on the page, %d in the API's scope", sel, got, want)
		}
	}
	for coll, c := range scope.ByCollection {
		if got := text(`#by-collection tr[data-key="` + coll + `"] [data-k=subjects_exposed]`); got != c.SubjectsExposed {
			t.Errorf("collection %s: %d persons on the page, %d in the scope", coll, got, c.SubjectsExposed)
		}
		if got := text(`#by-collection tr[data-key="` + coll + `"] [data-k=denied_attempts]`); got != c.DeniedAttempts {
			t.Errorf("collection %s: %d denied on the page, %d in the scope", coll, got, c.DeniedAttempts)
		}
	}
	countries := map[string][2]int{}
	for _, r := range scope.ByRegion {
		c := countries[r.Country]
		countries[r.Country] = [2]int{c[0] + r.SubjectsExposed, c[1] + r.FieldsExposed}
	}
	if len(countries) == 0 {
		t.Fatal("the scope has no region")
	}
	for country, c := range countries {
		if got := text(`#by-country tr[data-key="` + country + `"] [data-k=subjects_exposed]`); got != c[0] {
			t.Errorf("country %s: %d persons on the page, %d in the scope", country, got, c[0])
		}
		if got := text(`#by-country tr[data-key="` + country + `"] [data-k=fields_exposed]`); got != c[1] {
			t.Errorf("country %s: %d field values on the page, %d in the scope", country, got, c[1])
		}
	}
	for class, c := range scope.ByClassification {
		if got := text(`#by-classification tr[data-key="` + class + `"] [data-k=subjects_exposed]`); got != c.SubjectsExposed {
			t.Errorf("classification %s: %d on the page, %d in the scope", class, got, c.SubjectsExposed)
		}
	}
	charts := evalInt(`[...document.querySelectorAll('canvas[role=img]')].filter(c => c.width > 0 && c.height > 0).length`)
	if charts != 3 {
		t.Errorf("%d charts drawn, want 3 (country, collection, classification)", charts)
	}
	shot("04-incident")

	// A PDF report downloads (APPI, Japanese).
	do("download the PDF", click(`#dl-pdf`))
	poll("the PDF downloaded", `document.querySelector('#report-status').dataset.file || ''`)
	var pdf []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		files, _ := os.ReadDir(downloads)
		for _, f := range files {
			if b, err := os.ReadFile(filepath.Join(downloads, f.Name())); err == nil && !strings.HasSuffix(f.Name(), ".crdownload") && len(b) > 0 {
				pdf = b
			}
		}
		if pdf != nil {
			break
		}
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf[max(0, len(pdf)-1024):], []byte("%%EOF")) {
		t.Fatalf("the download is not a whole PDF (%d bytes)", len(pdf))
	}

	// A grant pending under the two-person rule (a region other than the
	// grantee's home region), created by admin2: its creator cannot approve
	// it; the console's admin, a second admin, does.
	var g struct {
		ID, Status string
	}
	if err := admin2.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
		"fields": []string{"email"}, "regions": []string{"th"}, "purposes": []string{"support"}, "actions": []string{"read"},
		"expires": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)}, &g); err != nil {
		t.Fatal(err)
	}
	if g.Status != "pending" {
		t.Fatalf("grant %s is %s, want pending", g.ID, g.Status)
	}
	if err := admin2.JSON(ctx, "POST", "/v1/grants/"+g.ID+"/approve", "", nil, nil); client.ProblemType(err) != "two-person-rule" {
		t.Fatalf("the creator approving its own grant: %v, want two-person-rule", err)
	}
	page("#/approvals", "approvals")
	do("pending grant listed", visible(`button[data-approve-grant="`+g.ID+`"]`))
	shot("05-approvals")
	do("approve the grant", click(`button[data-approve-grant="`+g.ID+`"]`), chromedp.WaitNotPresent(chromedp.CSS(`button[data-approve-grant="`+g.ID+`"]`)))
	var after struct {
		Status    string
		Approvals []struct{ Principal string }
	}
	if err := admin.JSON(ctx, "GET", "/v1/grants/"+g.ID, "", nil, &after); err != nil {
		t.Fatal(err)
	}
	if after.Status != "active" || !slices.ContainsFunc(after.Approvals, func(a struct{ Principal string }) bool { return a.Principal == "admin" }) {
		t.Fatalf("after the console's approval the grant is %+v", after)
	}

	// A quarantine: an operator support agent touches a honeytoken; the
	// console's admin lifts the quarantine, and the agent is served again.
	if err := admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "console-agent", "org": "operator", "roles": []string{"support"}}, nil); err != nil {
		t.Fatal(err)
	}
	agent := enrolled(t, ctx, srv.base, admin, "console-agent")
	var hts struct{ Honeytokens []struct{ ID, Region string } }
	if err := admin.JSON(ctx, "GET", "/v1/collections/users/honeytokens", "", nil, &hts); err != nil || len(hts.Honeytokens) == 0 {
		t.Fatalf("honeytokens: %v %+v", err, hts)
	}
	if err := agent.JSON(ctx, "GET", "/v1/collections/users/records/"+hts.Honeytokens[0].ID, "support", nil, nil); err == nil {
		t.Fatal("reading a honeytoken was allowed")
	}
	if err := agent.JSON(ctx, "GET", "/v1/whoami", "", nil, nil); client.ProblemType(err) != "quarantined" {
		t.Fatalf("the agent after the honeytoken: %v, want quarantined", err)
	}
	// The guard quarantines the agent's principal and its device: both
	// are lifted in the console.
	var qs struct {
		Quarantines []struct{ ID, Principal, Status string }
	}
	if err := admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &qs); err != nil {
		t.Fatal(err)
	}
	var qids []string
	for _, q := range qs.Quarantines {
		if q.Principal == "console-agent" && q.Status == "active" {
			qids = append(qids, q.ID)
		}
	}
	if len(qids) == 0 {
		t.Fatalf("no active quarantine of console-agent: %+v", qs)
	}
	page("#/quarantines", "quarantines")
	do("quarantine listed", visible(`button[data-lift="`+qids[0]+`"]`))
	shot("06-quarantines")
	// A lift needs a reason: confirming with none lifts nothing; with one,
	// the quarantine is lifted and the reason is kept with the lift.
	liftReason := "console-agent opened a decoy in a drill; reviewed with the agent's lead"
	do("lift without a reason", click(`button[data-lift="`+qids[0]+`"]`), visible(`button[data-lift-confirm="`+qids[0]+`"]`),
		click(`button[data-lift-confirm="`+qids[0]+`"]`), chromedp.Sleep(500*time.Millisecond), visible(`tr[data-key="`+qids[0]+`"] [data-status=active]`))
	if err := admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &qs); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs.Quarantines {
		if q.ID == qids[0] && q.Status != "active" {
			t.Fatalf("a lift without a reason changed %s: %+v", q.ID, q)
		}
	}
	for i, qid := range qids {
		if i > 0 {
			do("lift "+qid, visible(`button[data-lift="`+qid+`"]`), click(`button[data-lift="`+qid+`"]`))
		}
		do("lift "+qid, visible(`textarea[data-lift-reason="`+qid+`"]`), chromedp.SendKeys(chromedp.CSS(`textarea[data-lift-reason="`+qid+`"]`), liftReason),
			click(`button[data-lift-confirm="`+qid+`"]`), visible(`tr[data-key="`+qid+`"] [data-status=lifted]`))
		if got := textOf(`tr[data-key="` + qid + `"] [data-lift-reason-shown]`); got != liftReason {
			t.Errorf("the page shows the lift reason of %s as %q", qid, got)
		}
	}
	shot("06b-quarantines-lifted")
	var lifted struct {
		Quarantines []struct {
			ID, Status string
			Lifts      []struct{ By, Reason string }
		}
	}
	if err := admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &lifted); err != nil {
		t.Fatal(err)
	}
	for _, q := range lifted.Quarantines {
		if slices.Contains(qids, q.ID) && (q.Status != "lifted" || len(q.Lifts) != 1 || q.Lifts[0].By != "admin" || q.Lifts[0].Reason != liftReason) {
			t.Fatalf("quarantine %s after the console lifted it: %+v", q.ID, q)
		}
	}
	agent.Renew = true // its token from before the quarantine stays revoked: a new one
	var whoAgent struct{ Principal string }
	if err := agent.JSON(ctx, "GET", "/v1/whoami", "", nil, &whoAgent); err != nil || whoAgent.Principal != "console-agent" {
		t.Fatalf("the agent after the lift: %v %+v", err, whoAgent)
	}

	// The guard page: the recent alerts (console-agent's honeytoken), then
	// an alert that fires while the page is open appears without a reload.
	page("#/guard", "guard")
	do("guard", visible(`#rules`), visible(`#alerts-table`), visible(`#live-alerts tr[data-principal="console-agent"][data-rule=honeytoken]`))
	poll("alert stream open", `document.querySelector('#alerts-live')?.dataset.state === 'open'`)
	alerts := evalInt(`document.querySelectorAll('#alerts-table tbody tr:not(:has(td.empty))').length`)
	if alerts == 0 {
		t.Error("the guard page shows no guard decision from the audit log (the demo's honeytoken and this test's fired)")
	}
	guardReady := evalString(`document.querySelector('main').dataset.ready`)
	if err := admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "console-agent2", "org": "operator", "roles": []string{"support"}}, nil); err != nil {
		t.Fatal(err)
	}
	agent2 := enrolled(t, ctx, srv.base, admin, "console-agent2")
	if err := agent2.JSON(ctx, "GET", "/v1/collections/users/records/"+hts.Honeytokens[0].ID, "support", nil, nil); client.ProblemType(err) != "quarantined" {
		t.Fatalf("agent2 reading a honeytoken: %v, want quarantined", err)
	}
	do("the alert appears as it fires", visible(`#live-alerts tr.new[data-principal="console-agent2"][data-rule=honeytoken]`))
	if got := evalString(`document.querySelector('main').dataset.ready`); got != guardReady || evalString(`location.hash`) != "#/guard" {
		t.Errorf("the guard page was rendered again (ready %s, was %s): the alert should come from the stream", got, guardReady)
	}
	if first := evalString(`document.querySelector('#live-alerts tbody tr')?.dataset.principal || ''`); first != "console-agent2" {
		t.Errorf("the newest alert is not at the top: %q", first)
	}
	shot("07-guard")
	page("#/audit", "audit")
	do("audit", visible(`#checkpoints [data-verify]`))
	bad, ok := evalInt(`document.querySelectorAll('[data-verify=bad]').length`), evalInt(`document.querySelectorAll('[data-verify=ok]').length`)
	if bad != 0 || ok == 0 {
		t.Errorf("checkpoints verified in the browser: %d ok, %d bad", ok, bad)
	}
	if first := evalString(`document.querySelector('#checkpoints [data-consistency]').dataset.consistency`); first != "first" {
		t.Errorf("first visit of the audit page: consistency %q, want first", first)
	}
	shot("08-audit")
	// The log grows (a principal created: audited); the next visit proves
	// the new checkpoint extends the one witnessed (consistency proof
	// verified in the browser): the positive control of the tamper below.
	grow := func(id string) {
		t.Helper()
		if err := admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": id, "org": "operator", "roles": []string{"member"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	grow("audit-probe-1")
	page("#/approvals", "approvals") // (the same hash again would not render)
	page("#/audit", "audit")
	do("audit again", visible(`#checkpoints [data-verify]`))
	if v, k := evalString(`document.querySelector('#checkpoints [data-verify]').dataset.verify`), evalString(`document.querySelector('#checkpoints [data-consistency]').dataset.consistency`); v != "ok" || k != "proved" {
		t.Errorf("after the log grew: verify %q, consistency %q; want ok, proved", v, k)
	}
	shot("08b-audit-proved")
	// Tampered, 1: the checkpoint this browser witnessed before is changed
	// (its root, as a fork of the log would have it): the consistency proof
	// to the new checkpoint fails and the page says so.
	witness := evalString(`localStorage.getItem('sekisho-witness-default') || ''`)
	if witness == "" {
		t.Fatal("no witnessed checkpoint in localStorage")
	}
	evalString(`(() => { const w = JSON.parse(localStorage.getItem('sekisho-witness-default')); const r = Uint8Array.from(atob(w.root), c => c.charCodeAt(0)); r[0] ^= 1;
		w.root = btoa(String.fromCharCode(...r)); localStorage.setItem('sekisho-witness-default', JSON.stringify(w)); return w.root })()`)
	grow("audit-probe-2")
	page("#/approvals", "approvals") // (the same hash again would not render)
	page("#/audit", "audit")
	do("audit tampered witness", visible(`#checkpoints [data-verify]`))
	if v, k := evalString(`document.querySelector('#checkpoints [data-verify]').dataset.verify`), evalString(`document.querySelector('#checkpoints [data-consistency]').dataset.consistency`); v != "bad" || k != "failed" {
		t.Errorf("with a tampered witnessed checkpoint: verify %q, consistency %q; want bad, failed", v, k)
	}
	shot("08c-audit-fork-failed")
	// Tampered, 2: the checkpoint served to the page is changed on the way
	// (its root hash): the signature check fails.
	evalString(`localStorage.removeItem('sekisho-witness-default'); window.realFetch = window.fetch; window.fetch = async (input, init) => {
		const res = await window.realFetch(input, init)
		if (!String(input).includes('/v1/audit/checkpoint')) return res
		const lines = (await res.text()).split('\n'); const r = Uint8Array.from(atob(lines[2]), c => c.charCodeAt(0)); r[0] ^= 1; lines[2] = btoa(String.fromCharCode(...r))
		return new Response(lines.join('\n'), { status: res.status, headers: res.headers }) }; 'patched'`)
	page("#/approvals", "approvals") // (the same hash again would not render)
	page("#/audit", "audit")
	do("audit tampered checkpoint", visible(`#checkpoints [data-verify]`))
	if v, k := evalString(`document.querySelector('#checkpoints [data-verify]').dataset.verify`), evalString(`document.querySelector('#checkpoints [data-consistency]').dataset.consistency`); v != "bad" || k != "unsigned" {
		t.Errorf("with a tampered checkpoint: verify %q, consistency %q; want bad, unsigned", v, k)
	}
	shot("08d-audit-tampered-checkpoint")
	evalString(`window.fetch = window.realFetch; 'restored'`)
	// Positive control: untampered again, it verifies.
	page("#/approvals", "approvals") // (the same hash again would not render)
	page("#/audit", "audit")
	do("audit restored", visible(`#checkpoints [data-verify]`))
	if v := evalString(`document.querySelector('#checkpoints [data-verify]').dataset.verify`); v != "ok" {
		t.Errorf("the untampered checkpoint: verify %q, want ok", v)
	}
	// Grants: the page shows the server's computation (GET /v1/grants/usage).
	page("#/grants", "grants")
	do("grants", visible(`#grants-all`))
	var usage struct {
		Expiring, Unused []string
		OverBudget       []string `json:"over_budget"`
		Grants           []struct {
			ID             string
			BudgetRefusals int `json:"budget_refusals"`
			Reads          int
		}
	}
	if err := admin.JSON(ctx, "GET", "/v1/grants/usage", "", nil, &usage); err != nil {
		t.Fatal(err)
	}
	if len(usage.OverBudget) == 0 || len(usage.Unused) == 0 {
		t.Errorf("the demo's history has an over-budget grant and this test an unused one: %+v", usage)
	}
	for sel, want := range map[string][]string{"#grants-expiring": usage.Expiring, "#grants-unused": usage.Unused, "#grants-over-budget": usage.OverBudget} {
		got := evalString(`[...document.querySelectorAll('` + sel + ` tbody tr[data-key]')].map(r => r.dataset.key).join(',')`)
		if got != strings.Join(want, ",") {
			t.Errorf("%s on the page: %q; the API: %v", sel, got, want)
		}
	}
	for _, g := range usage.Grants {
		if slices.Contains(usage.OverBudget, g.ID) {
			if got := textOf(`#grants-over-budget tr[data-key="` + g.ID + `"] [data-k=budget_refusals]`); got != strconv.Itoa(g.BudgetRefusals) {
				t.Errorf("grant %s: %s budget refusals on the page, %d in the API", g.ID, got, g.BudgetRefusals)
			}
		}
	}
	shot("09-grants")

	// Japanese, and the zone shown.
	page("#/incidents/"+incidentID, "incidents")
	do("japanese", visible(`#scope-numbers`), click(`#lang`))
	poll("japanese nav", `document.querySelector('#nav-incidents')?.textContent === 'インシデント' && !!document.querySelector('#scope-numbers')`)
	h1, zone := textOf(`#nav-incidents`), textOf(`#zone`)
	if h1 != "インシデント" || !strings.Contains(zone, "Asia/Tokyo") {
		t.Errorf("after switching: nav %q, zone %q", h1, zone)
	}
	shot("10-incident-ja")

	// The CSP is enforced: an inline script injected into the page does not
	// run, and the violation is reported (the listener sees it).
	mu.Lock()
	seen := len(problems)
	mu.Unlock()
	evalString(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s); return String(window.injected) })()`)
	if v := evalString(`String(window.injected)`); v != "undefined" {
		t.Fatalf("an injected inline script ran (window.injected = %s)", v)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		var csp bool
		for _, p := range problems[seen:] {
			csp = csp || strings.Contains(p, "Content Security Policy")
		}
		if csp {
			problems = problems[:seen]
		}
		mu.Unlock()
		if csp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the injected inline script was not reported as a CSP violation")
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		b, _ := json.MarshalIndent(problems, "", "  ")
		t.Errorf("the browser reported problems:\n%s", b)
	}
	t.Logf("screenshots in %s", shots)
}

// second returns the error of a two-valued call.
func second[T any](_ T, err error) error { return err }

// enrolled enrols a new P-256 device key for principal and has approver
// approve it; it returns the principal's client with that key.
func enrolled(t *testing.T, ctx context.Context, base string, approver *client.Client, principal string) *client.Client {
	t.Helper()
	key, err := dpop.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(base, key)
	d, err := c.Enrol(ctx, principal, principal+" e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := approver.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsoleAssets checks that the committed console/dist is what
// console/web builds (npm ci, tsc, esbuild) from the sources in the
// repository: no stale or hand-edited bundle is embedded.
func TestConsoleAssets(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the console's npm packages")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("SEKISHO_REQUIRE_NODE") != "" {
			t.Fatal("npm not found; install Debian's nodejs and npm")
		}
		t.Skip("npm not found; set SEKISHO_REQUIRE_NODE=1 to make this a failure")
	}
	web, err := filepath.Abs("../console/web")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"ci", "--no-audit", "--no-fund", "--loglevel=error"}, {"run", "build"}} {
		cmd := exec.CommandContext(ctx, npm, args...)
		cmd.Dir = web
		cmd.Env = append(os.Environ(), "SEKISHO_CONSOLE_OUT="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm %v: %v\n%s", args, err, b)
		}
	}
	built, _ := filepath.Glob(filepath.Join(out, "*"))
	committed, _ := filepath.Glob("../console/dist/*")
	if len(built) != len(committed) || len(built) == 0 {
		t.Fatalf("built %v, committed %v", built, committed)
	}
	for _, b := range built {
		want, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("../console/dist", filepath.Base(b)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("console/dist/%s differs from a fresh build: run go generate ./console and commit", filepath.Base(b))
		}
	}
}
