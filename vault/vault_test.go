package vault_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/gen"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

type env struct {
	dir   string
	db    string
	store *sqlite.Store
	keys  *keys.Local
	log   *audit.Log
	v     *vault.Vault
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dir: t.TempDir()}
	e.db = filepath.Join(e.dir, "sekisho.db")
	var err error
	if e.store, err = sqlite.Open(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	master, _ := keys.NewKey()
	if e.keys, err = keys.OpenLocal(e.dir, master); err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(e.dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if e.log, err = audit.New(ctx, e.store, signer, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	e.v = vault.New(e.store, e.keys, e.log, vault.Options{})
	defs, err := schemas.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.EnsureSchemas(ctx, defs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close(); e.store.Close() })
	return e
}

var operator = sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Purpose: "support", RequestID: "req-1"}

func fields(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		b, _ := json.Marshal(kv[i+1])
		m[kv[i]] = b
	}
	return m
}

func TestCreateReadLookupErase(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp",
		Fields: fields("display_name", "Sakura Tanaka", "phone", "090-1234-5678", "email", "Sakura@Example.JP")})
	if err != nil {
		t.Fatal(err)
	}
	if !vault.ValidID(rec.ID) {
		t.Fatalf("id %q has the wrong shape", rec.ID)
	}
	got, err := e.v.Get(ctx, operator, "users", rec.ID, []string{"phone", "email"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Fields["phone"]) != `"+819012345678"` || string(got.Fields["email"]) != `"sakura@example.jp"` || len(got.Fields) != 2 {
		t.Fatalf("read %v", got.Fields)
	}
	// Lookup normalises the value it is given the same way.
	found, err := e.v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"+81 90 1234 5678"`)})
	if err != nil || len(found) != 1 || found[0].ID != rec.ID || len(found[0].Fields) != 0 {
		t.Fatalf("lookup = %v, %v", found, err)
	}
	if _, err := e.v.Update(ctx, operator, "users", rec.ID, fields("phone", "+66812345678")); err != nil {
		t.Fatal(err)
	}
	if found, _ := e.v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"+819012345678"`)}); len(found) != 0 {
		t.Fatal("old phone still finds the record after update")
	}
	if found, _ := e.v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "email", Value: json.RawMessage(`"sakura@example.jp"`)}); len(found) != 1 {
		t.Fatal("unchanged email no longer finds the record after update")
	}
	if err := e.v.Erase(ctx, operator, "users", rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Get(ctx, operator, "users", rec.ID, nil); sekisho.Code(err) != sekisho.EGone {
		t.Fatalf("read after erase: %v, want erased", err)
	}
	if found, _ := e.v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "email", Value: json.RawMessage(`"sakura@example.jp"`)}); len(found) != 0 {
		t.Fatal("erased record is still found by lookup")
	}
}

func TestOtherOrgIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("phone", "+819012345678")})
	if err != nil {
		t.Fatal(err)
	}
	affiliate := sekisho.Caller{Principal: "mallory", Org: "affiliate", Device: "d9", Purpose: "support", RequestID: "req-9"}
	if _, err := e.v.Get(ctx, affiliate, "users", rec.ID, nil); sekisho.Code(err) != sekisho.EForbidden {
		t.Fatalf("other org's read: %v, want forbidden", err)
	}
	if err := e.v.Erase(ctx, affiliate, "users", rec.ID); sekisho.Code(err) != sekisho.EForbidden {
		t.Fatalf("other org's erase: %v, want forbidden", err)
	}
	// The affiliate's lookup uses its own blind-index key: no match at all.
	if found, err := e.v.Lookup(ctx, affiliate, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"+819012345678"`)}); err != nil || len(found) != 0 {
		t.Fatalf("other org's lookup = %v, %v", found, err)
	}
	// Both denials are in the audit log.
	denied, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "mallory", Decision: sekisho.Deny})
	if err != nil || len(denied) != 2 {
		t.Fatalf("denied events = %d, %v; want 2", len(denied), err)
	}
}

// The database file holds none of the plaintext values, nor the normalised
// forms, nor any key.
func TestDatabaseHoldsNoPlaintext(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	secrets := []string{"Sakura Tanaka", "+819012345678", "sakura@example.jp", "1990-04-01", "BANK-0042-7777777", "Example Heavy Industries"}
	if _, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp",
		Fields: fields("display_name", secrets[0], "phone", secrets[1], "email", secrets[2], "birth_date", secrets[3])}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Create(ctx, operator, "partners", &sekisho.RecordInput{Region: "th",
		Fields: fields("bank_account", secrets[4], "company", secrets[5])}); err != nil {
		t.Fatal(err)
	}
	e.log.Close()
	e.store.Close() // checkpoint the WAL into the main file
	var raw []byte
	for _, f := range []string{"sekisho.db", "sekisho.db-wal"} {
		b, err := os.ReadFile(filepath.Join(e.dir, f))
		if err == nil {
			raw = append(raw, b...)
		}
	}
	if len(raw) == 0 {
		t.Fatal("database file is empty")
	}
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("database contains plaintext %q", s)
		}
	}
	for _, s := range []string{"Tanaka", "9012345678", "example.jp"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("database contains a fragment %q", s)
		}
	}
}

// A ciphertext moved to another record or another field does not open.
func TestSwappedCiphertextFailsToOpen(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Alice", "gender", "female", "phone", "+819012345678")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Bob", "gender", "male", "phone", "+819087654321")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	read := func(id string) map[string][]byte {
		var blob []byte
		if err := db.QueryRow(`SELECT fields FROM records WHERE id = ?`, id).Scan(&blob); err != nil {
			t.Fatal(err)
		}
		m, err := sekisho.DecodeFields(blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	write := func(id string, m map[string][]byte) {
		if _, err := db.Exec(`UPDATE records SET fields = ? WHERE id = ?`, sekisho.EncodeFields(m), id); err != nil {
			t.Fatal(err)
		}
	}
	fa, fb := read(a.ID), read(b.ID)

	// Another record's ciphertext of the same field.
	moved := map[string][]byte{"display_name": fb["display_name"], "gender": fa["gender"], "phone": fa["phone"]}
	write(a.ID, moved)
	if _, err := e.v.Get(ctx, operator, "users", a.ID, []string{"display_name"}); err == nil {
		t.Fatal("a ciphertext moved from another record opened")
	}
	// The same record's ciphertext of another field.
	moved = map[string][]byte{"display_name": fa["display_name"], "gender": fa["display_name"], "phone": fa["phone"]}
	write(a.ID, moved)
	if _, err := e.v.Get(ctx, operator, "users", a.ID, []string{"gender"}); err == nil {
		t.Fatal("a ciphertext moved from another field opened")
	}
	// Another record's wrapped DEK.
	write(a.ID, fa)
	if _, err := db.Exec(`UPDATE records SET wrapped_dek = (SELECT wrapped_dek FROM records WHERE id = ?) WHERE id = ?`, b.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Get(ctx, operator, "users", a.ID, nil); err == nil {
		t.Fatal("a data key moved from another record opened")
	}
	// The untouched record still reads: the test broke only what it moved.
	if got, err := e.v.Get(ctx, operator, "users", b.ID, []string{"display_name"}); err != nil || string(got.Fields["display_name"]) != `"Bob"` {
		t.Fatalf("untouched record: %v %v", got, err)
	}
}

// After erasure the record's ciphertexts cannot be opened even by someone
// holding the keyring and the master key: the DEK is gone from the store.
func TestErasureIsUnrecoverableWithKeyring(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Erased Person")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before []byte
	if err := db.QueryRow(`SELECT fields FROM records WHERE id = ?`, rec.ID).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := e.v.Erase(ctx, operator, "users", rec.ID); err != nil {
		t.Fatal(err)
	}
	var wrapped, after []byte
	if err := db.QueryRow(`SELECT wrapped_dek, fields FROM records WHERE id = ?`, rec.ID).Scan(&wrapped, &after); err != nil {
		t.Fatal(err)
	}
	if wrapped != nil || after != nil {
		t.Fatal("erased record still has a wrapped DEK or ciphertexts")
	}
	// An attacker who kept a copy of the ciphertext from before the erasure
	// holds the keyring too: every KEK of the org/region fails, because the
	// DEK itself is gone and the KEK never sealed the field.
	old, _ := sekisho.DecodeFields(before, nil)
	kek, _, err := e.keys.KEK(ctx, "operator", "jp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.OpenField(kek, keys.FieldAD{Collection: "users", RecordID: rec.ID, Field: "display_name", KeyVersion: 1}, old["display_name"]); err == nil {
		t.Fatal("a field opened with the KEK: the DEK is not the only key")
	}
	if _, err := e.v.Get(ctx, operator, "users", rec.ID, nil); sekisho.Code(err) != sekisho.EGone {
		t.Fatalf("read after erase: %v", err)
	}
}

func TestValidationErrorsLoseNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bad := []*sekisho.RecordInput{
		{Region: "JP", Fields: fields("phone", "+819012345678")},
		{Region: "jp", Fields: fields("phone", "not a phone")},
		{Region: "jp", Fields: fields("nope", "x")},
		{Region: "jp", Fields: map[string]json.RawMessage{}},
	}
	for _, in := range bad {
		if _, err := e.v.Create(ctx, operator, "users", in); sekisho.Code(err) != sekisho.EInvalid {
			t.Errorf("Create(%v) = %v, want invalid", in.Fields, err)
		}
	}
	if n, _ := e.store.CountRecords(ctx, "users", ""); n != 0 {
		t.Fatalf("%d records written by invalid creates", n)
	}
	// A batch keeps the good rows and reports the bad ones by position.
	g := gen.New(3)
	batch := []*sekisho.RecordInput{g.User(), bad[1], g.User(), bad[0]}
	res, err := e.v.CreateBatch(ctx, operator, "users", batch)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil || res[3].Err == nil {
		t.Fatalf("batch results %+v", res)
	}
	if n, _ := e.store.CountRecords(ctx, "users", ""); n != 2 {
		t.Fatalf("batch wrote %d records, want 2", n)
	}
	if !strings.Contains(res[1].Err.Error(), "phone") {
		t.Fatalf("batch error does not name the field: %v", res[1].Err)
	}
}

func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	g := gen.New(1)
	inputs := make([]*sekisho.RecordInput, 1000)
	for i := range inputs {
		inputs[i] = g.User()
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := e.v.Create(ctx, operator, "users", inputs[i%len(inputs)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateBatch1000(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	g := gen.New(1)
	inputs := make([]*sekisho.RecordInput, 1000)
	for i := range inputs {
		inputs[i] = g.User()
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.v.CreateBatch(ctx, operator, "users", inputs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(inputs))/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkGet5Fields(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	g := gen.New(1)
	var ids []string
	for i := 0; i < 1000; i++ {
		r, err := e.v.Create(ctx, operator, "users", g.User())
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	want := []string{"display_name", "phone", "email", "country", "usage_summary"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.v.Get(ctx, operator, "users", ids[i%len(ids)], want); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, sekisho.AccessRequest) sekisho.Decision {
	return sekisho.Decision{Allow: true, Policy: "test-allow-all"}
}

// An event about records of several orgs is split by owning org, so that
// an org's view of the audit log never names another org's records.
func TestEventsSplitByOwningOrg(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("country", "JP")})
	if err != nil {
		t.Fatal(err)
	}
	other := sekisho.Caller{Principal: "carol", Org: "affiliate", Device: "d2", Purpose: "support", RequestID: "req-2"}
	b, err := e.v.Create(ctx, other, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("country", "JP")})
	if err != nil {
		t.Fatal(err)
	}
	all := vault.New(e.store, e.keys, e.log, vault.Options{Authorizer: allowAll{}})
	auditor := sekisho.Caller{Principal: "aud", Org: "operator", Device: "d3", Purpose: "support", RequestID: "req-both"}
	if got, err := all.BatchGet(ctx, auditor, "users", []string{a.ID, b.ID}, []string{"country"}); err != nil || len(got) != 2 {
		t.Fatalf("batch get = %d, %v", len(got), err)
	}
	parts, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{RequestID: "req-both"})
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d events for the two-org batch get, want 2 (%v)", len(parts), err)
	}
	for _, p := range parts {
		if len(p.Records) != 1 || len(p.RecordOrgs) != 1 {
			t.Fatalf("part names %v of orgs %v", p.Records, p.RecordOrgs)
		}
		want := a.ID
		if p.RecordOrgs[0] == "affiliate" {
			want = b.ID
		}
		if p.Records[0] != want {
			t.Fatalf("part of %s names record %s", p.RecordOrgs[0], p.Records[0])
		}
	}
}

// Rotating a KEK re-wraps the data keys of that org and region only; the
// records read as before, and a record whose DEK is still wrapped by the
// old version would not open under the new one.
func TestRotateKEK(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	jp, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Sakura")})
	if err != nil {
		t.Fatal(err)
	}
	th, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "th", Fields: fields("display_name", "Somchai")})
	if err != nil {
		t.Fatal(err)
	}
	putOrg(t, e, "operator")
	kek1, _ := e.keys.KEKVersion(ctx, "operator", "jp", 1)
	var seen []int
	version, done, err := e.v.RotateKEK(ctx, operator, "operator", "jp", func(n int) { seen = append(seen, n) })
	if err != nil || version != 2 || done != 1 || len(seen) == 0 {
		t.Fatalf("rotate = v%d, %d done, %v (progress %v)", version, done, err, seen)
	}
	recs, _ := e.store.GetRecords(ctx, "users", []string{jp.ID, th.ID})
	if recs[0].KEKVersion != 2 || recs[1].KEKVersion != 1 {
		t.Fatalf("KEK versions after rotating jp: jp v%d, th v%d", recs[0].KEKVersion, recs[1].KEKVersion)
	}
	for _, id := range []string{jp.ID, th.ID} {
		if _, err := e.v.Get(ctx, operator, "users", id, []string{"display_name"}); err != nil {
			t.Fatalf("read %s after rotation: %v", id, err)
		}
	}
	// The new wrapping is bound to the new version: claiming the old one
	// fails. The old version is retired: nothing uses it any more.
	if _, err := e.keys.KEKVersion(ctx, "operator", "jp", 1); err == nil {
		t.Fatal("KEK version 1 of operator/jp was not retired")
	}
	if _, err := keys.UnwrapDEK(kek1, keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: jp.ID, KEKVersion: 1}, recs[0].WrappedDEK); err == nil {
		t.Fatal("the re-wrapped DEK opened with the old KEK")
	}
	evs, _ := e.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "alice"})
	rotated := false
	for _, ev := range evs {
		rotated = rotated || strings.Contains(string(ev.Leaf), `"action":"keys.rotate"`)
	}
	if !rotated {
		t.Fatal("the rotation is not in the audit log")
	}
}

// putOrg stores an org object as access does when an org is created.
func putOrg(t testing.TB, e *env, org string) {
	t.Helper()
	err := e.store.PutObject(context.Background(), &sekisho.Object{Kind: "org", ID: org, Org: org, Version: 1,
		Body: []byte(`{"id":"` + org + `","home_region":"jp","status":"active"}`)})
	if err != nil {
		t.Fatal(err)
	}
}

func actions(t testing.TB, e *env) []string {
	t.Helper()
	evs, err := e.store.QueryAudit(context.Background(), sekisho.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		var m struct {
			Action string `json:"action"`
		}
		json.Unmarshal(ev.Leaf, &m)
		out = append(out, m.Action)
	}
	return out
}

// Issue 13 point 12: a rotation is in the audit log before it starts, so a
// rotation interrupted half way is in it; an org that does not exist is
// refused, and gets no key.
func TestRotateKEKWriteAheadAndUnknownOrg(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putOrg(t, e, "operator")
	for range 3 {
		if _, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Sakura")}); err != nil {
			t.Fatal(err)
		}
	}
	// Interrupted: the context ends after the first chunk.
	cctx, cancel := context.WithCancel(ctx)
	_, _, err := e.v.RotateKEK(cctx, operator, "operator", "jp", func(int) { cancel() })
	if err == nil {
		t.Fatal("the interrupted rotation reported success")
	}
	if got := actions(t, e); !slices.Contains(got, "keys.rotate") || slices.Contains(got, "keys.rotate.finished") {
		t.Fatalf("after an interrupted rotation the log has %v, want keys.rotate and no keys.rotate.finished", got)
	}
	// An unknown org: refused, nothing rotated, no key made for it.
	before := len(actions(t, e))
	_, _, err = e.v.RotateKEK(ctx, operator, "nosuchorg", "jp", nil)
	if sekisho.Code(err) != sekisho.ENotFound {
		t.Fatalf("rotate of an unknown org: %v, want not-found", err)
	}
	if _, err := e.keys.KEKVersion(ctx, "nosuchorg", "jp", 1); err == nil {
		t.Fatal("the refused rotation made a KEK for the unknown org")
	}
	if n := len(actions(t, e)); n != before {
		t.Fatalf("a refused rotation wrote %d events", n-before)
	}
	// A second rotation of the same org and region waits for the first.
	if _, err := e.v.StartRotation(ctx, operator, "operator", "jp"); sekisho.Code(err) != sekisho.EConflict {
		t.Fatalf("a second rotation while one runs: %v, want conflict", err)
	}
	// Positive control: the interrupted rotation resumes and finishes.
	if err := e.v.ResumeRotations(ctx, vault.RotationOptions{Grace: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if got := actions(t, e); !slices.Contains(got, "keys.rotate.finished") {
		t.Fatalf("finished rotation not in the log: %v", got)
	}
}
