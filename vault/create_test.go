package vault_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// createPath is one way into the create pipeline, as its callers use it:
// it creates one record and returns its id, or the record's error.
type createPath struct {
	name   string
	action string // the audit event's action
	decoy  bool   // SealedRecord.Honeytoken
	create func(ctx context.Context, v *vault.Vault, c sekisho.Caller, in *sekisho.RecordInput) (string, error)
}

var createPaths = []createPath{
	{"Create", "create", false, func(ctx context.Context, v *vault.Vault, c sekisho.Caller, in *sekisho.RecordInput) (string, error) {
		r, err := v.Create(ctx, c, "users", in)
		if err != nil {
			return "", err
		}
		return r.ID, nil
	}},
	{"CreateBatch", "import", false, func(ctx context.Context, v *vault.Vault, c sekisho.Caller, in *sekisho.RecordInput) (string, error) {
		items, err := v.CreateBatch(ctx, c, "users", []*sekisho.RecordInput{in})
		if err != nil {
			return "", err
		}
		return items[0].ID, items[0].Err
	}},
	{"PrepareBatch+CommitBatch", "import", false, func(ctx context.Context, v *vault.Vault, c sekisho.Caller, in *sekisho.RecordInput) (string, error) {
		p, err := v.PrepareBatch(ctx, c, "users", []*sekisho.RecordInput{in})
		if err != nil {
			return "", err
		}
		if err := v.CommitBatch(ctx, p); err != nil {
			return "", err
		}
		return p.Items[0].ID, p.Items[0].Err
	}},
	{"CreateHoneytokens", "honeytoken.create", true, func(ctx context.Context, v *vault.Vault, c sekisho.Caller, in *sekisho.RecordInput) (string, error) {
		ids, err := v.CreateHoneytokens(ctx, c, "users", []*sekisho.RecordInput{in})
		if err != nil {
			return "", err
		}
		return ids[0], nil
	}},
}

type denyAll struct{}

func (denyAll) Authorize(context.Context, sekisho.AccessRequest) sekisho.Decision {
	return sekisho.Decision{Policy: "test-deny-all", Reason: "refused by the test"}
}

// Every way of creating a record is one pipeline: the same input is
// validated, normalised, sealed and stored the same way, refused with the
// same error, and audited write-ahead under the path's action.
func TestCreatePipelineIsOne(t *testing.T) {
	ctx := context.Background()
	invalid := []struct {
		name  string
		in    *sekisho.RecordInput
		field string // named by the error
	}{
		{"region", &sekisho.RecordInput{Region: "JP", Fields: fields("phone", "+819012345678")}, ""},
		{"value", &sekisho.RecordInput{Region: "jp", Fields: fields("phone", "not a phone")}, "phone"},
		{"field", &sekisho.RecordInput{Region: "jp", Fields: fields("nope", "x")}, "nope"},
		{"key", &sekisho.RecordInput{Region: "jp", Key: strings.Repeat("k", sekisho.MaxKeyBytes+1), Fields: fields("phone", "+819012345678")}, "key"},
	}
	for _, p := range createPaths {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			c := operator
			c.RequestID = "req-" + p.name
			id, err := p.create(ctx, e.v, c, &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Sakura", "phone", "090-1234-5678")})
			if err != nil {
				t.Fatal(err)
			}
			if !vault.ValidID(id) {
				t.Fatalf("id %q has the wrong shape", id)
			}
			recs, err := e.store.GetRecords(ctx, "users", []string{id})
			if err != nil || len(recs) != 1 {
				t.Fatalf("stored = %d, %v", len(recs), err)
			}
			if r := recs[0]; r.Honeytoken != p.decoy || r.Version != 1 || r.Org != "operator" || r.Region != "jp" {
				t.Fatalf("stored honeytoken=%v v%d %s/%s", r.Honeytoken, r.Version, r.Org, r.Region)
			}
			got, err := e.v.Get(ctx, operator, "users", id, []string{"phone"})
			if err != nil || string(got.Fields["phone"]) != `"+819012345678"` {
				t.Fatalf("read back %v, %v: want the normalised phone", got, err)
			}
			evs, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{RequestID: c.RequestID})
			if err != nil || len(evs) != 1 {
				t.Fatalf("%d events, %v; want one", len(evs), err)
			}
			if ev := event(t, evs[0]); ev.Action != p.action || ev.Decision != sekisho.Allow || len(ev.Records) != 1 || ev.Records[0] != id {
				t.Fatalf("event %+v; want a %s allow naming %s", ev, p.action, id)
			}
			for _, bad := range invalid {
				_, err := p.create(ctx, e.v, c, bad.in)
				if sekisho.Code(err) != sekisho.EInvalid || !strings.Contains(err.Error(), bad.field) {
					t.Errorf("%s: %v, want invalid naming %q", bad.name, err, bad.field)
				}
			}
			if n, _ := e.store.CountRecords(ctx, "users", ""); n != 1 {
				t.Fatalf("%d records after the invalid creates, want 1", n)
			}

			// Refused: nothing stored, the refusal audited.
			refused := vault.New(e.store, e.keys, e.log, vault.Options{Authorizer: denyAll{}})
			c.RequestID = "req-refused-" + p.name
			if _, err := p.create(ctx, refused, c, &sekisho.RecordInput{Region: "jp", Fields: fields("phone", "+819012345678")}); sekisho.Code(err) != sekisho.EForbidden {
				t.Fatalf("refused create: %v, want forbidden", err)
			}
			if n, _ := e.store.CountRecords(ctx, "users", ""); n != 1 {
				t.Fatalf("%d records after the refused create, want 1", n)
			}
			evs, err = e.store.QueryAudit(ctx, sekisho.AuditFilter{RequestID: c.RequestID})
			if err != nil || len(evs) != 1 {
				t.Fatalf("%d refusal events, %v; want one", len(evs), err)
			}
			if ev := event(t, evs[0]); ev.Action != p.action || ev.Decision != sekisho.Deny || ev.Policy != "test-deny-all" || len(ev.Records) != 0 {
				t.Fatalf("refusal event %+v; want a %s deny naming no record", ev, p.action)
			}
		})
	}
}

func event(t *testing.T, en sekisho.AuditEntry) sekisho.Event {
	t.Helper()
	ev, err := sekisho.UnmarshalEvent(en.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
