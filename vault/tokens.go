package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/values"
)

// MaxDetokenize bounds the tokens of one detokenize request.
const MaxDetokenize = 100

// TokenRequest is the body of a tokenize request: the token of Value, or of
// the value of Field in Record.
type TokenRequest struct {
	Field  string          `json:"field"`
	Value  json.RawMessage `json:"value,omitempty"`
	Record string          `json:"record,omitempty"`
	// Region reads national phone numbers; optional.
	Region string `json:"region,omitempty"`
}

// DetokenizeRequest is the body of a detokenize request.
type DetokenizeRequest struct {
	Collection string   `json:"collection"`
	Field      string   `json:"field"`
	Tokens     []string `json:"tokens"`
	// Org is the org whose tokens these are (a grantee detokenizing its
	// grantor's tokens names the grantor); default the caller's org.
	Org string `json:"org,omitempty"`
}

// tokenKey returns the token key of (org, collection, field).
func (v *Vault) tokenKey(ctx context.Context, org, collection, field string) ([]byte, error) {
	root, err := v.keys.IndexRoot(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("index root of %s: %w", org, err)
	}
	return keys.TokenKey(root, collection, field)
}

// tokenField checks that field of s can have tokens: a lookup field, since
// a token resolves through the blind index.
func tokenField(s *sekisho.Schema, field string) (sekisho.Field, error) {
	f, ok := s.Field(field)
	if !ok || !f.Lookup {
		return f, sekisho.FieldErrorf(sekisho.EInvalid, "field", "field %q of %s is not a lookup field; tokens exist for lookup fields only", field, s.Collection)
	}
	return f, nil
}

// Tokenize returns the deterministic token of a value of a lookup field, in
// the caller's org (the same value always gives the same token within the
// org, collection and field), or of the value a record holds in the field
// (in the record's owning org). Both are decisions, authorised (action
// tokenize) and audited; the value itself is never returned.
func (v *Vault) Tokenize(ctx context.Context, c sekisho.Caller, collection string, tr TokenRequest) (string, error) {
	s, err := v.Schema(ctx, collection)
	if err != nil {
		return "", err
	}
	f, err := tokenField(s, tr.Field)
	if err != nil {
		return "", err
	}
	if (len(tr.Value) == 0) == (tr.Record == "") {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, "value", "give either value or record")
	}
	if tr.Record != "" {
		return v.tokenizeRecord(ctx, c, s, f, tr.Record)
	}
	if tr.Region != "" && !sekisho.ValidRegion(tr.Region) {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, "region", "region %q is not a region code", tr.Region)
	}
	val, err := values.Normalize(f, tr.Value, tr.Region)
	if err != nil {
		return "", err
	}
	fields := []string{f.Name}
	req := sekisho.AccessRequest{Caller: c, Action: sekisho.ActionTokenize, Collection: collection, Schema: s, Fields: fields, Region: tr.Region, Owner: c.Org}
	d := v.authz.Authorize(ctx, req)
	if !d.Allow {
		return "", v.deny(ctx, v.event(c, sekisho.ActionTokenize, collection, nil, []string{}, fields, d, false), d)
	}
	ix, err := v.indexer(ctx, c.Org, collection, f.Name)
	if err != nil {
		return "", err
	}
	tk, err := v.tokenKey(ctx, c.Org, collection, f.Name)
	if err != nil {
		return "", err
	}
	tok, err := keys.Token(tk, ix.Index(val))
	if err != nil {
		return "", err
	}
	if err := v.record(ctx, v.event(c, sekisho.ActionTokenize, collection, nil, []string{}, fields, d, false)); err != nil {
		return "", err
	}
	return tok, nil
}

