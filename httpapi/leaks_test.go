package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/httpapi"
)

// TestGuardAlertCursorOrgIsolation: what an org's admin reads of the
// guard's alerts (the list's seq and next, the stream's ids) tells it
// nothing of other orgs' alerts. Before, every org's alerts shared the
// node's sequence: next moved past alpha's alerts in beta's answers and
// the gap between two of beta's alerts counted alpha's in between. Now
// beta's answers are byte for byte the same before and after alpha's
// alerts, and beta's alerts are numbered one after the other however many
// alpha had between them (negative); alpha's admin sees alpha's alerts,
// numbered in alpha's sequence, and the root admin sees all of them in the
// node's, the gap counting alpha's (positive controls).
func TestGuardAlertCursorOrgIsolation(t *testing.T) {
	w := newGuardWorld(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, o := range []string{"alpha", "beta"} {
		must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": o, "home_region": "jp"}, nil))
	}
	alphaAdmin := w.principal(w.admin, w.admin, "alpha-admin", "alpha", "admin")
	betaAdmin := w.principal(w.admin, w.admin, "beta-admin", "beta", "admin")
	raise := func(org string, n int) {
		for i := range n {
			w.g.Raise(ctx, vaultCaller("sekisho", org), "test-rule", fmt.Sprintf("%s alert %d", org, i))
		}
	}
	// body is the raw answer of GET path as c: what the reader sees.
	body := func(c *client.Client, path string) string {
		t.Helper()
		resp, err := c.Do(ctx, "GET", path, nil, nil)
		must(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		must(t, err)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	type page struct {
		Alerts []guard.AlertEntry
		Next   uint64
	}
	list := func(c *client.Client, path string) page {
		t.Helper()
		var p page
		must(t, json.Unmarshal([]byte(body(c, path)), &p))
		return p
	}

	// No alerts of beta's yet: the same answer before and after alpha's.
	before := body(betaAdmin, "/v1/guard/alerts")
	beforeAfter0 := body(betaAdmin, "/v1/guard/alerts?after=0")
	raise("alpha", 3)
	if got := body(betaAdmin, "/v1/guard/alerts"); got != before {
		t.Fatalf("beta's list moved with alpha's alerts:\nbefore %s\nafter  %s", before, got)
	}
	if got := body(betaAdmin, "/v1/guard/alerts?after=0"); got != beforeAfter0 {
		t.Fatalf("beta's list after=0 moved with alpha's alerts:\nbefore %s\nafter  %s", beforeAfter0, got)
	}
	var p0 page
	must(t, json.Unmarshal([]byte(before), &p0))
	if len(p0.Alerts) != 0 || p0.Next != 0 {
		t.Fatalf("beta's first answer: %s", before)
	}

	// Beta's stream, opened at its cursor: alpha's alerts never show, and
	// the ids of beta's alerts follow one another.
	stream := openStream(t, ctx, betaAdmin, fmt.Sprintf("?after=%d", p0.Next), nil)
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("beta's stream: %d", stream.StatusCode)
	}
	events := readEvents(stream.Body)
	raise("beta", 1)
	b1 := nextAlert(t, events)
	raise("alpha", 5)
	raise("beta", 1)
	b2 := nextAlert(t, events)
	if b1.Org != "beta" || b2.Org != "beta" || b1.Detail != "beta alert 0" || b2.Detail != "beta alert 0" || b1.ID == b2.ID {
		t.Fatalf("beta's stream sent %+v then %+v", b1, b2)
	}
	if b2.Seq != b1.Seq+1 {
		t.Fatalf("beta's alerts numbered %d then %d: the gap counts alpha's alerts", b1.Seq, b2.Seq)
	}

	// Beta's list: its two alerts, next at the last; unchanged by alpha's.
	bl := body(betaAdmin, "/v1/guard/alerts")
	var bp page
	must(t, json.Unmarshal([]byte(bl), &bp))
	if len(bp.Alerts) != 2 || bp.Alerts[0].ID != b1.ID || bp.Alerts[0].Seq != b1.Seq || bp.Alerts[1].ID != b2.ID || bp.Alerts[1].Seq != b2.Seq || bp.Next != b2.Seq {
		t.Fatalf("beta's list: %s (stream ids %d, %d)", bl, b1.Seq, b2.Seq)
	}
	blAfter := body(betaAdmin, fmt.Sprintf("/v1/guard/alerts?after=%d", b2.Seq))
	raise("alpha", 2)
	if got := body(betaAdmin, "/v1/guard/alerts"); got != bl {
		t.Fatalf("beta's list moved with alpha's alerts:\nbefore %s\nafter  %s", bl, got)
	}
	if got := body(betaAdmin, fmt.Sprintf("/v1/guard/alerts?after=%d", b2.Seq)); got != blAfter {
		t.Fatalf("beta's list after its last alert moved with alpha's:\nbefore %s\nafter  %s", blAfter, got)
	}
	if p := list(betaAdmin, fmt.Sprintf("/v1/guard/alerts?after=%d", b1.Seq)); len(p.Alerts) != 1 || p.Alerts[0].ID != b2.ID || p.Next != b2.Seq {
		t.Fatalf("beta after %d: %+v", b1.Seq, p)
	}
	if p := list(betaAdmin, "/v1/guard/alerts?limit=1"); len(p.Alerts) != 1 || p.Alerts[0].ID != b1.ID || p.Next != b1.Seq {
		t.Fatalf("beta limit 1: %+v", p)
	}

	// Control: alpha's admin sees alpha's 10 alerts, numbered in alpha's
	// sequence, and none of beta's.
	ap := list(alphaAdmin, "/v1/guard/alerts")
	if len(ap.Alerts) != 10 {
		t.Fatalf("alpha's admin sees %d alerts, want alpha's 10: %+v", len(ap.Alerts), ap)
	}
	for i, a := range ap.Alerts {
		if a.Org != "alpha" || (i > 0 && a.Seq != ap.Alerts[i-1].Seq+1) {
			t.Fatalf("alpha's alert %d: %+v (previous %d)", i, a, ap.Alerts[i-1].Seq)
		}
	}
	if ap.Next != ap.Alerts[9].Seq {
		t.Fatalf("alpha's next %d, last %d", ap.Next, ap.Alerts[9].Seq)
	}
	// Control: the root admin sees all 12 in the node's sequence, where
	// alpha's 5 lie between beta's two.
	rp := list(w.admin, "/v1/guard/alerts")
	seq := map[string]uint64{}
	for i, a := range rp.Alerts {
		seq[a.ID] = a.Seq
		if i > 0 && a.Seq != rp.Alerts[i-1].Seq+1 {
			t.Fatalf("root admin's alert %d: %+v", i, a)
		}
	}
	if len(rp.Alerts) != 12 || seq[b2.ID]-seq[b1.ID] != 6 || rp.Next != rp.Alerts[11].Seq {
		t.Fatalf("the root admin sees %d alerts, beta's at %d and %d, next %d", len(rp.Alerts), seq[b1.ID], seq[b2.ID], rp.Next)
	}
}

// TestGrantUsageHidesAuditVolume: GET /v1/grants/usage read by another
// org's admin tells nothing of the instance's audit volume. Before, its
// events_scanned counted every audit event (every org's) since the oldest
// grant listed. Now it is left out of the answer of a caller who does not
// see every org, and the affiliate's admin's answer is the same before
// and after the subcontractor's principal reads (negative); the root
// admin's answer has it, grown by those reads (positive control: the
// count the affiliate's admin would have seen), and the affiliate's admin
// sees its grant's reads.
func TestGrantUsageHidesAuditVolume(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx := context.Background()
	for _, o := range []string{"affiliate", "subcontractor"} {
		must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": o, "home_region": "jp"}, nil))
	}
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	subAdmin := w.principal(w.admin, w.admin, "sub-admin", "subcontractor", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	eve := w.principal(subAdmin, subAdmin, "eve", "subcontractor", "member")
	grant := func(org string) string {
		var g struct{ ID string }
		must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": org, "collections": []string{"users"},
			"fields": []string{"display_name"}, "regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
			"expires": w.clk.Now().Add(24 * time.Hour).Format(time.RFC3339)}, &g))
		return g.ID
	}
	gAff := grant("affiliate")
	grant("subcontractor")
	recs, err := w.store.GetRecords(ctx, "users", w.ids)
	must(t, err)
	var jp []string
	for _, r := range recs {
		if r.Region == "jp" {
			jp = append(jp, r.ID)
		}
	}
	if len(jp) < 3 {
		t.Fatalf("%d jp records", len(jp))
	}
	must(t, bob.JSON(ctx, "GET", "/v1/collections/users/records/"+jp[0]+"?fields=display_name", "support", nil, nil))

	// answer is c's usage report as JSON, without as_of (the clock's).
	answer := func(c *client.Client) map[string]json.RawMessage {
		t.Helper()
		var m map[string]json.RawMessage
		must(t, c.JSON(ctx, "GET", "/v1/grants/usage", "", nil, &m))
		delete(m, "as_of")
		return m
	}
	scanned := func(m map[string]json.RawMessage) int64 {
		t.Helper()
		var n int64
		if err := json.Unmarshal(m["events_scanned"], &n); err != nil || n == 0 {
			t.Fatalf("the root admin's events_scanned %s: %v", m["events_scanned"], err)
		}
		return n
	}
	affBefore, rootBefore := answer(affAdmin), answer(w.admin)
	if v, ok := affBefore["events_scanned"]; ok {
		t.Fatalf("the affiliate's admin was told events_scanned %s", v)
	}
	// The subcontractor's principal reads (and is refused) a few times.
	for _, id := range jp[:3] {
		must(t, eve.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "support", nil, nil))
		if err := eve.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=phone", "support", nil, nil); err == nil {
			t.Fatal("eve read a field outside her grant")
		}
	}
	affAfter := answer(affAdmin)
	b1, _ := json.Marshal(affBefore)
	b2, _ := json.Marshal(affAfter)
	if string(b1) != string(b2) {
		t.Fatalf("the affiliate's admin's answer moved with the subcontractor's reads:\nbefore %s\nafter  %s", b1, b2)
	}
	// Controls: the root admin's count grew by the subcontractor's events;
	// the affiliate's admin sees its own grant's read.
	if n0, n1 := scanned(rootBefore), scanned(answer(w.admin)); n1 < n0+6 {
		t.Fatalf("the root admin's events_scanned %d then %d: the subcontractor's 6 reads not counted", n0, n1)
	}
	var rep httpapi.GrantUsageReport
	must(t, affAdmin.JSON(ctx, "GET", "/v1/grants/usage", "", nil, &rep))
	if len(rep.Grants) != 1 || rep.Grants[0].ID != gAff || rep.Grants[0].Reads != 1 || rep.EventsScanned != nil {
		t.Fatalf("the affiliate's admin's report: %+v", rep)
	}
}

