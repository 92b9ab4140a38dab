package access

import (
	"slices"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/sekisho/sekisho"
)

// The cached Cedar entity of a caller is the one newCallerEntity builds for
// exactly that caller: callers that differ in any part (principal, org,
// device, roles, their order, or where one name ends and the next begins)
// get their own entity, the same caller gets the cached one, and a full
// cache starts over rather than growing.
func TestCallerEntitiesKeyedByEveryPart(t *testing.T) {
	base := sekisho.Caller{Principal: "svc", Org: "o1", Device: "d1", Roles: []string{"service"}}
	callers := []sekisho.Caller{
		base,
		{Principal: "svc2", Org: "o1", Device: "d1", Roles: []string{"service"}},
		{Principal: "svc", Org: "o2", Device: "d1", Roles: []string{"service"}},
		{Principal: "svc", Org: "o1", Device: "d2", Roles: []string{"service"}},
		{Principal: "svc", Org: "o1", Device: "d1", Roles: []string{"admin"}},
		{Principal: "svc", Org: "o1", Device: "d1", Roles: []string{"service", "admin"}},
		{Principal: "svc", Org: "o1", Device: "d1"},
		// Name boundaries: the parts concatenated are the same.
		{Principal: "a", Org: "bc", Device: "d"},
		{Principal: "ab", Org: "c", Device: "d"},
		{Principal: "a\x00", Org: "b", Device: "d"},
		{Principal: "a", Org: "\x00b", Device: "d"},
	}
	var ce callerEntities
	for _, c := range callers {
		got := ce.get(c)
		want := newCallerEntity(c)
		if got.uid != want.uid || !got.ent.Equal(want.ent) {
			t.Errorf("%+v: entity %v, want %v", c, got.ent, want.ent)
		}
		if e, ok := got.Get(cedar.NewEntityUID("Principal", cedar.String(c.Principal))); !ok || !e.Equal(want.ent) {
			t.Errorf("%+v: Get(principal) = %v, %v", c, e, ok)
		}
		if _, ok := got.Get(cedar.NewEntityUID("Principal", cedar.String(c.Principal+"x"))); ok {
			t.Errorf("%+v: Get of another principal found an entity", c)
		}
		org, _ := got.ent.Attributes.Get("org")
		dev, _ := got.ent.Attributes.Get("device")
		if org != cedar.String(c.Org) || dev != cedar.String(c.Device) {
			t.Errorf("%+v: attributes org %v device %v", c, org, dev)
		}
		for _, r := range c.Roles {
			if !got.ent.Parents.Contains(cedar.NewEntityUID("Role", cedar.String(r))) {
				t.Errorf("%+v: not in role %s", c, r)
			}
		}
		if got.ent.Parents.Len() != 1+len(c.Roles) {
			t.Errorf("%+v: %d parents, want %d", c, got.ent.Parents.Len(), 1+len(c.Roles))
		}
	}
	if len(ce.m) != len(callers) {
		t.Fatalf("%d entities cached for %d distinct callers", len(ce.m), len(callers))
	}
	if a, b := ce.get(base), ce.get(sekisho.Caller{Principal: "svc", Org: "o1", Device: "d1", Roles: slices.Clone(base.Roles)}); a != b {
		t.Error("the same caller got two entities")
	}
	for i := range maxCallerEntities {
		ce.get(sekisho.Caller{Principal: "p", Org: "o", Device: string(rune('a' + i%26)), Roles: []string{string(rune(i))}})
	}
	if len(ce.m) > maxCallerEntities {
		t.Fatalf("%d entities cached, bound %d", len(ce.m), maxCallerEntities)
	}
}
