package sekisho

import (
	"bytes"
	"encoding/json"
	"time"
)

// EventVersion is the schema version of the audit events written (the "v" key).
const EventVersion = 1

// Decisions, as audit events record them.
const (
	Allow = "allow"
	Deny  = "deny"
)

// EventTimeFormat is the canonical form of Event.Time: RFC 3339 in UTC with a fixed
// precision of microseconds, so that two encodings of one instant are equal.
const EventTimeFormat = "2006-01-02T15:04:05.000000Z"

// Event is one access decision, allowed or denied. Its JSON keys are part of the
// public contract (SIEM exports and outside verifiers read them); values, never
// the fields' contents, are recorded: Fields holds field names only.
type Event struct {
	V          int       // schema version; MarshalEvent writes EventVersion when zero
	Time       time.Time // UTC, microsecond precision in the canonical form
	RequestID  string
	Org        string // the principal's org
	Principal  string
	Device     string
	Source     string // the client's network address
	Purpose    string
	Action     string
	Collection string
	Records    []string // ids of the records touched
	Fields     []string // names of the fields returned
	Masked     bool
	Decision   string // Allow or Deny
	Policy     string // the policy or grant that decided
	Reason     string
	RecordOrgs []string         // owning orgs of the records touched
	Budget     map[string]int64 // optional counters (volume budgets) at decision time
	Detail     string           // optional free text
	// ClientRequestID is the X-Request-Id the client sent, kept beside the
	// server's own RequestID (which stays the event's key); optional.
	ClientRequestID string
}

// wireEvent fixes the key order of the canonical form. encoding/json writes
// struct fields in declaration order and map keys sorted, which is what makes
// the encoding deterministic.
type wireEvent struct {
	V          int              `json:"v"`
	Time       string           `json:"time"`
	RequestID  string           `json:"request_id"`
	Org        string           `json:"org"`
	Principal  string           `json:"principal"`
	Device     string           `json:"device"`
	Source     string           `json:"source"`
	Purpose    string           `json:"purpose"`
	Action     string           `json:"action"`
	Collection string           `json:"collection"`
	Records    []string         `json:"records"`
	Fields     []string         `json:"fields"`
	Masked     bool             `json:"masked"`
	Decision   string           `json:"decision"`
	Policy     string           `json:"policy"`
	Reason     string           `json:"reason"`
	RecordOrgs []string         `json:"record_orgs"`
	Budget     map[string]int64 `json:"budget,omitempty"`
	Detail     string           `json:"detail,omitempty"`
	// Added after v1 events were written: omitted when empty, so that the
	// canonical form (and the hash) of every earlier event is unchanged.
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// Canonical returns e in canonical form: version set, time in UTC truncated to
// microseconds, nil slices made empty, an empty budget made nil. MarshalEvent
// encodes this form, and UnmarshalEvent returns it.
func (e Event) Canonical() Event {
	if e.V == 0 {
		e.V = EventVersion
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Records = nonNil(e.Records)
	e.Fields = nonNil(e.Fields)
	e.RecordOrgs = nonNil(e.RecordOrgs)
	if len(e.Budget) == 0 {
		e.Budget = nil
	}
	return e
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Validate reports whether e can be recorded: a known version, a time, and a
// decision of allow or deny.
func (e Event) Validate() error {
	if e.V != 0 && e.V != EventVersion {
		return FieldErrorf(EInvalid, "v", "audit event version %d is not supported (want %d)", e.V, EventVersion)
	}
	if e.Time.IsZero() {
		return FieldErrorf(EInvalid, "time", "audit event has no time")
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return FieldErrorf(EInvalid, "time", "audit event time %d is out of range", y)
	}
	if e.Decision != Allow && e.Decision != Deny {
		return FieldErrorf(EInvalid, "decision", "audit event decision %q is neither %q nor %q", e.Decision, Allow, Deny)
	}
	return nil
}

// MarshalEvent returns the canonical JSON encoding of e: fixed key order, UTC time
// at microsecond precision, slices as [] never null, no trailing newline. The
// bytes are what is hashed into the Merkle tree. Strings that are not valid
// UTF-8 are encoded with U+FFFD in place of the bad bytes (as encoding/json
// does), so MarshalEvent(UnmarshalEvent(MarshalEvent(e))) equals MarshalEvent(e) for every e.
func MarshalEvent(e Event) []byte {
	e = e.Canonical()
	w := wireEvent{
		V:          e.V,
		Time:       e.Time.Format(EventTimeFormat),
		RequestID:  e.RequestID,
		Org:        e.Org,
		Principal:  e.Principal,
		Device:     e.Device,
		Source:     e.Source,
		Purpose:    e.Purpose,
		Action:     e.Action,
		Collection: e.Collection,
		Records:    e.Records,
		Fields:     e.Fields,
		Masked:     e.Masked,
		Decision:   e.Decision,
		Policy:     e.Policy,
		Reason:     e.Reason,
		RecordOrgs: e.RecordOrgs,
		Budget:     e.Budget,
		Detail:     e.Detail,

		ClientRequestID: e.ClientRequestID,
	}
	b, err := json.Marshal(w)
	if err != nil {
		// Only strings, bools, ints and a map[string]int64: cannot fail.
		panic("sekisho: marshal audit event: " + err.Error())
	}
	return b
}

// UnmarshalEvent decodes an event from JSON. Unknown keys, trailing data, a version
// other than EventVersion, a time that is not RFC 3339 and a decision other than
// allow or deny are refused. The result is in canonical form.
func UnmarshalEvent(b []byte) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireEvent
	if err := dec.Decode(&w); err != nil {
		return Event{}, Errorf(EInvalid, "audit event is not a valid JSON object: %v", err)
	}
	if dec.More() {
		return Event{}, Errorf(EInvalid, "audit event has trailing data")
	}
	if _, err := dec.Token(); err == nil {
		return Event{}, Errorf(EInvalid, "audit event has trailing data")
	}
	if w.V != EventVersion {
		return Event{}, FieldErrorf(EInvalid, "v", "audit event version %d is not supported (want %d)", w.V, EventVersion)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Event{}, FieldErrorf(EInvalid, "time", "audit event time %q is not RFC 3339", w.Time)
	}
	e := Event{
		V:          w.V,
		Time:       t,
		RequestID:  w.RequestID,
		Org:        w.Org,
		Principal:  w.Principal,
		Device:     w.Device,
		Source:     w.Source,
		Purpose:    w.Purpose,
		Action:     w.Action,
		Collection: w.Collection,
		Records:    w.Records,
		Fields:     w.Fields,
		Masked:     w.Masked,
		Decision:   w.Decision,
		Policy:     w.Policy,
		Reason:     w.Reason,
		RecordOrgs: w.RecordOrgs,
		Budget:     w.Budget,
		Detail:     w.Detail,

		ClientRequestID: w.ClientRequestID,
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e.Canonical(), nil
}

// MarshalJSON encodes e in its canonical form, so that an Event embedded in an
// API response has the same keys as the leaf.
func (e Event) MarshalJSON() ([]byte, error) { return MarshalEvent(e), nil }

// UnmarshalJSON decodes e strictly, as UnmarshalEvent does.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := UnmarshalEvent(b)
	if err != nil {
		return err
	}
	*e = ev
	return nil
}