// TestGuardAlertFeedPerOrg: one org's flood of alerts does not push
// another org's out of its admins' view. Before, the node kept one ring of
// AlertFeedSize alerts for every reader, so alpha raising AlertFeedSize
// alerts emptied beta's list (negative). Now beta's admin still reads
// beta's alert; alpha's admin reads alpha's last AlertFeedSize (its own
// flood does push its oldest out: positive control of the bound), and the
// root admin the node's last AlertFeedSize.
func TestGuardAlertFeedPerOrg(t *testing.T) {
	w := newGuardWorld(t, 1)
	ctx := context.Background()
	for _, o := range []string{"alpha", "beta"} {
		must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": o, "home_region": "jp"}, nil))
	}
	alphaAdmin := w.principal(w.admin, w.admin, "alpha-admin", "alpha", "admin")
	betaAdmin := w.principal(w.admin, w.admin, "beta-admin", "beta", "admin")
	type page struct {
		Alerts []guard.AlertEntry
		Next   uint64
	}
	list := func(c *client.Client) page {
		t.Helper()
		var p page
		must(t, c.JSON(ctx, "GET", fmt.Sprintf("/v1/guard/alerts?limit=%d", guard.AlertFeedSize), "", nil, &p))
		return p
	}
	w.g.Raise(ctx, vaultCaller("sekisho", "beta"), "test-rule", "beta's only alert")
	flood := guard.AlertFeedSize + 5
	for i := range flood {
		w.g.Raise(ctx, vaultCaller("sekisho", "alpha"), "test-rule", fmt.Sprintf("alpha alert %d", i))
	}

	if bp := list(betaAdmin); len(bp.Alerts) != 1 || bp.Alerts[0].Detail != "beta's only alert" || bp.Alerts[0].Org != "beta" {
		t.Fatalf("beta's admin after alpha's flood of %d: %d alerts %+v", flood, len(bp.Alerts), bp.Alerts)
	}
	ap := list(alphaAdmin)
	if len(ap.Alerts) != guard.AlertFeedSize {
		t.Fatalf("alpha's admin reads %d alerts, want the last %d", len(ap.Alerts), guard.AlertFeedSize)
	}
	if first, last := ap.Alerts[0].Detail, ap.Alerts[len(ap.Alerts)-1].Detail; first != "alpha alert 5" || last != fmt.Sprintf("alpha alert %d", flood-1) {
		t.Fatalf("alpha's admin reads %q .. %q", first, last)
	}
	for _, a := range ap.Alerts {
		if a.Org != "alpha" {
			t.Fatalf("alpha's admin reads %+v", a)
		}
	}
	rp := list(w.admin)
	if len(rp.Alerts) != guard.AlertFeedSize || rp.Alerts[len(rp.Alerts)-1].Detail != fmt.Sprintf("alpha alert %d", flood-1) {
		t.Fatalf("root admin reads %d alerts, last %+v", len(rp.Alerts), rp.Alerts[len(rp.Alerts)-1])
	}
}
