package sekisho

import (
	"fmt"
	"regexp"
)

// FieldType is the type of a field's values. Values are validated and
// normalised by type before they are sealed or indexed.
type FieldType string

// Field types.
const (
	TypeString  FieldType = "string"
	TypeEmail   FieldType = "email"
	TypePhone   FieldType = "phone"
	TypeDate    FieldType = "date"
	TypeInteger FieldType = "integer"
	TypeBoolean FieldType = "boolean"
	TypeJSON    FieldType = "json"
)

// Classification says what kind of personal data a field holds. Incident
// scopes and regulator reports count exposed fields by classification.
type Classification string

// Classifications.
const (
	ClassIdentifier Classification = "identifier"
	ClassContact    Classification = "contact"
	ClassSensitive  Classification = "sensitive"
	ClassUsage      Classification = "usage"
	ClassOther      Classification = "other"
)

// Mask is the masked form a field may be shown in.
type Mask string

// Masks.
const (
	MaskNone        Mask = ""
	MaskLast4       Mask = "last4"        // "***-****-1234"
	MaskEmailDomain Mask = "email-domain" // "***@example.com"
	MaskRedact      Mask = "redact"       // "[redacted]"
)

// Field describes one field of a collection.
type Field struct {
	Name           string         `json:"name" yaml:"name"`
	Type           FieldType      `json:"type" yaml:"type"`
	Classification Classification `json:"classification" yaml:"classification"`
	// Lookup makes the field searchable by exact match through a blind index.
	Lookup bool `json:"lookup,omitempty" yaml:"lookup,omitempty"`
	// Mask is the masked form that roles and grants may be limited to.
	Mask     Mask `json:"mask,omitempty" yaml:"mask,omitempty"`
	Required bool `json:"required,omitempty" yaml:"required,omitempty"`
	// MaxLength bounds string values in characters; 0 means the default (4096).
	MaxLength   int    `json:"max_length,omitempty" yaml:"max_length,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// Schema is the definition of a collection.
type Schema struct {
	Collection  string  `json:"collection" yaml:"collection"`
	Description string  `json:"description,omitempty" yaml:"description,omitempty"`
	Fields      []Field `json:"fields" yaml:"fields"`
	// Retention says how long records are kept before the sweeper erases
	// them; nil keeps them until erased by hand.
	Retention *Retention `json:"retention,omitempty" yaml:"retention,omitempty"`
	// ConsentRequired lists the purposes for which a record is read only
	// while its data subject's consent to that purpose holds.
	ConsentRequired []string `json:"consent_required,omitempty" yaml:"consent_required,omitempty"`
	// Version is set by the store; it grows by one with every change.
	Version int64 `json:"version,omitempty" yaml:"version,omitempty"`
}

// Limits of schemas and records.
const (
	MaxFields         = 128
	MaxNameLength     = 64
	DefaultMaxLength  = 4096
	MaxJSONFieldBytes = 64 << 10
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ValidName reports whether s is a valid collection or field name: lower-case
// ASCII letters, digits and underscores, starting with a letter, at most 64.
func ValidName(s string) bool { return nameRE.MatchString(s) }

var purposeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// ValidPurpose reports whether s is a well-formed purpose: like a name, but
// '-' is allowed too (subject-access, breach-notification).
func ValidPurpose(s string) bool { return purposeRE.MatchString(s) }

// Validate checks the schema's names, types, classifications and masks.
func (s *Schema) Validate() error {
	if !ValidName(s.Collection) {
		return FieldErrorf(EInvalid, "collection", "collection name %q must match %s", s.Collection, nameRE)
	}
	if len(s.Fields) == 0 {
		return FieldErrorf(EInvalid, "fields", "schema %s has no fields", s.Collection)
	}
	if len(s.Fields) > MaxFields {
		return FieldErrorf(EInvalid, "fields", "schema %s has %d fields, more than %d", s.Collection, len(s.Fields), MaxFields)
	}
	seen := make(map[string]bool, len(s.Fields))
	for i, f := range s.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		if !ValidName(f.Name) {
			return FieldErrorf(EInvalid, where, "field name %q must match %s", f.Name, nameRE)
		}
		if reservedField(f.Name) {
			return FieldErrorf(EInvalid, where, "field name %q is reserved", f.Name)
		}
		if seen[f.Name] {
			return FieldErrorf(EInvalid, where, "field %q is defined twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Type {
		case TypeString, TypeEmail, TypePhone, TypeDate, TypeInteger, TypeBoolean, TypeJSON:
		default:
			return FieldErrorf(EInvalid, where, "field %q has unknown type %q (want string, email, phone, date, integer, boolean or json)", f.Name, f.Type)
		}
		switch f.Classification {
		case ClassIdentifier, ClassContact, ClassSensitive, ClassUsage, ClassOther:
		case "":
			return FieldErrorf(EInvalid, where, "field %q needs a classification (identifier, contact, sensitive, usage or other)", f.Name)
		default:
			return FieldErrorf(EInvalid, where, "field %q has unknown classification %q (want identifier, contact, sensitive, usage or other)", f.Name, f.Classification)
		}
		switch f.Mask {
		case MaskNone, MaskLast4, MaskEmailDomain, MaskRedact:
		default:
			return FieldErrorf(EInvalid, where, "field %q has unknown mask %q (want last4, email-domain or redact)", f.Name, f.Mask)
		}
		if f.Mask == MaskEmailDomain && f.Type != TypeEmail {
			return FieldErrorf(EInvalid, where, "field %q: mask email-domain needs type email", f.Name)
		}
		if f.Lookup && f.Type == TypeJSON {
			return FieldErrorf(EInvalid, where, "field %q: a json field cannot be a lookup field", f.Name)
		}
		if f.MaxLength < 0 || f.MaxLength > MaxJSONFieldBytes {
			return FieldErrorf(EInvalid, where, "field %q: max_length must be between 0 and %d", f.Name, MaxJSONFieldBytes)
		}
	}
	if s.Retention != nil {
		if err := s.Retention.validate(s); err != nil {
			return err
		}
	}
	for i, p := range s.ConsentRequired {
		if !ValidPurpose(p) {
			return FieldErrorf(EInvalid, fmt.Sprintf("consent_required[%d]", i), "consent_required names %q, not a purpose name", p)
		}
	}
	return nil
}

// reservedField reports names that the record envelope uses.
func reservedField(name string) bool {
	switch name {
	case "id", "region", "org", "created_at", "updated_at", "version", "retain_until", "consents":
		return true
	}
	return false
}

// Field returns the field named name.
func (s *Schema) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// FieldNames returns the names of all fields, in schema order.
func (s *Schema) FieldNames() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}
