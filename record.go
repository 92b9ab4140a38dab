package sekisho

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Limits of a record write.
const (
	MaxRecordBytes = 1 << 20
	MaxBatch       = 1000
)

// RecordInput is the body of a create request, and one line of an NDJSON import.
type RecordInput struct {
	Region string                     `json:"region"`
	Fields map[string]json.RawMessage `json:"fields"`
	// RetainUntil, when set, is when the retention sweeper erases the
	// record, instead of the schema's retention rule.
	RetainUntil *time.Time `json:"retain_until,omitempty"`
	// Consents are the purposes the data subject consented to.
	Consents map[string]Consent `json:"consents,omitempty"`
	// Key, when set, is the caller's idempotency key of the record: its id
	// is derived from it (keyed by the org's index root, so the id does
	// not reveal the key), and a second create with the same key finds the
	// record there instead of making another (409 for one create; an
	// import skips it). An import re-run after an interruption thus
	// duplicates nothing.
	Key string `json:"key,omitempty"`
}

// MaxKeyBytes bounds RecordInput.Key.
const MaxKeyBytes = 256

// DecodeRecordInput strictly decodes a create request: unknown keys, trailing
// data and duplicate field names are refused.
//
// The common shape (region, fields and key, strings without escapes) is
// read in one pass without reflection; anything else takes the full
// decoder, which gives the same result (FuzzDecodeRecordInputFast).
func DecodeRecordInput(data []byte) (*RecordInput, error) {
	if in, ok := decodeRecordInputFast(data); ok {
		return in, nil
	}
	return decodeRecordInputFull(data)
}

// decodeRecordInputFull is DecodeRecordInput by encoding/json and a second
// pass that finds duplicate names.
func decodeRecordInputFull(data []byte) (*RecordInput, error) {
	if len(data) > MaxRecordBytes {
		return nil, Errorf(ETooLarge, "record is larger than %d bytes", MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in RecordInput
	if err := dec.Decode(&in); err != nil {
		return nil, Errorf(EInvalid, "record is not a valid JSON object {\"region\":..., \"fields\":{...}}: %v", jsonErrorText(err))
	}
	if _, err := dec.Token(); err == nil {
		return nil, Errorf(EInvalid, "record has trailing data after the JSON object")
	}
	if in.Fields == nil {
		return nil, FieldErrorf(EInvalid, "fields", "record has no fields object")
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, err
	}
	if err := ValidateConsents(in.Consents); err != nil {
		return nil, err
	}
	if len(in.Key) > MaxKeyBytes {
		return nil, FieldErrorf(EInvalid, "key", "key is longer than %d bytes", MaxKeyBytes)
	}
	return &in, nil
}

// jsonErrorText strips Go type names from decoding errors where it can.
func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "syntax error at byte " + itoa(e.Offset)
	case *json.UnmarshalTypeError:
		return "wrong type for " + e.Field
	}
	return err.Error()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// checkDuplicateKeys refuses an object "fields" that names a field twice,
// which encoding/json would otherwise resolve silently to the last value.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(depth int) error
	walk = func(depth int) error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := t.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if depth <= 1 && seen[k] {
					return FieldErrorf(EInvalid, k, "key %q appears twice", k)
				}
				seen[k] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	err := walk(0)
	if e, ok := err.(*Error); ok {
		return e
	}
	if err != nil {
		return Errorf(EInvalid, "record is not valid JSON")
	}
	return nil
}

// Record is a record as the vault returns it: opened, filtered to the fields
// asked for, and masked where the caller may only see masked values.
type Record struct {
	ID         string                     `json:"id"`
	Collection string                     `json:"collection"`
	Org        string                     `json:"org"`
	Region     string                     `json:"region"`
	Fields     map[string]json.RawMessage `json:"fields"`
	Masked     []string                   `json:"masked,omitempty"`
	// RetainUntil and Consents are returned with a read that opens the
	// record's fields; ConsentHistory lists every change of Consents.
	RetainUntil    *time.Time         `json:"retain_until,omitempty"`
	Consents       map[string]Consent `json:"consents,omitempty"`
	ConsentHistory []ConsentChange    `json:"consent_history,omitempty"`
	Version        int64              `json:"version"`
	CreatedAt      time.Time          `json:"created_at"`
	UpdatedAt      time.Time          `json:"updated_at"`
}

// SealedRecord is a record as the store keeps it: every field value sealed
// under the record's data key, which is itself wrapped by the key-encryption
// key of (Org, Region). The store never sees a plaintext value or key.
type SealedRecord struct {
	ID         string
	Collection string
	Org        string
	Region     string
	// KEKVersion is the version of the KEK that wrapped WrappedDEK.
	KEKVersion int
	// WrappedDEK is nil once the record is erased.
	WrappedDEK []byte
	// Fields maps field names to ciphertexts.
	Fields map[string][]byte
	// Index maps lookup field names to blind index tokens.
	Index map[string][]byte
	// Honeytoken marks a decoy record (see the guard).
	Honeytoken bool
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ErasedAt   time.Time
}

// Erased reports whether the record's data key has been destroyed.
func (r *SealedRecord) Erased() bool { return r.WrappedDEK == nil }

// Place returns where the record is (a RecordLocator's answer for it).
func (r *SealedRecord) Place() RecordPlace {
	return RecordPlace{ID: r.ID, Org: r.Org, Region: r.Region, Erased: r.Erased()}
}

// RecordPatch is the body of an update: the fields to change, and the
// record's retain_until and consents to change. Purposes not named in
// Consents keep their consent; withdrawing one is an update that names it
// with a withdrawn time.
type RecordPatch struct {
	Fields      map[string]json.RawMessage `json:"fields,omitempty"`
	RetainUntil *time.Time                 `json:"retain_until,omitempty"`
	Consents    map[string]Consent         `json:"consents,omitempty"`
}

// Empty reports whether the patch changes nothing.
func (p *RecordPatch) Empty() bool {
	return len(p.Fields) == 0 && p.RetainUntil == nil && len(p.Consents) == 0
}
