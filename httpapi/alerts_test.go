package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/httpapi"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// readEvents reads events from an event stream onto a channel until it ends.
func readEvents(body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

// nextAlert waits for the next alert event of a stream.
func nextAlert(t *testing.T, ch <-chan sseEvent) guard.AlertEntry {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("the alert stream ended")
			}
			if ev.event != "alert" {
				continue
			}
			var a guard.AlertEntry
			if err := json.Unmarshal([]byte(ev.data), &a); err != nil || ev.id != fmt.Sprint(a.Seq) {
				t.Fatalf("alert event %+v: %v", ev, err)
			}
			return a
		case <-timeout:
			t.Fatal("no alert on the stream within 10 s")
		}
	}
}

// openStream opens GET /v1/guard/alerts/stream as c.
func openStream(t *testing.T, ctx context.Context, c *client.Client, query string, h http.Header) *http.Response {
	t.Helper()
	resp, err := c.Do(ctx, "GET", "/v1/guard/alerts/stream"+query, nil, h)
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestGuardAlertsAPI: the guard's alerts as they fire, over HTTP: the list
// and the event stream are for admins only (a member is refused), scoped to
// the admin's org (the org of the principal, and the org whose data it
// touched; the root org's admins see all); the stream delivers an alert
// raised after it opened without polling, and resumes after Last-Event-ID.
func TestGuardAlertsAPI(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "subcontractor", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	subAdmin := w.principal(w.admin, w.admin, "sub-admin", "subcontractor", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	var made struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 2}, &made))
	must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
		"fields": []string{"display_name"}, "regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
		"expires": w.clk.Now().Add(24 * time.Hour).Format(time.RFC3339)}, nil))

	// Admins only: a member is refused the list and the stream (a problem,
	// not a stream).
	refused(t, w.agent.JSON(ctx, "GET", "/v1/guard/alerts", "", nil, nil), "admin-required")
	if r := openStream(t, ctx, bob, "", nil); r.StatusCode != http.StatusForbidden || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("a member's stream: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	refused(t, w.admin.JSON(ctx, "GET", "/v1/guard/alerts?after=x", "", nil, nil), "invalid")
	var page struct {
		Alerts []guard.AlertEntry
		Next   uint64
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/guard/alerts", "", nil, &page))
	if len(page.Alerts) != 0 {
		t.Fatalf("alerts before any fired: %+v", page.Alerts)
	}

	// Streams opened before the alerts fire: the root org's admin's and
	// the affiliate's admin's.
	rootStream := openStream(t, ctx, w.admin, "", nil)
	affStream := openStream(t, ctx, affAdmin, "", nil)
	for _, r := range []*http.Response{rootStream, affStream} {
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	rootEvents, affEvents := readEvents(rootStream.Body), readEvents(affStream.Body)

	// sam (operator) touches a decoy, then bob (affiliate, under the grant)
	// touches the other: two honeytoken alerts.
	_, err := w.read(w.agent, made.Honeytokens[0].ID)
	refused(t, err, guard.ProblemQuarantined)
	a1 := nextAlert(t, rootEvents)
	if a1.Rule != guard.RuleHoneytoken || a1.Principal != "sam" || a1.Org != "operator" || a1.Action != guard.ActionQuarantine {
		t.Fatalf("first alert: %+v", a1)
	}
	refused(t, bob.JSON(ctx, "GET", "/v1/collections/users/records/"+made.Honeytokens[1].ID+"?fields=display_name", "support", nil, nil), guard.ProblemQuarantined)
	a2 := nextAlert(t, rootEvents)
	if a2.Principal != "bob" || a2.Org != "affiliate" || len(a2.DataOrgs) != 1 || a2.DataOrgs[0] != "operator" || a2.Seq <= a1.Seq {
		t.Fatalf("second alert: %+v (first %d)", a2, a1.Seq)
	}
	// The affiliate's admin's stream got bob's alert and not sam's.
	if got := nextAlert(t, affEvents); got.ID != a2.ID {
		t.Fatalf("the affiliate's admin was sent %+v, want bob's alert only", got)
	}

	// The list, scoped: root admin both; affiliate bob's; subcontractor none.
	for _, tc := range []struct {
		who  string
		c    *client.Client
		want []string
	}{{"root admin", w.admin, []string{a1.ID, a2.ID}}, {"affiliate admin", affAdmin, []string{a2.ID}}, {"subcontractor admin", subAdmin, nil}} {
		must(t, tc.c.JSON(ctx, "GET", "/v1/guard/alerts", "", nil, &page))
		var ids []string
		for _, a := range page.Alerts {
			ids = append(ids, a.ID)
		}
		// next: the root admin's is the node's last seq; another org's
		// admin's the last of its own alerts (0 with none: it counts only
		// what the reader sees, TestGuardAlertCursorOrgIsolation).
		wantNext := a2.Seq
		if tc.c != w.admin {
			wantNext = 0
			if n := len(page.Alerts); n > 0 {
				wantNext = page.Alerts[n-1].Seq
			}
		}
		if strings.Join(ids, ",") != strings.Join(tc.want, ",") || page.Next != wantNext {
			t.Errorf("%s lists %v (next %d, want %d), want %v", tc.who, ids, page.Next, wantNext, tc.want)
		}
	}
	// after: only what came later; a stream resumes after Last-Event-ID.
	must(t, w.admin.JSON(ctx, "GET", fmt.Sprintf("/v1/guard/alerts?after=%d", a1.Seq), "", nil, &page))
	if len(page.Alerts) != 1 || page.Alerts[0].ID != a2.ID {
		t.Fatalf("after %d: %+v", a1.Seq, page.Alerts)
	}
	resumed := openStream(t, ctx, w.admin, "", http.Header{"Last-Event-Id": {fmt.Sprint(a1.Seq)}})
	if got := nextAlert(t, readEvents(resumed.Body)); got.ID != a2.ID {
		t.Fatalf("resumed after %d: %+v", a1.Seq, got)
	}

	// A reader quarantined while it listens: its stream ends with an error
	// event instead of the next alert (the root admin's stream, above, is
	// the control that the alert was sent).
	admin2 := w.principal(w.admin, w.admin, "admin2", "operator", "admin", "support")
	s2 := openStream(t, ctx, admin2, fmt.Sprintf("?after=%d", a2.Seq), nil)
	ev2 := readEvents(s2.Body)
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 1}, &made))
	_, err = w.read(admin2, made.Honeytokens[0].ID)
	refused(t, err, guard.ProblemQuarantined)
	if got := nextAlert(t, rootEvents); got.Principal != "admin2" {
		t.Fatalf("the root admin's stream: %+v, want admin2's alert", got)
	}
	for ev := range ev2 {
		if ev.event == "alert" {
			t.Fatalf("a quarantined reader was sent an alert: %+v", ev)
		}
		if ev.event == "error" {
			if !strings.Contains(ev.data, "problems/quarantined") {
				t.Fatalf("error event %q", ev.data)
			}
			return
		}
	}
	t.Fatal("the quarantined reader's stream ended without an error event")
}

