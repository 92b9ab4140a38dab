package schemas

import (
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
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
			s, err := Parse([]byte(tc.in))
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
			if sekisho.Code(err) != sekisho.EInvalid {
				t.Fatalf("code = %s, want invalid", sekisho.Code(err))
			}
		})
	}
}

func FuzzParseSchema(f *testing.F) {
	f.Add([]byte("collection: users\nfields:\n  - {name: phone, type: phone, classification: contact, lookup: true}\n"))
	f.Add([]byte(`{"collection":"users","fields":[{"name":"email","type":"email","classification":"contact"}]}`))
	f.Add([]byte("collection: [a, b]\n"))
	f.Add([]byte("collection: s\nfields:\n  - {name: d, type: date, classification: usage}\nretention: {field: d, keep: 730d}\nconsent_required: [marketing]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if sekisho.Code(err) != sekisho.EInvalid {
				t.Fatalf("error code %s: %v", sekisho.Code(err), err)
			}
			return
		}
		// A schema that parses is valid, and validates again unchanged.
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed schema does not validate: %v", err)
		}
	})
}

func TestSchemaLifecycle(t *testing.T) {
	const date = `{"name":"last_active","type":"date","classification":"usage"}`
	const str = `{"name":"a","type":"string","classification":"other"}`
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means valid
	}{
		{"field and keep", `{"collection":"users","fields":[` + date + `],"retention":{"field":"last_active","keep":"730d"}}`, ""},
		{"keep after create", `{"collection":"users","fields":[` + str + `],"retention":{"keep_after_create":"5y"}}`, ""},
		{"yaml", "collection: users\nfields:\n  - {name: a, type: string, classification: other}\nretention: {keep_after_create: 5y}\nconsent_required: [marketing]\n", ""},
		{"consent", `{"collection":"users","fields":[` + str + `],"consent_required":["marketing","subject-access"]}`, ""},
		{"empty retention", `{"collection":"users","fields":[` + str + `],"retention":{}}`, "needs"},
		{"both", `{"collection":"users","fields":[` + date + `],"retention":{"field":"last_active","keep":"1d","keep_after_create":"5y"}}`, "not both"},
		{"no such field", `{"collection":"users","fields":[` + str + `],"retention":{"field":"b","keep":"1d"}}`, "not a field"},
		{"not a date", `{"collection":"users","fields":[` + str + `],"retention":{"field":"a","keep":"1d"}}`, "type date"},
		{"bad period", `{"collection":"users","fields":[` + date + `],"retention":{"field":"last_active","keep":"2 years"}}`, "period"},
		{"zero period", `{"collection":"users","fields":[` + str + `],"retention":{"keep_after_create":"0d"}}`, "period"},
		{"months are ambiguous", `{"collection":"users","fields":[` + str + `],"retention":{"keep_after_create":"6m"}}`, "period"},
		{"keep alone", `{"collection":"users","fields":[` + str + `],"retention":{"keep":"5y"}}`, "needs"},
		{"bad purpose", `{"collection":"users","fields":[` + str + `],"consent_required":["Marketing"]}`, "not a purpose"},
		{"unknown retention key", `{"collection":"users","fields":[` + str + `],"retention":{"keep_after":"5y"}}`, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSchema: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || sekisho.Code(err) != sekisho.EInvalid {
				t.Fatalf("ParseSchema error = %v, want invalid containing %q", err, tc.wantErr)
			}
		})
	}
}
