// Package vault is the record service: it validates and normalises input
// against a collection's schema, seals every field under a per-record data
// key, keeps blind indexes for lookups, asks the authoriser and the guard
// before any data is opened, and records every decision in the audit log
// before a byte of data is returned (write-ahead).
package vault

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/values"
)

// OwnOrg is the authoriser of the bootstrap phase: an org's records are its
// own, and no one else's.
type OwnOrg struct{}

// Authorize implements Authorizer.
func (OwnOrg) Authorize(_ context.Context, r sekisho.AccessRequest) sekisho.Decision {
	if r.Owner == "" || r.Owner == r.Caller.Org {
		return sekisho.Decision{Allow: true, Policy: "own-org", Reason: "records of the caller's own org"}
	}
	return sekisho.Decision{Allow: false, Policy: "default-deny", Reason: "record belongs to another org and no grant allows access", Code: sekisho.EForbidden}
}

// Guard is the exfiltration guard (guard.Guard). The vault calls Check in
// one place per operation on records (read, batch get, lookup, detokenize,
// update, erase, tokenize of a record), after authorisation and before any
// data is opened or changed; a lookup's request carries its field and
// normalised value, and the guard sees it even when nothing matched. Check
// may turn an allow into a deny (grant budgets, volume budgets, anomalies,
// honeytokens, quarantines). Raise raises an alert that no rule raised on
// the way in: a record that fails to authenticate (RuleTamper).
type Guard interface {
	Check(ctx context.Context, req sekisho.AccessRequest, recs []*sekisho.SealedRecord, d sekisho.Decision) sekisho.Decision
	Raise(ctx context.Context, c sekisho.Caller, rule, detail string)
}

// Vault is the record service.
type Vault struct {
	store sekisho.Store
	keys  keys.Provider
	audit Auditor
	authz sekisho.Authorizer
	guard Guard
	now   func() time.Time
	// regions is the closed list of regions records are pinned to.
	regions []string

	deks     *dekCache
	rotation RotationOptions
	rootOrg  string

	mu      sync.RWMutex
	schemas map[string]*sekisho.Schema
	idxKeys map[indexID]*keys.BlindIndexer // blind index keys, ready to index
}

// indexID names a blind index key: (org, collection, field).
type indexID struct{ org, collection, field string }

// Options configure a Vault.
type Options struct {
	Authorizer sekisho.Authorizer // default OwnOrg
	Guard      Guard              // default none
	Now        func() time.Time
	// Regions is the closed list of residency regions a record may be
	// pinned to (default sekisho.DefaultRegions); anything else is
	// region-unknown.
	Regions []string
	// DEKCacheSize bounds the unwrapped data keys kept in memory (default
	// DefaultDEKCacheSize; negative: no cache). DEKCacheTTL bounds how long
	// one is kept (default DefaultDEKCacheTTL; negative: no cache).
	DEKCacheSize int
	DEKCacheTTL  time.Duration
	// Rotation tunes online KEK rotations.
	Rotation RotationOptions
	// RootOrg is the org that runs the instance: only its admins define
	// collections (PutSchema). "" lets any admin.
	RootOrg string
}

// New returns a vault over store, with keys and audit.
func New(store sekisho.Store, kp keys.Provider, aud Auditor, opts Options) *Vault {
	v := &Vault{store: store, keys: kp, audit: aud, authz: opts.Authorizer, guard: opts.Guard, now: opts.Now,
		schemas: map[string]*sekisho.Schema{}, idxKeys: map[indexID]*keys.BlindIndexer{}}
	if v.authz == nil {
		v.authz = OwnOrg{}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if len(opts.Regions) == 0 {
		opts.Regions = sekisho.DefaultRegions
	}
	v.regions = slices.Clone(opts.Regions)
	v.deks = newDEKCache(opts.DEKCacheSize, opts.DEKCacheTTL, v.now)
	v.rotation = opts.Rotation
	v.rootOrg = opts.RootOrg
	return v
}

// ProblemRegionUnknown is the problem type of a region that is not one of
// the instance's regions.
const ProblemRegionUnknown = "region-unknown"

// Regions returns the instance's regions, the closed list records are
// pinned to.
func (v *Vault) Regions() []string { return slices.Clone(v.regions) }

// checkRegion refuses a region that is not one of the instance's.
func (v *Vault) checkRegion(region string) error {
	if slices.Contains(v.regions, region) {
		return nil
	}
	return &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemRegionUnknown, Field: "region",
		Message: fmt.Sprintf("region %q is not one of this instance's regions (%s; serve --regions)", region, strings.Join(v.regions, ", "))}
}

