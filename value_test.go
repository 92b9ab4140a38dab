package sekisho

import (
	"encoding/json"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		typ    FieldType
		region string
		in     string // JSON
		want   string // canonical JSON; "" means a validation error
	}{
		{"string trimmed", TypeString, "jp", `"  Sakura Tanaka "`, `"Sakura Tanaka"`},
		{"string empty", TypeString, "jp", `"   "`, ""},
		{"string control char", TypeString, "jp", `"a\u0000b"`, ""},
		{"string not a string", TypeString, "jp", `42`, ""},
		{"email lower-cased", TypeEmail, "jp", `"Sakura@Example.JP"`, `"sakura@example.jp"`},
		{"email with display name", TypeEmail, "jp", `"Sakura <s@example.jp>"`, ""},
		{"email no at", TypeEmail, "jp", `"example.jp"`, ""},
		{"email no dot in domain", TypeEmail, "jp", `"a@localhost"`, ""},
		{"phone national jp", TypePhone, "jp", `"090-1234-5678"`, `"+819012345678"`},
		{"phone e164", TypePhone, "th", `"+66 81 234 5678"`, `"+66812345678"`},
		{"phone national th", TypePhone, "th", `"081 234 5678"`, `"+66812345678"`},
		{"phone invalid", TypePhone, "jp", `"12345"`, ""},
		{"phone letters", TypePhone, "jp", `"call me"`, ""},
		{"date", TypeDate, "jp", `"1990-04-01"`, `"1990-04-01"`},
		{"date impossible", TypeDate, "jp", `"1990-02-30"`, ""},
		{"date other format", TypeDate, "jp", `"01/04/1990"`, ""},
		{"integer", TypeInteger, "jp", `42`, `42`},
		{"integer from csv string", TypeInteger, "jp", `"-7"`, `-7`},
		{"integer fraction", TypeInteger, "jp", `4.5`, ""},
		{"integer overflow", TypeInteger, "jp", `99999999999999999999`, ""},
		{"boolean", TypeBoolean, "jp", `true`, `true`},
		{"boolean from csv", TypeBoolean, "jp", `"false"`, `false`},
		{"boolean other", TypeBoolean, "jp", `"yes"`, ""},
		{"json compacted", TypeJSON, "jp", `{ "calls" : [1, 2] }`, `{"calls":[1,2]}`},
		{"json null", TypeJSON, "jp", `null`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Field{Name: "f", Type: tc.typ, Classification: ClassOther}
			got, err := Normalize(f, json.RawMessage(tc.in), tc.region)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Normalize(%s) = %s, want a validation error", tc.in, got)
				}
				if Code(err) != EInvalid {
					t.Fatalf("error code = %s, want %s", Code(err), EInvalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%s): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Fatalf("Normalize(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizeErrorsDoNotEchoValues(t *testing.T) {
	secret := "SECRET-VALUE-1234"
	for _, typ := range []FieldType{TypeEmail, TypePhone, TypeDate, TypeInteger, TypeBoolean} {
		_, err := Normalize(Field{Name: "f", Type: typ}, json.RawMessage(`"`+secret+`"`), "jp")
		if err == nil {
			t.Fatalf("%s accepted %q", typ, secret)
		}
		if contains(err.Error(), secret) {
			t.Errorf("%s error repeats the value: %v", typ, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestApplyMask(t *testing.T) {
	tests := []struct {
		mask Mask
		typ  FieldType
		in   string
		want string
	}{
		{MaskLast4, TypePhone, `"+819012345678"`, `"***-****-5678"`},
		{MaskEmailDomain, TypeEmail, `"sakura@example.jp"`, `"***@example.jp"`},
		{MaskRedact, TypeString, `"Sakura"`, `"[redacted]"`},
		{MaskLast4, TypeString, `"12"`, `"**"`},
	}
	for _, tc := range tests {
		got := ApplyMask(Field{Name: "f", Type: tc.typ, Mask: tc.mask}, []byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("ApplyMask(%s, %s) = %s, want %s", tc.mask, tc.in, got, tc.want)
		}
	}
}

func TestDecodeRecordInput(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", `{"region":"jp","fields":{"phone":"+819012345678"}}`, true},
		{"unknown key", `{"region":"jp","fields":{},"owner":"x"}`, false},
		{"no fields", `{"region":"jp"}`, false},
		{"trailing data", `{"region":"jp","fields":{}} {}`, false},
		{"duplicate field", `{"region":"jp","fields":{"phone":"a","phone":"b"}}`, false},
		{"duplicate top key", `{"region":"jp","region":"th","fields":{}}`, false},
		{"not json", `region=jp`, false},
		{"array", `[]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRecordInput([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeRecordInput(%s) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func FuzzDecodeRecordInput(f *testing.F) {
	f.Add([]byte(`{"region":"jp","fields":{"phone":"+819012345678","usage_summary":{"a":[1,2]}}}`))
	f.Add([]byte(`{"region":"jp","fields":{"phone":"a","phone":"b"}}`))
	f.Add([]byte(`{"fields":{}}`))
	f.Add([]byte(`{"region":"jp","fields":{"n":1},"retain_until":"2030-01-01T00:00:00Z","consents":{"marketing":{"given":"2026-01-05T09:00:00Z","withdrawn":null}}}`))
	f.Add([]byte(`{"region":"jp","fields":{"n":1},"consents":{"marketing":{"given":null,"withdrawn":null}}}`))
	schema := &Schema{Collection: "users", Fields: []Field{
		{Name: "phone", Type: TypePhone, Classification: ClassContact},
		{Name: "email", Type: TypeEmail, Classification: ClassContact},
		{Name: "n", Type: TypeInteger, Classification: ClassOther},
		{Name: "usage_summary", Type: TypeJSON, Classification: ClassUsage},
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeRecordInput(data)
		if err != nil {
			if Code(err) != EInvalid && Code(err) != ETooLarge {
				t.Fatalf("decode error with code %s: %v", Code(err), err)
			}
			return
		}
		for name, raw := range in.Fields {
			fd, ok := schema.Field(name)
			if !ok {
				continue
			}
			n, err := Normalize(fd, raw, "jp")
			if err != nil {
				continue
			}
			// Normalising is idempotent: a canonical value stays as it is.
			n2, err := Normalize(fd, n, "jp")
			if err != nil || string(n2) != string(n) {
				t.Fatalf("Normalize not idempotent for %s: %s -> %s (%v)", name, n, n2, err)
			}
		}
	})
}
