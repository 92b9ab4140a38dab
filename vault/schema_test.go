package vault_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

type downAuditor struct{}

func (downAuditor) AppendRegional(context.Context, sekisho.Event, map[string]string) error {
	return errors.New("audit log down")
}

func (downAuditor) Append(context.Context, sekisho.Event) (uint64, error) {
	return 0, errors.New("audit log down")
}

// Schema changes are the vault's rule, for the API and any other caller:
// only an admin of the root org defines collections; every refusal and
// every change is in the audit log, a change's event written before the
// schema is stored.
func TestPutSchemaRules(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	v := vault.New(e.store, e.keys, e.log, vault.Options{RootOrg: "operator"})
	schema := func() *sekisho.Schema {
		return &sekisho.Schema{Collection: "tickets", Fields: []sekisho.Field{{Name: "subject", Type: sekisho.TypeString, Classification: sekisho.ClassOther}}}
	}
	for _, c := range []sekisho.Caller{
		{Principal: "bob", Org: "operator", Roles: []string{"member"}},
		{Principal: "aff-admin", Org: "affiliate", Roles: []string{"admin"}},
	} {
		_, err := v.PutSchema(ctx, c, schema())
		var se *sekisho.Error
		if !errors.As(err, &se) || se.Code != sekisho.EForbidden || se.Type != "admin-required" {
			t.Fatalf("%s of %s: PutSchema = %v, want admin-required", c.Principal, c.Org, err)
		}
		evs, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: c.Principal, Decision: sekisho.Deny})
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %d deny events (%v), want 1", c.Principal, len(evs), err)
		}
	}
	if _, err := e.store.GetSchema(ctx, "tickets"); sekisho.Code(err) != sekisho.ENotFound {
		t.Fatalf("refused schema stored: %v", err)
	}
	// The control: the root org's admin.
	admin := sekisho.Caller{Principal: "root-admin", Org: "operator", Roles: []string{"admin"}, RequestID: "req-schema"}
	for want := int64(1); want <= 2; want++ {
		out, err := v.PutSchema(ctx, admin, schema())
		if err != nil || out.Version != want {
			t.Fatalf("root admin: PutSchema = %+v, %v, want version %d", out, err, want)
		}
	}
	evs, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "root-admin", Decision: sekisho.Allow})
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d allow events (%v), want 2", len(evs), err)
	}
	ev, err := sekisho.UnmarshalEvent(evs[1].Leaf)
	if err != nil || ev.Action != "schema.put" || ev.Collection != "tickets" || ev.Reason != "schema version 2" || ev.Policy != "schema-admin" {
		t.Fatalf("event %+v (%v)", ev, err)
	}
	// Write-ahead: with the audit log down nothing is stored.
	down := vault.New(e.store, e.keys, downAuditor{}, vault.Options{RootOrg: "operator"})
	if _, err := down.PutSchema(ctx, admin, schema()); sekisho.Code(err) != sekisho.EUnavailable {
		t.Fatalf("audit down: PutSchema = %v, want unavailable", err)
	}
	if s, err := e.store.GetSchema(ctx, "tickets"); err != nil || s.Version != 2 {
		t.Fatalf("audit down: stored version %v (%v), want 2 still", s, err)
	}
}