// Store returns the vault's store.
func (v *Vault) Store() sekisho.Store { return v.store }

// NewID returns a random record id: 128 bits from crypto/rand in lower-case
// base32 (26 characters). It carries no time, sequence or node.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("record id: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// sortedBase32 is the alphabet of record ids (the letters of ValidID) in
// byte order, so that ids compare like the bits they encode.
const sortedBase32 = "234567abcdefghijklmnopqrstuvwxyz"

var sortedEncoding = base32.NewEncoding(sortedBase32).WithPadding(base32.NoPadding)

// NewRecordID returns the id of a new record made at t: 48 bits of
// milliseconds since 1970, then 80 random bits, in the record-id alphabet
// in byte order. Ids made later sort after (ids of one millisecond in random
// order), so that the stores' indexes keyed by id are appended to instead of
// written at random places (what made a million-record import slow). An id
// reveals when its record was made, as created_at does to a reader; its 80
// random bits keep it unguessable.
func NewRecordID(t time.Time) (string, error) {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("record id: %w", err)
	}
	return sortedEncoding.EncodeToString(b[:]), nil
}

// recordID returns the id of a new record: random, or derived from the
// caller's idempotency key (HMAC-SHA256 under a key of the org's index
// root, so that the same key gives the same id and the id does not reveal
// the key).
func (v *Vault) recordID(ctx context.Context, org, collection, key string) (string, error) {
	if key == "" {
		return NewRecordID(v.now())
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	ix, err := v.indexer(ctx, org, collection, "\x00record-key")
	if err != nil {
		return "", err
	}
	// HMAC-SHA256(key) under the record-key index key.
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(ix.Index([]byte(key))[:16])), nil
}

// ValidID reports whether s has the shape of a record id.
func ValidID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Schema returns the schema of collection (cached; schemas change rarely).
func (v *Vault) Schema(ctx context.Context, collection string) (*sekisho.Schema, error) {
	v.mu.RLock()
	s := v.schemas[collection]
	v.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	if !sekisho.ValidName(collection) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "collection %q not found", collection)
	}
	s, err := v.store.GetSchema(ctx, collection)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.schemas[collection] = s
	v.mu.Unlock()
	return s, nil
}

// CanPutSchema says whether c may define collections, and audits a refusal
// (action schema.put, policy schema-admin; collection may be ""). Collections
// are shared by every org, and a field's classification and mask decide what
// grants need two admins and what support sees: only an admin of the
// instance's root org (Options.RootOrg; any admin when it is not set) may
// change them. The HTTP API asks it before it reads a schema.
func (v *Vault) CanPutSchema(ctx context.Context, c sekisho.Caller, collection string) error {
	if c.HasRole("admin") && (v.rootOrg == "" || c.Org == v.rootOrg) {
		return nil
	}
	err := sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "only an admin of the instance's root org may define collections")
	v.auditSchema(ctx, c, collection, sekisho.Deny, err.Message) // a refusal's event is best effort
	return err
}

// PutSchema creates or changes a collection's schema as c (see
// CanPutSchema). A change may add fields and change classifications or
// masks; removing a field, changing its type or its lookup flag would orphan
// stored values, and is refused. The change's event is durable before the
// schema is stored (write-ahead).
func (v *Vault) PutSchema(ctx context.Context, c sekisho.Caller, s *sekisho.Schema) (*sekisho.Schema, error) {
	if err := v.CanPutSchema(ctx, c, s.Collection); err != nil {
		return nil, err
	}
	return v.putSchema(ctx, s, func(version int64) error {
		if err := v.auditSchema(ctx, c, s.Collection, sekisho.Allow, fmt.Sprintf("schema version %d", version)); err != nil {
			return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable", Err: err}
		}
		return nil
	})
}

// auditSchema appends the event of a schema change.
func (v *Vault) auditSchema(ctx context.Context, c sekisho.Caller, collection, decision, reason string) error {
	ev := sekisho.Event{Time: v.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Action: "schema.put", Collection: collection, Decision: decision, Policy: "schema-admin", Reason: reason}
	_, err := v.audit.Append(ctx, ev)
	return err
}

