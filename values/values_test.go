package values

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		typ    sekisho.FieldType
		region string
		in     string // JSON
		want   string // canonical JSON; "" means a validation error
	}{
		{"string trimmed", sekisho.TypeString, "jp", `"  Sakura Tanaka "`, `"Sakura Tanaka"`},
		{"string empty", sekisho.TypeString, "jp", `"   "`, ""},
		{"string control char", sekisho.TypeString, "jp", `"a\u0000b"`, ""},
		{"string not a string", sekisho.TypeString, "jp", `42`, ""},
		{"email lower-cased", sekisho.TypeEmail, "jp", `"Sakura@Example.JP"`, `"sakura@example.jp"`},
		{"email with display name", sekisho.TypeEmail, "jp", `"Sakura <s@example.jp>"`, ""},
		{"email no at", sekisho.TypeEmail, "jp", `"example.jp"`, ""},
		{"email no dot in domain", sekisho.TypeEmail, "jp", `"a@localhost"`, ""},
		{"phone national jp", sekisho.TypePhone, "jp", `"090-1234-5678"`, `"+819012345678"`},
		{"phone e164", sekisho.TypePhone, "th", `"+66 81 234 5678"`, `"+66812345678"`},
		{"phone national th", sekisho.TypePhone, "th", `"081 234 5678"`, `"+66812345678"`},
		{"phone invalid", sekisho.TypePhone, "jp", `"12345"`, ""},
		{"phone letters", sekisho.TypePhone, "jp", `"call me"`, ""},
		{"date", sekisho.TypeDate, "jp", `"1990-04-01"`, `"1990-04-01"`},
		{"date impossible", sekisho.TypeDate, "jp", `"1990-02-30"`, ""},
		{"date other format", sekisho.TypeDate, "jp", `"01/04/1990"`, ""},
		{"integer", sekisho.TypeInteger, "jp", `42`, `42`},
		{"integer from csv string", sekisho.TypeInteger, "jp", `"-7"`, `-7`},
		{"integer fraction", sekisho.TypeInteger, "jp", `4.5`, ""},
		{"integer overflow", sekisho.TypeInteger, "jp", `99999999999999999999`, ""},
		{"boolean", sekisho.TypeBoolean, "jp", `true`, `true`},
		{"boolean from csv", sekisho.TypeBoolean, "jp", `"false"`, `false`},
		{"boolean other", sekisho.TypeBoolean, "jp", `"yes"`, ""},
		{"json compacted", sekisho.TypeJSON, "jp", `{ "calls" : [1, 2] }`, `{"calls":[1,2]}`},
		{"json null", sekisho.TypeJSON, "jp", `null`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := sekisho.Field{Name: "f", Type: tc.typ, Classification: sekisho.ClassOther}
			got, err := Normalize(f, json.RawMessage(tc.in), tc.region)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Normalize(%s) = %s, want a validation error", tc.in, got)
				}
				if sekisho.Code(err) != sekisho.EInvalid {
					t.Fatalf("error code = %s, want %s", sekisho.Code(err), sekisho.EInvalid)
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
	for _, typ := range []sekisho.FieldType{sekisho.TypeEmail, sekisho.TypePhone, sekisho.TypeDate, sekisho.TypeInteger, sekisho.TypeBoolean} {
		_, err := Normalize(sekisho.Field{Name: "f", Type: typ}, json.RawMessage(`"`+secret+`"`), "jp")
		if err == nil {
			t.Fatalf("%s accepted %q", typ, secret)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s error repeats the value: %v", typ, err)
		}
	}
}

func TestApplyMask(t *testing.T) {
	tests := []struct {
		mask sekisho.Mask
		typ  sekisho.FieldType
		in   string
		want string
	}{
		{sekisho.MaskLast4, sekisho.TypePhone, `"+819012345678"`, `"***-****-5678"`},
		{sekisho.MaskEmailDomain, sekisho.TypeEmail, `"sakura@example.jp"`, `"***@example.jp"`},
		{sekisho.MaskRedact, sekisho.TypeString, `"Sakura"`, `"[redacted]"`},
		{sekisho.MaskLast4, sekisho.TypeString, `"12"`, `"**"`},
	}
	for _, tc := range tests {
		got := ApplyMask(sekisho.Field{Name: "f", Type: tc.typ, Mask: tc.mask}, []byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("ApplyMask(%s, %s) = %s, want %s", tc.mask, tc.in, got, tc.want)
		}
	}
}
