package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/vault"
)

// POST /v1/keys/rotations: for admins of the root org only; an org that
// does not exist is refused (issue 13 point 12, over HTTP) and gets no
// rotation; a real one rotates in the background and its progress is
// readable until it finishes, the records reading as before.
func TestKeyRotationAPI(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	body := map[string]string{"org": "operator", "region": "jp"}
	refused(t, w.affAdmin.JSON(ctx, "POST", "/v1/keys/rotations", "", body, nil), "admin-required")
	refused(t, w.support.JSON(ctx, "POST", "/v1/keys/rotations", "", body, nil), "admin-required")
	refused(t, w.admin.JSON(ctx, "POST", "/v1/keys/rotations", "", map[string]string{"org": "nosuchorg", "region": "jp"}, nil), "not-found")
	var list struct{ Rotations []vault.Rotation }
	must(t, w.admin.JSON(ctx, "GET", "/v1/keys/rotations", "", nil, &list))
	if len(list.Rotations) != 0 {
		t.Fatalf("refused requests left rotations: %+v", list.Rotations)
	}
	var rot vault.Rotation
	must(t, w.admin.JSON(ctx, "POST", "/v1/keys/rotations", "", body, &rot))
	if rot.ID == "" || rot.Version != 2 || rot.State != vault.RotationRunning {
		t.Fatalf("started rotation: %+v", rot)
	}
	deadline := time.Now().Add(30 * time.Second)
	for rot.State == vault.RotationRunning && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		must(t, w.admin.JSON(ctx, "GET", "/v1/keys/rotations/"+rot.ID, "", nil, &rot))
	}
	if rot.State != vault.RotationFinished || rot.Rewrapped != 1 || len(rot.Retired) != 1 {
		t.Fatalf("rotation at the end: %+v", rot)
	}
	for _, id := range []string{w.recJP, w.recTH} {
		if _, err := w.read(w.admin, id, "support", "phone"); err != nil {
			t.Fatalf("read %s after the rotation: %v", id, err)
		}
	}
	refused(t, w.affAdmin.JSON(ctx, "GET", "/v1/keys/rotations/"+rot.ID, "", nil, nil), "admin-required")
}

// keys destroy: two admins of the root org. The requester cannot approve,
// nor can an admin made for the occasion; before the approval the records
// read; after it every record of that org in that region answers erased,
// other regions and orgs unaffected, and the erasure is reported.
func TestKeyDestroyTwoPerson(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// The affiliate's own records: two in jp, one in th.
	affJP1, affJP2, affTH := w.create(w.affAdmin, "jp", "+81 90-1111-2222"), w.create(w.affAdmin, "jp", "+81 90-3333-4444"), w.create(w.affAdmin, "th", "+66 81 111 2222")
	body := map[string]string{"org": "affiliate", "region": "jp"}
	refused(t, w.affAdmin.JSON(ctx, "POST", "/v1/keys/destructions", "", body, nil), "admin-required")
	w.clk.Advance(access.MinApproverTenure + time.Hour) // admin2 has been an admin for a day
	var d vault.Destruction
	must(t, w.admin.JSON(ctx, "POST", "/v1/keys/destructions", "", body, &d))
	if d.State != vault.DestructionPending {
		t.Fatalf("requested: %+v", d)
	}
	if _, err := w.read(w.affAdmin, affJP1, "support", "phone"); err != nil {
		t.Fatalf("a pending destruction already took effect: %v", err)
	}
	refused(t, w.admin.JSON(ctx, "POST", "/v1/keys/destructions/"+d.ID+"/approve", "", nil, nil), "two-person-rule")
	// An admin created after the request cannot be the second person.
	fresh := w.principal(w.admin, w.admin, "admin3", "operator", "admin")
	refused(t, fresh.JSON(ctx, "POST", "/v1/keys/destructions/"+d.ID+"/approve", "", nil, nil), "approver-too-recent")
	refused(t, w.affAdmin.JSON(ctx, "POST", "/v1/keys/destructions/"+d.ID+"/approve", "", nil, nil), "admin-required")
	if _, err := w.read(w.affAdmin, affJP2, "support", "phone"); err != nil {
		t.Fatalf("a refused approval destroyed the key: %v", err)
	}
	must(t, w.admin2.JSON(ctx, "POST", "/v1/keys/destructions/"+d.ID+"/approve", "", nil, &d))
	if d.State != vault.DestructionDestroyed || d.Records != 2 || d.ApprovedBy != "admin2" {
		t.Fatalf("destruction: %+v, want destroyed with 2 records", d)
	}
	for _, id := range []string{affJP1, affJP2} {
		_, err := w.read(w.affAdmin, id, "support", "phone")
		refused(t, err, "erased")
	}
	for who, id := range map[string]string{"affiliate th": affTH, "operator jp": w.recJP} {
		c := w.affAdmin
		if who == "operator jp" {
			c = w.admin
		}
		if _, err := w.read(c, id, "support", "phone"); err != nil {
			t.Fatalf("%s after destroying affiliate/jp: %v", who, err)
		}
	}
	refused(t, w.admin2.JSON(ctx, "POST", "/v1/keys/destructions/"+d.ID+"/approve", "", nil, nil), "destruction-not-pending")
	// The erasure is in the audit log, as a denial on each later read too.
	var evs struct {
		Events []struct {
			Event map[string]any `json:"event"`
		} `json:"events"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/audit/events?limit=1000", "", nil, &evs))
	seen := map[string]bool{}
	for _, e := range evs.Events {
		seen[e.Event["action"].(string)+"/"+e.Event["decision"].(string)] = true
	}
	for _, want := range []string{"keys.destroy.request/allow", "keys.destroy/deny", "keys.destroy/allow", "keys.destroy.finished/allow", "read/deny"} {
		if !seen[want] {
			t.Errorf("no %s event in the audit log", want)
		}
	}
}
