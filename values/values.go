// Package values validates and normalises the values of a record's fields
// (trimmed strings, lower-cased email addresses, E.164 phone numbers, real
// calendar dates), and masks them. The canonical form is what is sealed and
// what a lookup field's blind index is computed over.
package values

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/sekisho/sekisho"
)

// Normalize validates raw, the JSON value given for field f of a record in
// region, and returns its canonical JSON encoding: the bytes that are sealed
// and, for lookup fields, fed to the blind index. Normalising first means the
// same person's phone number written two ways finds the same record.
//
//   - string: trimmed, valid UTF-8, no control characters, at most MaxLength.
//   - email: lower-cased address of a valid RFC 5322 addr-spec, without a display name.
//   - phone: E.164 ("+819012345678"); national numbers are read in the record's region.
//   - date: "YYYY-MM-DD", a real calendar date.
//   - integer: a JSON number without fraction or exponent that fits int64
//     (or a string holding one, for CSV input).
//   - boolean: true or false (or "true"/"false", for CSV input).
//   - json: any JSON value, compacted, at most 64 KiB.
//
// Errors never repeat the value: a validation message may end up in a log.
//
// A string value without escapes is read and written without encoding/json
// (unquote, quote); anything else takes encoding/json as before, so the
// result is the same either way (FuzzNormalizeFastPaths).
func Normalize(f sekisho.Field, raw json.RawMessage, region string) ([]byte, error) {
	return normalize(f, raw, region, true)
}

func normalize(f sekisho.Field, raw json.RawMessage, region string, fast bool) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: value is empty", f.Name)
	}
	if f.Type == sekisho.TypeJSON {
		if len(raw) > sekisho.MaxJSONFieldBytes {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: json value is larger than %d bytes", f.Name, sekisho.MaxJSONFieldBytes)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: not valid JSON", f.Name)
		}
		return buf.Bytes(), nil
	}
	switch f.Type {
	case sekisho.TypeInteger:
		s := string(raw)
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: want an integer", f.Name)
			}
			s = strings.TrimSpace(s)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: want an integer that fits 64 bits", f.Name)
		}
		return strconv.AppendInt(nil, n, 10), nil
	case sekisho.TypeBoolean:
		switch string(raw) {
		case "true", `"true"`:
			return []byte("true"), nil
		case "false", `"false"`:
			return []byte("false"), nil
		}
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: want true or false", f.Name)
	}
	// The remaining types are strings.
	if raw[0] != '"' {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: want a string", f.Name)
	}
	s, ok := "", false
	if fast {
		s, ok = unquote(raw)
	}
	if !ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: want a string", f.Name)
		}
	}
	s, err := normalizeString(f, s, region)
	if err != nil {
		return nil, err
	}
	if fast {
		if b, ok := quote(s); ok {
			return b, nil
		}
	}
	return json.Marshal(s)
}

// unquote is json.Unmarshal of a JSON string into a Go string for the
// strings that need no decoding: no escapes, no control characters, valid
// UTF-8. It reports false for any other raw.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(in) {
		return "", false // encoding/json replaces invalid bytes
	}
	return string(in), true
}

// quote is json.Marshal of a string that needs no escaping: printable
// ASCII other than the quote, the backslash and encoding/json's HTML
// characters (<, >, &), or valid UTF-8 other than U+2028 and U+2029. It
// reports false for any other s.
func quote(s string) ([]byte, bool) {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	if !ascii && (!utf8.ValidString(s) || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029")) {
		return nil, false
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// NormalizeString is Normalize for a value that arrives as text (a CSV cell or
// a lookup value typed by a person).
func NormalizeString(f sekisho.Field, s, region string) ([]byte, error) {
	switch f.Type {
	case sekisho.TypeInteger, sekisho.TypeBoolean, sekisho.TypeJSON:
		if f.Type == sekisho.TypeJSON {
			return Normalize(f, json.RawMessage(s), region)
		}
		b, _ := json.Marshal(s)
		return Normalize(f, b, region)
	}
	n, err := normalizeString(f, s, region)
	if err != nil {
		return nil, err
	}
	return json.Marshal(n)
}

func normalizeString(f sekisho.Field, s, region string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: value is empty", f.Name)
	}
	if !utf8.ValidString(s) {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: not valid UTF-8", f.Name)
	}
	max := f.MaxLength
	if max == 0 {
		max = sekisho.DefaultMaxLength
	}
	if utf8.RuneCountInString(s) > max {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: longer than %d characters", f.Name, max)
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: contains a control character", f.Name)
		}
	}
	switch f.Type {
	case sekisho.TypeString:
		return s, nil
	case sekisho.TypeEmail:
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s || !strings.Contains(a.Address, "@") {
			return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: not a valid email address", f.Name)
		}
		at := strings.LastIndexByte(a.Address, '@')
		if !strings.Contains(a.Address[at+1:], ".") {
			return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: email domain has no dot", f.Name)
		}
		return strings.ToLower(a.Address), nil
	case sekisho.TypePhone:
		// Bounded in characters, not bytes: full-width digits (three bytes
		// each in UTF-8) spell a valid number that phonenumbers reads.
		if utf8.RuneCountInString(s) > 32 || len(s) > 128 {
			return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: not a valid phone number", f.Name)
		}
		if e164, valid, ok := phoneFast(s); ok {
			if !valid {
				return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: not a valid phone number (use E.164, e.g. +819012345678)", f.Name)
			}
			return e164, nil
		}
		num, err := phonenumbers.Parse(s, strings.ToUpper(region))
		if err != nil || !phonenumbers.IsValidNumber(num) {
			return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: not a valid phone number (use E.164, e.g. +819012345678)", f.Name)
		}
		return phonenumbers.Format(num, phonenumbers.E164), nil
	case sekisho.TypeDate:
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: want a date as YYYY-MM-DD", f.Name)
		}
		return t.Format(time.DateOnly), nil
	}
	return "", sekisho.FieldErrorf(sekisho.EInvalid, f.Name, "field %s: unknown type %s", f.Name, f.Type)
}

// ApplyMask returns the masked form of a canonical value of field f, as a JSON
// value. Masking happens on the server, before a value leaves it.
func ApplyMask(f sekisho.Field, canonical []byte) json.RawMessage {
	var s string
	if err := json.Unmarshal(canonical, &s); err != nil {
		s = string(canonical)
	}
	var out string
	switch f.Mask {
	case sekisho.MaskLast4:
		digits := []rune(s)
		if len(digits) <= 4 {
			out = strings.Repeat("*", len(digits))
		} else {
			out = "***-****-" + string(digits[len(digits)-4:])
		}
	case sekisho.MaskEmailDomain:
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			out = "***" + s[at:]
		} else {
			out = "***"
		}
	default:
		out = "[redacted]"
	}
	b, _ := json.Marshal(out)
	return b
}