// TestGuardAlertStreamBounds attacks the alert stream as a reader who
// should not keep it: streams are bounded per principal and in all (a
// fifth stream of one admin is 429 too-many-streams; another admin's
// opens, and a closed stream frees its place: controls), and the reader's
// credential is checked again before every write: a reader whose device
// was revoked while it listened gets an error event and never the next
// alert (it did get it before: only a quarantine ended a stream), one
// whose token ran out gets an end event (the client reopens with a new
// token); the root admin's stream is sent the alert (control).
func TestGuardAlertStreamBounds(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var made struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 3}, &made))

	// Bounds: one admin's fifth stream is refused, before any stream.
	var mine []*http.Response
	for range httpapi.AlertStreamsPerPrincipal {
		r := openStream(t, ctx, w.admin, "", nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("stream: %d", r.StatusCode)
		}
		mine = append(mine, r)
	}
	over := openStream(t, ctx, w.admin, "", nil)
	if over.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(over.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("stream beyond the bound: %d %s", over.StatusCode, over.Header.Get("Content-Type"))
	}
	var p client.Problem
	json.NewDecoder(over.Body).Decode(&p)
	if !strings.HasSuffix(p.Type, "/too-many-streams") {
		t.Fatalf("problem %+v", p)
	}
	// Control: another admin opens one; a closed stream frees its place.
	admin2 := w.principal(w.admin, w.admin, "admin2", "operator", "admin")
	revoked := openStream(t, ctx, admin2, "", nil)
	if revoked.StatusCode != http.StatusOK {
		t.Fatalf("another admin's stream: %d", revoked.StatusCode)
	}
	mine[0].Body.Close()
	for i := 0; ; i++ {
		r := openStream(t, ctx, w.admin, "", nil)
		if r.StatusCode == http.StatusOK {
			mine[0] = r
			break
		}
		if i == 100 {
			t.Fatalf("a closed stream did not free its place: %d", r.StatusCode)
		}
		r.Body.Close()
		time.Sleep(50 * time.Millisecond)
	}
	rootEvents := readEvents(mine[0].Body)

	// admin2's device is revoked while it listens; the next alert is not
	// sent to it.
	revokedEvents := readEvents(revoked.Body)
	d2 := admin2.Key.Thumbprint()
	must(t, w.admin.JSON(ctx, "POST", "/v1/devices/"+d2+"/revoke", "", nil, nil))
	reader := w.principal(w.admin, w.admin, "reader1", "operator", "support")
	_, err := w.read(reader, made.Honeytokens[0].ID)
	refused(t, err, guard.ProblemQuarantined)
	first := nextAlert(t, rootEvents)
	if first.Principal != "reader1" {
		t.Fatalf("the root admin's stream: %+v, want reader1's alert", first)
	}
	endsWith(t, revokedEvents, "error", "problems/device-revoked")

	// admin3's token runs out while it listens: an end event, no alert.
	admin3 := w.principal(w.admin, w.admin, "admin3", "operator", "admin")
	s3 := openStream(t, ctx, admin3, fmt.Sprintf("?after=%d", first.Seq), nil)
	ev3 := readEvents(s3.Body)
	w.clk.Advance(6 * time.Minute)
	// Control: a stream opened now, with a token of now.
	admin4 := w.principal(w.admin, w.admin, "admin4", "operator", "admin")
	s4 := openStream(t, ctx, admin4, fmt.Sprintf("?after=%d", first.Seq), nil)
	ev4 := readEvents(s4.Body)
	reader2 := w.principal(w.admin, w.admin, "reader2", "operator", "support")
	_, err = w.read(reader2, made.Honeytokens[1].ID)
	refused(t, err, guard.ProblemQuarantined)
	if got := nextAlert(t, ev4); got.Principal != "reader2" {
		t.Fatalf("a fresh stream: %+v, want reader2's alert", got)
	}
	endsWith(t, ev3, "end", "next")
}

// endsWith reads a stream's events until it ends: no alert may come, and
// the last event is of kind event with data containing want.
func endsWith(t *testing.T, ch <-chan sseEvent, event, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended without an %s event", event)
			}
			if ev.event == "alert" {
				t.Fatalf("sent an alert: %+v", ev)
			}
			if ev.event == event {
				if !strings.Contains(ev.data, want) {
					t.Fatalf("%s event %q, want %q in it", event, ev.data, want)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", event)
		}
	}
}