// tokenizeRecord returns the token of the value a record holds in field f,
// made from its stored index entry (nothing is decrypted).
func (v *Vault) tokenizeRecord(ctx context.Context, c sekisho.Caller, s *sekisho.Schema, f sekisho.Field, id string) (string, error) {
	if !ValidID(id) {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, "record", "%q is not a record id", id)
	}
	recs, err := v.store.GetRecords(ctx, s.Collection, []string{id})
	if err != nil {
		return "", err
	}
	if len(recs) == 0 {
		return "", sekisho.Errorf(sekisho.ENotFound, "record %s not found in %s", id, s.Collection)
	}
	r := recs[0]
	fields := []string{f.Name}
	req := sekisho.AccessRequest{Caller: c, Action: sekisho.ActionTokenize, Collection: s.Collection, Schema: s, Fields: fields, Region: r.Region, Owner: r.Org}
	d := v.authz.Authorize(ctx, req)
	if v.guard != nil {
		d = v.guard.Check(ctx, req, recs, d)
	}
	if !d.Allow {
		return "", v.deny(ctx, v.event(c, sekisho.ActionTokenize, s.Collection, recs, nil, fields, d, false), d)
	}
	if r.Erased() {
		return "", sekisho.Errorf(sekisho.EGone, "record %s was erased", id)
	}
	bi, ok := r.Index[f.Name]
	if !ok {
		return "", sekisho.FieldErrorf(sekisho.ENotFound, "field", "record %s has no value in %s", id, f.Name)
	}
	tk, err := v.tokenKey(ctx, r.Org, s.Collection, f.Name)
	if err != nil {
		return "", err
	}
	tok, err := keys.Token(tk, bi)
	if err != nil {
		return "", err
	}
	if err := v.record(ctx, v.event(c, sekisho.ActionTokenize, s.Collection, recs, nil, fields, d, false)); err != nil {
		return "", err
	}
	return tok, nil
}

// Detokenize turns tokens back into values. Each token resolves, through
// the blind index, to the live records of the org that hold its value; the
// request is then a read of that field of those records like any other:
// authorised per record (action detokenize: an org's admins, or a grant
// that lists the action), checked for consent, seen by the guard (budgets
// count the records), audited with the records and the field before a value
// is returned, and so counted in an incident's scope. A token that resolves
// to no live record (unknown, or its records erased) gives null.
func (v *Vault) Detokenize(ctx context.Context, c sekisho.Caller, dr DetokenizeRequest) ([]json.RawMessage, error) {
	s, err := v.Schema(ctx, dr.Collection)
	if err != nil {
		return nil, err
	}
	f, err := tokenField(s, dr.Field)
	if err != nil {
		return nil, err
	}
	if len(dr.Tokens) == 0 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "tokens", "no tokens given")
	}
	if len(dr.Tokens) > MaxDetokenize {
		return nil, sekisho.FieldErrorf(sekisho.ETooLarge, "tokens", "at most %d tokens per request", MaxDetokenize)
	}
	org := dr.Org
	if org == "" {
		org = c.Org
	}
	if org != c.Org {
		// The keyring makes an org's keys on first use: look for a record
		// of the org first, so that a made-up org name creates nothing.
		ids, err := v.store.ListRecordIDs(ctx, dr.Collection, org, "", 1)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "org", "org %q has no records in %s", org, dr.Collection)
		}
	}
	tk, err := v.tokenKey(ctx, org, dr.Collection, f.Name)
	if err != nil {
		return nil, err
	}
	matches := make([][]string, len(dr.Tokens))
	var ids []string
	seen := map[string]bool{}
	for i, tok := range dr.Tokens {
		bi, err := keys.Untoken(tk, tok)
		if errors.Is(err, keys.ErrToken) {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "tokens", "tokens[%d] is not a token", i)
		}
		if err != nil {
			return nil, err
		}
		m, err := v.store.Lookup(ctx, dr.Collection, f.Name, bi, MaxLookupMatches)
		if err != nil {
			return nil, err
		}
		matches[i] = m
		for _, id := range m {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	recs, err := v.read(ctx, c, sekisho.ActionDetokenize, dr.Collection, nonEmpty(ids), []string{f.Name}, true)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*sekisho.Record, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	out := make([]json.RawMessage, len(dr.Tokens))
	for i, m := range matches {
		out[i] = json.RawMessage("null")
		for _, id := range m {
			if r := byID[id]; r != nil && r.Org == org {
				if val, ok := r.Fields[f.Name]; ok {
					out[i] = val
					break
				}
			}
		}
	}
	return out, nil
}
