package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/keys"
)

// A record's lifecycle data (its retain_until and consents) is sealed under
// the record's data key next to its fields, under names that no schema field
// can take ('@' is not allowed in a field name). The store sees only that a
// record has them; erasure destroys them with the fields.
const (
	metaRetainUntil = "@retain_until"
	metaConsents    = "@consents"
)

// ProblemConsentMissing is the problem type of a read refused because the
// data subject has not consented to the purpose (or withdrew consent).
const ProblemConsentMissing = "consent-missing"

// isMeta reports whether a sealed field name is lifecycle data, not a field.
func isMeta(name string) bool { return strings.HasPrefix(name, "@") }

// dataFields returns the names of values that are schema fields, sorted.
func dataFields(values map[string][]byte) []string {
	out := make([]string, 0, len(values))
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !isMeta(k) {
			out = append(out, k)
		}
	}
	return out
}

// addMeta puts a record's retain_until and consents into values, to be
// sealed with its fields.
func addMeta(values map[string][]byte, retainUntil *time.Time, consents *sekisho.Consents) error {
	if retainUntil != nil {
		b, err := json.Marshal(retainUntil.UTC())
		if err != nil {
			return fmt.Errorf("encode retain_until: %w", err)
		}
		values[metaRetainUntil] = b
	}
	if consents != nil {
		b, err := json.Marshal(consents)
		if err != nil {
			return fmt.Errorf("encode consents: %w", err)
		}
		values[metaConsents] = b
	}
	return nil
}

// meta is a record's opened lifecycle data.
type meta struct {
	RetainUntil time.Time
	Consents    sekisho.Consents
}

// openMeta opens a record's lifecycle data with its record key.
func openMeta(rk *keys.RecordKey, r *sekisho.SealedRecord) (meta, error) {
	var m meta
	if ct, ok := r.Fields[metaRetainUntil]; ok {
		pt, err := rk.Open(keys.FieldAD{Collection: r.Collection, RecordID: r.ID, Field: metaRetainUntil, KeyVersion: dekVersion}, ct)
		if err != nil {
			return m, integrityErr(r, "retain_until", err)
		}
		if err := json.Unmarshal(pt, &m.RetainUntil); err != nil {
			return m, &sekisho.Error{Code: sekisho.EInternal, Message: fmt.Sprintf("retain_until of record %s does not decode", r.ID), Err: err}
		}
	}
	if ct, ok := r.Fields[metaConsents]; ok {
		pt, err := rk.Open(keys.FieldAD{Collection: r.Collection, RecordID: r.ID, Field: metaConsents, KeyVersion: dekVersion}, ct)
		if err != nil {
			return m, integrityErr(r, "consents", err)
		}
		if err := json.Unmarshal(pt, &m.Consents); err != nil {
			return m, &sekisho.Error{Code: sekisho.EInternal, Message: fmt.Sprintf("consents of record %s do not decode", r.ID), Err: err}
		}
	}
	return m, nil
}

// recordMeta opens the lifecycle data of a live record.
func (v *Vault) recordMeta(ctx context.Context, r *sekisho.SealedRecord) (meta, error) {
	if r.Fields[metaRetainUntil] == nil && r.Fields[metaConsents] == nil {
		return meta{}, nil
	}
	dek, err := v.dek(ctx, r)
	if err != nil {
		return meta{}, err
	}
	rk, err := keys.NewRecordKey(dek)
	if err != nil {
		return meta{}, err
	}
	return openMeta(rk, r)
}

// consentDecision refuses a read for a purpose that needs consent when one
// of the live records has no consent to it that holds. Erased records are
// left to the read path (they answer 410).
func (v *Vault) consentDecision(ctx context.Context, c sekisho.Caller, s *sekisho.Schema, recs []*sekisho.SealedRecord, d sekisho.Decision) (sekisho.Decision, error) {
	if !d.Allow || !s.NeedsConsent(c.Purpose) {
		return d, nil
	}
	for _, r := range recs {
		if r.Erased() {
			continue
		}
		m, err := v.recordMeta(ctx, r)
		if err != nil {
			return d, err
		}
		if !m.Consents.Current[c.Purpose].Active() {
			return sekisho.Decision{Policy: "consent", Reason: fmt.Sprintf("record %s: the data subject has not consented to purpose %s (or withdrew consent)", r.ID, c.Purpose),
				Code: sekisho.EForbidden, Type: ProblemConsentMissing}, nil
		}
	}
	return d, nil
}

// inputMeta adds a new record's retain_until and consents to its values.
func (v *Vault) inputMeta(values map[string][]byte, c sekisho.Caller, retainUntil *time.Time, consents map[string]sekisho.Consent) error {
	if err := sekisho.ValidateConsents(consents); err != nil {
		return err
	}
	var cs *sekisho.Consents
	if len(consents) > 0 {
		cs = &sekisho.Consents{}
		cs.Apply(consents, v.now(), c.Principal)
	}
	return addMeta(values, retainUntil, cs)
}