// putSchema validates and stores s; before, when given, it runs before the
// write with the version s gets.
func (v *Vault) putSchema(ctx context.Context, s *sekisho.Schema, before func(version int64) error) (*sekisho.Schema, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	old, err := v.store.GetSchema(ctx, s.Collection)
	switch {
	case sekisho.Code(err) == sekisho.ENotFound:
		s.Version = 1
	case err != nil:
		return nil, err
	default:
		for _, of := range old.Fields {
			nf, ok := s.Field(of.Name)
			if !ok {
				return nil, sekisho.FieldErrorf(sekisho.EInvalid, of.Name, "field %s cannot be removed from %s", of.Name, s.Collection)
			}
			if nf.Type != of.Type || nf.Lookup != of.Lookup {
				return nil, sekisho.FieldErrorf(sekisho.EInvalid, of.Name, "field %s cannot change its type or lookup flag", of.Name)
			}
		}
		s.Version = old.Version + 1
	}
	if before != nil {
		if err := before(s.Version); err != nil {
			return nil, err
		}
	}
	if err := v.store.PutSchema(ctx, s); err != nil {
		return nil, err
	}
	v.mu.Lock()
	delete(v.schemas, s.Collection)
	v.mu.Unlock()
	return s, nil
}

// EnsureSchemas creates each schema that does not exist yet.
func (v *Vault) EnsureSchemas(ctx context.Context, schemas []*sekisho.Schema) error {
	for _, s := range schemas {
		_, err := v.store.GetSchema(ctx, s.Collection)
		if sekisho.Code(err) == sekisho.ENotFound {
			if _, err := v.putSchema(ctx, s, nil); err != nil && sekisho.Code(err) != sekisho.EConflict {
				return fmt.Errorf("create schema %s: %w", s.Collection, err)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RotationOptions returns the options online rotations run with.
func (v *Vault) RotationOptions() RotationOptions { return v.rotation }

// Keys returns the vault's key provider.
func (v *Vault) Keys() keys.Provider { return v.keys }

// Ready reports whether the store and the keys can be reached (for
// /readyz). While the keys cannot, cached data keys are dropped too, so
// that no record opens while its KEK is out of reach.
func (v *Vault) Ready(ctx context.Context) error {
	if err := v.store.Ping(ctx); err != nil {
		return &sekisho.Error{Code: sekisho.EUnavailable, Type: sekisho.ProblemStoreUnavailable, Message: "store is not reachable", Err: err}
	}
	if err := v.keys.Ping(ctx); err != nil {
		v.deks.purge("", "")
		return &sekisho.Error{Code: sekisho.EUnavailable, Type: ProblemKeyUnavailable, Message: "the keys are not reachable", Err: err}
	}
	return nil
}

// indexer returns the blind indexer of (org, collection, field): its Index
// is keys.BlindIndex under the field's index key.
func (v *Vault) indexer(ctx context.Context, org, collection, field string) (*keys.BlindIndexer, error) {
	id := indexID{org, collection, field}
	v.mu.RLock()
	ix := v.idxKeys[id]
	v.mu.RUnlock()
	if ix != nil {
		return ix, nil
	}
	root, err := v.keys.IndexRoot(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("index root of %s: %w", org, err)
	}
	key, err := keys.IndexKey(root, collection, field)
	if err != nil {
		return nil, err
	}
	ix = keys.NewBlindIndexer(key)
	clear(key)
	v.mu.Lock()
	v.idxKeys[id] = ix
	v.mu.Unlock()
	return ix, nil
}

// decisionEvent is an audit event with the region of each record it names,
// so that a regional auditor can keep each region's events in its store.
type decisionEvent struct {
	sekisho.Event
	regions map[string]string // record id -> region
	orgs    map[string]string // record id -> owning org
}

// Auditor is the audit log the vault writes: Append for events about no
// record, AppendRegional for a decision's events, given the region of every
// record the event names (audit.Logs keeps each region's events in its own
// log; a single audit.Log keeps them all).
type Auditor interface {
	sekisho.Auditor
	AppendRegional(ctx context.Context, ev sekisho.Event, regionOf map[string]string) error
}

// event builds the audit event of a decision.
func (v *Vault) event(c sekisho.Caller, action sekisho.Action, collection string, recs []*sekisho.SealedRecord, ids []string, fields []string, d sekisho.Decision, masked bool) decisionEvent {
	ev := sekisho.Event{
		Time: v.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: string(action), Collection: collection,
		Records: ids, Fields: fields, Masked: masked, Policy: d.Policy, Reason: d.Reason,
		Decision: sekisho.Deny,
	}
	if d.Allow {
		ev.Decision = sekisho.Allow
	}
	if ev.Records == nil {
		for _, r := range recs {
			ev.Records = append(ev.Records, r.ID)
		}
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if !seen[r.Org] {
			seen[r.Org] = true
			ev.RecordOrgs = append(ev.RecordOrgs, r.Org)
		}
	}
	sort.Strings(ev.RecordOrgs)
	de := decisionEvent{Event: ev}
	if len(recs) > 0 {
		de.regions = make(map[string]string, len(recs))
		de.orgs = make(map[string]string, len(recs))
		for _, r := range recs {
			de.regions[r.ID] = r.Region
			de.orgs[r.ID] = r.Org
		}
	}
	return de
}

// byOwner splits an event that names records of several orgs into one
// event per owning org, each listing only that org's records: an org's
// admin reads the events about its own records, and must not see another
// org's record ids in them. An event about one org's records (or none) is
// returned as it is.
func (de decisionEvent) byOwner() []decisionEvent {
	if len(de.Event.RecordOrgs) < 2 {
		return []decisionEvent{de}
	}
	parts := map[string][]string{}
	for _, id := range de.Event.Records {
		parts[de.orgs[id]] = append(parts[de.orgs[id]], id)
	}
	out := make([]decisionEvent, 0, len(de.Event.RecordOrgs))
	for i, org := range de.Event.RecordOrgs {
		p := de
		p.Event.Records = parts[org]
		p.Event.RecordOrgs = []string{org}
		p.Event.Detail = strings.TrimPrefix(de.Event.Detail+fmt.Sprintf("; part %d of %d (split by owning org)", i+1, len(de.Event.RecordOrgs)), "; ")
		out = append(out, p)
	}
	return out
}

// record writes an event durably; a vault that cannot audit refuses to serve.
func (v *Vault) record(ctx context.Context, de decisionEvent) error {
	var err error
	for _, ev := range de.byOwner() {
		if err = v.audit.AppendRegional(ctx, ev.Event, ev.regions); err != nil {
			break
		}
	}
	if sekisho.IsStorageFull(err) {
		return &sekisho.Error{Code: sekisho.EUnavailable, Type: sekisho.ProblemStorageFull,
			Message: "the store's disk is full: the audit event cannot be written; nothing was returned", Err: err}
	}
	if err != nil {
		return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable; nothing was returned", Err: err}
	}
	return nil
}

// deny records a denial and returns its error.
func (v *Vault) deny(ctx context.Context, ev decisionEvent, d sekisho.Decision) error {
	if err := v.record(ctx, ev); err != nil {
		return err
	}
	code := d.Code
	if code == "" {
		code = sekisho.EForbidden
	}
	return &sekisho.Error{Code: code, Type: d.Type, Message: d.Reason}
}

// fieldList resolves the fields asked for: all of the schema's when none.
func fieldList(s *sekisho.Schema, asked []string) ([]string, error) {
	if len(asked) == 0 {
		return s.FieldNames(), nil
	}
	out := make([]string, 0, len(asked))
	seen := map[string]bool{}
	for _, f := range asked {
		if _, ok := s.Field(f); !ok {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "fields", "collection %s has no field %q", s.Collection, f)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// normalizeFields validates and normalises every given field of a record.
func normalizeFields(s *sekisho.Schema, region string, in map[string]json.RawMessage, requireAll bool) (map[string][]byte, error) {
	if len(in) == 0 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "fields", "no fields given")
	}
	out := make(map[string][]byte, len(in))
	for name, raw := range in {
		f, ok := s.Field(name)
		if !ok {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, name, "collection %s has no field %q", s.Collection, name)
		}
		n, err := values.Normalize(f, raw, region)
		if err != nil {
			return nil, err
		}
		out[name] = n
	}
	if requireAll {
		for _, f := range s.Fields {
			if f.Required {
				if _, ok := out[f.Name]; !ok {
					return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s is required", f.Name)
				}
			}
		}
	}
	return out, nil
}
