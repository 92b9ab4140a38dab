package sekisho_test

import (
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/values"
)

func FuzzDecodeRecordInput(f *testing.F) {
	f.Add([]byte(`{"region":"jp","fields":{"phone":"+819012345678","usage_summary":{"a":[1,2]}}}`))
	f.Add([]byte(`{"region":"jp","fields":{"phone":"a","phone":"b"}}`))
	f.Add([]byte(`{"fields":{}}`))
	f.Add([]byte(`{"region":"jp","fields":{"n":1},"retain_until":"2030-01-01T00:00:00Z","consents":{"marketing":{"given":"2026-01-05T09:00:00Z","withdrawn":null}}}`))
	f.Add([]byte(`{"region":"jp","fields":{"n":1},"consents":{"marketing":{"given":null,"withdrawn":null}}}`))
	schema := &sekisho.Schema{Collection: "users", Fields: []sekisho.Field{
		{Name: "phone", Type: sekisho.TypePhone, Classification: sekisho.ClassContact},
		{Name: "email", Type: sekisho.TypeEmail, Classification: sekisho.ClassContact},
		{Name: "n", Type: sekisho.TypeInteger, Classification: sekisho.ClassOther},
		{Name: "usage_summary", Type: sekisho.TypeJSON, Classification: sekisho.ClassUsage},
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := sekisho.DecodeRecordInput(data)
		if err != nil {
			if sekisho.Code(err) != sekisho.EInvalid && sekisho.Code(err) != sekisho.ETooLarge {
				t.Fatalf("decode error with code %s: %v", sekisho.Code(err), err)
			}
			return
		}
		for name, raw := range in.Fields {
			fd, ok := schema.Field(name)
			if !ok {
				continue
			}
			n, err := values.Normalize(fd, raw, "jp")
			if err != nil {
				continue
			}
			// Normalising is idempotent: a canonical value stays as it is.
			n2, err := values.Normalize(fd, n, "jp")
			if err != nil || string(n2) != string(n) {
				t.Fatalf("Normalize not idempotent for %s: %s -> %s (%v)", name, n, n2, err)
			}
		}
	})
}
