package sekisho

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Retention says how long a collection keeps its records. Exactly one of
// Field (with Keep) and KeepAfterCreate is set:
//
//	retention: {field: last_active, keep: 730d}   # 730 days after the date in last_active
//	retention: {keep_after_create: 5y}            # five years after the record was created
//
// A record's own retain_until, when set, decides instead of the schema.
type Retention struct {
	// Field names a date field; the record expires Keep after its value (or
	// after the record's creation while the field is not set).
	Field string `json:"field,omitempty" yaml:"field,omitempty"`
	Keep  Period `json:"keep,omitempty" yaml:"keep,omitempty"`
	// KeepAfterCreate expires a record this long after its creation.
	KeepAfterCreate Period `json:"keep_after_create,omitempty" yaml:"keep_after_create,omitempty"`
}

// Period is a retention period: a positive whole number and a unit, h
// (hours), d (days), w (weeks) or y (calendar years), such as 730d or 5y.
type Period string

var periodRE = regexp.MustCompile(`^([1-9][0-9]{0,5})([hdwy])$`)

// Valid reports whether p is a well-formed period.
func (p Period) Valid() bool { return periodRE.MatchString(string(p)) }

// After returns t plus the period (calendar days and years in UTC).
func (p Period) After(t time.Time) time.Time {
	m := periodRE.FindStringSubmatch(string(p))
	if m == nil {
		return time.Time{}
	}
	n, _ := strconv.Atoi(m[1])
	t = t.UTC()
	switch m[2] {
	case "h":
		return t.Add(time.Duration(n) * time.Hour)
	case "d":
		return t.AddDate(0, 0, n)
	case "w":
		return t.AddDate(0, 0, 7*n)
	default:
		return t.AddDate(n, 0, 0)
	}
}

// validate checks a retention rule against the schema's fields.
func (r *Retention) validate(s *Schema) error {
	switch {
	case r.Field == "" && r.KeepAfterCreate == "":
		return FieldErrorf(EInvalid, "retention", "retention needs {field: F, keep: 730d} or {keep_after_create: 5y}")
	case r.Field != "" && r.KeepAfterCreate != "":
		return FieldErrorf(EInvalid, "retention", "retention has either field and keep, or keep_after_create, not both")
	case r.Field != "":
		f, ok := s.Field(r.Field)
		if !ok {
			return FieldErrorf(EInvalid, "retention.field", "retention field %q is not a field of %s", r.Field, s.Collection)
		}
		if f.Type != TypeDate {
			return FieldErrorf(EInvalid, "retention.field", "retention field %q must have type date", r.Field)
		}
		if !r.Keep.Valid() {
			return FieldErrorf(EInvalid, "retention.keep", "retention keep %q must be a period such as 730d, 12w or 5y", r.Keep)
		}
	default:
		if r.Keep != "" {
			return FieldErrorf(EInvalid, "retention.keep", "keep goes with field; keep_after_create stands alone")
		}
		if !r.KeepAfterCreate.Valid() {
			return FieldErrorf(EInvalid, "retention.keep_after_create", "retention keep_after_create %q must be a period such as 730d, 12w or 5y", r.KeepAfterCreate)
		}
	}
	return nil
}

// Consent is a data subject's consent to one purpose: when it was given,
// and when it was withdrawn (nil while it holds).
type Consent struct {
	Given     *time.Time `json:"given"`
	Withdrawn *time.Time `json:"withdrawn"`
}

// Active reports whether the consent holds: given, and not withdrawn.
func (c Consent) Active() bool { return c.Given != nil && c.Withdrawn == nil }

// ConsentChange is one entry of a record's consent history: the state of
// one purpose's consent after a write, when and by whom.
type ConsentChange struct {
	Purpose   string     `json:"purpose"`
	Given     *time.Time `json:"given"`
	Withdrawn *time.Time `json:"withdrawn"`
	At        time.Time  `json:"at"`
	By        string     `json:"by"`
}

// Consents is what a record keeps about consent: the current state per
// purpose and every change. It is sealed under the record's data key like
// its fields, so that erasure destroys it too.
type Consents struct {
	Current map[string]Consent `json:"current"`
	History []ConsentChange    `json:"history"`
}

// Apply merges the consents given in a write into c, appending one history
// entry per purpose changed. Purposes not named keep their state.
func (c *Consents) Apply(in map[string]Consent, at time.Time, by string) {
	if c.Current == nil {
		c.Current = map[string]Consent{}
	}
	names := make([]string, 0, len(in))
	for p := range in {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		v := in[p]
		v.Given, v.Withdrawn = utcPtr(v.Given), utcPtr(v.Withdrawn)
		c.Current[p] = v
		c.History = append(c.History, ConsentChange{Purpose: p, Given: v.Given, Withdrawn: v.Withdrawn, At: at.UTC(), By: by})
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ValidateConsents checks the purposes named in a record's consents.
func ValidateConsents(in map[string]Consent) error {
	for p, c := range in {
		if !ValidPurpose(p) {
			return FieldErrorf(EInvalid, "consents", "consent purpose %q is not a purpose name", p)
		}
		if c.Given == nil && c.Withdrawn == nil {
			return FieldErrorf(EInvalid, "consents", "consent for %s needs given (RFC 3339) or withdrawn", p)
		}
		if c.Given != nil && c.Withdrawn != nil && c.Withdrawn.Before(*c.Given) {
			return FieldErrorf(EInvalid, "consents", "consent for %s is withdrawn before it was given", p)
		}
	}
	return nil
}

// NeedsConsent reports whether reading the collection for purpose needs the
// data subject's consent.
func (s *Schema) NeedsConsent(purpose string) bool {
	return purpose != "" && slices.Contains(s.ConsentRequired, purpose)
}

// Expiry returns when a record expires under the schema's retention, given
// its creation time, its own retain_until (zero if none) and the value of the
// retention field (nil if not set). The zero time means it never expires.
func (s *Schema) Expiry(created, retainUntil time.Time, fieldValue []byte) (time.Time, error) {
	if !retainUntil.IsZero() {
		return retainUntil.UTC(), nil
	}
	r := s.Retention
	if r == nil {
		return time.Time{}, nil
	}
	if r.KeepAfterCreate != "" {
		return r.KeepAfterCreate.After(created), nil
	}
	base := created
	if fieldValue != nil {
		var d string
		if err := json.Unmarshal(fieldValue, &d); err != nil {
			return time.Time{}, fmt.Errorf("retention field %s: %w", r.Field, err)
		}
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return time.Time{}, fmt.Errorf("retention field %s: %w", r.Field, err)
		}
		base = t
	}
	return r.Keep.After(base), nil
}
