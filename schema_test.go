package sekisho

import (
	"strings"
	"testing"
)

func TestParseSchema(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means valid
	}{
		{"yaml", "collection: users\nfields:\n  - {name: phone, type: phone, classification: contact, lookup: true, mask: last4}\n", ""},
		{"json", `{"collection":"users","fields":[{"name":"email","type":"email","classification":"contact","mask":"email-domain"}]}`, ""},
		{"empty", "", "empty"},
		{"unknown key yaml", "collection: users\nfields:\n  - {name: a, type: string, classification: other, lokup: true}\n", "not valid YAML"},
		{"unknown key json", `{"collection":"users","fields":[],"extra":1}`, "not valid JSON"},
		{"bad collection name", `{"collection":"Users!","fields":[{"name":"a","type":"string","classification":"other"}]}`, "collection name"},
		{"no fields", `{"collection":"users","fields":[]}`, "no fields"},
		{"bad type", `{"collection":"users","fields":[{"name":"a","type":"float","classification":"other"}]}`, "unknown type"},
		{"no classification", `{"collection":"users","fields":[{"name":"a","type":"string"}]}`, "needs a classification"},
		{"bad classification", `{"collection":"users","fields":[{"name":"a","type":"string","classification":"secret"}]}`, "unknown classification"},
		{"bad mask", `{"collection":"users","fields":[{"name":"a","type":"string","classification":"other","mask":"hash"}]}`, "unknown mask"},
		{"email-domain on string", `{"collection":"users","fields":[{"name":"a","type":"string","classification":"other","mask":"email-domain"}]}`, "needs type email"},
		{"json lookup", `{"collection":"users","fields":[{"name":"a","type":"json","classification":"other","lookup":true}]}`, "cannot be a lookup"},
		{"duplicate", `{"collection":"users","fields":[{"name":"a","type":"string","classification":"other"},{"name":"a","type":"string","classification":"other"}]}`, "defined twice"},
		{"reserved", `{"collection":"users","fields":[{"name":"region","type":"string","classification":"other"}]}`, "reserved"},
		{"trailing", `{"collection":"users","fields":[{"name":"a","type":"string","classification":"other"}]} {}`, "trailing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchema([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSchema: %v", err)
				}
				if s.Collection != "users" || len(s.Fields) != 1 {
					t.Fatalf("parsed %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseSchema error = %v, want one containing %q", err, tc.wantErr)
			}
			if Code(err) != EInvalid {
				t.Fatalf("code = %s, want invalid", Code(err))
			}
		})
	}
}

func FuzzParseSchema(f *testing.F) {
	f.Add([]byte("collection: users\nfields:\n  - {name: phone, type: phone, classification: contact, lookup: true}\n"))
	f.Add([]byte(`{"collection":"users","fields":[{"name":"email","type":"email","classification":"contact"}]}`))
	f.Add([]byte("collection: [a, b]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchema(data)
		if err != nil {
			if Code(err) != EInvalid {
				t.Fatalf("error code %s: %v", Code(err), err)
			}
			return
		}
		// A schema that parses is valid, and validates again unchanged.
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed schema does not validate: %v", err)
		}
	})
}
